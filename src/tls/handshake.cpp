// The deadline-bounded TLS handshake over Asio and the mapping of its failures.
#include "tls/handshake.h"

#include <fmt/format.h>
#include <openssl/err.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "tls/context.h"

namespace ztunnel::tls {
namespace {

namespace asio = boost::asio;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

HandshakeResult failed(Errc reason, std::string detail) {
  HandshakeResult r;
  r.error = make_error_code(reason);
  r.detail = std::move(detail);
  return r;
}

}  // namespace

TlsStream make_stream(asio::ip::tcp::socket socket, bssl::UniquePtr<SSL> ssl) {
  return TlsStream(std::move(socket), ssl.release());
}

HandshakeResult classify_failure(const SSL* ssl, const boost::system::error_code& ec) {
  if (ssl != nullptr) {
    if (const Rejection* r = rejection(ssl)) return failed(r->reason, r->detail);
  }
  if (ec.category() == asio::error::get_ssl_category()) {
    auto code = static_cast<uint32_t>(ec.value());
    if (ERR_GET_LIB(code) == ERR_LIB_SSL) {
      switch (ERR_GET_REASON(code)) {
        case SSL_R_UNSUPPORTED_PROTOCOL:
        case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
          return failed(Errc::kProtocolVersion, ec.message());
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
          return failed(Errc::kNoPeerCertificate, "peer sent no certificate");
        case SSL_R_NO_APPLICATION_PROTOCOL:
        case SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL:
          return failed(Errc::kAlpnNotH2, ec.message());
        case SSL_R_NO_SHARED_CIPHER:
          return failed(Errc::kCipherNotAllowed, ec.message());
        default:
          break;
      }
    }
    return failed(Errc::kHandshakeFailed, ec.message());
  }
  if (ec == asio::ssl::error::stream_truncated || ec == asio::error::eof) {
    return failed(Errc::kHandshakeFailed, "peer closed the connection during the handshake");
  }
  return failed(Errc::kHandshakeFailed, ec.message());
}

HandshakeResult handshake_timed_out(std::chrono::steady_clock::duration deadline) {
  return failed(Errc::kHandshakeTimeout,
                fmt::format("no TLS handshake within {} ms",
                            std::chrono::duration_cast<std::chrono::milliseconds>(deadline).count()));
}

HandshakeResult completed_handshake(const SSL* ssl) {
  // The verify callback stored the identity; if it is missing, fail closed.
  const state::Identity* peer = peer_identity(ssl);
  std::string_view alpn = selected_alpn(ssl);
  if (peer == nullptr) return failed(Errc::kInternal, "handshake finished without a verified peer");
  if (alpn != kAlpnH2) return failed(Errc::kAlpnNotH2, "h2 was not negotiated");
  HandshakeResult r;
  r.peer_identity = *peer;
  r.alpn = std::string(alpn);
  return r;
}

asio::awaitable<HandshakeResult> handshake(TlsStream& stream,
                                           asio::ssl::stream_base::handshake_type type,
                                           std::chrono::steady_clock::duration deadline) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(deadline);
  auto outcome =
      co_await (stream.async_handshake(type, use_nothrow) || timer.async_wait(use_nothrow));

  boost::system::error_code ignored;
  if (outcome.index() == 1) {
    stream.lowest_layer().close(ignored);
    co_return handshake_timed_out(deadline);
  }
  auto [ec] = std::get<0>(outcome);
  SSL* ssl = stream.native_handle();
  if (ec) {
    HandshakeResult r = classify_failure(ssl, ec);
    ERR_clear_error();
    stream.lowest_layer().close(ignored);
    co_return r;
  }
  HandshakeResult r = completed_handshake(ssl);
  if (!r) stream.lowest_layer().close(ignored);
  co_return r;
}

}  // namespace ztunnel::tls
