// Interop with an HTTP/2 stack we did not write: Debian's python3-h2, over TCP on 127.0.0.1.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "h2/session.h"
#include "support/run_coro.h"
#include "support/testing.h"

// GCC 12 misreports awaitable frames of coroutine lambdas as mismatched
// new/delete (a false positive).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

extern char** environ;

namespace ztunnel::h2 {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using testing::run_coro;

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
constexpr int kSkip = 77;  // the script could not import h2

// python3-h2 4.1 insists on :scheme and :path in every request, which
// classic CONNECT must omit (RFC 9113 §8.5), so header validation is turned
// off on its side for CONNECT.
constexpr const char* kPythonClient = R"PY(
import hashlib, socket, sys
try:
    import h2.config, h2.connection, h2.events
except ImportError:
    sys.exit(77)
port = int(sys.argv[1])
size = int(sys.argv[2])
sock = socket.create_connection(("127.0.0.1", port))
conn = h2.connection.H2Connection(config=h2.config.H2Configuration(
    client_side=True, header_encoding="utf-8", validate_outbound_headers=False,
    validate_inbound_headers=True))
conn.initiate_connection()
sock.sendall(conn.data_to_send())
sid = conn.get_next_available_stream_id()
conn.send_headers(sid, [(":method", "CONNECT"), (":authority", "10.0.0.2:8080"),
                        ("baggage", "k8s.cluster.name=py")])
sock.sendall(conn.data_to_send())
payload = bytes((i * 7 + 3) % 251 for i in range(size))
status, received, sent, done = None, bytearray(), 0, False
while not done:
    if status == "200" and sent < len(payload):
        room = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
        if room > 0:
            chunk = payload[sent:sent + room]
            sent += len(chunk)
            conn.send_data(sid, chunk, end_stream=(sent == len(payload)))
            sock.sendall(conn.data_to_send())
            continue
    data = sock.recv(65536)
    if not data:
        break
    for ev in conn.receive_data(data):
        if isinstance(ev, h2.events.ResponseReceived):
            status = dict(ev.headers)[":status"]
            if status != "200":
                done = True
        elif isinstance(ev, h2.events.DataReceived):
            received += ev.data
            conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
            done = True
    sock.sendall(conn.data_to_send())
ok = received == payload
print(status, len(received), "match" if ok else "mismatch", flush=True)
conn.close_connection()
sock.sendall(conn.data_to_send())
sock.close()
)PY";

constexpr const char* kPythonServer = R"PY(
import socket, sys
try:
    import h2.config, h2.connection, h2.events
except ImportError:
    sys.exit(77)
lsock = socket.socket()
lsock.bind(("127.0.0.1", 0))
lsock.listen(1)
print(lsock.getsockname()[1], flush=True)
sock, _ = lsock.accept()
conn = h2.connection.H2Connection(config=h2.config.H2Configuration(
    client_side=False, header_encoding="utf-8", validate_inbound_headers=False))
conn.initiate_connection()
sock.sendall(conn.data_to_send())
seen = {}
while True:
    data = sock.recv(65536)
    if not data:
        break
    for ev in conn.receive_data(data):
        if isinstance(ev, h2.events.RequestReceived):
            seen = dict(ev.headers)
            ok = seen.get(":method") == "CONNECT" and ":path" not in seen
            conn.send_headers(ev.stream_id, [(":status", "200" if ok else "400"),
                                             ("x-seen-authority", seen.get(":authority", ""))],
                              end_stream=not ok)
        elif isinstance(ev, h2.events.DataReceived):
            conn.send_data(ev.stream_id, ev.data)
            conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            conn.end_stream(ev.stream_id)
    sock.sendall(conn.data_to_send())
print("closed", seen.get("traceparent", "-"), flush=True)
)PY";

// A python3 child with its stdout on a pipe we read line by line.
class PythonChild {
 public:
  PythonChild(asio::io_context& io, const char* script, std::vector<std::string> args)
      : out_(io) {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    std::vector<std::string> argv_s = {"/usr/bin/python3", "-c", script};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rv = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    REQUIRE(rv == 0);
    out_.assign(fds[0]);
  }
  ~PythonChild() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait();
    }
  }

  // The next line of output, or nullopt at EOF.
  awaitable<std::optional<std::string>> line() {
    auto [ec, n] = co_await asio::async_read_until(out_, asio::dynamic_buffer(buf_), '\n',
                                                   use_nothrow);
    if (ec) co_return std::nullopt;
    std::string l = buf_.substr(0, n - 1);
    buf_.erase(0, n);
    co_return l;
  }

  int wait() {
    int status = 0;
    if (pid_ > 0 && ::waitpid(pid_, &status, 0) == pid_) pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  asio::posix::stream_descriptor out_;
  std::string buf_;
};

// Built outside coroutines: GCC 12 rejects braced string literals in them.
Headers trace_headers() {
  Headers h;
  h.push_back({"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"});
  return h;
}

TEST_CASE("a python h2 client tunnels bytes through our server's CONNECT") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const auto port = acceptor.local_endpoint().port();
    PythonChild child(io, kPythonClient, {std::to_string(port), "300000"});
    std::optional<std::string> authority, baggage;
    std::optional<ServerSession> server;
    asio::co_spawn(io, [&]() -> awaitable<void> {
      auto [ec, sock] = co_await acceptor.async_accept(use_nothrow);
      if (ec) co_return;
      server.emplace(make_transport(std::move(sock)), [&](IncomingRequest req) -> awaitable<void> {
        authority = req.request.authority;
        if (auto* b = find_header(req.request.headers, "baggage")) baggage = *b;
        req.stream.respond(200);
        std::vector<std::uint8_t> buf(32 << 10);
        for (;;) {
          auto [rec, n] = co_await req.stream.read_some(asio::buffer(buf));
          if (rec) break;
          auto [wec, taken] = co_await req.stream.write(asio::buffer(buf.data(), n));
          if (wec) co_return;
        }
        req.stream.shutdown_write();
      });
      co_await server->run();
    }, asio::detached);
    auto result = co_await child.line();
    const int exit_code = child.wait();
    if (exit_code == kSkip) {
      MESSAGE("python3-h2 is not installed; skipped");
      co_return;
    }
    REQUIRE(result);
    CHECK(*result == "200 300000 match");
    CHECK(exit_code == 0);
    CHECK(authority == std::optional<std::string>("10.0.0.2:8080"));
    CHECK(baggage == std::optional<std::string>("k8s.cluster.name=py"));
  }, 60s);
}

TEST_CASE("our client's CONNECT works against a python h2 server") {
  run_coro([](asio::io_context& io) -> awaitable<void> {
    PythonChild child(io, kPythonServer, {});
    auto port_line = co_await child.line();
    if (!port_line) {
      if (child.wait() == kSkip) MESSAGE("python3-h2 is not installed; skipped");
      else FAIL("python h2 server did not start");
      co_return;
    }
    tcp::socket sock(io);
    auto [cec] = co_await sock.async_connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                      static_cast<std::uint16_t>(std::stoi(*port_line))),
        use_nothrow);
    REQUIRE_FALSE(cec);
    ClientSession client(make_transport(std::move(sock)));
    asio::co_spawn(io, client.run(), asio::detached);

    auto r = co_await client.open_stream("10.0.0.3:9090", trace_headers());
    REQUIRE(r);
    CHECK(r->status == 200);
    REQUIRE(find_header(r->headers, "x-seen-authority"));
    CHECK(*find_header(r->headers, "x-seen-authority") == "10.0.0.3:9090");

    std::string sent(100000, '\0');
    for (std::size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>('a' + i % 26);
    std::string got;
    co_await ([&]() -> awaitable<void> {
      auto [ec, n] = co_await r->stream.write(asio::buffer(sent));
      CHECK_FALSE(ec);
      r->stream.shutdown_write();
    }() && [&]() -> awaitable<void> {
      std::array<char, 8192> buf{};
      for (;;) {
        auto [ec, n] = co_await r->stream.read_some(asio::buffer(buf));
        if (ec) {
          CHECK(ec == asio::error::eof);
          break;
        }
        got.append(buf.data(), n);
      }
    }());
    CHECK(got == sent);
    client.close();
    auto closed = co_await child.line();
    REQUIRE(closed);
    CHECK(*closed == "closed 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
    CHECK(child.wait() == 0);
  }, 60s);
}

}  // namespace
}  // namespace ztunnel::h2
