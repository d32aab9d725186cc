// Certificates for the TLS tests, made with OpenSSL's C API: a test CA, and
// server certificates it signs (good, expired, for another name), plus a
// second CA nobody trusts. EC P-256 keys: quick to make.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

namespace tls_test {

struct KeyFree {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* x) const noexcept { X509_free(x); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;

inline void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test PKI: ") + what);
}

// A certificate and its key, as objects and as PEM text.
struct Identity {
  Key key;
  Cert cert;
  std::string cert_pem;
  std::string key_pem;
};

inline std::string to_pem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  check(PEM_write_bio_X509(bio, cert) == 1, "PEM_write_bio_X509");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return pem;
}

inline std::string to_pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  check(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return pem;
}

inline void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  check(ext != nullptr, "X509V3_EXT_conf_nid");
  check(X509_add_ext(cert, ext, -1) == 1, "X509_add_ext");
  X509_EXTENSION_free(ext);
}

struct CertSpec {
  std::string common_name;
  std::string alt_names;  // "DNS:example.test,IP:127.0.0.1"; empty for a CA
  bool ca = false;
  long valid_from = -3600;  // seconds from now
  long valid_until = 86400;
};

// Makes a certificate for `spec`, signed by `issuer` (self-signed if null).
inline Identity make_identity(const CertSpec& spec, const Identity* issuer) {
  static long serial = 1;
  Identity id;
  id.key.reset(EVP_EC_gen("P-256"));
  check(id.key != nullptr, "EVP_EC_gen");
  id.cert.reset(X509_new());
  X509* x = id.cert.get();
  check(X509_set_version(x, 2) == 1, "X509_set_version");
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x), spec.valid_from);
  X509_gmtime_adj(X509_getm_notAfter(x), spec.valid_until);
  X509_set_pubkey(x, id.key.get());
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1,
                             -1, 0);
  X509* issuer_cert = issuer != nullptr ? issuer->cert.get() : x;
  EVP_PKEY* issuer_key = issuer != nullptr ? issuer->key.get() : id.key.get();
  X509_set_issuer_name(x, X509_get_subject_name(issuer_cert));
  add_extension(x, issuer_cert, NID_basic_constraints,
                spec.ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add_extension(x, issuer_cert, NID_key_usage,
                spec.ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  add_extension(x, issuer_cert, NID_subject_key_identifier, "hash");
  if (!spec.alt_names.empty()) {
    add_extension(x, issuer_cert, NID_subject_alt_name, spec.alt_names.c_str());
    add_extension(x, issuer_cert, NID_ext_key_usage, "serverAuth,clientAuth");
  }
  check(X509_sign(x, issuer_key, EVP_sha256()) > 0, "X509_sign");
  id.cert_pem = to_pem(x);
  id.key_pem = to_pem(id.key.get());
  return id;
}

// Everything the tests need, made once per test program.
struct Pki {
  Identity ca = make_identity({.common_name = "spindle test CA", .ca = true}, nullptr);
  Identity server = make_identity(
      {.common_name = "example.test", .alt_names = "DNS:example.test,DNS:localhost,IP:127.0.0.1"},
      &ca);
  Identity other = make_identity({.common_name = "other.test", .alt_names = "DNS:other.test"}, &ca);
  Identity expired = make_identity({.common_name = "example.test",
                                    .alt_names = "DNS:example.test",
                                    .valid_from = -3 * 86400,
                                    .valid_until = -86400},
                                   &ca);
  Identity client =
      make_identity({.common_name = "client.test", .alt_names = "DNS:client.test"}, &ca);
  Identity rogue_ca = make_identity({.common_name = "rogue CA", .ca = true}, nullptr);
  Identity rogue =
      make_identity({.common_name = "example.test", .alt_names = "DNS:example.test"}, &rogue_ca);
};

inline const Pki& pki() {
  static const Pki instance;
  return instance;
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  check(static_cast<bool>(out), "write a PEM file");
}

}  // namespace tls_test
