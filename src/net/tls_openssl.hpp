// What the TLS sources share: the state behind a TlsContext and the reading
// of OpenSSL's error queue.
#pragma once

#include <openssl/ssl.h>

#include <functional>
#include <string>
#include <string_view>

#include "spindle/net/tls_context.hpp"

namespace spindle::detail {

struct TlsContextState {
  SSL_CTX* ctx = nullptr;
  bool server = false;
  bool verify = false;
  bool allow_truncation = false;
  // The ALPN list in wire format (length-prefixed names).
  std::string alpn_wire;
  std::function<const TlsContext*(std::string_view)> choose_by_name;

  TlsContextState() = default;
  TlsContextState(const TlsContextState&) = delete;
  TlsContextState& operator=(const TlsContextState&) = delete;
  ~TlsContextState() { SSL_CTX_free(ctx); }
};

// The reason of the oldest error on this thread's OpenSSL error queue
// ("certificate verify failed"), or `fallback` if it is empty. Empties the
// queue, so that the next operation on this thread starts clean.
std::string take_openssl_error(std::string_view fallback = "unknown error");

}  // namespace spindle::detail
