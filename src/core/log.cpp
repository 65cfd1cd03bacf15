// Logger implementation: filter parsing, line rendering, one write per line.
#include "core/log.h"

#include "core/json.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cctype>
#include <mutex>

namespace ztunnel::log {
namespace {

constexpr std::string_view kLevelNames[] = {"trace", "debug", "info", "warn", "error", "off"};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// `target` is covered by directive `prefix` when equal or when it continues
// with "::" (Rust module paths) or "." right after the prefix.
bool covers(std::string_view prefix, std::string_view target) {
  if (!target.starts_with(prefix)) return false;
  if (target.size() == prefix.size()) return true;
  std::string_view rest = target.substr(prefix.size());
  return rest.starts_with("::") || rest.starts_with(".");
}

// Plain-format values are quoted only when they would otherwise be ambiguous.
void append_plain_value(std::string& out, std::string_view v) {
  // One pass with plain comparisons: find_first_of over five characters
  // costs a memchr per character kind, on every field of every line.
  bool needs_quotes = v.empty();
  for (char c : v) {
    if (c == ' ' || c == '\t' || c == '"' || c == '=' || c == '\n') {
      needs_quotes = true;
      break;
    }
  }
  if (needs_quotes) {
    core::append_json_string(out, v);
  } else {
    out.append(v);
  }
}

// Appends the current UTC time, RFC 3339 with microseconds. The calendar
// part changes once a second; each thread keeps its last one, so a busy
// thread formats only the microseconds per line.
void append_timestamp(std::string& out) {
  struct Cached {
    std::time_t second = -1;
    char text[24] = {};  // "YYYY-MM-DDTHH:MM:SS"
    std::size_t size = 0;
  };
  thread_local Cached cached;
  const auto now = std::chrono::system_clock::now();
  const auto secs = std::chrono::time_point_cast<std::chrono::seconds>(now);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now - secs).count();
  const std::time_t t = std::chrono::system_clock::to_time_t(secs);
  if (t != cached.second) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    cached.size = std::strftime(cached.text, sizeof cached.text, "%Y-%m-%dT%H:%M:%S", &tm);
    cached.second = t;
  }
  out.append(cached.text, cached.size);
  char frac[8] = {'.', '0', '0', '0', '0', '0', '0', 'Z'};
  auto rest = static_cast<unsigned long>(micros);
  for (int i = 6; i >= 1; --i) {
    frac[i] = static_cast<char>('0' + rest % 10);
    rest /= 10;
  }
  out.append(frac, sizeof frac);
}

}  // namespace

std::string_view level_name(Level level) { return kLevelNames[static_cast<int>(level)]; }

core::Result<Level> parse_level(std::string_view text) {
  std::string lower;
  for (char c : trim(text)) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (lower == "warning") lower = "warn";
  for (int i = 0; i <= static_cast<int>(Level::kOff); ++i) {
    if (lower == kLevelNames[i]) return static_cast<Level>(i);
  }
  return core::Error{fmt::format("unknown log level \"{}\" (expected off, error, warn, info, debug or trace)", text)};
}

core::Result<Format> parse_format(std::string_view text) {
  if (text == "plain" || text.empty()) return Format::kPlain;
  if (text == "json") return Format::kJson;
  return core::Error{fmt::format("unknown log format \"{}\" (expected plain or json)", text)};
}

core::Result<Filter> Filter::parse(std::string_view spec) {
  Filter f;
  f.spec_ = std::string(trim(spec));
  std::string_view rest = f.spec_;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view clause = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (clause.empty()) continue;
    size_t eq = clause.find('=');
    if (eq == std::string_view::npos) {
      // A bare word is either a level (the default) or a target at trace.
      auto level = parse_level(clause);
      if (level) {
        f.default_level_ = *level;
      } else {
        f.directives_.push_back({std::string(clause), Level::kTrace});
      }
      continue;
    }
    std::string_view target = trim(clause.substr(0, eq));
    auto level = parse_level(clause.substr(eq + 1));
    if (target.empty()) {
      return core::Error{fmt::format("log filter clause \"{}\" has no target before '='", clause)};
    }
    if (!level) return level.error();
    f.directives_.push_back({std::string(target), *level});
  }
  f.most_verbose_ = f.default_level_;
  for (const auto& d : f.directives_) f.most_verbose_ = std::min(f.most_verbose_, d.level);
  std::stable_sort(f.directives_.begin(), f.directives_.end(),
                   [](const Directive& a, const Directive& b) { return a.target.size() > b.target.size(); });
  return f;
}

Level Filter::level_for(std::string_view target) const {
  for (const auto& d : directives_) {
    if (covers(d.target, target)) return d.level;
  }
  return default_level_;
}

Logger::Logger()
    : filter_(std::make_shared<const Filter>(*Filter::parse("info"))),
      filters_set_{filter_},
      current_(filter_.get()) {}

void Logger::set_filter(Filter filter) {
  Level least = filter.most_verbose();
  auto next = std::make_shared<const Filter>(std::move(filter));
  {
    std::lock_guard lock(filter_mutex_);
    filters_set_.push_back(next);
    current_.store(next.get(), std::memory_order_release);
    filter_ = std::move(next);
  }
  min_level_.store(least);
}

LineBuilder::LineBuilder(Format format, Level level, std::string_view target,
                         std::string_view message, std::string& line, std::string& scratch)
    : format_(format), line_(line), scratch_(scratch) {
  line_.clear();
  if (format_ == Format::kJson) {
    line_ += "{\"level\":";
    core::append_json_string(line_, level_name(level));
    line_ += ",\"time\":\"";
    append_timestamp(line_);  // digits, '-', ':', '.', 'T', 'Z': nothing to escape
    line_ += "\",\"scope\":";
    core::append_json_string(line_, target);
    line_ += ",\"message\":";
    core::append_json_string(line_, message);
  } else {
    append_timestamp(line_);
    line_.push_back('\t');
    line_.append(level_name(level));
    line_.push_back('\t');
    line_.append(target);
    line_.push_back('\t');
    line_.append(message);
  }
}

void LineBuilder::add(std::string_view key, std::string_view value) {
  if (format_ == Format::kJson) {
    line_.push_back(',');
    core::append_json_string(line_, key);
    line_.push_back(':');
    core::append_json_string(line_, value);
  } else {
    line_.push_back(' ');
    line_.append(key);
    line_.push_back('=');
    append_plain_value(line_, value);
  }
}

std::string_view LineBuilder::finish() {
  line_ += format_ == Format::kJson ? "}\n" : "\n";
  return line_;
}

std::string Logger::render(Level level, std::string_view target, std::string_view message,
                           std::span<const Field> fields) const {
  std::string line;
  std::string scratch;
  LineBuilder builder(format_.load(), level, target, message, line, scratch);
  for (const Field& f : fields) builder.add(f.key, f.value);
  builder.finish();
  return line;
}

void Logger::write(Level level, std::string_view target, std::string_view message,
                   std::span<const Field> fields) {
  write_with(level, target, message, [fields](LineBuilder& line) {
    for (const Field& f : fields) line.add(f.key, f.value);
  });
}

Logger::LineBuffers& Logger::thread_buffers() {
  thread_local LineBuffers buffers;
  return buffers;
}

void Logger::release_if_large(LineBuffers& buffers) {
  constexpr std::size_t kKeptBytes = 16 * 1024;
  if (buffers.line.capacity() > kKeptBytes) std::string().swap(buffers.line);
  if (buffers.scratch.capacity() > kKeptBytes) std::string().swap(buffers.scratch);
}

void Logger::emit(std::string_view line) {
  static std::mutex write_mutex;  // keeps lines from interleaving on one fd
  std::lock_guard lock(write_mutex);
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd_.load(std::memory_order_relaxed), p, left);
    if (n <= 0) return;  // nowhere else to report a failing log sink
    p += n;
    left -= static_cast<size_t>(n);
  }
}

Logger& logger() {
  static Logger instance;
  return instance;
}

}  // namespace ztunnel::log
