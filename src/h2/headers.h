// HTTP field lists as the h2 layer hands them out.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ztunnel::h2 {

struct Header {
  std::string name;  // lower case, as HTTP/2 requires
  std::string value;
};
using Headers = std::vector<Header>;

// The first value of `name` (exact, lower-case match), or nullptr.
const std::string* find_header(const Headers& headers, std::string_view name);

}  // namespace ztunnel::h2
