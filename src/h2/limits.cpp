// The nghttp2 option set and the session's own rate limiter.
#include "h2/limits.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <new>

#include "h2/options.h"

namespace ztunnel::h2 {

void NgOptionDeleter::operator()(nghttp2_option* option) const noexcept {
  nghttp2_option_del(option);
}

NgOptionPtr make_nghttp2_option(const SessionOptions& options, bool server) {
  nghttp2_option* raw = nullptr;
  if (nghttp2_option_new(&raw) != 0) throw std::bad_alloc();
  NgOptionPtr opt(raw);
  const FloodLimits& l = options.limits;
  // Windows move only when a reader has taken the bytes: real backpressure.
  nghttp2_option_set_no_auto_window_update(raw, 1);
  nghttp2_option_set_no_closed_streams(raw, 1);
  nghttp2_option_set_max_settings(raw, l.max_settings_entries);
  nghttp2_option_set_max_outbound_ack(raw, l.max_outbound_ack);
#if ZTUNNEL_HAVE_NGHTTP2_OPTION_SET_STREAM_RESET_RATE_LIMIT
  nghttp2_option_set_stream_reset_rate_limit(raw, l.recv_reset_burst, l.recv_reset_rate);
#endif
#if ZTUNNEL_HAVE_NGHTTP2_OPTION_SET_MAX_CONTINUATIONS
  nghttp2_option_set_max_continuations(raw, l.max_continuations);
#endif
#if ZTUNNEL_HAVE_NGHTTP2_OPTION_SET_GLITCH_RATE_LIMIT
  nghttp2_option_set_glitch_rate_limit(raw, l.sent_reset_burst * 10, l.sent_reset_rate * 10);
#endif
#if ZTUNNEL_HAVE_NGHTTP2_OPTION_SET_MAX_OUTBOUND_QUEUE_SIZE
  nghttp2_option_set_max_outbound_queue_size(raw, 5000);
#endif
  if (!server) {
    nghttp2_option_set_peer_max_concurrent_streams(raw,
                                                   options.assumed_peer_max_concurrent_streams);
  }
  return opt;
}

bool TokenBucket::take(Clock::time_point now) {
  if (now > last_) {
    const auto elapsed_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - last_).count();
    const std::uint64_t refill = static_cast<std::uint64_t>(elapsed_ms) * rate_ / 1000;
    if (refill > 0) {
      tokens_ = std::min(burst_, tokens_ + refill);
      last_ = now;
    }
  }
  if (tokens_ == 0) return false;
  --tokens_;
  return true;
}

}  // namespace ztunnel::h2
