// The one JSON string escaper: log lines, explain() output and anything else
// that writes JSON by hand (no JSON library is worth a dependency for this).
#pragma once

#include <string>
#include <string_view>

namespace ztunnel::core {

// Appends `text` as a quoted JSON string: quotes, backslashes and control
// characters escaped; other bytes (UTF-8 included) copied as they are.
void append_json_string(std::string& out, std::string_view text);

}  // namespace ztunnel::core
