// Worker threads: per-worker SO_REUSEPORT listeners serve connections, each worker with its own pool.
#include "app/workers.h"

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "h2/session.h"
#include "h2/transport.h"
#include "identity/builtin_ca.h"
#include "proxy/h2_stream_io.h"
#include "proxy/outbound.h"

// GCC 12 misreports awaitable frames of coroutine lambdas as mismatched
// new/delete (a false positive).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace ztunnel::app {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;

const auto kLoopback = asio::ip::make_address("127.0.0.1");
const auto kRemoteIp = asio::ip::make_address("127.0.0.2");

state::Workload workload(std::string name, asio::ip::address ip) {
  state::Workload w;
  w.uid = "vms/" + name;
  w.name = name;
  w.namespace_ = "vms";
  w.service_account = name;
  w.trust_domain = "cluster.local";
  w.protocol = state::Protocol::kHbone;
  w.addresses = {ip};
  return w;
}

// One per worker, touched only on that worker's thread (the point of the
// design); the test reads it after the workers have stopped.
struct StubPeer {
  std::vector<std::thread::id> connect_threads;  // one per connector call
  std::vector<std::thread::id> stream_threads;   // one per CONNECT served
  std::vector<h2::ServerSession> sessions;
};

// Answers every CONNECT with 200 and echoes.
awaitable<void> echo_stream(StubPeer* peer, h2::IncomingRequest request) {
  peer->stream_threads.push_back(std::this_thread::get_id());
  request.stream.respond(200);
  std::array<char, 4096> buffer;
  for (;;) {
    auto [ec, n] = co_await request.stream.read_some(asio::buffer(buffer));
    if (ec) break;
    if (co_await h2::write_all(request.stream, asio::buffer(buffer.data(), n))) co_return;
  }
  request.stream.shutdown_write();
}

template <class Session>
awaitable<void> run_session(Session session) {
  co_await session.run();
}

// In place of TLS to the peer: an in-process ServerSession over a socketpair
// on the calling worker.
proxy::HboneConnector stub_connector(StubPeer* peer) {
  return [peer](proxy::PoolKey) -> awaitable<core::Result<h2::ClientSession>> {
    peer->connect_threads.push_back(std::this_thread::get_id());
    auto executor = co_await asio::this_coro::executor;
    asio::local::stream_protocol::socket a(executor), b(executor);
    asio::local::connect_pair(a, b);
    h2::ServerSession server(h2::make_transport(std::move(a)), [peer](h2::IncomingRequest r) {
      return echo_stream(peer, std::move(r));
    });
    h2::ClientSession client(h2::make_transport(std::move(b)));
    peer->sessions.push_back(server);
    asio::co_spawn(executor, run_session(server), asio::detached);
    asio::co_spawn(executor, run_session(client), asio::detached);
    co_return client;
  };
}

TEST_CASE("two workers share a port through SO_REUSEPORT and each serves with its own pool") {
  config::Config config;
  state::Store store;
  state::Workload local = workload("local", asio::ip::make_address("10.0.0.1"));
  state::Workload remote = workload("remote", kRemoteIp);
  state::Update update;
  update.upserted_workloads.push_back(local);
  update.upserted_workloads.push_back(remote);
  store.apply(std::move(update));
  auto ca = identity::BuiltinCa::generate("cluster.local", std::chrono::system_clock::now());
  REQUIRE(ca.has_value());

  net::SocketOptions options;
  options.reuse_port = true;
  auto sockets = std::make_shared<const net::SocketFactory>(options);
  proxy::ProxyInputs inputs;
  inputs.config = &config;
  inputs.store = &store;
  inputs.sockets = sockets;
  inputs.certificates = identity::BuiltinCaProvider::create(*ca);
  inputs.workload = {"vms", "local", "local"};
  inputs.original_dst = [](tcp::socket&) -> boost::system::result<tcp::endpoint> {
    return tcp::endpoint(kRemoteIp, 8080);  // an HBONE workload: through the pool
  };

  std::vector<StubPeer> peers(2);
  std::vector<std::shared_ptr<proxy::Outbound>> outbounds;
  {
    Workers workers(2);
    auto acceptors = listen_on_each(*sockets, workers, {kLoopback, 0});
    REQUIRE(acceptors.has_value());
    REQUIRE(acceptors->size() == 2);
    const tcp::endpoint listener = (*acceptors)[0].local_endpoint();
    CHECK(listener.port() != 0);
    CHECK((*acceptors)[1].local_endpoint() == listener);
    for (std::size_t i = 0; i < 2; ++i) {
      outbounds.push_back(proxy::Outbound::create(inputs, std::move((*acceptors)[i]),
                                                  stub_connector(&peers[i])));
      asio::co_spawn(workers.context(i), outbounds.back()->run(), asio::detached);
    }
    workers.start();

    // Blocking clients from this thread: the kernel picks a listener per
    // connection by hashing its addresses, so 64 of them reach both.
    constexpr int kConnections = 64;
    asio::io_context client_io;
    for (int c = 0; c < kConnections; ++c) {
      tcp::socket socket(client_io);
      socket.connect(listener);
      const std::string message = "hello " + std::to_string(c);
      asio::write(socket, asio::buffer(message));
      std::string echoed(message.size(), '\0');
      asio::read(socket, asio::buffer(echoed));
      CHECK(echoed == message);
    }

    std::vector<std::thread::id> worker_threads(2);
    for (std::size_t i = 0; i < 2; ++i) {
      std::promise<std::thread::id> id;
      asio::post(workers.context(i), [&id] { id.set_value(std::this_thread::get_id()); });
      worker_threads[i] = id.get_future().get();
    }
    workers.stop([&](std::size_t i) { outbounds[i]->stop(); }, std::chrono::milliseconds(50));

    std::size_t streams = 0;
    for (std::size_t i = 0; i < 2; ++i) {
      CAPTURE(i);
      // Both workers took connections, and each opened exactly one HBONE
      // connection: its pool serves only its own connections.
      CHECK(!peers[i].stream_threads.empty());
      CHECK(peers[i].connect_threads.size() == 1);
      for (auto id : peers[i].connect_threads) CHECK(id == worker_threads[i]);
      for (auto id : peers[i].stream_threads) CHECK(id == worker_threads[i]);
      streams += peers[i].stream_threads.size();
    }
    CHECK(streams == kConnections);
    CHECK(worker_threads[0] != worker_threads[1]);
    // The workers are joined: their objects may be dropped from here, and
    // must be before the io_contexts go.
    outbounds.clear();
    for (auto& peer : peers) peer.sessions.clear();
  }
}

TEST_CASE("workers stopped before they started still run what stop() posts") {
  Workers workers(2);
  std::atomic<int> stopped{0};
  workers.stop([&](std::size_t) { ++stopped; }, std::chrono::milliseconds(0));
  CHECK(stopped == 2);
}

}  // namespace
}  // namespace ztunnel::app
