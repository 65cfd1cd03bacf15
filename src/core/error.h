// Result types shared by every module: a value or a human-readable reason.
#pragma once

#include <boost/system/result.hpp>

#include <ostream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ztunnel::core {

// Why a configuration value, resource or file was rejected. The message is
// written for operators: it names the thing and what was expected.
struct Error {
  // Explicit so that Result<std::string> can be built from a plain string
  // without the value/error ambiguity an implicit conversion would cause.
  Error() = default;
  explicit Error(std::string m) : message(std::move(m)) {}

  std::string message;
};

inline std::ostream& operator<<(std::ostream& os, const Error& e) { return os << e.message; }

// Thrown only when a caller insists on `.value()` of a failed result; the data
// path checks results instead.
class ErrorException : public std::runtime_error {
 public:
  explicit ErrorException(const Error& e) : std::runtime_error(e.message) {}
};

[[noreturn]] inline void throw_exception_from_error(const Error& e,
                                                    const boost::source_location&) {
  throw ErrorException(e);
}

template <class T>
using Result = boost::system::result<T, Error>;

// A failed Result<T> of any T: `return fail("bad port {}", p)` style helpers
// build one of these.
inline Error make_error(std::string message) { return Error(std::move(message)); }

}  // namespace ztunnel::core
