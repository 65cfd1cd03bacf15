// An nghttp2 session run as one coroutine per connection, and CONNECT streams on it.
//
// Threads and wake-ups (everything below runs on the transport's executor):
// - run() is one coroutine racing three loops with `||`: recv_loop
//   (transport -> nghttp2_session_mem_recv), send_loop
//   (nghttp2_session_mem_send -> transport) and deadline_loop, one timer for
//   every deadline a session has: the PING interval and PING-ACK timeout, the
//   peer's SETTINGS deadline and the bounded flush when closing. (One loop,
//   not one per deadline: each coroutine raced with `||` costs a frame and a
//   parallel group on every HBONE connection, i.e. on every handshake.)
//   The first loop to finish ends the session; the others are cancelled.
// - nghttp2 callbacks only record: they append received bytes to a stream,
//   flip flags and cancel wake-up timers. They never throw, await or do I/O.
//   Work they cannot do inline (returning connection credit, terminating the
//   session, spawning request handlers) is queued and done in after_io().
//   DATA for a stream with a sink (Stream::attach_sink: the copy to a TCP
//   socket, waiting with nothing buffered) is only recorded too, and sent
//   from the read buffer right after nghttp2_session_mem_recv returns
//   (flush_sink_spans): no copy into the receive queue, and no wake-up of
//   the reader, whose message would otherwise cost a scheduler pass.
// - Wake-ups are steady_timers parked at time_point::max(); cancel() wakes
//   the one coroutine waiting on it, which then re-checks its condition.
//   send_wake_ wakes the send loop (anything that queues a frame: a submit,
//   a consume that produced a WINDOW_UPDATE, a resumed data provider).
//   A stream's read_wake wakes its reader (DATA, END_STREAM, reset, response
//   HEADERS); its write_wake wakes its writer (nghttp2 took its bytes).
// - Each wake-up is a handler posted to the scheduler: one more pass through
//   it, and usually an epoll_wait, per message. So when the send loop is
//   parked with nothing to write, a stream's writer (and the receive loop,
//   and a reader returning window) sends the frames itself with
//   send_or_wake(): nghttp2 serializes them, the transport sends what the
//   socket takes now (write_now, which never suspends) and keeps the rest for
//   the send loop, which is woken only then. The send loop is the only
//   coroutine that ever waits on a transport write, so writes never overlap
//   and cancelling a writer never cuts a frame.
#include "h2/session.h"

#include <nghttp2/nghttp2.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <exception>
#include <optional>
#include <span>
#include <unordered_map>
#include <utility>

#include "core/bytes.h"
#include "core/log.h"
#include "h2/receive_queue.h"

namespace ztunnel::h2 {

namespace asio = boost::asio;
using asio::awaitable;
using boost::system::error_code;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view kLog = "h2";
constexpr std::size_t kFrameHeaderBytes = 9;  // RFC 9113 §4.1
// DATA payloads at least this large are sealed from the writer's buffer
// (their own TLS records) instead of being copied into the batch: a full
// record's worth, where the copy (~1.5 us per 16 KiB, measured in bulk1)
// costs more than the small extra record the frame header then takes.
constexpr std::size_t kReferencedPayloadBytes = 16u << 10;

// Parks on `timer` until someone cancels it (a wake-up). Returns false when
// the awaiting coroutine itself was cancelled.
awaitable<bool> wait_for_wake(asio::steady_timer& timer) {
  timer.expires_at(asio::steady_timer::time_point::max());
  co_await timer.async_wait(use_nothrow);
  auto cs = co_await asio::this_coro::cancellation_state;
  co_return cs.cancelled() == asio::cancellation_type::none;
}

nghttp2_nv make_nv(std::string_view name, std::string_view value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NONE};
}

struct NgSessionDeleter {
  void operator()(nghttp2_session* s) const noexcept { nghttp2_session_del(s); }
};
using NgSessionPtr = std::unique_ptr<nghttp2_session, NgSessionDeleter>;

struct NgCallbacksDeleter {
  void operator()(nghttp2_session_callbacks* c) const noexcept {
    nghttp2_session_callbacks_del(c);
  }
};
using NgCallbacksPtr = std::unique_ptr<nghttp2_session_callbacks, NgCallbacksDeleter>;

}  // namespace

namespace detail {

struct StreamState {
  explicit StreamState(const asio::any_io_executor& ex) : read_wake(ex), write_wake(ex) {}

  std::size_t buffered() const { return received.size(); }

  Core* core = nullptr;  // null once the session is gone
  std::int32_t id = -1;
  bool server = false;

  // Receive side. Bytes stay here (unconsumed, holding the peer's window)
  // until the reader takes them (read_some) or has written them out
  // (read_view, then consume_view).
  ReceiveQueue received;
  bool remote_ended = false;  // END_STREAM, or RST_STREAM NO_ERROR/CANCEL: EOF
  bool discard = false;       // nobody will read: consume on arrival
  error_code error;           // hard failure: reset or connection loss

  // Send side: the writer's own buffer while write() is suspended.
  const std::uint8_t* wdata = nullptr;
  std::size_t wsize = 0;
  std::size_t wtaken = 0;  // bytes of the current write already in DATA frames
  bool write_shutdown = false;
  bool local_end_sent = false;    // our END_STREAM has left nghttp2
  bool reset_when_ended = false;  // handle dropped: RST NO_ERROR once END_STREAM is out

  bool headers_sent = false;   // client: the request HEADERS left nghttp2's queue
  bool open_for_data = false;  // client: 200 received; server: respond(200) sent
  bool responded = false;
  bool closed = false;  // nghttp2 closed the stream
  bool app_reset = false;

  // Header accounting for the block being received.
  std::size_t header_bytes = 0;
  std::uint32_t header_fields = 0;
  std::uint32_t empty_frames = 0;
  bool headers_done = false;  // request (server) / final response (client) complete
  bool sink_spans_pending = false;  // DATA of this read awaits flush_sink_spans (see sink)
  int status = 0;
  Request request;
  Headers headers;  // client: response fields
  Headers trailers;

  // Stream::attach_sink: DATA goes straight to this socket when nothing is
  // buffered (Core::flush_sink_spans).
  asio::ip::tcp::socket* sink = nullptr;
  std::uint64_t* sink_bytes = nullptr;

  asio::steady_timer read_wake;
  asio::steady_timer write_wake;
};

class Core {
 public:
  Core(std::unique_ptr<Transport> transport, SessionOptions options, bool server,
       ServerSession::Handler handler);
  ~Core();
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  static awaitable<error_code> run(std::shared_ptr<Core> self);
  static awaitable<boost::system::result<Response>> open_stream(std::shared_ptr<Core> self,
                                                                std::string authority,
                                                                Headers headers,
                                                                asio::const_buffer early_data);

  void drain();
  void close();

  bool is_usable() const {
    return ng_ && !finished_ && !goaway_received_ && !goaway_sent_ && !terminating_;
  }
  bool is_closed() const { return finished_; }
  std::size_t active_streams() const { return streams_.size(); }
  std::uint32_t peer_max_concurrent_streams() const {
    if (!ng_) return 0;
    return nghttp2_session_get_remote_settings(ng_.get(),
                                               NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  }
  std::size_t available_streams() const {
    if (!is_usable()) return 0;
    const std::size_t limit = peer_max_concurrent_streams();
    return limit > streams_.size() ? limit - streams_.size() : 0;
  }
  const asio::any_io_executor& executor() const { return ex_; }

  // Stream operations, called by Stream (same thread).
  void consume(StreamState& st, std::size_t n);
  void resume_data(StreamState& st);
  void reset_stream(StreamState& st, std::uint32_t code);
  void release_stream(StreamState& st);
  error_code respond(StreamState& st, int status, const Headers& headers);

 private:
  awaitable<void> recv_loop();
  awaitable<void> send_loop();
  awaitable<void> deadline_loop();
  awaitable<void> park();

  // Sets a flag as well as cancelling the timer: a wake-up that arrives
  // while the send loop is busy writing is not lost.
  void wake_send() {
    send_pending_ = true;
    send_wake_.cancel();
  }
  // Sends queued frames from the calling coroutine when the send loop is idle
  // (see the top of this file); wakes the send loop otherwise.
  void send_or_wake() {
    if (!send_inline()) wake_send();
  }
  bool send_inline();
  // Moves up to one batch of nghttp2's queued frames into the batch (out_
  // and pieces_). On failure the session is done: send_error_ is set.
  void collect_frames();
  // Adds bytes to the batch: stage() copies them into out_; refer() points
  // at a writer's buffer (see send_data).
  void stage(const std::uint8_t* data, std::size_t size);
  void refer(const std::uint8_t* data, std::size_t size);
  // The batch as buffers for the transport, valid until the next collect_frames.
  std::span<const asio::const_buffer> batch_buffers();
  bool batch_empty() const { return batch_bytes_ == 0; }
  // An idle connection holds no batch byte buffer.
  void release_batch();
  void fail(error_code reason) {
    if (!close_reason_) close_reason_ = reason;
  }
  // Queues GOAWAY(code), stops reading and bounds the time left to flush it.
  void terminate(std::uint32_t code, error_code reason);
  void arm_force_close();
  void after_io();
  // Sends (or queues, in order) the DATA recorded in sink_spans_.
  void flush_sink_spans();
  void finish();
  void discard_buffered(StreamState& st);
  StreamState* find(std::int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }
  static void log_handler_exit(std::exception_ptr e) noexcept;

  // nghttp2 callbacks (trampolines pass `user_data` back as Core*).
  static const nghttp2_session_callbacks* callbacks();
  int on_begin_headers(const nghttp2_frame* frame);
  int on_header(const nghttp2_frame* frame, std::string_view name, std::string_view value);
  int on_frame_recv(const nghttp2_frame* frame);
  int on_data_chunk_recv(std::int32_t stream_id, const std::uint8_t* data, std::size_t len);
  int on_stream_close(std::int32_t stream_id, std::uint32_t error_code);
  int on_frame_send(const nghttp2_frame* frame);
  void refuse_queued_requests(std::uint32_t limit);
  int on_frame_not_send(const nghttp2_frame* frame, int lib_error);
  int on_invalid_frame_recv(const nghttp2_frame* frame, int lib_error);
  static ssize_t read_data(nghttp2_session* session, std::int32_t stream_id, std::uint8_t* buf,
                           std::size_t length, std::uint32_t* data_flags,
                           nghttp2_data_source* source, void* user_data);
  static ssize_t read_data_impl(std::size_t length, std::uint32_t* data_flags,
                                nghttp2_data_source* source) noexcept;
  int send_data(const nghttp2_frame* frame, const std::uint8_t* frame_header, std::size_t length,
                nghttp2_data_source* source);
  int count_empty_frame(const nghttp2_frame* frame, std::size_t payload);
  int count_window_update();

  asio::any_io_executor ex_;
  std::unique_ptr<Transport> transport_;
  SessionOptions opts_;
  bool server_;
  // Shared with every running handler coroutine: a coroutine lambda's
  // frame points at the lambda object, which must outlive it even when
  // the session ends first.
  std::shared_ptr<const ServerSession::Handler> handler_;
  NgSessionPtr ng_;

  std::unordered_map<std::int32_t, std::shared_ptr<StreamState>> streams_;
  std::vector<std::shared_ptr<StreamState>> new_requests_;  // to hand to handlers
  std::vector<std::shared_ptr<StreamState>> pending_resets_;  // see release_stream

  asio::steady_timer send_wake_;
  // deadline_loop's timer, set to the nearest deadline; cancel() makes it
  // look again (arm_force_close added one).
  asio::steady_timer deadline_timer_;
  // Closing: give up flushing to the peer at this time (arm_force_close).
  std::optional<std::chrono::steady_clock::time_point> force_close_at_;
  // One batch of frames to write, in order: pieces_ are either ranges of
  // out_ (bytes nghttp2 serialized, frame headers, small payloads) or a
  // writer's own buffer (large DATA payloads, see send_data).
  struct BatchPiece {
    const std::uint8_t* external = nullptr;  // null: out_[offset, offset + size)
    std::size_t offset = 0;
    std::size_t size = 0;
  };
  std::vector<std::uint8_t> out_;
  std::vector<BatchPiece> pieces_;
  std::vector<asio::const_buffer> batch_view_;  // batch_buffers()' result
  std::size_t batch_bytes_ = 0;

  bool send_pending_ = false;
  bool send_loop_idle_ = false;  // the send loop is parked for a wake-up
  bool write_backlog_ = false;   // write_now kept bytes: the send loop must write them
  error_code send_error_;        // an inline send failed: the send loop ends the session
  bool started_ = false;
  bool finished_ = false;
  bool terminating_ = false;  // GOAWAY with termination queued; no more reads
  bool goaway_received_ = false;
  bool goaway_sent_ = false;
  bool draining_ = false;
  bool final_goaway_sent_ = false;
  bool peer_settings_seen_ = false;
  bool ping_outstanding_ = false;
  std::chrono::steady_clock::time_point ping_sent_;
  std::optional<std::uint32_t> pending_terminate_;  // recorded by callbacks
  error_code pending_terminate_reason_;
  std::size_t pending_connection_consume_ = 0;  // credit for discarded bytes
  // DATA for streams with a sink (Stream::attach_sink), recorded by
  // on_data_chunk_recv and sent once nghttp2_session_mem_recv has returned:
  // the bytes stay in the read buffer, recv_input_, until then.
  struct SinkSpan {
    std::shared_ptr<StreamState> stream;
    const std::uint8_t* data;
    std::size_t size;
  };
  std::vector<SinkSpan> sink_spans_;
  std::span<const std::uint8_t> recv_input_;  // what mem_recv is parsing
  TokenBucket sent_resets_;
  std::uint64_t window_updates_recv_ = 0;  // see FloodLimits::window_update_base
  std::uint64_t data_units_sent_ = 0;  // DATA sent, in 4 KiB units (at least 1 a frame)
  std::uint64_t streams_opened_by_peer_ = 0;
  error_code close_reason_;
};

// --- construction ------------------------------------------------------------

namespace {
// No exception may cross into nghttp2: a failure becomes a fatal callback error.
template <class F>
int guarded(F&& f) noexcept {
  try {
    return f();
  } catch (...) {
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
}
}  // namespace

const nghttp2_session_callbacks* Core::callbacks() {
  static const NgCallbacksPtr cbs = [] {
    nghttp2_session_callbacks* raw = nullptr;
    if (nghttp2_session_callbacks_new(&raw) != 0) throw std::bad_alloc();
    NgCallbacksPtr p(raw);
    nghttp2_session_callbacks_set_on_begin_headers_callback(
        raw, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
          return guarded([&] { return static_cast<Core*>(u)->on_begin_headers(f); });
        });
    nghttp2_session_callbacks_set_on_header_callback(
        raw, [](nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t namelen,
                const uint8_t* value, size_t valuelen, uint8_t, void* u) {
          return guarded([&] { return static_cast<Core*>(u)->on_header(
              f, {reinterpret_cast<const char*>(name), namelen},
              {reinterpret_cast<const char*>(value), valuelen}); });
        });
    nghttp2_session_callbacks_set_on_frame_recv_callback(
        raw, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
          return guarded([&] { return static_cast<Core*>(u)->on_frame_recv(f); });
        });
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        raw, [](nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len, void* u) {
          return guarded([&] { return static_cast<Core*>(u)->on_data_chunk_recv(id, data, len); });
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(
        raw, [](nghttp2_session*, int32_t id, uint32_t code, void* u) {
          return guarded([&] { return static_cast<Core*>(u)->on_stream_close(id, code); });
        });
    nghttp2_session_callbacks_set_on_frame_send_callback(
        raw, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
          return guarded([&] { return static_cast<Core*>(u)->on_frame_send(f); });
        });
    nghttp2_session_callbacks_set_on_frame_not_send_callback(
        raw, [](nghttp2_session*, const nghttp2_frame* f, int err, void* u) {
          return guarded([&] { return static_cast<Core*>(u)->on_frame_not_send(f, err); });
        });
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(
        raw, [](nghttp2_session*, const nghttp2_frame* f, int err, void* u) {
          return guarded([&] { return static_cast<Core*>(u)->on_invalid_frame_recv(f, err); });
        });
    // DATA frames as large as the peer and max_data_frame_bytes allow,
    // instead of nghttp2's fixed 16 KiB: fewer frames and callbacks per MB.
    nghttp2_session_callbacks_set_data_source_read_length_callback(
        raw, [](nghttp2_session*, uint8_t, int32_t, int32_t session_window, int32_t stream_window,
                uint32_t peer_max_frame, void* u) -> ssize_t {
          const auto* core = static_cast<const Core*>(u);
          const std::int64_t n = std::min<std::int64_t>(
              {session_window, stream_window, static_cast<std::int64_t>(peer_max_frame),
               static_cast<std::int64_t>(core->opts_.max_data_frame_bytes)});
          return static_cast<ssize_t>(std::max<std::int64_t>(n, 1));
        });
    // DATA payloads go from the writer's buffer straight into the send
    // batch (read_data answers NO_COPY), not through nghttp2's frame buffer.
    nghttp2_session_callbacks_set_send_data_callback(
        raw, [](nghttp2_session*, nghttp2_frame* f, const uint8_t* framehd, size_t length,
                nghttp2_data_source* source, void* u) {
          return guarded([&] { return static_cast<Core*>(u)->send_data(f, framehd, length, source); });
        });
    nghttp2_session_callbacks_set_error_callback2(
        raw, [](nghttp2_session*, int, const char* msg, size_t len, void*) {
          return guarded([&] {
            log::debug(kLog, "nghttp2: {}", std::string_view(msg, len));
            return 0;
          });
        });
    return p;
  }();
  return cbs.get();
}

Core::Core(std::unique_ptr<Transport> transport, SessionOptions options, bool server,
           ServerSession::Handler handler)
    : ex_(transport->get_executor()),
      transport_(std::move(transport)),
      opts_(std::move(options)),
      server_(server),
      handler_(handler ? std::make_shared<const ServerSession::Handler>(std::move(handler))
                       : nullptr),
      send_wake_(ex_),
      deadline_timer_(ex_),
      sent_resets_(opts_.limits.sent_reset_burst, opts_.limits.sent_reset_rate) {
  NgOptionPtr option = make_nghttp2_option(opts_, server_);
  nghttp2_session* raw = nullptr;
  const int rv = server_ ? nghttp2_session_server_new2(&raw, callbacks(), this, option.get())
                         : nghttp2_session_client_new2(&raw, callbacks(), this, option.get());
  if (rv != 0) throw std::bad_alloc();
  ng_.reset(raw);

  std::vector<nghttp2_settings_entry> settings = {
      {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, opts_.header_table_size},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, opts_.stream_window},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, opts_.max_frame_size},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, opts_.max_header_list_bytes},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  if (server_) {
    if (opts_.max_concurrent_streams != 0) {
      settings.push_back({NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, opts_.max_concurrent_streams});
    }
  } else {
    settings.push_back({NGHTTP2_SETTINGS_ENABLE_PUSH, 0});
  }
  // These only queue frames; a failure means bad options (start-up error).
  if (nghttp2_submit_settings(ng_.get(), NGHTTP2_FLAG_NONE, settings.data(), settings.size()) !=
      0) {
    throw std::invalid_argument("h2: invalid SETTINGS in SessionOptions");
  }
  if (nghttp2_session_set_local_window_size(ng_.get(), NGHTTP2_FLAG_NONE, 0,
                                            static_cast<int32_t>(opts_.connection_window)) != 0) {
    throw std::invalid_argument("h2: invalid connection window in SessionOptions");
  }
}

Core::~Core() {
  // Streams may outlive us; make them see a closed session.
  for (auto& [id, st] : streams_) st->core = nullptr;
  for (auto& st : new_requests_) st->core = nullptr;
}

// --- the connection coroutine ------------------------------------------------

awaitable<error_code> Core::run(std::shared_ptr<Core> self) {
  if (self->started_) co_return make_error_code(Errc::kAlreadyRunning);
  self->started_ = true;
  if (self->finished_) co_return self->close_reason_;
  try {
    co_await (self->recv_loop() || self->send_loop() || self->deadline_loop());
  } catch (const boost::system::system_error& e) {
    // Only cancellation of run() itself gets here (throw_if_cancelled).
    self->fail(e.code());
  }
  self->finish();
  co_return self->close_reason_;
}

awaitable<void> Core::park() {
  asio::steady_timer never(ex_, asio::steady_timer::time_point::max());
  co_await never.async_wait(use_nothrow);
}

awaitable<void> Core::recv_loop() {
  // The read buffer exists only while bytes flow: a pooled connection idles
  // far more than it reads, and 64 KiB per connection adds up.
  std::unique_ptr<std::uint8_t[]> buf;
  const std::size_t capacity = opts_.read_buffer_bytes;
  bool drained = true;  // the last read did not fill the buffer
  for (;;) {
    if (drained) {
      buf.reset();
      if (auto ec = co_await transport_->wait_readable(); ec == asio::error::operation_aborted) {
        co_return;
      }  // other errors: read_some reports them
    }
    if (!buf) buf = std::make_unique_for_overwrite<std::uint8_t[]>(capacity);
    auto [ec, n] = co_await transport_->read_some(asio::buffer(buf.get(), capacity));
    drained = n < capacity;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      log::debug(kLog, "connection read ended: {}", ec.message());
      // A peer closing after a completed GOAWAY exchange is a clean end.
      if (ec == asio::error::eof && (goaway_received_ || goaway_sent_) && streams_.empty()) {
        co_return;
      }
      fail(ec == asio::error::eof ? make_error_code(Errc::kConnectionClosed) : ec);
      co_return;
    }
    recv_input_ = std::span<const std::uint8_t>(buf.get(), n);
    const ssize_t rv = nghttp2_session_mem_recv(ng_.get(), buf.get(), n);
    recv_input_ = {};
    // Before anything else runs: the spans point into buf.
    if (!sink_spans_.empty()) flush_sink_spans();
    if (rv < 0) {
      std::uint32_t code = NGHTTP2_PROTOCOL_ERROR;
      error_code reason = make_error_code(Errc::kProtocolError);
      if (rv == NGHTTP2_ERR_CALLBACK_FAILURE && pending_terminate_) {
        code = *pending_terminate_;
        reason = pending_terminate_reason_;
        pending_terminate_.reset();
      } else if (rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_TOO_MANY_SETTINGS
#if ZTUNNEL_HAVE_NGHTTP2_OPTION_SET_MAX_CONTINUATIONS
                 || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
#endif
      ) {
        code = NGHTTP2_ENHANCE_YOUR_CALM;
        reason = make_error_code(Errc::kFlood);
      }
      log::info(kLog, "closing HTTP/2 connection: {}", nghttp2_strerror(static_cast<int>(rv)));
      terminate(code, reason);
    }
    after_io();
    // Received frames may have queued output (ACKs, RST_STREAMs) or reopened
    // a flow-controlled stream (WINDOW_UPDATE); or the peer ended the
    // connection (the send loop then finishes). Plain DATA needs neither.
    if (ng_ && (nghttp2_session_want_write(ng_.get()) || !nghttp2_session_want_read(ng_.get()))) {
      send_or_wake();
    }
    if (terminating_) {
      // Stop reading: the send loop flushes GOAWAY and ends the session, or
      // deadline_loop gives up on a peer that does not read.
      co_await park();
      co_return;
    }
    if (!drained) {
      // More is queued and the transport reads it without suspending: let the
      // streams' readers run first. Otherwise this loop would take in whole
      // windows (4 MiB a stream) before any of it is written on, and the
      // readers would copy megabytes that have long left the cache.
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    }
  }
}

void Core::collect_frames() {
  out_.clear();
  pieces_.clear();
  batch_bytes_ = 0;
  send_pending_ = false;
  while (batch_bytes_ < opts_.write_batch_bytes) {
    const std::uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(ng_.get(), &data);
    if (n < 0) {
      log::warn(kLog, "nghttp2_session_mem_send: {}", nghttp2_strerror(static_cast<int>(n)));
      send_error_ = make_error_code(Errc::kProtocolError);
      return;
    }
    if (n == 0) break;
    stage(data, static_cast<std::size_t>(n));
  }
}

void Core::stage(const std::uint8_t* data, std::size_t size) {
  if (pieces_.empty() || pieces_.back().external != nullptr) {
    pieces_.push_back(BatchPiece{nullptr, out_.size(), 0});
  }
  core::append_bytes(out_, data, size);
  pieces_.back().size += size;
  batch_bytes_ += size;
}

void Core::refer(const std::uint8_t* data, std::size_t size) {
  pieces_.push_back(BatchPiece{data, 0, size});
  batch_bytes_ += size;
}

std::span<const asio::const_buffer> Core::batch_buffers() {
  batch_view_.clear();
  for (const BatchPiece& p : pieces_) {
    batch_view_.emplace_back(p.external != nullptr ? p.external : out_.data() + p.offset, p.size);
  }
  return batch_view_;
}

void Core::release_batch() {
  // Only the byte buffer goes: the piece lists hold a few entries of 16-24
  // bytes, and freeing them too would cost two more malloc/free pairs per
  // message on a request/response connection, whose inline sends end here.
  std::vector<std::uint8_t>().swap(out_);
  pieces_.clear();
  batch_view_.clear();
  batch_bytes_ = 0;
}

bool Core::send_inline() {
  if (!send_loop_idle_ || write_backlog_ || send_error_ || !ng_ ||
      !transport_->can_write_now()) {
    return false;
  }
  collect_frames();
  after_io();
  if (!send_error_ && !batch_empty()) {
    if (auto kept = transport_->write_now(batch_buffers())) {
      write_backlog_ = *kept > 0;
    } else {
      send_error_ = kept.error();
    }
  }
  // As when the send loop parks: an idle connection holds no batch buffer.
  release_batch();
  // More than one batch, bytes the socket did not take, a failure, or a
  // session that has ended: the send loop's work.
  if (send_error_ || write_backlog_ || send_pending_ || !ng_ ||
      nghttp2_session_want_write(ng_.get()) || !nghttp2_session_want_read(ng_.get())) {
    wake_send();
  }
  return true;
}

awaitable<void> Core::send_loop() {
  const auto write_failed = [this](error_code ec) {
    if (ec != asio::error::operation_aborted) {
      log::debug(kLog, "connection write failed: {}", ec.message());
      fail(ec);
    }
  };
  for (;;) {
    // What an inline write_now kept goes first, and on its own: a batch may
    // point into writers' buffers, which the transport must take before it
    // waits for the socket (see send_data).
    if (write_backlog_) {
      write_backlog_ = false;
      if (auto ec = co_await transport_->write({})) {
        write_failed(ec);
        co_return;
      }
    }
    collect_frames();
    if (!send_error_) after_io();
    if (send_error_) {
      if (send_error_ != asio::error::operation_aborted) {
        log::debug(kLog, "connection write failed: {}", send_error_.message());
        fail(send_error_);
      }
      co_return;
    }
    if (batch_empty()) {
      if (send_pending_ || write_backlog_) continue;
      if (!nghttp2_session_want_read(ng_.get()) && !nghttp2_session_want_write(ng_.get())) {
        co_return;  // both sides are done with this connection
      }
      // Idle: hold no batch buffer (it regrows with the next frames).
      release_batch();
      send_loop_idle_ = true;
      const bool woken = co_await wait_for_wake(send_wake_);
      send_loop_idle_ = false;
      if (!woken) co_return;
      continue;
    }
    if (auto ec = co_await transport_->write(batch_buffers())) {
      write_failed(ec);
      co_return;
    }
    // A small batch: the connection is not carrying bulk data; do not keep
    // a bulk-sized batch buffer while it idles.
    if (out_.size() < (16u << 10) && out_.capacity() > (64u << 10)) {
      out_.clear();
      out_.shrink_to_fit();
    }
  }
}

awaitable<void> Core::deadline_loop() {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  std::optional<clock::time_point> next_ping;
  if (opts_.ping_interval > clock::duration::zero()) next_ping = start + opts_.ping_interval;
  std::optional<clock::time_point> settings_due;
  if (opts_.settings_timeout > clock::duration::zero()) settings_due = start + opts_.settings_timeout;
  for (;;) {
    auto wake = clock::time_point::max();
    if (next_ping) wake = std::min(wake, *next_ping);
    if (settings_due) wake = std::min(wake, *settings_due);
    if (force_close_at_) wake = std::min(wake, *force_close_at_);
    deadline_timer_.expires_at(wake);
    co_await deadline_timer_.async_wait(use_nothrow);
    auto cs = co_await asio::this_coro::cancellation_state;
    if (cs.cancelled() != asio::cancellation_type::none) co_return;
    // Woken early (a new deadline) or on time: act on whatever is due.
    const auto now = clock::now();
    if (force_close_at_ && now >= *force_close_at_) co_return;  // flushing took too long
    if (settings_due && now >= *settings_due) {
      if (!peer_settings_seen_) {
        log::info(kLog, "closing HTTP/2 connection: no SETTINGS from peer");
        fail(make_error_code(Errc::kHandshakeTimeout));
        co_return;
      }
      settings_due.reset();
    }
    if (next_ping && now >= *next_ping) {
      next_ping = now + opts_.ping_interval;
      if (ping_outstanding_) {
        if (now - ping_sent_ >= opts_.ping_timeout) {
          log::info(kLog, "closing HTTP/2 connection: no PING ACK");
          fail(make_error_code(Errc::kPingTimeout));
          co_return;
        }
      } else if (nghttp2_submit_ping(ng_.get(), NGHTTP2_FLAG_NONE, nullptr) == 0) {
        ping_outstanding_ = true;
        ping_sent_ = now;
        wake_send();
      }
    }
  }
}

void Core::arm_force_close() {
  if (!force_close_at_) {
    force_close_at_ = std::chrono::steady_clock::now() + opts_.close_flush_timeout;
    deadline_timer_.cancel();  // deadline_loop re-arms for the nearer deadline
  }
}

void Core::terminate(std::uint32_t code, error_code reason) {
  if (!ng_ || terminating_) return;
  terminating_ = true;
  fail(reason);
  nghttp2_session_terminate_session(ng_.get(), code);
  arm_force_close();
  wake_send();
}

void Core::after_io() {
  if (!ng_) return;
  if (pending_connection_consume_ > 0) {
    nghttp2_session_consume_connection(ng_.get(), pending_connection_consume_);
    pending_connection_consume_ = 0;
    wake_send();
  }
  if (!pending_resets_.empty()) {
    auto resets = std::move(pending_resets_);
    pending_resets_.clear();
    for (auto& st : resets) {
      if (!st->remote_ended) reset_stream(*st, NGHTTP2_NO_ERROR);
    }
  }
  if (pending_terminate_) {
    const std::uint32_t code = *pending_terminate_;
    pending_terminate_.reset();
    terminate(code, pending_terminate_reason_);
  }
  // nghttp2 itself may have queued a terminating GOAWAY (protocol error):
  // bound the time spent flushing it to a peer that might not read.
  if (!nghttp2_session_want_read(ng_.get())) arm_force_close();
  if (!new_requests_.empty()) {
    auto requests = std::move(new_requests_);
    new_requests_.clear();
    for (auto& st : requests) {
      // A request reset in the same read (rapid reset) never reaches a handler.
      if (st->closed || st->error || terminating_ || !handler_) continue;
      IncomingRequest req{std::move(st->request), Stream(st)};
      // The handler's coroutine owns the request: on any exit, dropping
      // its Stream resets it if still open. No wrapper coroutine (nor a
      // copy of the handler) per stream: idle tunnels are many.
      awaitable<void> work;
      try {
        work = (*handler_)(std::move(req));
      } catch (...) {
        log_handler_exit(std::current_exception());
        continue;
      }
      asio::co_spawn(ex_, std::move(work),
                     [keep = handler_](std::exception_ptr e) { log_handler_exit(e); });
    }
  }
}

void Core::log_handler_exit(std::exception_ptr e) noexcept {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log::error(kLog, "bug: HTTP/2 request handler threw: {}", ex.what());
  } catch (...) {
    log::error(kLog, "bug: HTTP/2 request handler threw a non-exception");
  }
}

void Core::finish() {
  if (finished_) return;
  finished_ = true;
  if (!close_reason_ && !goaway_received_ && !goaway_sent_) {
    close_reason_ = make_error_code(Errc::kConnectionClosed);
  }
  transport_->close();
  const error_code stream_reason =
      close_reason_ ? close_reason_ : make_error_code(Errc::kConnectionClosed);
  for (auto& [id, st] : streams_) {
    st->core = nullptr;
    st->closed = true;
    if (!st->error) st->error = stream_reason;
    st->read_wake.cancel();
    st->write_wake.cancel();
  }
  streams_.clear();
  for (auto& st : new_requests_) st->core = nullptr;
  new_requests_.clear();
  pending_resets_.clear();
  ng_.reset();
  log::debug(kLog, "HTTP/2 session finished: {}", close_reason_.message());
}

void Core::drain() {
  if (!ng_ || finished_ || draining_) return;
  draining_ = true;
  if (server_) {
    // Two-phase GOAWAY (RFC 9113 §6.8): a notice first, the final GOAWAY
    // with the real last stream id after a PING round trip, so requests in
    // flight when we decided to drain are not lost.
    nghttp2_submit_shutdown_notice(ng_.get());
    if (nghttp2_submit_ping(ng_.get(), NGHTTP2_FLAG_NONE, nullptr) == 0) {
      ping_outstanding_ = true;
      ping_sent_ = std::chrono::steady_clock::now();
    }
  } else {
    nghttp2_submit_goaway(ng_.get(), NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, nullptr, 0);
  }
  wake_send();
}

void Core::close() {
  if (!ng_ || finished_) return;
  terminate(NGHTTP2_NO_ERROR, make_error_code(Errc::kConnectionClosed));
}

// --- client ------------------------------------------------------------------

awaitable<boost::system::result<Response>> Core::open_stream(std::shared_ptr<Core> self,
                                                             std::string authority,
                                                             Headers headers,
                                                             asio::const_buffer early_data) {
  Core& c = *self;
  if (!c.is_usable()) {
    co_return make_error_code(c.goaway_received_ ? Errc::kGoaway : Errc::kNotUsable);
  }
  if (c.available_streams() == 0) co_return make_error_code(Errc::kStreamLimit);

  auto st = std::make_shared<StreamState>(c.ex_);
  st->core = &c;
  // Early data rides the writer's slot: read_data takes it right behind the
  // HEADERS, in the same send batch. The caller's buffer is ours until the
  // response (and, on a 200, until nghttp2 has taken every byte).
  st->wdata = static_cast<const std::uint8_t*>(early_data.data());
  st->wsize = early_data.size();
  if (st->wsize == 0) st->wdata = nullptr;
  const auto give_back_early_data = [&st] {
    st->wdata = nullptr;
    st->wsize = 0;
  };
  std::vector<nghttp2_nv> nva;
  nva.reserve(2 + headers.size());
  nva.push_back(make_nv(":method", "CONNECT"));
  nva.push_back(make_nv(":authority", authority));
  for (const Header& h : headers) nva.push_back(make_nv(h.name, h.value));
  nghttp2_data_provider provider{};
  provider.source.ptr = st.get();
  provider.read_callback = &Core::read_data;
  const std::int32_t id =
      nghttp2_submit_request(c.ng_.get(), nullptr, nva.data(), nva.size(), &provider, nullptr);
  if (id < 0) {
    log::warn(kLog, "nghttp2_submit_request: {}", nghttp2_strerror(id));
    co_return make_error_code(Errc::kProtocolError);
  }
  st->id = id;
  c.streams_.emplace(id, st);
  c.wake_send();

  while (!st->headers_done && !st->error && !st->closed) {
    if (!co_await wait_for_wake(st->read_wake)) {
      give_back_early_data();
      if (st->core) st->core->reset_stream(*st, NGHTTP2_CANCEL);
      co_return make_error_code(asio::error::operation_aborted);
    }
  }
  if (!st->headers_done) {
    give_back_early_data();
    co_return st->error ? st->error : make_error_code(Errc::kStreamClosed);
  }
  // A 200 can overtake early data the peer's window held back: let nghttp2
  // take the rest before the buffer goes back to the caller.
  while (st->status == 200 && st->wsize > 0 && !st->error && !st->closed && st->core) {
    if (!co_await wait_for_wake(st->write_wake)) {
      give_back_early_data();
      if (st->core) st->core->reset_stream(*st, NGHTTP2_CANCEL);
      co_return make_error_code(asio::error::operation_aborted);
    }
  }
  const bool early_data_sent = st->wtaken == early_data.size();
  give_back_early_data();
  Response response{st->status, std::move(st->headers), Stream()};
  if (st->status == 200 && early_data_sent) {
    st->open_for_data = true;
    response.stream = Stream(st);
  } else if (st->status == 200) {
    // The connection or stream failed under the early data: no usable tunnel.
    co_return st->error ? st->error : make_error_code(Errc::kStreamClosed);
  } else if (st->core && !st->closed) {
    // No tunnel: end the stream now rather than leave a half-open slot.
    st->core->reset_stream(*st, st->remote_ended ? NGHTTP2_NO_ERROR : NGHTTP2_CANCEL);
  }
  co_return response;
}

// --- stream operations ---------------------------------------------------------

void Core::consume(StreamState& st, std::size_t n) {
  if (!ng_ || n == 0) return;
  nghttp2_session_consume(ng_.get(), st.id, n);
  // nghttp2 queues a WINDOW_UPDATE only once half a window is consumed.
  if (nghttp2_session_want_write(ng_.get())) send_or_wake();
}

void Core::resume_data(StreamState& st) {
  if (!ng_ || st.closed) return;
  // Fails harmlessly when the provider is not deferred (already scheduled).
  nghttp2_session_resume_data(ng_.get(), st.id);
  send_or_wake();
}

void Core::discard_buffered(StreamState& st) {
  const std::size_t n = st.buffered();
  st.received.clear();
  st.discard = true;
  if (n > 0) consume(st, n);
}

void Core::reset_stream(StreamState& st, std::uint32_t code) {
  if (!ng_ || st.closed || st.app_reset) return;
  st.app_reset = true;
  if (!st.error) st.error = make_error_code(Errc::kStreamClosed);
  discard_buffered(st);
  st.wdata = nullptr;
  st.wsize = 0;
  nghttp2_submit_rst_stream(ng_.get(), NGHTTP2_FLAG_NONE, st.id, code);
  st.read_wake.cancel();
  st.write_wake.cancel();
  wake_send();
}

void Core::release_stream(StreamState& st) {
  if (st.closed || st.app_reset) return;
  // Both directions ended: the stream closes by itself once our END_STREAM
  // is flushed; a reset now could overtake it.
  if (st.write_shutdown && st.remote_ended) return;
  if (st.write_shutdown && !st.local_end_sent) {
    // nghttp2 drops every queued frame of a stream once a RST_STREAM is
    // submitted for it (the stream turns CLOSING at submission), which would
    // swallow a final response still queued; reset after it has left.
    st.reset_when_ended = true;
    discard_buffered(st);
    return;
  }
  // Our side finished (END_STREAM or a final non-200 response): NO_ERROR
  // tells the peer we need no more of its bytes (RFC 9113 §8.1).
  reset_stream(st, st.write_shutdown ? NGHTTP2_NO_ERROR : NGHTTP2_CANCEL);
}

error_code Core::respond(StreamState& st, int status, const Headers& headers) {
  if (!st.server) return make_error_code(Errc::kNotServerStream);
  if (st.responded) return make_error_code(Errc::kAlreadyResponded);
  if (!ng_ || st.closed) return st.error ? st.error : make_error_code(Errc::kStreamClosed);
  if (status < 100 || status > 999) return make_error_code(Errc::kBadResponse);
  std::array<char, 4> code{};
  std::to_chars(code.data(), code.data() + 3, status);
  std::vector<nghttp2_nv> nva;
  nva.reserve(1 + headers.size());
  nva.push_back(make_nv(":status", std::string_view(code.data(), 3)));
  for (const Header& h : headers) nva.push_back(make_nv(h.name, h.value));
  int rv = 0;
  if (status == 200) {
    nghttp2_data_provider provider{};
    provider.source.ptr = &st;
    provider.read_callback = &Core::read_data;
    rv = nghttp2_submit_response(ng_.get(), st.id, nva.data(), nva.size(), &provider);
    if (rv == 0) st.open_for_data = true;
  } else {
    rv = nghttp2_submit_response(ng_.get(), st.id, nva.data(), nva.size(), nullptr);
    if (rv == 0) {
      st.write_shutdown = true;
      discard_buffered(st);  // the request body will never be forwarded
    }
  }
  if (rv != 0) {
    log::warn(kLog, "nghttp2_submit_response: {}", nghttp2_strerror(rv));
    return make_error_code(Errc::kProtocolError);
  }
  st.responded = true;
  wake_send();
  return {};
}

// --- nghttp2 callbacks ---------------------------------------------------------

int Core::on_begin_headers(const nghttp2_frame* frame) {
  const std::int32_t id = frame->hd.stream_id;
  StreamState* st = find(id);
  if (!st) {
    if (!server_ || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    auto fresh = std::make_shared<StreamState>(ex_);
    fresh->core = this;
    fresh->id = id;
    fresh->server = true;
    st = fresh.get();
    streams_.emplace(id, std::move(fresh));
  }
  st->header_bytes = 0;
  st->header_fields = 0;
  return 0;
}

int Core::on_header(const nghttp2_frame* frame, std::string_view name, std::string_view value) {
  StreamState* st = find(frame->hd.stream_id);
  if (!st) return 0;
  // nghttp2 does not enforce our MAX_HEADER_LIST_SIZE on receive; RFC 9113
  // §6.5.2 counts 32 bytes of overhead per field.
  st->header_bytes += name.size() + value.size() + 32;
  if (st->header_bytes > opts_.max_header_list_bytes ||
      ++st->header_fields > opts_.limits.max_header_fields) {
    log::debug(kLog, "stream {}: header list over limit ({} bytes, {} fields)", st->id,
               st->header_bytes, st->header_fields);
    // nghttp2 resets the stream (INTERNAL_ERROR) and skips the rest of the block.
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  const bool trailers = st->headers_done;
  if (trailers) {
    st->trailers.push_back({std::string(name), std::string(value)});
  } else if (!name.empty() && name[0] == ':') {
    if (server_) {
      if (name == ":method") st->request.method = value;
      else if (name == ":authority") st->request.authority = value;
      else if (name == ":scheme") st->request.scheme = value;
      else if (name == ":path") st->request.path = value;
    } else if (name == ":status") {
      int status = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), status);
      st->status = (ec == std::errc() && p == value.data() + value.size()) ? status : 0;
    }
  } else if (server_) {
    st->request.headers.push_back({std::string(name), std::string(value)});
  } else {
    st->headers.push_back({std::string(name), std::string(value)});
  }
  return 0;
}

int Core::count_empty_frame(const nghttp2_frame* frame, std::size_t payload) {
  StreamState* st = find(frame->hd.stream_id);
  if (!st) return 0;
  if (payload > 0 || (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    st->empty_frames = 0;
    return 0;
  }
  // Empty frames cost us work and the peer nothing (CVE-2019-9518).
  if (++st->empty_frames > opts_.limits.max_consecutive_empty_frames) {
    log::info(kLog, "closing HTTP/2 connection: empty frame flood on stream {}", st->id);
    pending_terminate_ = NGHTTP2_ENHANCE_YOUR_CALM;
    pending_terminate_reason_ = make_error_code(Errc::kFlood);
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

int Core::count_window_update() {
  const FloodLimits& l = opts_.limits;
  const std::uint64_t allowed = l.window_update_base + 2 * streams_opened_by_peer_ +
                                l.window_updates_per_data_unit * data_units_sent_;
  if (++window_updates_recv_ > allowed) {
    log::info(kLog, "closing HTTP/2 connection: WINDOW_UPDATE flood ({} received, {} KiB DATA sent)",
              window_updates_recv_, 4 * data_units_sent_);
    pending_terminate_ = NGHTTP2_ENHANCE_YOUR_CALM;
    pending_terminate_reason_ = make_error_code(Errc::kFlood);
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

int Core::on_frame_recv(const nghttp2_frame* frame) {
  log::log(log::Level::kTrace, kLog, "{} recv frame type {} flags {:#x} stream {} length {}",
           server_ ? "server" : "client", frame->hd.type, frame->hd.flags, frame->hd.stream_id,
           frame->hd.length);
  switch (frame->hd.type) {
    case NGHTTP2_DATA: {
      if (int rv = count_empty_frame(frame, frame->hd.length - frame->data.padlen)) return rv;
      if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        if (StreamState* st = find(frame->hd.stream_id)) {
          st->remote_ended = true;
          st->read_wake.cancel();
        }
      }
      break;
    }
    case NGHTTP2_WINDOW_UPDATE:
      if (int rv = count_window_update()) return rv;
      break;
    case NGHTTP2_HEADERS: {
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) ++streams_opened_by_peer_;
      StreamState* st = find(frame->hd.stream_id);
      if (!st) break;
      if (frame->headers.cat == NGHTTP2_HCAT_HEADERS && st->headers_done) {
        if (int rv = count_empty_frame(frame, frame->hd.length)) return rv;
      }
      if (!st->headers_done) {
        if (server_) {
          st->headers_done = true;
          new_requests_.push_back(streams_.at(st->id));
        } else if (st->status >= 100 && st->status < 200) {
          st->headers.clear();  // informational; the final response follows
          st->status = 0;
        } else {
          st->headers_done = true;
          if (st->status == 0) st->error = make_error_code(Errc::kBadResponse);
          st->read_wake.cancel();
        }
      }
      if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        st->remote_ended = true;
        st->read_wake.cancel();
      }
      break;
    }
    case NGHTTP2_SETTINGS:
      if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
        peer_settings_seen_ = true;
        if (!server_) {
          for (std::size_t i = 0; i < frame->settings.niv; ++i) {
            if (frame->settings.iv[i].settings_id == NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) {
              refuse_queued_requests(frame->settings.iv[i].value);
            }
          }
        }
      }
      break;
    case NGHTTP2_PING:
      if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
        ping_outstanding_ = false;
        // The peer has seen our shutdown notice: send the final GOAWAY.
        if (draining_ && server_ && !final_goaway_sent_) {
          final_goaway_sent_ = true;
          nghttp2_submit_goaway(ng_.get(), NGHTTP2_FLAG_NONE,
                                nghttp2_session_get_last_proc_stream_id(ng_.get()),
                                NGHTTP2_NO_ERROR, nullptr, 0);
        }
      }
      break;
    case NGHTTP2_GOAWAY:
      goaway_received_ = true;
      if (frame->goaway.error_code != NGHTTP2_NO_ERROR) {
        fail(make_wire_error(frame->goaway.error_code));
      }
      log::debug(kLog, "GOAWAY received: last stream {}, code {}", frame->goaway.last_stream_id,
                 frame->goaway.error_code);
      break;
    default:
      break;
  }
  return 0;
}

int Core::on_data_chunk_recv(std::int32_t stream_id, const std::uint8_t* data, std::size_t len) {
  StreamState* st = find(stream_id);
  if (!st || st->discard || st->app_reset || st->error) {
    // Nobody will read these bytes: return their connection credit at once.
    pending_connection_consume_ += len;
    return 0;
  }
  // A sink takes the bytes after this read (flush_sink_spans) if nothing is
  // buffered ahead of them; spans already recorded for the stream keep
  // their place in line. nghttp2 hands DATA over in place, from the buffer
  // given to mem_recv; anything else is copied as usual.
  const bool in_read_buffer = data >= recv_input_.data() &&
                              data + len <= recv_input_.data() + recv_input_.size();
  if (st->sink && in_read_buffer && st->open_for_data &&
      (st->sink_spans_pending || (st->received.empty() && !st->received.pinned()))) {
    st->sink_spans_pending = true;
    sink_spans_.push_back(SinkSpan{streams_.at(stream_id), data, len});
    return 0;
  }
  st->received.append(data, len);
  st->read_wake.cancel();
  return 0;
}

namespace {
// A non-blocking gathering send that never waits: returns what the socket
// took (0 when it is full or failed; the reader then meets the error on its
// own write).
std::size_t send_without_waiting(asio::ip::tcp::socket& socket, iovec* iov, std::size_t count) {
  if (!socket.is_open()) return 0;
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = count;
  for (;;) {
    const ssize_t n = ::sendmsg(socket.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EINTR) return 0;
  }
}
}  // namespace

void Core::flush_sink_spans() {
  // Nothing below records spans: sends and wake-ups run no callbacks.
  // Consecutive spans of one stream (a read often ends one frame and starts
  // the next) leave in one send. Going through the spans in order, and
  // sending only to streams with nothing buffered, keeps each stream's bytes
  // in order even when its spans are interleaved with other streams'.
  constexpr std::size_t kMaxGather = 16;
  const std::size_t count = sink_spans_.size();
  for (std::size_t first = 0; first < count;) {
    StreamState& st = *sink_spans_[first].stream;
    std::size_t end = first + 1;
    while (end < count && end - first < kMaxGather && sink_spans_[end].stream.get() == &st) ++end;
    // Callbacks of the same read may have reset or ended the stream since.
    const bool wanted = !st.error && !st.app_reset && !st.discard;
    std::size_t sent = 0;
    if (wanted && st.sink && st.received.empty() && !st.received.pinned()) {
      std::array<iovec, kMaxGather> iov;
      for (std::size_t i = first; i < end; ++i) {
        iov[i - first] = iovec{const_cast<std::uint8_t*>(sink_spans_[i].data), sink_spans_[i].size};
      }
      sent = send_without_waiting(*st.sink, iov.data(), end - first);
      *st.sink_bytes += sent;
      // The bytes have left: their credit goes back (stream and connection;
      // only the connection's once nghttp2 has forgotten the stream).
      if (sent > 0 && ng_) nghttp2_session_consume(ng_.get(), st.id, sent);
    }
    for (std::size_t i = first; i < end; ++i) {
      const SinkSpan& span = sink_spans_[i];
      const std::size_t taken = std::min(sent, span.size);
      sent -= taken;
      const std::size_t rest = span.size - taken;
      if (rest == 0) continue;
      if (wanted) {
        st.received.append(span.data + taken, rest);
        st.read_wake.cancel();
      }
      // Nobody will read them, or the stream has left the session (whose
      // credit for buffered bytes went back when it closed): credit now.
      if (!wanted || !st.core) pending_connection_consume_ += rest;
    }
    first = end;
  }
  for (const SinkSpan& span : sink_spans_) span.stream->sink_spans_pending = false;
  sink_spans_.clear();
  // One or two spans a read are the rule (a message, or a bulk stream's
  // frames); a read that carried many streams' DATA (or a peer's tiny
  // frames) does not leave its list allocated on an idle connection.
  if (sink_spans_.capacity() > 16) std::vector<SinkSpan>().swap(sink_spans_);
}

int Core::on_stream_close(std::int32_t stream_id, std::uint32_t error_code) {
  log::log(log::Level::kTrace, kLog, "{} stream {} closed: {}", server_ ? "server" : "client",
           stream_id, nghttp2_http2_strerror(error_code));
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return 0;
  std::shared_ptr<StreamState> st = std::move(it->second);
  streams_.erase(it);
  st->closed = true;
  if (error_code == NGHTTP2_NO_ERROR || error_code == NGHTTP2_CANCEL) {
    // ztunnel reads RST_STREAM NO_ERROR/CANCEL as EOF.
    st->remote_ended = true;
  } else if (!st->error) {
    st->error = make_wire_error(error_code);
    pending_connection_consume_ += st->buffered();
    st->received.clear();
  }
  if (st->wsize > 0 && !st->error) st->error = make_error_code(Errc::kStreamClosed);
  if (st->discard && st->buffered() > 0) st->received.clear();
  // The stream is gone from nghttp2: return the connection credit of bytes
  // still buffered now (the reader may take them later, or never), and
  // detach so the state never points at a session that may be destroyed.
  pending_connection_consume_ += st->buffered();
  st->core = nullptr;
  st->read_wake.cancel();
  st->write_wake.cancel();
  wake_send();
  return 0;
}

// Requests submitted while we still assumed the peer's stream limit (before
// its SETTINGS) and beyond the limit it announced would wait in nghttp2's
// queue until some other stream ends, which may be never. Cancel those not
// yet sent (nghttp2 drops a queued HEADERS when its stream is reset) and fail
// them with kStreamLimit, so a pool opens them elsewhere.
void Core::refuse_queued_requests(std::uint32_t limit) {
  std::size_t sent = 0;
  std::vector<StreamState*> queued;
  for (const auto& [id, st] : streams_) {
    if (st->headers_sent) {
      ++sent;
    } else if (!st->closed && !st->app_reset && !st->error) {
      queued.push_back(st.get());
    }
  }
  // nghttp2 sends queued requests in stream-id order: the lowest keep their turn.
  std::sort(queued.begin(), queued.end(),
            [](const StreamState* a, const StreamState* b) { return a->id < b->id; });
  std::size_t room = limit > sent ? limit - sent : 0;
  for (StreamState* st : queued) {
    if (room > 0) {
      --room;
      continue;
    }
    st->error = make_error_code(Errc::kStreamLimit);
    reset_stream(*st, NGHTTP2_CANCEL);
  }
}

int Core::on_frame_send(const nghttp2_frame* frame) {
  log::log(log::Level::kTrace, kLog, "{} sent frame type {} flags {:#x} stream {} length {}",
           server_ ? "server" : "client", frame->hd.type, frame->hd.flags, frame->hd.stream_id,
           frame->hd.length);
  if (frame->hd.type == NGHTTP2_DATA) {
    data_units_sent_ += std::max<std::size_t>(1, frame->hd.length / 4096);
  }
  if (frame->hd.type == NGHTTP2_HEADERS && !server_) {
    if (StreamState* st = find(frame->hd.stream_id)) st->headers_sent = true;
  }
  if (frame->hd.type == NGHTTP2_RST_STREAM) {
    // Resets the peer made us send (bad frames, refused streams, header
    // floods) are the MadeYouReset pattern; Debian's nghttp2 has no glitch
    // limiter, so bound them here. Resets the application asked for are not
    // counted.
    StreamState* st = find(frame->hd.stream_id);
    const bool ours = st && st->app_reset;
    if (!ours && !sent_resets_.take() && !pending_terminate_ && !terminating_) {
      log::info(kLog, "closing HTTP/2 connection: too many stream resets caused by peer");
      pending_terminate_ = NGHTTP2_ENHANCE_YOUR_CALM;
      pending_terminate_reason_ = make_error_code(Errc::kFlood);
    }
  } else if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) &&
             (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    auto it = streams_.find(frame->hd.stream_id);
    if (it != streams_.end()) {
      it->second->local_end_sent = true;
      if (it->second->reset_when_ended) pending_resets_.push_back(it->second);
    }
  } else if (frame->hd.type == NGHTTP2_GOAWAY) {
    goaway_sent_ = true;
    if (frame->goaway.error_code != NGHTTP2_NO_ERROR) {
      fail(frame->goaway.error_code == NGHTTP2_ENHANCE_YOUR_CALM
               ? make_error_code(Errc::kFlood)
               : make_wire_error(frame->goaway.error_code));
    }
  }
  return 0;
}

int Core::on_frame_not_send(const nghttp2_frame* frame, int lib_error) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  // A request that never left (GOAWAY received, session closing).
  if (StreamState* st = find(frame->hd.stream_id)) {
    if (!st->error) {
      st->error = make_error_code(lib_error == NGHTTP2_ERR_START_STREAM_NOT_ALLOWED
                                      ? Errc::kGoaway
                                      : Errc::kStreamClosed);
    }
    st->read_wake.cancel();
    st->write_wake.cancel();
  }
  return 0;
}

int Core::on_invalid_frame_recv(const nghttp2_frame* frame, int lib_error) {
  log::debug(kLog, "invalid frame type {} on stream {}: {}", frame->hd.type, frame->hd.stream_id,
             nghttp2_strerror(lib_error));
  return 0;
}

ssize_t Core::read_data(nghttp2_session*, std::int32_t, std::uint8_t*, std::size_t length,
                        std::uint32_t* data_flags, nghttp2_data_source* source, void*) {
  return read_data_impl(length, data_flags, source);
}

ssize_t Core::read_data_impl(std::size_t length, std::uint32_t* data_flags,
                             nghttp2_data_source* source) noexcept {
  // Only sizes the frame: the bytes stay in the writer's buffer until
  // send_data, which nghttp2 calls for this frame before mem_send returns.
  auto* st = static_cast<StreamState*>(source->ptr);
  if (st->wsize > 0) {
    const std::size_t n = std::min(length, st->wsize);
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == st->wsize && st->write_shutdown) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
  if (st->write_shutdown) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return 0;
  }
  return NGHTTP2_ERR_DEFERRED;
}

int Core::send_data(const nghttp2_frame* frame, const std::uint8_t* frame_header,
                    std::size_t length, nghttp2_data_source* source) {
  auto* st = static_cast<StreamState*>(source->ptr);
  // read_data sized this frame moments ago in the same mem_send call, so the
  // writer's bytes are still there; should that ever not hold (a writer gone,
  // padding we never asked for), fail the stream rather than send bytes we
  // no longer own. nghttp2 then resets it with INTERNAL_ERROR.
  if (frame->data.padlen != 0 || length > st->wsize || (length > 0 && st->wdata == nullptr)) {
    log::warn(kLog, "stream {}: DATA frame of {} bytes without a writer's bytes to send", st->id,
              length);
    if (!st->error) st->error = make_error_code(Errc::kStreamClosed);
    st->wdata = nullptr;
    st->wsize = 0;
    st->read_wake.cancel();
    st->write_wake.cancel();
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  // Every byte mem_send returned earlier is already in the batch: frames
  // stay in order. A large payload is not copied: the batch points at the
  // writer's buffer, and the transport seals it from there (its own TLS
  // records; the frame header goes in the record before). That is safe
  // because the writer cannot run, and so cannot reuse its buffer, before
  // the transport has taken the batch: waking it below only posts its
  // resumption, and Transport::write and write_now take every byte before
  // they first suspend.
  stage(frame_header, kFrameHeaderBytes);
  if (length >= kReferencedPayloadBytes) {
    refer(st->wdata, length);
  } else {
    stage(st->wdata, length);
  }
  st->wdata += length;
  st->wsize -= length;
  st->wtaken += length;
  if (st->wsize == 0) {
    st->wdata = nullptr;  // the writer's buffer is theirs again
    st->write_wake.cancel();
  }
  // A full batch: mem_send returns (0) so the send loop writes it out.
  return batch_bytes_ >= opts_.write_batch_bytes ? NGHTTP2_ERR_PAUSE : 0;
}

}  // namespace detail

// --- Stream ----------------------------------------------------------------------

namespace {

awaitable<std::tuple<error_code, std::size_t>> stream_read_some(
    std::shared_ptr<detail::StreamState> st, asio::mutable_buffer buffer) {
  for (;;) {
    if (!st->open_for_data) co_return std::tuple{make_error_code(Errc::kNotOpen), 0};
    if (st->buffered() > 0) {
      if (buffer.size() == 0) co_return std::tuple{error_code{}, 0};
      // The queue frees drained chunks: an idle stream holds no receive
      // buffer (with thousands of idle tunnels, even 1 KiB each adds up).
      const std::size_t n = st->received.read(
          std::span(static_cast<std::uint8_t*>(buffer.data()), buffer.size()));
      if (n == 0) co_return std::tuple{make_error_code(Errc::kViewPending), 0};
      // Only now does the peer get its window back.
      if (st->core) st->core->consume(*st, n);
      co_return std::tuple{error_code{}, n};
    }
    if (st->error) co_return std::tuple{st->error, 0};
    if (st->remote_ended || st->closed) co_return std::tuple{make_error_code(asio::error::eof), 0};
    if (!st->core) co_return std::tuple{make_error_code(Errc::kConnectionClosed), 0};
    if (!co_await wait_for_wake(st->read_wake)) {
      co_return std::tuple{make_error_code(asio::error::operation_aborted), 0};
    }
  }
}

awaitable<std::tuple<error_code, asio::const_buffer>> stream_read_view(
    std::shared_ptr<detail::StreamState> st, std::size_t max_bytes) {
  st->received.unpin(0);
  for (;;) {
    if (!st->open_for_data) co_return std::tuple{make_error_code(Errc::kNotOpen), asio::const_buffer()};
    if (st->buffered() > 0) {
      const auto view = st->received.pin(max_bytes);
      co_return std::tuple{error_code{}, asio::const_buffer(view.data(), view.size())};
    }
    if (st->error) co_return std::tuple{st->error, asio::const_buffer()};
    if (st->remote_ended || st->closed) {
      co_return std::tuple{make_error_code(asio::error::eof), asio::const_buffer()};
    }
    if (!st->core) co_return std::tuple{make_error_code(Errc::kConnectionClosed), asio::const_buffer()};
    if (!co_await wait_for_wake(st->read_wake)) {
      co_return std::tuple{make_error_code(asio::error::operation_aborted), asio::const_buffer()};
    }
  }
}

awaitable<std::tuple<error_code, std::size_t>> stream_write(std::shared_ptr<detail::StreamState> st,
                                                            asio::const_buffer data) {
  if (!st->open_for_data) co_return std::tuple{make_error_code(Errc::kNotOpen), 0};
  if (st->write_shutdown) co_return std::tuple{make_error_code(Errc::kWriteShutdown), 0};
  if (st->error) co_return std::tuple{st->error, 0};
  if (st->closed) co_return std::tuple{make_error_code(Errc::kStreamClosed), 0};
  if (!st->core) co_return std::tuple{make_error_code(Errc::kConnectionClosed), 0};
  if (data.size() == 0) co_return std::tuple{error_code{}, 0};
  st->wdata = static_cast<const std::uint8_t*>(data.data());
  st->wsize = data.size();
  st->wtaken = 0;
  st->core->resume_data(*st);
  // A reset (ours or the peer's) also takes the buffer back (wsize = 0);
  // wtaken says how much really left.
  while (st->wsize > 0) {
    if (st->error || st->closed || !st->core) break;
    if (!co_await wait_for_wake(st->write_wake)) {
      st->wdata = nullptr;  // the caller's buffer is theirs again
      st->wsize = 0;
      co_return std::tuple{make_error_code(asio::error::operation_aborted), st->wtaken};
    }
  }
  const std::size_t taken = st->wtaken;
  if (taken < data.size()) {
    st->wdata = nullptr;
    st->wsize = 0;
    error_code ec = st->error ? st->error
                              : make_error_code(st->closed ? Errc::kStreamClosed
                                                           : Errc::kConnectionClosed);
    co_return std::tuple{ec, taken};
  }
  co_return std::tuple{error_code{}, taken};
}

}  // namespace

Stream::Stream(std::shared_ptr<detail::StreamState> state) : state_(std::move(state)) {}

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    release();
    state_ = std::move(other.state_);
  }
  return *this;
}

Stream::~Stream() { release(); }

void Stream::release() noexcept {
  if (!state_) return;
  detach_sink();  // the socket may go with the handle
  if (state_->core) state_->core->release_stream(*state_);
  state_.reset();
}

std::int32_t Stream::id() const { return state_ ? state_->id : -1; }

asio::any_io_executor Stream::get_executor() const {
  return state_ ? state_->read_wake.get_executor() : asio::any_io_executor();
}

awaitable<std::tuple<error_code, std::size_t>> Stream::read_some(asio::mutable_buffer buffer) {
  if (!state_) {
    return []() -> awaitable<std::tuple<error_code, std::size_t>> {
      co_return std::tuple{make_error_code(Errc::kStreamClosed), 0};
    }();
  }
  return stream_read_some(state_, buffer);
}

awaitable<std::tuple<error_code, asio::const_buffer>> Stream::read_view(std::size_t max_bytes) {
  if (!state_) {
    return []() -> awaitable<std::tuple<error_code, asio::const_buffer>> {
      co_return std::tuple{make_error_code(Errc::kStreamClosed), asio::const_buffer()};
    }();
  }
  return stream_read_view(state_, max_bytes);
}

void Stream::attach_sink(asio::ip::tcp::socket& socket, std::uint64_t& bytes_sent) {
  if (!state_) return;
  state_->sink = &socket;
  state_->sink_bytes = &bytes_sent;
}

void Stream::detach_sink() {
  if (!state_) return;
  state_->sink = nullptr;
  state_->sink_bytes = nullptr;
}

void Stream::consume_view(std::size_t n) {
  if (!state_) return;
  const std::size_t consumed = state_->received.unpin(n);
  // Only now does the peer get its window back.
  if (state_->core) state_->core->consume(*state_, consumed);
}

awaitable<std::tuple<error_code, std::size_t>> Stream::write(asio::const_buffer data) {
  if (!state_) {
    return []() -> awaitable<std::tuple<error_code, std::size_t>> {
      co_return std::tuple{make_error_code(Errc::kStreamClosed), 0};
    }();
  }
  return stream_write(state_, data);
}

error_code Stream::shutdown_write() {
  if (!state_) return make_error_code(Errc::kStreamClosed);
  detail::StreamState& st = *state_;
  if (!st.open_for_data) return make_error_code(Errc::kNotOpen);
  if (st.write_shutdown) return {};
  if (st.error) return st.error;
  if (!st.core) return make_error_code(Errc::kConnectionClosed);
  st.write_shutdown = true;
  st.core->resume_data(st);
  return {};
}

void Stream::reset(std::uint32_t code) {
  if (state_ && state_->core) state_->core->reset_stream(*state_, code);
}

error_code Stream::respond(int status, const Headers& headers) {
  if (!state_) return make_error_code(Errc::kStreamClosed);
  if (!state_->server) return make_error_code(Errc::kNotServerStream);
  if (!state_->core) {
    if (state_->error) return state_->error;
    return make_error_code(state_->closed ? Errc::kStreamClosed : Errc::kConnectionClosed);
  }
  return state_->core->respond(*state_, status, headers);
}

std::size_t Stream::buffered_bytes() const { return state_ ? state_->buffered() : 0; }

const Headers& Stream::trailers() const {
  static const Headers kEmpty;
  return state_ ? state_->trailers : kEmpty;
}

const std::string* find_header(const Headers& headers, std::string_view name) {
  for (const Header& h : headers) {
    if (h.name == name) return &h.value;
  }
  return nullptr;
}

// --- session handles -------------------------------------------------------------

ServerSession::ServerSession(std::unique_ptr<Transport> transport, Handler handler,
                             SessionOptions options)
    : core_(std::make_shared<detail::Core>(std::move(transport), std::move(options), true,
                                           std::move(handler))) {}

awaitable<error_code> ServerSession::run() { return detail::Core::run(core_); }
void ServerSession::drain() { core_->drain(); }
void ServerSession::close() { core_->close(); }
std::size_t ServerSession::active_streams() const { return core_->active_streams(); }
bool ServerSession::is_closed() const { return core_->is_closed(); }

ClientSession::ClientSession(std::unique_ptr<Transport> transport, SessionOptions options)
    : core_(std::make_shared<detail::Core>(std::move(transport), std::move(options), false,
                                           ServerSession::Handler())) {}

awaitable<error_code> ClientSession::run() { return detail::Core::run(core_); }

awaitable<boost::system::result<Response>> ClientSession::open_stream(
    std::string authority, Headers headers, asio::const_buffer early_data) {
  return detail::Core::open_stream(core_, std::move(authority), std::move(headers), early_data);
}

bool ClientSession::is_usable() const { return core_->is_usable(); }
std::size_t ClientSession::available_streams() const { return core_->available_streams(); }
std::size_t ClientSession::active_streams() const { return core_->active_streams(); }
std::uint32_t ClientSession::peer_max_concurrent_streams() const {
  return core_->peer_max_concurrent_streams();
}
void ClientSession::drain() { core_->drain(); }
void ClientSession::close() { core_->close(); }

}  // namespace ztunnel::h2
