// Unit tests for gRPC length-prefixed framing and status trailers.
#include "h2/grpc.h"

#include <string>
#include <vector>

#include "support/testing.h"

namespace ztunnel::h2::grpc {
namespace {

std::vector<std::uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

TEST_CASE("a gRPC message gets a 5-byte big-endian length prefix") {
  std::vector<std::uint8_t> out;
  append_message(bytes("hello"), out);
  REQUIRE(out.size() == 10);
  CHECK(out[0] == 0);
  CHECK(out[1] == 0);
  CHECK(out[2] == 0);
  CHECK(out[3] == 0);
  CHECK(out[4] == 5);
  CHECK(std::string(out.begin() + 5, out.end()) == "hello");
}

TEST_CASE("messages reassemble from bytes arriving one at a time and several per chunk") {
  std::vector<std::uint8_t> wire;
  append_message(bytes("first"), wire);
  append_message({}, wire);  // empty messages are legal
  append_message(std::vector<std::uint8_t>(70000, 'z'), wire);
  MessageReader reader;
  std::vector<std::vector<std::uint8_t>> got;
  for (std::uint8_t b : wire) {
    reader.feed(std::span(&b, 1));
    for (;;) {
      auto m = reader.next();
      REQUIRE(m);
      if (!*m) break;
      got.push_back(std::move(**m));
    }
  }
  REQUIRE(got.size() == 3);
  CHECK(got[0] == bytes("first"));
  CHECK(got[1].empty());
  CHECK(got[2].size() == 70000);
  CHECK_FALSE(reader.finish());

  MessageReader all_at_once;
  all_at_once.feed(wire);
  int n = 0;
  for (auto m = all_at_once.next(); m && *m; m = all_at_once.next()) ++n;
  CHECK(n == 3);
}

TEST_CASE("a length prefix above the limit is rejected before the body arrives") {
  MessageReader reader(1024);
  const std::vector<std::uint8_t> prefix = {0, 0, 0, 4, 1};  // 1025 bytes announced
  reader.feed(prefix);
  auto m = reader.next();
  REQUIRE_FALSE(m);
  CHECK(m.error() == Errc::kGrpcMessageTooLarge);
}

TEST_CASE("a compressed gRPC message is rejected: no encoding is negotiated") {
  MessageReader reader;
  const std::vector<std::uint8_t> wire = {1, 0, 0, 0, 1, 'x'};
  reader.feed(wire);
  auto m = reader.next();
  REQUIRE_FALSE(m);
  CHECK(m.error() == Errc::kGrpcCompressed);
}

TEST_CASE("a stream ending inside a gRPC message is truncated") {
  MessageReader reader;
  const std::vector<std::uint8_t> wire = {0, 0, 0, 0, 9, 'a', 'b'};
  reader.feed(wire);
  auto m = reader.next();
  REQUIRE(m);
  CHECK_FALSE(*m);
  CHECK(reader.finish() == Errc::kGrpcTruncated);
}

TEST_CASE("grpc-status and a percent-encoded grpc-message parse from trailers") {
  Headers trailers;
  trailers.push_back({"grpc-status", "14"});
  trailers.push_back({"grpc-message", "upstream%20connect%20error%3A 100%"});
  auto s = parse_status(trailers);
  REQUIRE(s);
  CHECK(s->code == static_cast<int>(StatusCode::kUnavailable));
  CHECK(s->message == "upstream connect error: 100%");
  CHECK_FALSE(s->ok());

  Headers ok;
  ok.push_back({"grpc-status", "0"});
  REQUIRE(parse_status(ok));
  CHECK(parse_status(ok)->ok());
}

TEST_CASE("trailers without a numeric grpc-status are an error") {
  CHECK(parse_status({}).error() == Errc::kGrpcMissingStatus);
  Headers bad;
  bad.push_back({"grpc-status", "14x"});
  CHECK(parse_status(bad).error() == Errc::kGrpcMissingStatus);
  Headers negative;
  negative.push_back({"grpc-status", "-1"});
  CHECK_FALSE(parse_status(negative));
}

}  // namespace
}  // namespace ztunnel::h2::grpc
