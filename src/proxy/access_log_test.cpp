// Unit tests for the access-log line a ConnectionRecord writes when it ends.
#include "proxy/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <optional>
#include <string>

#include "support/testing.h"

namespace ztunnel::proxy {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

// Points the process logger at a pipe while alive; restores stderr and the
// default filter after.
class CapturedLog {
 public:
  CapturedLog() {
    REQUIRE(::pipe2(fds_, O_NONBLOCK) == 0);
    log::logger().set_fd(fds_[1]);
  }
  ~CapturedLog() {
    log::logger().set_fd(2);
    log::logger().set_filter(*log::Filter::parse("info"));
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  std::string text() {
    std::string out;
    std::array<char, 4096> buffer;
    ssize_t n;
    while ((n = ::read(fds_[0], buffer.data(), buffer.size())) > 0) out.append(buffer.data(), n);
    return out;
  }

 private:
  int fds_[2];
};

tcp::endpoint ep(const char* ip, uint16_t port) { return {asio::ip::make_address(ip), port}; }

}  // namespace

TEST_CASE("an outbound record logs Istio's fields in order, once, when it ends") {
  CapturedLog log;
  {
    ConnectionRecord record(Direction::kOutbound);
    record.src = ep("10.10.0.1", 40000);
    record.dst = ep("10.10.0.2", 7000);
    record.dst_hbone = "10.10.0.2:15008";
    record.route = "hbone";
    record.src_identity = state::Identity{"cluster.local", "vms", "vm-a"};
    record.dst_identities = {state::Identity{"cluster.local", "vms", "vm-b"},
                             state::Identity{"td", "ns", "other"}};
    record.to_upstream = 1024;
    record.from_upstream = 2048;
  }
  const std::string line = log.text();
  CHECK(line.find("\tinfo\taccess\tconnection complete direction=outbound src.addr=10.10.0.1:40000 "
                  "dst.addr=10.10.0.2:7000 dst.hbone_addr=10.10.0.2:15008 route=hbone "
                  "src.identity=spiffe://cluster.local/ns/vms/sa/vm-a "
                  "dst.identity=spiffe://cluster.local/ns/vms/sa/vm-b,spiffe://td/ns/ns/sa/other "
                  "bytes_sent=1024 bytes_recv=2048 duration=") != std::string::npos);
  CHECK(line.ends_with("ms error=-\n"));
  CHECK(line.find('\n') == line.size() - 1);  // exactly one line
  // RFC 3339 UTC with microseconds: "YYYY-MM-DDTHH:MM:SS.ffffffZ\t".
  REQUIRE(line.size() > 28);
  CHECK(line[4] == '-');
  CHECK(line[10] == 'T');
  CHECK(line[19] == '.');
  CHECK(line[26] == 'Z');
  CHECK(line[27] == '\t');
}

TEST_CASE("an inbound record reports bytes from the destination's side; a failure logs at warn") {
  CapturedLog log;
  {
    ConnectionRecord record(Direction::kInbound);
    record.src = ep("10.10.0.1", 1);
    record.status = 401;
    record.to_upstream = 5;
    record.from_upstream = 7;
    record.set_error("connection closed due to policy rejection: denied");
    record.set_error("a later error does not replace the first");
  }
  const std::string line = log.text();
  CHECK(line.find("\twarn\taccess\tconnection complete direction=inbound src.addr=10.10.0.1:1 "
                  "dst.addr=- src.identity=- dst.identity=- status=401 bytes_sent=7 bytes_recv=5 ") !=
        std::string::npos);
  CHECK(line.ends_with(" error=\"connection closed due to policy rejection: denied\"\n"));
}

TEST_CASE("RUST_LOG can turn the access log off, or keep only its failures") {
  CapturedLog log;
  log::logger().set_filter(*log::Filter::parse("info,access=off"));
  { ConnectionRecord record(Direction::kOutbound); }
  CHECK(log.text().empty());

  log::logger().set_filter(*log::Filter::parse("access=warn"));
  { ConnectionRecord clean(Direction::kOutbound); }
  {
    ConnectionRecord failed(Direction::kOutbound);
    failed.set_error("refused");
  }
  const std::string text = log.text();
  CHECK(text.find("direction=outbound") != std::string::npos);
  CHECK(text.find("error=refused\n") != std::string::npos);
  CHECK(text.find("error=-") == std::string::npos);
}

TEST_CASE("JSON access lines carry the same fields, escaped") {
  CapturedLog log;
  log::logger().set_format(log::Format::kJson);
  {
    ConnectionRecord record(Direction::kOutbound);
    record.src = ep("10.0.0.1", 80);
    record.set_error("bad \"quote\"");
  }
  log::logger().set_format(log::Format::kPlain);
  const std::string line = log.text();
  CHECK(line.starts_with("{\"level\":\"warn\",\"time\":\""));
  CHECK(line.find("\"scope\":\"access\",\"message\":\"connection complete\",\"direction\":"
                  "\"outbound\",\"src.addr\":\"10.0.0.1:80\",\"dst.addr\":\"-\"") !=
        std::string::npos);
  CHECK(line.find("\"error\":\"bad \\\"quote\\\"\"}\n") != std::string::npos);
}

}  // namespace ztunnel::proxy
