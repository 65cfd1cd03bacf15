// Every HTTP/2 flood and abuse limit of the module, in one place (hostile-cases.md).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

struct nghttp2_option;

namespace ztunnel::h2 {

struct SessionOptions;

// Limits against misbehaving peers. nghttp2 enforces the first group once
// the options are applied; the session enforces the rest itself, because
// Debian 12's nghttp2 1.52 has no glitch limiter and does not apply the
// local MAX_HEADER_LIST_SIZE on receive.
struct FloodLimits {
  // nghttp2 built-ins.
  std::size_t max_settings_entries = 32;  // per SETTINGS frame (CVE-2020-11080)
  std::size_t max_outbound_ack = 1000;    // queued SETTINGS/PING ACKs (CVE-2019-9512/9515)
  std::uint64_t recv_reset_burst = 1000;  // incoming RST_STREAM bucket (CVE-2023-44487)
  std::uint64_t recv_reset_rate = 33;     // tokens per second
  std::size_t max_continuations = 8;      // CONTINUATIONs per header block (CVE-2024-28182)

  // Enforced by the session.
  std::uint32_t max_header_fields = 100;     // per header block
  std::uint32_t max_consecutive_empty_frames = 1;  // DATA/HEADERS without payload nor END_STREAM
  std::uint64_t sent_reset_burst = 1000;     // RST_STREAMs we are made to send (MadeYouReset)
  std::uint64_t sent_reset_rate = 33;        // tokens per second
  // WINDOW_UPDATE frames received per connection (Envoy's WindowUpdate flood
  // check). Each one costs us a callback and a look at blocked streams while
  // a 1-byte increment costs the peer 13 bytes. A normal peer sends them in
  // proportion to the DATA we send it (and maybe one per stream it opens), so
  // the allowance is: base + 2 per peer-opened stream + per_data_unit per
  // 4 KiB (or smaller frame) of DATA we sent. Counting by 4 KiB rather than
  // by frame keeps our large DATA frames from cutting off a peer that
  // returns window in small steps (Go's HTTP/2 does so every 4 KiB read, on
  // both the stream and the connection). Above it: GOAWAY ENHANCE_YOUR_CALM.
  std::uint64_t window_update_base = 100;
  std::uint64_t window_updates_per_data_unit = 10;
};

struct NgOptionDeleter {
  void operator()(nghttp2_option* option) const noexcept;
};
using NgOptionPtr = std::unique_ptr<nghttp2_option, NgOptionDeleter>;

// The nghttp2 option set for a session: manual window updates, no retained
// closed streams, the built-in flood limits above (each only where the
// configure-time probe found it), and the peer stream limit a client assumes
// before SETTINGS. Never disables nghttp2's HTTP messaging checks.
NgOptionPtr make_nghttp2_option(const SessionOptions& options, bool server);

// A token bucket: `burst` tokens, refilled at `rate` per second.
class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  TokenBucket(std::uint64_t burst, std::uint64_t rate, Clock::time_point now = Clock::now())
      : burst_(burst), rate_(rate), tokens_(burst), last_(now) {}
  // Takes a token; false when the bucket is empty.
  bool take(Clock::time_point now = Clock::now());

 private:
  std::uint64_t burst_;
  std::uint64_t rate_;
  std::uint64_t tokens_;
  Clock::time_point last_;
};

}  // namespace ztunnel::h2
