// Leveled, structured logging with a filter that can change at runtime.
//
// Threading: the filter is an immutable object swapped whole; a mutex guards
// only the pointer copy (GCC 12's atomic<shared_ptr> orders its internal lock
// too weakly, so it is not used). Calls below the most verbose level any
// target allows return on one relaxed atomic load and never touch the mutex.
// Writers serialize on a second mutex around a single write(2) per line.
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
    return level >= min_level_.load(std::memory_order_relaxed) &&
           level >= filter()->level_for(target);
  }
  void write(Level level, std::string_view target, std::string_view message,
             std::initializer_list<Field> fields = {}) {
    write(level, target, message, std::span<const Field>(fields.begin(), fields.size()));
  }
  // For lines whose set of fields is decided at run time (the access log).
  void write(Level level, std::string_view target, std::string_view message,
             std::span<const Field> fields);

  // Renders a line without writing it; exposed for tests.
  std::string render(Level level, std::string_view target, std::string_view message,
                     std::span<const Field> fields) const;
  std::string render(Level level, std::string_view target, std::string_view message,
                     std::initializer_list<Field> fields) const {
    return render(level, target, message, std::span<const Field>(fields.begin(), fields.size()));
  }

 private:
  mutable std::mutex filter_mutex_;
  std::shared_ptr<const Filter> filter_;  // guarded by filter_mutex_
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
