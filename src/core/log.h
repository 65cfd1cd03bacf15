// Leveled, structured logging with a filter that can change at runtime.
//
// Threading: the filter is an immutable object swapped whole. enabled()
// reads it through an atomic plain pointer, with no lock and no reference
// count; every filter ever set stays alive for the process's life, so a
// reader never sees a freed one (a filter is a few hundred bytes, and only an
// operator changes it). Calls below the most verbose level any target allows
// return on one relaxed atomic load. Writers serialize on a mutex around a
// single write(2) per line.
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace ztunnel::log {

enum class Level : int { kTrace = 0, kDebug, kInfo, kWarn, kError, kOff };

std::string_view level_name(Level level);
core::Result<Level> parse_level(std::string_view text);

enum class Format { kPlain, kJson };
core::Result<Format> parse_format(std::string_view text);

// A RUST_LOG-style filter: "info", "warn,xds=debug", "access=off". Targets
// match by prefix on `::` boundaries, the longest directive winning, as in
// Istio's ztunnel, so the same strings work for operators of either.
class Filter {
 public:
  static core::Result<Filter> parse(std::string_view spec);

  Level level_for(std::string_view target) const;
  const std::string& spec() const { return spec_; }
  // The most verbose level any target can reach; lets callers skip work early.
  Level most_verbose() const { return most_verbose_; }

 private:
  struct Directive {
    std::string target;
    Level level;
  };
  std::string spec_;
  Level default_level_ = Level::kInfo;
  Level most_verbose_ = Level::kInfo;
  std::vector<Directive> directives_;  // sorted longest target first
};

// One key=value pair attached to a log line.
struct Field {
  std::string_view key;
  std::string value;
};

// Renders one line into storage the caller reuses: the time, level, target
// and message first, then each field, quoted or escaped as the format needs.
// Hot paths (the access log, one line per connection) add their fields
// here instead of building a std::string per value.
class LineBuilder {
 public:
  LineBuilder(Format format, Level level, std::string_view target, std::string_view message,
              std::string& line, std::string& scratch);

  void add(std::string_view key, std::string_view value);
  // A value that `append(std::string&)` writes (an address, a number):
  // built in the reused scratch string, then added as add() would.
  template <class Append>
  void add_with(std::string_view key, Append&& append) {
    scratch_.clear();
    append(scratch_);
    add(key, scratch_);
  }
  // Ends the line (newline included) and returns it.
  std::string_view finish();

 private:
  Format format_;
  std::string& line_;
  std::string& scratch_;
};

class Logger {
 public:
  Logger();

  void set_filter(Filter filter);
  std::shared_ptr<const Filter> filter() const {
    std::lock_guard lock(filter_mutex_);
    return filter_;
  }
  void set_format(Format format) { format_.store(format); }
  // Lines go to this fd (stderr by default); tests point it at a pipe.
  void set_fd(int fd) { fd_.store(fd); }

  bool enabled(Level level, std::string_view target) const {
    if (level < min_level_.load(std::memory_order_relaxed)) return false;
    return level >= current_.load(std::memory_order_acquire)->level_for(target);
  }
  void write(Level level, std::string_view target, std::string_view message,
             std::initializer_list<Field> fields = {}) {
    write(level, target, message, std::span<const Field>(fields.begin(), fields.size()));
  }
  // For lines whose set of fields is decided at run time.
  void write(Level level, std::string_view target, std::string_view message,
             std::span<const Field> fields);
  // Writes a line whose fields `add_fields(LineBuilder&)` adds, rendered in
  // this thread's reused buffers: no allocation per line or per field once
  // the buffers have grown. Does not check the filter (callers do, with
  // enabled(), before gathering what they log). `add_fields` must not log:
  // it runs inside this thread's line buffers.
  template <class AddFields>
  void write_with(Level level, std::string_view target, std::string_view message,
                  AddFields&& add_fields) {
    LineBuffers& buffers = thread_buffers();
    LineBuilder line(format_.load(std::memory_order_relaxed), level, target, message,
                     buffers.line, buffers.scratch);
    add_fields(line);
    emit(line.finish());
    release_if_large(buffers);
  }

  // Renders a line without writing it; exposed for tests.
  std::string render(Level level, std::string_view target, std::string_view message,
                     std::span<const Field> fields) const;
  std::string render(Level level, std::string_view target, std::string_view message,
                     std::initializer_list<Field> fields) const {
    return render(level, target, message, std::span<const Field>(fields.begin(), fields.size()));
  }

 private:
  struct LineBuffers {
    std::string line;
    std::string scratch;
  };
  static LineBuffers& thread_buffers();
  // After a rare huge line: do not keep its buffer for the thread's life.
  static void release_if_large(LineBuffers& buffers);
  void emit(std::string_view line);

  mutable std::mutex filter_mutex_;
  std::shared_ptr<const Filter> filter_;  // guarded by filter_mutex_
  // Every filter set so far, oldest first (guarded by filter_mutex_): keeps
  // what current_ pointed at alive for readers still using it.
  std::vector<std::shared_ptr<const Filter>> filters_set_;
  std::atomic<const Filter*> current_;  // filter_.get(), for enabled()
  std::atomic<Level> min_level_{Level::kInfo};  // cheapest possible early-out
  std::atomic<Format> format_{Format::kPlain};
  std::atomic<int> fd_{2};
};

// The process's logger. Logging is the one process-wide facility: every
// module writes to it, and only main and the admin server configure it.
Logger& logger();

template <class... Args>
void log(Level level, std::string_view target, fmt::format_string<Args...> format,
         Args&&... args) {
  Logger& l = logger();
  if (!l.enabled(level, target)) return;
  l.write(level, target, fmt::format(format, std::forward<Args>(args)...));
}

template <class... Args>
void error(std::string_view target, fmt::format_string<Args...> f, Args&&... a) {
  log(Level::kError, target, f, std::forward<Args>(a)...);
}
template <class... Args>
void warn(std::string_view target, fmt::format_string<Args...> f, Args&&... a) {
  log(Level::kWarn, target, f, std::forward<Args>(a)...);
}
template <class... Args>
void info(std::string_view target, fmt::format_string<Args...> f, Args&&... a) {
  log(Level::kInfo, target, f, std::forward<Args>(a)...);
}
template <class... Args>
void debug(std::string_view target, fmt::format_string<Args...> f, Args&&... a) {
  log(Level::kDebug, target, f, std::forward<Args>(a)...);
}

}  // namespace ztunnel::log
