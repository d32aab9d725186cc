// Helpers shared by the TLS tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>

#include "io/io_test_util.hpp"
#include "net/tls_test_pki.hpp"
#include "spindle/spindle.hpp"

namespace tls_test {

inline spindle::TlsContext server_context(const Identity& id = pki().server) {
  spindle::TlsContext context = spindle::TlsContext::server();
  context.certificate_pem(id.cert_pem, id.key_pem);
  return context;
}

inline spindle::TlsContext client_context() {
  spindle::TlsContext context = spindle::TlsContext::client();
  context.ca_pem(pki().ca.cert_pem);
  return context;
}

// Reads until end of stream (at most `limit` bytes).
template <class S>
std::string read_all(S& stream, std::size_t limit = 64 << 20) {
  std::string out;
  std::byte buffer[16384];
  while (out.size() < limit) {
    std::size_t n = stream.read_some(buffer);
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(buffer), n);
  }
  return out;
}

// Deterministic bytes and an order-sensitive checksum (FNV-1a).
inline std::string pattern(std::size_t size, std::uint32_t seed) {
  std::string s(size, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (char& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
}

struct Checksum {
  std::uint64_t hash = 1469598103934665603ull;
  std::size_t bytes = 0;
  void add(std::span<const std::byte> data) {
    for (std::byte b : data) hash = (hash ^ static_cast<std::uint8_t>(b)) * 1099511628211ull;
    bytes += data.size();
  }
  bool operator==(const Checksum&) const = default;
};

inline Checksum checksum(std::string_view s) {
  Checksum c;
  c.add(std::as_bytes(std::span(s.data(), s.size())));
  return c;
}

}  // namespace tls_test
