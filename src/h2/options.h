// Settings of an HTTP/2 session, with Istio ztunnel's defaults.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "h2/limits.h"

namespace ztunnel::h2 {

struct SessionOptions {
  // Flow control. The connection window must be larger than the stream
  // window: with equal windows one stalled stream blocks the whole
  // connection (ztunnel#1538).
  std::uint32_t stream_window = 4u << 20;       // SETTINGS_INITIAL_WINDOW_SIZE
  std::uint32_t connection_window = 16u << 20;  // via nghttp2_session_set_local_window_size
  std::uint32_t max_frame_size = 1u << 20;      // SETTINGS_MAX_FRAME_SIZE we accept

  // Server: advertised SETTINGS_MAX_CONCURRENT_STREAMS (0 = do not send).
  std::uint32_t max_concurrent_streams = 200;
  // Client: the peer's stream limit assumed until its SETTINGS arrive.
  std::uint32_t assumed_peer_max_concurrent_streams = 100;

  // SETTINGS_MAX_HEADER_LIST_SIZE, also enforced on receive by counting
  // name + value + 32 bytes per field.
  std::uint32_t max_header_list_bytes = 64u << 10;
  std::uint32_t header_table_size = 4096;

  // Keepalive: a PING every interval; no ACK within the timeout drops the
  // connection. Zero interval disables it.
  std::chrono::steady_clock::duration ping_interval = std::chrono::seconds(10);
  std::chrono::steady_clock::duration ping_timeout = std::chrono::seconds(20);
  // The peer's SETTINGS must arrive within this (zero disables).
  std::chrono::steady_clock::duration settings_timeout = std::chrono::seconds(10);
  // How long a closing session may spend flushing its GOAWAY to a peer that
  // does not read.
  std::chrono::steady_clock::duration close_flush_timeout = std::chrono::seconds(1);

  // I/O sizes: one read buffer per connection; frames are batched into one
  // transport write of up to write_batch_bytes (TlsTransport seals the batch
  // and sends it with as few sends as the socket allows); DATA frames we
  // send carry up to max_data_frame_bytes, if the peer's
  // SETTINGS_MAX_FRAME_SIZE allows. Large payloads are sealed straight from
  // the writer's buffer, so a frame costs 9 bytes and a callback; the price
  // of frames above 16 KiB is that nghttp2 grows its per-connection frame
  // buffer to the largest frame sent and keeps it for the connection's life
  // (64 KiB on an HBONE connection that has carried bulk data). 64 KiB
  // frames took bulk1's CPU/GB down 5% against 16 KiB (7 alternating pairs);
  // 256 KiB showed no further gain.
  std::size_t read_buffer_bytes = 64u << 10;
  std::size_t write_batch_bytes = 256u << 10;
  std::uint32_t max_data_frame_bytes = 64u << 10;

  FloodLimits limits;

  // ztunnel's server (`h2/server.rs`): 200 streams, 64 KiB header list.
  static SessionOptions server_defaults() { return SessionOptions{}; }
  // ztunnel's client (`h2/client.rs`): 16 KiB header list, assumes 100 streams.
  static SessionOptions client_defaults() {
    SessionOptions o;
    o.max_header_list_bytes = 16u << 10;
    return o;
  }
};

}  // namespace ztunnel::h2
