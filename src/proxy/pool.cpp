// HBONE connection pool and the TLS connector behind it.
#include "proxy/pool.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <optional>
#include <tuple>

#include "core/log.h"
#include "h2/error.h"
#include "h2/tls_transport.h"

namespace ztunnel::proxy {

namespace asio = boost::asio;
using boost::asio::ip::tcp;
inline constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

bool operator<(const PoolKey& a, const PoolKey& b) {
  return std::tie(a.source, a.expected, a.destination, a.source_ip) <
         std::tie(b.source, b.expected, b.destination, b.source_ip);
}

PoolKey make_pool_key(state::Identity source, std::vector<state::Identity> expected,
                      tcp::endpoint destination, std::optional<asio::ip::address> source_ip) {
  std::sort(expected.begin(), expected.end());
  expected.erase(std::unique(expected.begin(), expected.end()), expected.end());
  return PoolKey{std::move(source), std::move(expected), destination, source_ip};
}

struct HbonePool::Connection {
  h2::ClientSession session;
  // The idle watcher sleeps on this; cancelled to make it look again (a
  // connection for the same key was added, so this one may now be a spare).
  asio::steady_timer recheck;
  // Drained by its watcher. The session stays usable until its GOAWAY is
  // written, but takes no new stream from the pool from this moment.
  bool released = false;
};

HbonePool::HbonePool(asio::any_io_executor executor, PoolOptions options, HboneConnector connector)
    : executor_(std::move(executor)), options_(options), connector_(std::move(connector)) {}

HbonePool::~HbonePool() { shutdown(); }

HbonePool::Entry& HbonePool::entry_for(const PoolKey& key) {
  auto& entry = entries_[key];
  if (!entry) entry = std::make_shared<Entry>();
  return *entry;
}

void HbonePool::prune(Entry& entry) {
  std::erase_if(entry.connections,
                [](const auto& c) { return c->released || !c->session.is_usable(); });
}

std::shared_ptr<HbonePool::Connection> HbonePool::pick(Entry& entry) {
  for (const auto& c : entry.connections) {
    if (c->session.available_streams() > 0 &&
        c->session.active_streams() < options_.max_streams_per_connection) {
      return c;
    }
  }
  return nullptr;
}

asio::awaitable<core::Result<h2::Response>> HbonePool::open(PoolKey key, std::string authority,
                                                            h2::Headers headers,
                                                            asio::const_buffer early_data) {
  // Bounded: a stream refused for a limit we could not see is retried on
  // another (or a new) connection a few times, not forever. Waiting for
  // another caller's connect is not a retry: with thousands of callers for
  // one key, each connect serves max_streams_per_connection of them and the
  // rest wait for the next one.
  constexpr int kMaxStreamRetries = 8;
  int stream_retries = 0;
  for (;;) {
    Entry& entry = entry_for(key);
    prune(entry);
    if (auto connection = pick(entry)) {
      h2::ClientSession session = connection->session;  // a handle: survives pruning
      auto response = co_await session.open_stream(authority, headers, early_data);
      if (response) co_return std::move(*response);
      const auto ec = response.error();
      // REFUSED_STREAM: the peer did not process the request (RFC 9113 8.7),
      // e.g. a burst that left before its SETTINGS arrived; safe to retry.
      const bool retryable = ec == h2::Errc::kStreamLimit || ec == h2::Errc::kNotUsable ||
                             ec == h2::Errc::kGoaway ||
                             ec == h2::make_wire_error(h2::kRefusedStream);
      if (retryable && ++stream_retries < kMaxStreamRetries) continue;
      co_return core::make_error("open HBONE stream: " + ec.message());
    }
    if (entry.connecting) {
      const std::uint64_t waited_for = entry.connects_finished + 1;
      auto timer = entry.connected;
      co_await timer->async_wait(use_nothrow);
      Entry& after = entry_for(key);
      // The connect we waited for failed: every caller queued behind it gets
      // its error, rather than each trying (and timing out) in turn.
      if (after.connects_finished == waited_for && after.last_connect_error) {
        co_return *after.last_connect_error;
      }
      continue;
    }
    entry.connecting = true;
    entry.connected = std::make_shared<asio::steady_timer>(executor_,
                                                           asio::steady_timer::time_point::max());
    auto connected = co_await connector_(key);
    Entry& after = entry_for(key);
    after.connecting = false;
    ++after.connects_finished;
    after.connected->cancel();
    if (!connected) {
      after.last_connect_error = connected.error();
      co_return connected.error();
    }
    after.last_connect_error.reset();
    auto connection = std::make_shared<Connection>(
        Connection{std::move(*connected), asio::steady_timer(executor_)});
    // The others may now be spares: let their watchers look with the short tick.
    for (auto& other : after.connections) other->recheck.cancel();
    after.connections.push_back(connection);
    watch_idle(connection, entries_[key]);
  }
}

void HbonePool::watch_idle(std::shared_ptr<Connection> connection, std::weak_ptr<Entry> entry) {
  const auto timeout = options_.unused_release_timeout;
  if (timeout <= std::chrono::steady_clock::duration::zero()) return;
  const auto grace = std::max<std::chrono::steady_clock::duration>(options_.spare_release_grace,
                                                                   std::chrono::milliseconds(5));
  const auto slow_tick = std::max<std::chrono::steady_clock::duration>(
      timeout / 4, std::chrono::milliseconds(5));
  const uint32_t max_streams = options_.max_streams_per_connection;
  // Holds the connection and a weak reference to its key's entry, never the
  // pool: the watcher may outlive it. While the key has one connection it
  // looks every timeout/4; with several, every grace period (one timer
  // wake-up a second per pooled connection during bursts).
  asio::co_spawn(
      executor_,
      [](std::shared_ptr<Connection> c, std::weak_ptr<Entry> weak_entry,
         std::chrono::steady_clock::duration timeout, std::chrono::steady_clock::duration grace,
         std::chrono::steady_clock::duration slow_tick,
         uint32_t max_streams) -> asio::awaitable<void> {
        // Another usable connection of the key could take this one's streams.
        const auto spare = [&] {
          auto entry = weak_entry.lock();
          if (!entry) return false;
          return std::any_of(entry->connections.begin(), entry->connections.end(),
                             [&](const auto& other) {
                               return other != c && !other->released &&
                                      other->session.is_usable() &&
                                      other->session.available_streams() > 0 &&
                                      other->session.active_streams() < max_streams;
                             });
        };
        const auto has_siblings = [&] {
          auto entry = weak_entry.lock();
          return entry && entry->connections.size() > 1;
        };
        // When the connection was first seen without streams; unset while in use.
        std::optional<std::chrono::steady_clock::time_point> idle_since =
            std::chrono::steady_clock::now();
        while (c->session.is_usable()) {
          c->recheck.expires_after(has_siblings() ? grace : slow_tick);
          co_await c->recheck.async_wait(use_nothrow);  // cancelled: look now
          if (!c->session.is_usable()) break;
          const auto now = std::chrono::steady_clock::now();
          if (c->session.active_streams() > 0) {
            idle_since.reset();
            continue;
          }
          if (!idle_since) idle_since = now;
          const auto idle = now - *idle_since;
          if (idle >= timeout) {
            log::debug("pool", "releasing idle HBONE connection");
            c->released = true;
            c->session.drain();
            break;
          }
          if (idle >= grace && spare()) {
            log::debug("pool", "releasing spare idle HBONE connection");
            c->released = true;
            c->session.drain();
            break;
          }
        }
        // Let go of the session now, not at the key's next open(): an idle
        // key may never see one, and the session holds its TLS state.
        if (auto entry = weak_entry.lock()) std::erase(entry->connections, c);
      }(std::move(connection), std::move(entry), timeout, grace, slow_tick, max_streams),
      asio::detached);
}

std::size_t HbonePool::connection_count() {
  std::size_t n = 0;
  for (auto& [key, entry] : entries_) {
    prune(*entry);
    n += entry->connections.size();
  }
  return n;
}

std::size_t HbonePool::connection_count(const PoolKey& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return 0;
  prune(*it->second);
  return it->second->connections.size();
}

void HbonePool::shutdown() {
  for (auto& [key, entry] : entries_) {
    for (auto& c : entry->connections) {
      c->session.close();
      c->recheck.cancel();  // its watcher ends now rather than at its next tick
    }
    entry->connections.clear();
  }
}

HboneConnector make_hbone_connector(ConnectorInputs inputs) {
  // Shared by copies of the connector; the cache locks, so any thread may connect.
  auto contexts = std::make_shared<tls::ClientContextCache>(inputs.tls);
  return [inputs = std::move(inputs), contexts = std::move(contexts)](
             PoolKey key) -> asio::awaitable<core::Result<h2::ClientSession>> {
    auto cert = inputs.certificates->fetch(key.source);
    if (!cert) co_return core::make_error("no certificate for " + key.source.to_spiffe() + ": " +
                                          cert.error().message);
    auto context = contexts->get(*cert);
    if (!context) co_return context.error();
    auto socket = co_await inputs.sockets->connect(key.destination, key.source_ip);
    if (!socket) co_return core::make_error("connect " + key.destination.address().to_string() + ":" +
                                            std::to_string(key.destination.port()) + ": " +
                                            socket.error().message());
    auto transport =
        std::make_unique<h2::TlsTransport>(std::move(*socket), (*context)->new_ssl(key.expected));
    auto handshake =
        co_await transport->handshake(h2::TlsTransport::Role::kClient, inputs.handshake_timeout);
    if (!handshake) co_return core::make_error("TLS handshake: " + handshake.detail);
    h2::ClientSession session(std::move(transport), inputs.session);
    asio::co_spawn(
        co_await asio::this_coro::executor,
        [](h2::ClientSession s) -> asio::awaitable<void> {
          auto ec = co_await s.run();
          if (ec) log::debug("pool", "HBONE connection ended: {}", ec.message());
        }(session),
        asio::detached);
    co_return session;
  };
}

}  // namespace ztunnel::proxy
