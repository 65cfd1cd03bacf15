// Asio integration: an ssl::stream built from our SSL, and a handshake raced against a deadline.
//
// Cancellation: the handshake is raced against a steady_timer with Asio's
// `||` operator; when the deadline wins, the handshake operation is cancelled
// and the socket closed. Cancelling the awaiting coroutine (e.g. a drain)
// cancels both. On any failure the TCP socket is closed: a half-handshaken
// TLS connection is never reused.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <string>

#include "state/identity.h"
#include "tls/errors.h"

namespace ztunnel::tls {

using TlsStream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;

// The stream takes ownership of `ssl` (from ServerContext::new_ssl or
// ClientContext::new_ssl); Boost 1.81 Asio builds its engine on an existing SSL.
TlsStream make_stream(boost::asio::ip::tcp::socket socket, bssl::UniquePtr<SSL> ssl);

struct HandshakeResult {
  boost::system::error_code error;  // empty on success, else a tls::Errc
  std::string detail;               // the reason in words, for logs
  state::Identity peer_identity;    // the verified peer (on success)
  std::string alpn;                 // always "h2" on success

  explicit operator bool() const { return !error; }
};

// Runs the handshake of `stream` (whose SSL came from one of our contexts)
// until it completes or `deadline` elapses. `stream` must outlive the
// awaited call, as it does when the caller co_awaits directly.
//
// TLS 1.3 caveat for the client side: the client's handshake completes when
// it has sent its Finished, before the server has judged the client
// certificate. A server-side rejection (another CA, another trust domain)
// therefore reaches the client as an alert on its first read, not here.
boost::asio::awaitable<HandshakeResult> handshake(
    TlsStream& stream, boost::asio::ssl::stream_base::handshake_type type,
    std::chrono::steady_clock::duration deadline);

// Maps a failed handshake to our reasons: our own rejection recorded on the
// SSL first, then BoringSSL's error (protocol version, missing certificate,
// peer alerts), then transport errors. Exposed for callers driving SSL* directly.
HandshakeResult classify_failure(const SSL* ssl, const boost::system::error_code& ec);

// The result of a handshake that did not finish within `deadline`.
HandshakeResult handshake_timed_out(std::chrono::steady_clock::duration deadline);

// The result of a handshake BoringSSL reports complete: the verified peer and
// ALPN h2, or a failure (fail closed) if either is missing.
HandshakeResult completed_handshake(const SSL* ssl);

}  // namespace ztunnel::tls
