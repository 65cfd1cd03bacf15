// What every unit test includes: doctest plus printers for our result types.
#pragma once

#include <doctest/doctest.h>

#include <string>

#include <boost/system/error_code.hpp>

#include "core/error.h"

namespace doctest {

// boost::system::result's own operator<< needs T to be printable, which most
// of our value types are not; print success or the error message instead.
template <class T>
struct StringMaker<boost::system::result<T, ztunnel::core::Error>> {
  static String convert(const boost::system::result<T, ztunnel::core::Error>& r) {
    if (r) return "ok";
    return String(("error: " + r.error().message).c_str());
  }
};

// Same for results whose error is an error_code (the data-path modules).
template <class T>
struct StringMaker<boost::system::result<T, boost::system::error_code>> {
  static String convert(const boost::system::result<T, boost::system::error_code>& r) {
    if (r) return "ok";
    return String(("error: " + r.error().message()).c_str());
  }
};

}  // namespace doctest
