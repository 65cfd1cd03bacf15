// ztunnel-certs: init-ca and issue for operators of standalone nodes; see certs_tool.h.
#include <cstdio>
#include <string_view>
#include <vector>

#include "identity/certs_tool.h"

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  auto result = ztunnel::identity::certs_tool::run(args);
  if (!result) {
    std::fputs(result.error().message.c_str(), stderr);
    if (!result.error().message.ends_with('\n')) std::fputc('\n', stderr);
    return 1;
  }
  std::fputs(result->c_str(), stdout);
  return 0;
}
