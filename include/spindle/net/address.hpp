// SocketAddress: an IPv4, IPv6 or Unix (path or abstract) socket address,
// parsed from and formatted to text.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace spindle {

// A socket address as the kernel takes it (a sockaddr_storage and its
// length), with value semantics. Text forms, accepted by parse() and made by
// to_string():
//
//   "1.2.3.4:80"          IPv4 and port
//   "[::1]:80"            IPv6 and port (a scope: "[fe80::1%eth0]:80")
//   "/run/app.sock"       Unix socket path (also "./rel" and "rel/x"
//                         when it contains a '/')
//   "@name"               abstract Unix socket (Linux)
//
// An empty SocketAddress (default-constructed) has family AF_UNSPEC. Cheap
// to copy (136 bytes, no allocation). Not thread-safe to modify from two
// threads at once, like any value.
class SocketAddress {
 public:
  SocketAddress() noexcept = default;

  // Parses `text` (forms above). Throws std::system_error(EINVAL) whose
  // message names the text and what is wrong with it ("parse socket address
  // \"1.2.3.4\": missing :port"). Never suspends.
  static SocketAddress parse(std::string_view text);
  // The same without throwing: empty on bad input.
  static std::optional<SocketAddress> try_parse(std::string_view text) noexcept;

  // IPv4 from four octets; IPv6 from sixteen; both with a port.
  static SocketAddress ipv4(std::array<std::uint8_t, 4> octets, std::uint16_t port) noexcept;
  static SocketAddress ipv6(const std::array<std::uint8_t, 16>& octets, std::uint16_t port,
                            std::uint32_t scope_id = 0) noexcept;
  // 127.0.0.1, ::1, 0.0.0.0 and :: with a port.
  static SocketAddress loopback_v4(std::uint16_t port = 0) noexcept;
  static SocketAddress loopback_v6(std::uint16_t port = 0) noexcept;
  static SocketAddress any_v4(std::uint16_t port = 0) noexcept;
  static SocketAddress any_v6(std::uint16_t port = 0) noexcept;
  // A Unix socket path (at most 107 bytes, no NUL) or an abstract name (at
  // most 107 bytes, may hold any byte). Throw std::system_error(ENAMETOOLONG
  // or EINVAL) naming the path.
  static SocketAddress unix_path(std::string_view path);
  static SocketAddress unix_abstract(std::string_view name);
  // Copies a kernel address (accept, recvfrom, getsockname). Throws
  // std::system_error(EINVAL) if `length` does not fit.
  static SocketAddress from(const sockaddr* address, socklen_t length);

  // AF_INET, AF_INET6, AF_UNIX or AF_UNSPEC.
  int family() const noexcept { return storage_.ss_family; }
  bool empty() const noexcept { return family() == AF_UNSPEC; }
  bool is_ipv4() const noexcept { return family() == AF_INET; }
  bool is_ipv6() const noexcept { return family() == AF_INET6; }
  bool is_ip() const noexcept { return is_ipv4() || is_ipv6(); }
  bool is_unix() const noexcept { return family() == AF_UNIX; }
  // An abstract Unix address (its name starts with a NUL in the kernel's form).
  bool is_abstract() const noexcept;

  // The port of an IP address (0 for others); set_port ignores non-IP ones.
  std::uint16_t port() const noexcept;
  void set_port(std::uint16_t port) noexcept;
  // The path or abstract name (without the '@') of a Unix address; empty
  // for an unnamed one and for IP addresses.
  std::string_view unix_name() const noexcept;

  // The text form: "1.2.3.4:80", "[::1]:80", "/path", "@name"; an unnamed
  // Unix address is "(unnamed)", an empty one "(none)". IP without port:
  // "1.2.3.4", "::1" (ip_string). Allocates.
  std::string to_string() const;
  std::string ip_string() const;

  // For the kernel.
  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return length_; }
  // Room for the kernel to write an address into (recvfrom, accept): set
  // the length afterwards with resize().
  static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }
  void resize(socklen_t length) noexcept { length_ = length; }

  // Same family, address bytes and port (or Unix name).
  friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

 private:
  sockaddr_storage storage_{};
  socklen_t length_ = 0;
};

}  // namespace spindle
