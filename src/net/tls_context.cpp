#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <climits>
#include <memory>
#include <system_error>
#include <utility>

#include "net/tls_openssl.hpp"
#include "spindle/net/tls_context.hpp"

namespace spindle {

namespace detail {

std::string take_openssl_error(std::string_view fallback) {
  unsigned long first = ERR_get_error();
  ERR_clear_error();
  if (first == 0) return std::string(fallback);
  if (ERR_SYSTEM_ERROR(first)) return std::system_category().message(ERR_GET_REASON(first));
  const char* reason = ERR_reason_error_string(first);
  if (reason != nullptr) return reason;
  char buffer[256];
  ERR_error_string_n(first, buffer, sizeof buffer);
  return buffer;
}

}  // namespace detail

namespace {

using detail::TlsContextState;

[[noreturn]] void throw_config(const std::string& what) {
  throw TlsError(TlsErrc::config, "TLS " + what + ": " + detail::take_openssl_error());
}

struct BioFree {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const noexcept { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
using UniqueBio = std::unique_ptr<BIO, BioFree>;
using UniqueX509 = std::unique_ptr<X509, X509Free>;

UniqueBio memory_bio(std::string_view pem) {
  if (pem.size() > static_cast<std::size_t>(INT_MAX)) {
    throw TlsError(TlsErrc::config, "TLS PEM text: larger than 2 GiB");
  }
  UniqueBio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) throw std::bad_alloc();
  return bio;
}

// The server's ALPN choice: the first of its protocols the client offers;
// none (and no ALPN) when nothing matches or the server has no list.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_length,
                const unsigned char* offered, unsigned offered_length, void* arg) {
  const auto* state = static_cast<const TlsContextState*>(arg);
  if (state->alpn_wire.empty()) return SSL_TLSEXT_ERR_NOACK;
  unsigned char* chosen = nullptr;
  unsigned char chosen_length = 0;
  if (SSL_select_next_proto(&chosen, &chosen_length,
                            reinterpret_cast<const unsigned char*>(state->alpn_wire.data()),
                            static_cast<unsigned>(state->alpn_wire.size()), offered,
                            offered_length) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = chosen;
  *out_length = chosen_length;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

// Defined in tls_stream.cpp: switches a server connection to the context
// its SNI callback chose (and keeps that context alive with it).
namespace detail {
int tls_choose_by_name(SSL* ssl, int* alert, void* arg);
}

TlsContext::TlsContext(bool server) : state_(std::make_shared<TlsContextState>()) {
  state_->server = server;
  state_->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (state_->ctx == nullptr) throw_config(server ? "server context" : "client context");
  SSL_CTX* ctx = state_->ctx;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (server) {
    // No session resumption is offered, so no tickets: a client that never
    // reads would otherwise hold them unread, and its close would reset
    // the connection.
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, state_.get());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  } else {
    state_->verify = true;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) throw_config("system CA paths");
  }
}

TlsContext TlsContext::client() {
  return TlsContext(false);
}
TlsContext TlsContext::server() {
  return TlsContext(true);
}

TlsContext& TlsContext::certificate_file(const std::filesystem::path& chain,
                                         const std::filesystem::path& key) {
  SSL_CTX* ctx = state_->ctx;
  if (SSL_CTX_use_certificate_chain_file(ctx, chain.c_str()) != 1) {
    throw_config("certificate chain " + chain.string());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    throw_config("private key " + key.string());
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    throw_config("private key " + key.string() + " for " + chain.string());
  }
  return *this;
}

TlsContext& TlsContext::certificate_pem(std::string_view chain, std::string_view key) {
  SSL_CTX* ctx = state_->ctx;
  UniqueBio chain_bio = memory_bio(chain);
  UniqueX509 leaf(PEM_read_bio_X509(chain_bio.get(), nullptr, nullptr, nullptr));
  if (!leaf) throw_config("certificate PEM");
  if (SSL_CTX_use_certificate(ctx, leaf.get()) != 1) throw_config("certificate PEM");
  SSL_CTX_clear_chain_certs(ctx);
  while (UniqueX509 next{PEM_read_bio_X509(chain_bio.get(), nullptr, nullptr, nullptr)}) {
    if (SSL_CTX_add1_chain_cert(ctx, next.get()) != 1) throw_config("certificate chain PEM");
  }
  ERR_clear_error();  // the end of the chain reads as "no start line"
  UniqueBio key_bio = memory_bio(key);
  std::unique_ptr<EVP_PKEY, KeyFree> pkey(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!pkey) throw_config("private key PEM");
  if (SSL_CTX_use_PrivateKey(ctx, pkey.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    throw_config("private key PEM");
  }
  return *this;
}

TlsContext& TlsContext::ca_file(const std::filesystem::path& file) {
  if (SSL_CTX_load_verify_file(state_->ctx, file.c_str()) != 1) {
    throw_config("CA file " + file.string());
  }
  return *this;
}

TlsContext& TlsContext::ca_dir(const std::filesystem::path& dir) {
  if (SSL_CTX_load_verify_dir(state_->ctx, dir.c_str()) != 1) {
    throw_config("CA directory " + dir.string());
  }
  return *this;
}

TlsContext& TlsContext::ca_pem(std::string_view pem) {
  UniqueBio bio = memory_bio(pem);
  X509_STORE* store = SSL_CTX_get_cert_store(state_->ctx);
  int count = 0;
  while (UniqueX509 cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
    if (X509_STORE_add_cert(store, cert.get()) != 1) throw_config("CA PEM");
    ++count;
  }
  if (count == 0) throw_config("CA PEM");
  ERR_clear_error();
  return *this;
}

TlsContext& TlsContext::no_default_ca() {
  X509_STORE* fresh = X509_STORE_new();
  if (fresh == nullptr) throw std::bad_alloc();
  SSL_CTX_set_cert_store(state_->ctx, fresh);
  return *this;
}

TlsContext& TlsContext::verify_peer(bool on) {
  state_->verify = on;
  int mode = SSL_VERIFY_NONE;
  if (on)
    mode = state_->server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER;
  SSL_CTX_set_verify(state_->ctx, mode, nullptr);
  return *this;
}

TlsContext& TlsContext::alpn(std::vector<std::string> protocols) {
  std::string wire;
  for (const std::string& p : protocols) {
    if (p.empty() || p.size() > 255) {
      throw TlsError(TlsErrc::config, "TLS ALPN: a protocol name must be 1 to 255 bytes, not " +
                                          std::to_string(p.size()));
    }
    wire += static_cast<char>(p.size());
    wire += p;
  }
  if (!state_->server &&
      SSL_CTX_set_alpn_protos(state_->ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                              static_cast<unsigned>(wire.size())) != 0) {
    throw_config("ALPN");
  }
  state_->alpn_wire = std::move(wire);
  return *this;
}

TlsContext& TlsContext::on_server_name(std::function<const TlsContext*(std::string_view)> choose) {
  if (!state_->server) {
    throw TlsError(TlsErrc::config, "TLS on_server_name: only a server context chooses by SNI");
  }
  state_->choose_by_name = std::move(choose);
  SSL_CTX_set_tlsext_servername_callback(state_->ctx, detail::tls_choose_by_name);
  SSL_CTX_set_tlsext_servername_arg(state_->ctx, state_.get());
  return *this;
}

TlsContext& TlsContext::min_version(TlsVersion version) {
  SSL_CTX_set_min_proto_version(state_->ctx,
                                version == TlsVersion::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
  return *this;
}

TlsContext& TlsContext::allow_truncation(bool on) {
  state_->allow_truncation = on;
  if (on) {
    SSL_CTX_set_options(state_->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  } else {
    SSL_CTX_clear_options(state_->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  }
  return *this;
}

bool TlsContext::is_server() const noexcept {
  return state_->server;
}
void* TlsContext::native_handle() const noexcept {
  return state_->ctx;
}

}  // namespace spindle
