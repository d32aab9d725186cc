// DNS resolution with c-ares, driven by the calling fiber: the resolver's
// sockets are waited on like any other and its timeouts are fiber sleeps,
// so a lookup never blocks the worker (no getaddrinfo).
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "spindle/io/result.hpp"
#include "spindle/net/address.hpp"

namespace spindle {

// The error category of c-ares statuses (ARES_ENOTFOUND ...): message()
// is c-ares' own text ("Domain name not found").
const std::error_category& dns_category() noexcept;

// A failed lookup: the name, and the c-ares status as the error code
// (dns_category()). what() reads "resolve \"nope.test\": Domain name not
// found". notfound() tells "no such name (or no address of that family)"
// from a failure to get an answer (timeout, refused, bad reply).
class DnsError : public std::system_error {
 public:
  DnsError(int ares_status, std::string_view host);
  bool notfound() const noexcept;
};

// Where and how lookups are made. Plain data: copy it freely; each lookup
// builds its own c-ares channel from it, so one Resolver serves any number
// of fibers on any threads at once.
struct Resolver {
  // Name servers ("127.0.0.1:5353", "[::1]:53", an address without a port
  // means 53). Empty: the system's, from /etc/resolv.conf.
  std::vector<std::string> servers;
  // Answer names listed in /etc/hosts from it, before asking a server.
  bool use_hosts_file = true;
  // How long c-ares waits for one server's answer before trying again (or
  // the next server), and how many rounds over the servers it makes. When
  // they are used up: DnsError with ARES_ETIMEOUT.
  std::chrono::milliseconds attempt_timeout{2000};
  int tries = 2;

  // Resolves `host` to addresses with `port`: AF_UNSPEC (IPv6 and IPv4),
  // AF_INET or AF_INET6. A literal address ("10.0.0.1", "::1") comes back
  // as it is, without a lookup. Suspends the calling fiber. Throws DnsError
  // (name not found, servers not answering ...), spindle::TimedOut at the
  // deadline, std::system_error(EINVAL) for a malformed server address.
  // Cancellation point. The order is the resolver's (IPv6 first when both).
  std::vector<SocketAddress> resolve(std::string_view host, std::uint16_t port,
                                     Deadline deadline = {}, int family = AF_UNSPEC) const;
};

// Resolver{}.resolve(host, port, deadline): the system's configuration.
std::vector<SocketAddress> resolve(std::string_view host, std::uint16_t port,
                                   Deadline deadline = {});

}  // namespace spindle
