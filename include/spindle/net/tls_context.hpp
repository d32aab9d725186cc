// TlsContext: the configuration TLS connections share (OpenSSL's SSL_CTX).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spindle/net/tls_error.hpp"

namespace spindle {

namespace detail {
struct TlsContextState;
}

// The oldest protocol version a context accepts.
enum class TlsVersion { tls1_2, tls1_3 };

// What TLS connections made from it share: their side (client or server),
// certificate and key, the CAs that verify the peer, ALPN protocols and the
// server's certificate choice by SNI. Copies share one OpenSSL SSL_CTX.
//
// Secure by default: a client context verifies the server's certificate
// against the system's CAs (add others with ca_file / ca_pem) and
// TlsStream::connect checks that it names the host; TLS 1.2 is the oldest
// version; renegotiation is refused.
//
// The setters throw TlsError (TlsErrc::config) naming what did not load.
// They read files with plain blocking calls: configure a context at start
// up, before it serves connections. Once connections use a context,
// change it no more; using it from many threads to make connections is
// safe.
class TlsContext {
 public:
  // A client context: verifies the server, trusts the system's CAs.
  static TlsContext client();
  // A server context: needs certificate_file or certificate_pem. Does not
  // ask clients for a certificate unless verify_peer(true).
  static TlsContext server();

  // The certificate (a PEM chain: the leaf first, then intermediates) and
  // its private key (PEM), from files or from memory. Checks that they match.
  TlsContext& certificate_file(const std::filesystem::path& chain,
                               const std::filesystem::path& key);
  TlsContext& certificate_pem(std::string_view chain, std::string_view key);

  // CAs that verify the peer, in addition to those already trusted: a PEM
  // file of one or more certificates, a hashed directory (c_rehash), or
  // PEM text. ca_file / ca_dir / ca_pem do not remove the system's CAs;
  // no_default_ca() does, before or after.
  TlsContext& ca_file(const std::filesystem::path& file);
  TlsContext& ca_dir(const std::filesystem::path& dir);
  TlsContext& ca_pem(std::string_view pem);
  TlsContext& no_default_ca();

  // Whether the peer's certificate is verified. Client: on by default;
  // turning it off accepts any server (tests only). Server: off by default;
  // on requires a client certificate signed by a trusted CA.
  TlsContext& verify_peer(bool on);

  // ALPN, most preferred first ("h2", "http/1.1"). A client offers them; a
  // server picks the first of its own that the client offers, and without
  // a match goes on without ALPN (TlsStream::alpn() is then empty). Each
  // name is 1 to 255 bytes.
  TlsContext& alpn(std::vector<std::string> protocols);

  // Server: chooses the context (its certificate) for the name a client
  // asks for by SNI. `choose` runs in the handshake, on the accepting
  // fiber, and must not suspend; returning nullptr keeps this context.
  // The connection keeps the chosen context alive. Its certificate and ALPN
  // list apply; verification and the other settings stay this context's.
  TlsContext& on_server_name(std::function<const TlsContext*(std::string_view)> choose);

  TlsContext& min_version(TlsVersion version);

  // Reading a connection that ends without close_notify returns end of
  // stream instead of throwing TlsErrc::truncated. For protocols that
  // frame their own messages (HTTP with Content-Length) and peers that
  // close abruptly; off by default.
  TlsContext& allow_truncation(bool on);

  bool is_server() const noexcept;
  // The OpenSSL SSL_CTX*, for settings spindle does not wrap.
  void* native_handle() const noexcept;

  const std::shared_ptr<detail::TlsContextState>& state() const noexcept { return state_; }

 private:
  explicit TlsContext(bool server);
  std::shared_ptr<detail::TlsContextState> state_;
};

}  // namespace spindle
