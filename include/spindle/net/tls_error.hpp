// The errors of TLS connections: TlsError and its codes (TlsErrc).
#pragma once

#include <stdexcept>
#include <string>
#include <system_error>

namespace spindle {

// What went wrong in a TLS connection, as an error code of tls_category().
// Compare with `e.code() == spindle::TlsErrc::certificate`.
enum class TlsErrc {
  // The configuration was refused: a certificate, key or CA file that does
  // not load, a key that does not match its certificate, a bad ALPN list.
  config = 1,
  // The peer's certificate failed verification: unknown CA, expired, a
  // host name it does not cover. TlsError::verify_result() says which.
  certificate,
  // The peer broke the protocol or sent something that is not TLS, or
  // refused us with an alert (it did not accept our certificate, say).
  protocol,
  // The peer closed the connection before the handshake finished.
  closed_in_handshake,
  // The peer closed the connection without a close_notify: the data may
  // have been cut short (a truncation attack, or a peer that crashed).
  truncated,
  // The stream cannot be used any more: an earlier write was interrupted
  // after part of a record went out, or the connection already failed.
  unusable,
};

// The error category of TlsErrc ("tls").
const std::error_category& tls_category() noexcept;
std::error_code make_error_code(TlsErrc e) noexcept;

// Thrown by TlsContext and TlsStream. what() names the operation and the
// peer, then OpenSSL's reason, and for a certificate the verifier's reason:
//
//   TLS handshake with example.test: certificate verify failed
//   (unable to get local issuer certificate)
//
// Errors of the underlying stream (a reset connection, a deadline) are not
// wrapped: they reach the caller as that stream threw them.
class TlsError : public std::system_error {
 public:
  TlsError(TlsErrc code, const std::string& message, long verify_result = 0);
  const char* what() const noexcept override { return message_.what(); }
  // The X509_V_ERR_* code of a failed certificate verification
  // (X509_V_ERR_CERT_HAS_EXPIRED, X509_V_ERR_HOSTNAME_MISMATCH ...), else 0.
  long verify_result() const noexcept { return verify_result_; }

 private:
  std::runtime_error message_;  // the whole text, shared when copied
  long verify_result_ = 0;
};

}  // namespace spindle

template <>
struct std::is_error_code_enum<spindle::TlsErrc> : std::true_type {};
