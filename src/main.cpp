// ztunnel entry point: `ztunnel [proxy|version|help]`.
#include <cstdio>
#include <string_view>

int main(int argc, char** argv) {
  std::string_view command = argc > 1 ? argv[1] : "proxy";
  if (command == "version") {
    std::puts("ztunnel-cpp 0.1.0");
    return 0;
  }
  return 0;
}
