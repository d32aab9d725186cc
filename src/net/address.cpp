#include "spindle/net/address.hpp"

#include <arpa/inet.h>
#include <net/if.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <system_error>

namespace spindle {
namespace {

// The most a sun_path holds with its terminating NUL (paths) or its leading
// NUL (abstract names).
constexpr std::size_t kUnixNameMax = sizeof(sockaddr_un::sun_path) - 1;

[[noreturn]] void bad(std::string_view text, std::string_view why, int error = EINVAL) {
  std::string what = "parse socket address \"";
  what.append(text.substr(0, 200));
  if (text.size() > 200) what += "...";
  what += "\": ";
  what += why;
  throw std::system_error(error, std::system_category(), what);
}

// The part after "host:" or "]:". Decimal, 0..65535, nothing else.
const char* parse_port(std::string_view digits, std::uint16_t& port) noexcept {
  if (digits.empty()) return "missing port after ':'";
  unsigned value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size()) return "port is not a number";
  if (value > 65535) return "port out of range (0-65535)";
  port = static_cast<std::uint16_t>(value);
  return nullptr;
}

// Parses; returns nullptr on success or what is wrong.
const char* parse_into(std::string_view text, SocketAddress& out) {
  if (text.empty()) return "empty";
  if (text.front() == '@') {
    if (text.size() - 1 > kUnixNameMax) return "abstract name longer than 107 bytes";
    out = SocketAddress::unix_abstract(text.substr(1));
    return nullptr;
  }
  if (text.find('/') != std::string_view::npos && text.front() != '[') {
    if (text.size() > kUnixNameMax) return "Unix socket path longer than 107 bytes";
    if (text.find('\0') != std::string_view::npos) return "Unix socket path contains a NUL";
    out = SocketAddress::unix_path(text);
    return nullptr;
  }
  std::uint16_t port = 0;
  if (text.front() == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos) return "missing ']' after an IPv6 address";
    std::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':') return "missing :port after ']'";
    if (const char* why = parse_port(rest.substr(1), port)) return why;
    std::string host(text.substr(1, close - 1));
    std::uint32_t scope = 0;
    if (std::size_t pct = host.find('%'); pct != std::string::npos) {
      std::string zone = host.substr(pct + 1);
      host.resize(pct);
      if (zone.empty()) return "empty IPv6 scope after '%'";
      unsigned numeric = 0;
      auto [end, ec] = std::from_chars(zone.data(), zone.data() + zone.size(), numeric);
      if (ec == std::errc() && end == zone.data() + zone.size()) {
        scope = numeric;
      } else {
        scope = ::if_nametoindex(zone.c_str());
        if (scope == 0) return "unknown network interface in the IPv6 scope";
      }
    }
    std::array<std::uint8_t, 16> octets{};
    if (::inet_pton(AF_INET6, host.c_str(), octets.data()) != 1) return "not an IPv6 address";
    out = SocketAddress::ipv6(octets, port, scope);
    return nullptr;
  }
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return "missing :port";
  if (text.find(':') != colon) return "an IPv6 address needs brackets: [addr]:port";
  if (const char* why = parse_port(text.substr(colon + 1), port)) return why;
  std::string host(text.substr(0, colon));
  std::array<std::uint8_t, 4> octets{};
  // inet_pton takes only the dotted-quad form (no "1.2.3", no octal).
  if (::inet_pton(AF_INET, host.c_str(), octets.data()) != 1) return "not an IPv4 address";
  out = SocketAddress::ipv4(octets, port);
  return nullptr;
}

}  // namespace

SocketAddress SocketAddress::parse(std::string_view text) {
  SocketAddress a;
  if (const char* why = parse_into(text, a)) bad(text, why);
  return a;
}

std::optional<SocketAddress> SocketAddress::try_parse(std::string_view text) noexcept {
  SocketAddress a;
  try {
    if (parse_into(text, a) != nullptr) return std::nullopt;
  } catch (...) {  // std::bad_alloc from the temporary strings
    return std::nullopt;
  }
  return a;
}

SocketAddress SocketAddress::ipv4(std::array<std::uint8_t, 4> octets, std::uint16_t port) noexcept {
  SocketAddress a;
  auto* in = reinterpret_cast<sockaddr_in*>(&a.storage_);
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  std::memcpy(&in->sin_addr, octets.data(), 4);
  a.length_ = sizeof(sockaddr_in);
  return a;
}

SocketAddress SocketAddress::ipv6(const std::array<std::uint8_t, 16>& octets, std::uint16_t port,
                                  std::uint32_t scope_id) noexcept {
  SocketAddress a;
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(port);
  std::memcpy(&in6->sin6_addr, octets.data(), 16);
  in6->sin6_scope_id = scope_id;
  a.length_ = sizeof(sockaddr_in6);
  return a;
}

SocketAddress SocketAddress::loopback_v4(std::uint16_t port) noexcept {
  return ipv4({127, 0, 0, 1}, port);
}
SocketAddress SocketAddress::loopback_v6(std::uint16_t port) noexcept {
  std::array<std::uint8_t, 16> o{};
  o[15] = 1;
  return ipv6(o, port);
}
SocketAddress SocketAddress::any_v4(std::uint16_t port) noexcept {
  return ipv4({0, 0, 0, 0}, port);
}
SocketAddress SocketAddress::any_v6(std::uint16_t port) noexcept {
  return ipv6({}, port);
}

SocketAddress SocketAddress::unix_path(std::string_view path) {
  if (path.empty()) bad(path, "empty Unix socket path");
  if (path.size() > kUnixNameMax) bad(path, "Unix socket path longer than 107 bytes", ENAMETOOLONG);
  if (path.find('\0') != std::string_view::npos) bad(path, "Unix socket path contains a NUL");
  SocketAddress a;
  auto* un = reinterpret_cast<sockaddr_un*>(&a.storage_);
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path.data(), path.size());
  // The terminating NUL counts, as the kernel reports it back.
  a.length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return a;
}

SocketAddress SocketAddress::unix_abstract(std::string_view name) {
  if (name.size() > kUnixNameMax) {
    bad(name, "abstract Unix socket name longer than 107 bytes", ENAMETOOLONG);
  }
  SocketAddress a;
  auto* un = reinterpret_cast<sockaddr_un*>(&a.storage_);
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path + 1, name.data(), name.size());
  a.length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return a;
}

SocketAddress SocketAddress::from(const sockaddr* address, socklen_t length) {
  if (address == nullptr || length > sizeof(sockaddr_storage)) {
    throw std::system_error(EINVAL, std::system_category(),
                            "SocketAddress::from: address length " + std::to_string(length));
  }
  SocketAddress a;
  std::memcpy(&a.storage_, address, length);
  a.length_ = length;
  return a;
}

bool SocketAddress::is_abstract() const noexcept {
  if (!is_unix() || length_ <= offsetof(sockaddr_un, sun_path)) return false;
  return reinterpret_cast<const sockaddr_un*>(&storage_)->sun_path[0] == '\0';
}

std::uint16_t SocketAddress::port() const noexcept {
  if (is_ipv4()) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (is_ipv6()) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

void SocketAddress::set_port(std::uint16_t port) noexcept {
  if (is_ipv4()) reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  if (is_ipv6()) reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
}

std::string_view SocketAddress::unix_name() const noexcept {
  if (!is_unix() || length_ <= offsetof(sockaddr_un, sun_path)) return {};
  const char* p = reinterpret_cast<const sockaddr_un*>(&storage_)->sun_path;
  std::size_t n = length_ - offsetof(sockaddr_un, sun_path);
  if (p[0] == '\0') return {p + 1, n - 1};  // abstract: every byte counts
  return {p, ::strnlen(p, n)};
}

std::string SocketAddress::ip_string() const {
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2] = {};
  if (is_ipv4()) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf,
                sizeof(buf));
    return buf;
  }
  if (is_ipv6()) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf));
    std::string s = buf;
    if (in6->sin6_scope_id != 0) {
      char name[IF_NAMESIZE] = {};
      s += '%';
      s += ::if_indextoname(in6->sin6_scope_id, name) != nullptr
               ? std::string(name)
               : std::to_string(in6->sin6_scope_id);
    }
    return s;
  }
  return {};
}

std::string SocketAddress::to_string() const {
  // Appends one piece at a time (GCC 12 warns wrongly about overlapping
  // copies in chains of operator+ starting with a character).
  std::string s;
  if (is_ip()) {
    if (is_ipv6()) s += '[';
    s += ip_string();
    if (is_ipv6()) s += ']';
    s += ':';
    s += std::to_string(port());
  } else if (is_unix()) {
    if (length_ <= offsetof(sockaddr_un, sun_path)) return "(unnamed)";
    if (is_abstract()) s += '@';
    s += unix_name();
  } else {
    s = "(none)";
  }
  return s;
}

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
  if (a.family() != b.family()) return false;
  if (a.is_ipv4()) {
    const auto* x = reinterpret_cast<const sockaddr_in*>(&a.storage_);
    const auto* y = reinterpret_cast<const sockaddr_in*>(&b.storage_);
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a.is_ipv6()) {
    const auto* x = reinterpret_cast<const sockaddr_in6*>(&a.storage_);
    const auto* y = reinterpret_cast<const sockaddr_in6*>(&b.storage_);
    return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
           std::memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
  }
  if (a.is_unix()) return a.is_abstract() == b.is_abstract() && a.unix_name() == b.unix_name();
  return a.empty() && b.empty();
}

}  // namespace spindle
