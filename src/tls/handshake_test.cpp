// Real handshakes over loopback TCP: our contexts against each other, against
// deliberately broken BoringSSL peers, and against the openssl CLI (OpenSSL 3).
#include "tls/handshake.h"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <sys/wait.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <random>
#include <vector>
#include <cstdio>
#include <thread>

#include "support/cert_fixtures.h"
#include "support/testing.h"
#include "tls/context.h"

// GCC 12 false positive on coroutine frames with a class-specific operator
// delete (GCC PR 109224), seen once the optimizer inlines awaitable frames.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace ztunnel::tls {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using testing::spiffe;
using testing::TestCa;

constexpr auto kServer = asio::ssl::stream_base::server;
constexpr auto kClient = asio::ssl::stream_base::client;

// Runs one coroutine to completion on a fresh io_context, with a hard limit.
template <class T>
T run(asio::awaitable<T> task, std::chrono::seconds limit = 20s) {
  asio::io_context io;
  std::optional<T> result;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
    error = e;
    if (!e) result = std::move(value);
  });
  io.run_for(limit);
  if (error) std::rethrow_exception(error);
  REQUIRE_MESSAGE(result.has_value(), "test coroutine did not finish in time");
  return std::move(*result);
}

struct Outcome {
  HandshakeResult server;
  HandshakeResult client;
  std::string server_cipher;
  int server_version = 0;
  bool sni_seen = false;
};

// Accepts one loopback connection and handshakes both ends concurrently.
asio::awaitable<Outcome> handshake_pair(std::shared_ptr<const ServerContext> server_ctx,
                                        bssl::UniquePtr<SSL> client_ssl,
                                        std::chrono::steady_clock::duration deadline = 5s) {
  auto ex = co_await asio::this_coro::executor;
  tcp::acceptor acceptor(ex, {asio::ip::address_v4::loopback(), 0});
  tcp::socket client_socket(ex);
  co_await client_socket.async_connect(acceptor.local_endpoint(), asio::use_awaitable);
  tcp::socket server_socket = co_await acceptor.async_accept(asio::use_awaitable);
  TlsStream server = make_stream(std::move(server_socket), server_ctx->new_ssl());
  TlsStream client = make_stream(std::move(client_socket), std::move(client_ssl));
  auto [s, c] = co_await (handshake(server, kServer, deadline) && handshake(client, kClient, deadline));
  Outcome out;
  out.server = std::move(s);
  out.client = std::move(c);
  if (const SSL_CIPHER* cipher = SSL_get_current_cipher(server.native_handle())) {
    out.server_cipher = SSL_CIPHER_get_name(cipher);
  }
  out.server_version = SSL_version(server.native_handle());
  out.sni_seen = SSL_get_servername(server.native_handle(), TLSEXT_NAMETYPE_host_name) != nullptr;
  co_return out;
}

struct Mesh {
  TestCa ca = TestCa::root();
  std::shared_ptr<const WorkloadCertificate> server_cert =
      testing::workload(ca, spiffe("backend", "server-sa"));
  std::shared_ptr<const WorkloadCertificate> client_cert =
      testing::workload(ca, spiffe("frontend", "client-sa"));

  std::shared_ptr<const ServerContext> server(TlsOptions options = {}) const {
    auto ctx = make_server_context(server_cert, std::move(options));
    REQUIRE(ctx);
    return *ctx;
  }
  std::shared_ptr<const ClientContext> client(std::shared_ptr<const WorkloadCertificate> cert,
                                              TlsOptions options = {}) const {
    auto ctx = make_client_context(std::move(cert), std::move(options));
    REQUIRE(ctx);
    return *ctx;
  }
  bssl::UniquePtr<SSL> client_ssl(TlsOptions options = {}) const {
    return client(client_cert, std::move(options))->new_ssl({server_cert->identity()});
  }
};

// A bare BoringSSL client context: no certificate, no verification.
bssl::UniquePtr<SSL> raw_client_ssl(bool with_alpn) {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
  if (with_alpn) {
    static const uint8_t kH2[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(ctx.get(), kH2, sizeof(kH2));
  }
  bssl::UniquePtr<SSL> ssl(SSL_new(ctx.get()));
  SSL_set_connect_state(ssl.get());
  return ssl;
}

TEST_CASE("mutual TLS succeeds and each side sees the other's identity and ALPN h2") {
  Mesh mesh;
  auto out = run(handshake_pair(mesh.server(), mesh.client_ssl()));
  REQUIRE_MESSAGE(out.server, out.server.detail);
  REQUIRE_MESSAGE(out.client, out.client.detail);
  CHECK(out.server.peer_identity == mesh.client_cert->identity());
  CHECK(out.client.peer_identity == mesh.server_cert->identity());
  CHECK(out.server.alpn == "h2");
  CHECK(out.client.alpn == "h2");
  CHECK(out.server_version == TLS1_3_VERSION);
  CHECK(out.server_cipher.find("AES") != std::string::npos);
  CHECK_FALSE(out.sni_seen);
}

TEST_CASE("mutual TLS works through an intermediate CA on both sides") {
  TestCa root = TestCa::root();
  TestCa mid = root.intermediate();
  auto server_cert = testing::workload(mid, spiffe("backend", "server-sa"), root);
  auto client_cert = testing::workload(mid, spiffe("frontend", "client-sa"), root);
  auto server = make_server_context(server_cert);
  auto client = make_client_context(client_cert);
  REQUIRE(server);
  REQUIRE(client);
  auto out = run(handshake_pair(*server, (*client)->new_ssl({server_cert->identity()})));
  CHECK_MESSAGE(out.server, out.server.detail);
  CHECK_MESSAGE(out.client, out.client.detail);
}

TEST_CASE("a client without a certificate is rejected") {
  Mesh mesh;
  auto out = run(handshake_pair(mesh.server(), raw_client_ssl(/*with_alpn=*/true)));
  CHECK(out.server.error == Errc::kNoPeerCertificate);
}

TEST_CASE("a client certificate from another CA is rejected as unknown CA") {
  Mesh mesh;
  TestCa other = TestCa::root("attacker root");
  // Trusts our root (so it accepts the server) but presents an attacker-issued leaf.
  auto foreign = testing::workload(other, spiffe("frontend", "client-sa"), mesh.ca);
  auto ssl = mesh.client(foreign)->new_ssl({mesh.server_cert->identity()});
  auto out = run(handshake_pair(mesh.server(), std::move(ssl)));
  CHECK(out.server.error == Errc::kUnknownCa);
}

TEST_CASE("a client from another trust domain is rejected inbound") {
  Mesh mesh;
  auto foreign = testing::workload(mesh.ca, spiffe("frontend", "client-sa", "other.domain"));
  auto ssl = mesh.client(foreign)->new_ssl({mesh.server_cert->identity()});
  auto out = run(handshake_pair(mesh.server(), std::move(ssl)));
  CHECK(out.server.error == Errc::kTrustDomainMismatch);
}

TEST_CASE("a server whose identity is not expected is rejected outbound") {
  Mesh mesh;
  state::Identity someone_else{"cluster.local", "backend", "other-sa"};
  auto ssl = mesh.client(mesh.client_cert)->new_ssl({someone_else});
  auto out = run(handshake_pair(mesh.server(), std::move(ssl)));
  CHECK(out.client.error == Errc::kIdentityNotExpected);
  CHECK(out.client.detail.find("backend/sa/server-sa") != std::string::npos);
  CHECK_FALSE(out.server);  // it saw the client's alert
}

TEST_CASE("a TLS 1.2-only client is refused unless TLS 1.2 is enabled") {
  Mesh mesh;
  TlsOptions tls12;
  tls12.tls12_enabled = true;
  {
    auto ssl = mesh.client_ssl(tls12);
    SSL_set_max_proto_version(ssl.get(), TLS1_2_VERSION);
    auto out = run(handshake_pair(mesh.server(), std::move(ssl)));
    CHECK(out.server.error == Errc::kProtocolVersion);
    CHECK(out.client.error == Errc::kProtocolVersion);
  }
  {
    auto ssl = mesh.client_ssl(tls12);
    SSL_set_max_proto_version(ssl.get(), TLS1_2_VERSION);
    auto out = run(handshake_pair(mesh.server(tls12), std::move(ssl)));
    REQUIRE_MESSAGE(out.server, out.server.detail);
    REQUIRE_MESSAGE(out.client, out.client.detail);
    CHECK(out.server_version == TLS1_2_VERSION);
    CHECK(out.server_cipher.find("GCM") != std::string::npos);
    CHECK(out.server.peer_identity == mesh.client_cert->identity());
  }
}

TEST_CASE("a client that does not offer ALPN h2 is rejected") {
  Mesh mesh;
  {
    auto ssl = mesh.client_ssl();
    SSL_set_alpn_protos(ssl.get(), nullptr, 0);
    auto out = run(handshake_pair(mesh.server(), std::move(ssl)));
    CHECK(out.server.error == Errc::kAlpnNotH2);
    CHECK_FALSE(out.client);
  }
  {
    static const uint8_t kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    auto ssl = mesh.client_ssl();
    SSL_set_alpn_protos(ssl.get(), kHttp11, sizeof(kHttp11));
    auto out = run(handshake_pair(mesh.server(), std::move(ssl)));
    CHECK(out.server.error == Errc::kAlpnNotH2);
  }
}

TEST_CASE("a silent client hits the server's handshake deadline") {
  Mesh mesh;
  auto server_ctx = mesh.server();
  auto result = run([&]() -> asio::awaitable<std::pair<HandshakeResult, std::chrono::milliseconds>> {
    auto ex = co_await asio::this_coro::executor;
    tcp::acceptor acceptor(ex, {asio::ip::address_v4::loopback(), 0});
    tcp::socket silent(ex);
    co_await silent.async_connect(acceptor.local_endpoint(), asio::use_awaitable);
    TlsStream server = make_stream(co_await acceptor.async_accept(asio::use_awaitable),
                                   server_ctx->new_ssl());
    auto start = std::chrono::steady_clock::now();
    auto r = co_await handshake(server, kServer, 200ms);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    CHECK_FALSE(server.lowest_layer().is_open());
    co_return std::pair{std::move(r), took};
  }());
  CHECK(result.first.error == Errc::kHandshakeTimeout);
  CHECK(result.second >= 190ms);
  CHECK(result.second < 2s);
}

TEST_CASE("a silent server hits the client's handshake deadline") {
  Mesh mesh;
  auto ssl = mesh.client_ssl();
  auto r = run([&]() -> asio::awaitable<HandshakeResult> {
    auto ex = co_await asio::this_coro::executor;
    tcp::acceptor acceptor(ex, {asio::ip::address_v4::loopback(), 0});
    tcp::socket socket(ex);
    co_await socket.async_connect(acceptor.local_endpoint(), asio::use_awaitable);
    tcp::socket silent = co_await acceptor.async_accept(asio::use_awaitable);
    TlsStream client = make_stream(std::move(socket), std::move(ssl));
    co_return co_await handshake(client, kClient, 200ms);
  }());
  CHECK(r.error == Errc::kHandshakeTimeout);
}

TEST_CASE("plaintext HTTP instead of a ClientHello fails the handshake cleanly") {
  Mesh mesh;
  auto server_ctx = mesh.server();
  auto r = run([&]() -> asio::awaitable<HandshakeResult> {
    auto ex = co_await asio::this_coro::executor;
    tcp::acceptor acceptor(ex, {asio::ip::address_v4::loopback(), 0});
    tcp::socket peer(ex);
    co_await peer.async_connect(acceptor.local_endpoint(), asio::use_awaitable);
    TlsStream server = make_stream(co_await acceptor.async_accept(asio::use_awaitable),
                                   server_ctx->new_ssl());
    std::string_view request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    co_await asio::async_write(peer, asio::buffer(request), asio::use_awaitable);
    co_return co_await handshake(server, kServer, 2s);
  }());
  CHECK(r.error == Errc::kHandshakeFailed);
}

TEST_CASE("random bytes instead of a ClientHello never crash and always fail the handshake") {
  Mesh mesh;
  auto server_ctx = mesh.server();
  std::mt19937 rng(20260101);  // fixed seed: failures reproduce
  auto results = run([&]() -> asio::awaitable<std::vector<HandshakeResult>> {
    auto ex = co_await asio::this_coro::executor;
    tcp::acceptor acceptor(ex, {asio::ip::address_v4::loopback(), 0});
    std::vector<HandshakeResult> out;
    for (int i = 0; i < 40; ++i) {
      std::vector<uint8_t> junk(1 + rng() % 1500);
      for (auto& b : junk) b = static_cast<uint8_t>(rng());
      if (i % 2 == 0 && junk.size() >= 5) {
        // A plausible TLS handshake record header in front of the junk.
        junk[0] = 0x16;
        junk[1] = 0x03;
        junk[2] = 0x01;
        junk[3] = static_cast<uint8_t>((junk.size() - 5) >> 8);
        junk[4] = static_cast<uint8_t>(junk.size() - 5);
      }
      tcp::socket peer(ex);
      co_await peer.async_connect(acceptor.local_endpoint(), asio::use_awaitable);
      TlsStream server = make_stream(co_await acceptor.async_accept(asio::use_awaitable),
                                     server_ctx->new_ssl());
      co_await asio::async_write(peer, asio::buffer(junk), asio::use_awaitable);
      peer.shutdown(tcp::socket::shutdown_send);
      out.push_back(co_await handshake(server, kServer, 2s));
    }
    co_return out;
  }());
  REQUIRE(results.size() == 40);
  for (const auto& r : results) {
    CHECK(r.error);
    CHECK(r.error != Errc::kHandshakeTimeout);
  }
}

TEST_CASE("an expired server certificate is rejected by the client") {
  Mesh mesh;
  TlsOptions later;
  later.clock = [] { return std::chrono::system_clock::now() + 48h; };
  auto ssl = mesh.client(mesh.client_cert, later)->new_ssl({mesh.server_cert->identity()});
  auto out = run(handshake_pair(mesh.server(), std::move(ssl)));
  CHECK(out.client.error == Errc::kCertificateExpired);
}

// --- the verified-chain cache: a repeated chain skips verification, never the rules ---

TEST_CASE("a client reconnecting with the same certificate is accepted again") {
  Mesh mesh;
  auto server = mesh.server();
  for (int i = 0; i < 3; ++i) {
    auto out = run(handshake_pair(server, mesh.client_ssl()));
    REQUIRE_MESSAGE(out.server, out.server.detail);
    CHECK(out.server.peer_identity == mesh.client_cert->identity());
  }
}

TEST_CASE("a cached server chain is still checked against each connection's expected identity") {
  Mesh mesh;
  auto server = mesh.server();
  auto client = mesh.client(mesh.client_cert);
  auto first = run(handshake_pair(server, client->new_ssl({mesh.server_cert->identity()})));
  REQUIRE_MESSAGE(first.client, first.client.detail);
  state::Identity someone_else{"cluster.local", "backend", "other-sa"};
  auto second = run(handshake_pair(server, client->new_ssl({someone_else})));
  CHECK(second.client.error == Errc::kIdentityNotExpected);
}

TEST_CASE("a cached client chain is rejected once its certificate has expired") {
  Mesh mesh;
  auto now = std::make_shared<TimePoint>(std::chrono::system_clock::now());
  TlsOptions options;
  options.clock = [now] { return *now; };
  auto server = mesh.server(options);
  auto first = run(handshake_pair(server, mesh.client_ssl()));
  REQUIRE_MESSAGE(first.server, first.server.detail);
  *now = mesh.client_cert->not_after() + 1h;
  auto second = run(handshake_pair(server, mesh.client_ssl()));
  CHECK(second.server.error == Errc::kCertificateExpired);
}

TEST_CASE("a cached chain does not let a client from another trust domain in") {
  Mesh mesh;
  auto server = mesh.server();
  auto foreign = testing::workload(mesh.ca, spiffe("frontend", "client-sa", "other.domain"));
  for (int i = 0; i < 2; ++i) {
    auto ssl = mesh.client(foreign)->new_ssl({mesh.server_cert->identity()});
    auto out = run(handshake_pair(server, std::move(ssl)));
    CHECK(out.server.error == Errc::kTrustDomainMismatch);
  }
}

// --- interop with the openssl CLI (OpenSSL 3), a peer we did not write ---

struct Command {
  int status = -1;
  std::string output;
};

Command run_command(const std::string& command) {
  Command out;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.output.append(buf.data(), n);
  int status = ::pclose(pipe);
  out.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

bool have_openssl_cli() { return run_command("openssl version").status == 0; }

struct SClientRun {
  HandshakeResult server;
  Command client;
};

// Serves one handshake on a worker thread while `openssl s_client` connects.
SClientRun s_client(std::shared_ptr<const ServerContext> server_ctx, const std::string& args) {
  asio::io_context io;
  tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
  uint16_t port = acceptor.local_endpoint().port();
  HandshakeResult server_result;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        TlsStream server = make_stream(co_await acceptor.async_accept(asio::use_awaitable),
                                       server_ctx->new_ssl());
        server_result = co_await handshake(server, kServer, 5s);
        if (!server_result) co_return;
        // Stay up until s_client closes, so it sees close_notify, not a bare EOF.
        std::array<char, 256> buf;
        for (;;) {
          auto [ec, n] = co_await server.async_read_some(
              asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
          if (ec) break;
        }
        co_await server.async_shutdown(asio::as_tuple(asio::use_awaitable));
      },
      asio::detached);
  std::thread worker([&] { io.run_for(15s); });
  Command client = run_command(fmt::format(
      "timeout 10 openssl s_client -connect 127.0.0.1:{} {} </dev/null", port, args));
  worker.join();
  return {std::move(server_result), std::move(client)};
}

TEST_CASE("openssl s_client with a proper certificate and ALPN h2 is accepted") {
  if (!have_openssl_cli()) {
    MESSAGE("openssl CLI not installed; skipping");
    return;
  }
  Mesh mesh;
  testing::TempDir dir;
  auto cert = dir.write("cert.pem", mesh.client_cert->chain_pem());
  auto key = dir.write("key.pem", mesh.client_cert->key_pem());
  auto roots = dir.write("roots.pem", mesh.client_cert->roots_pem());
  std::string creds = fmt::format("-cert {} -key {} -CAfile {} -verify_return_error",
                                  cert.string(), key.string(), roots.string());

  auto ok = s_client(mesh.server(), creds + " -alpn h2");
  CHECK_MESSAGE(ok.server, ok.server.detail);
  CHECK(ok.server.peer_identity == mesh.client_cert->identity());
  CHECK_MESSAGE(ok.client.status == 0, ok.client.output);
  CHECK(ok.client.output.find("ALPN protocol: h2") != std::string::npos);
  CHECK(ok.client.output.find("TLSv1.3") != std::string::npos);
  CHECK(ok.client.output.find("Verify return code: 0 (ok)") != std::string::npos);

  SUBCASE("but not without a certificate") {
    auto r = s_client(mesh.server(), fmt::format("-CAfile {} -alpn h2", roots.string()));
    CHECK(r.server.error == Errc::kNoPeerCertificate);
  }
  SUBCASE("nor with a certificate from another CA") {
    TestCa other = TestCa::root("attacker root");
    auto foreign = testing::workload(other, spiffe("frontend", "client-sa"), mesh.ca);
    auto fcert = dir.write("foreign-cert.pem", foreign->chain_pem());
    auto fkey = dir.write("foreign-key.pem", foreign->key_pem());
    auto r = s_client(mesh.server(), fmt::format("-cert {} -key {} -CAfile {} -alpn h2",
                                                 fcert.string(), fkey.string(), roots.string()));
    CHECK(r.server.error == Errc::kUnknownCa);
  }
  SUBCASE("nor over TLS 1.2") {
    auto r = s_client(mesh.server(), creds + " -alpn h2 -tls1_2");
    CHECK(r.server.error == Errc::kProtocolVersion);
    CHECK(r.client.status != 0);
  }
  SUBCASE("but over TLS 1.2 when it is enabled") {
    TlsOptions tls12;
    tls12.tls12_enabled = true;
    auto r = s_client(mesh.server(tls12), creds + " -alpn h2 -tls1_2");
    CHECK_MESSAGE(r.server, r.server.detail);
    CHECK(r.client.output.find("TLSv1.2") != std::string::npos);
  }
  SUBCASE("nor without ALPN h2") {
    auto r = s_client(mesh.server(), creds);
    CHECK(r.server.error == Errc::kAlpnNotH2);
    CHECK(r.client.status != 0);
    auto r2 = s_client(mesh.server(), creds + " -alpn http/1.1");
    CHECK(r2.server.error == Errc::kAlpnNotH2);
  }
  SUBCASE("nor with ChaCha20 as the only TLS 1.3 suite") {
    auto r = s_client(mesh.server(), creds + " -alpn h2 -ciphersuites TLS_CHACHA20_POLY1305_SHA256");
    CHECK(r.server.error == Errc::kCipherNotAllowed);
  }
}

}  // namespace
}  // namespace ztunnel::tls
