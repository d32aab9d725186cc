// TCP: TcpStream (a connection) and TcpListener (accepts them).
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

#include "spindle/net/address.hpp"
#include "spindle/net/dns.hpp"
#include "spindle/net/listener.hpp"
#include "spindle/net/socket.hpp"

namespace spindle {

// How TcpStream::connect reaches a name or a list of addresses.
struct ConnectOptions {
  // Gives up on the whole connect (resolution and every attempt) then:
  // spindle::TimedOut.
  Deadline deadline = {};
  // Happy Eyeballs (RFC 8305): while an attempt has neither connected nor
  // failed, the next address is tried after this delay; the first to
  // connect wins and the others are cancelled.
  std::chrono::milliseconds attempt_delay{250};
  // Resolves the name (nullptr: the system's configuration, /etc/resolv.conf
  // and /etc/hosts).
  const Resolver* resolver = nullptr;
};

// TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT for set_keepalive.
struct KeepAlive {
  std::chrono::seconds idle{60};      // quiet time before the first probe
  std::chrono::seconds interval{10};  // between probes
  int count = 5;                      // unanswered probes before the connection is dropped
};

// A TCP connection. Reads, writes and shutdown are StreamSocket's.
class TcpStream : public StreamSocket {
 public:
  using StreamSocket::StreamSocket;

  // Connects to one address (suspends until connected). Throws
  // std::system_error ("connect 127.0.0.1:9: Connection refused"),
  // spindle::TimedOut at the deadline.
  static TcpStream connect(const SocketAddress& address, Deadline deadline = {});
  // Connects to the first of `addresses` that answers, with Happy Eyeballs
  // (attempts staggered by options.attempt_delay, IPv6 and IPv4 addresses
  // interleaved, IPv6 first). If all fail, throws the first address's
  // error, naming every address tried.
  static TcpStream connect(std::span<const SocketAddress> addresses, ConnectOptions options = {});
  // Resolves `host` (a name or a literal address) and connects as above.
  // Throws DnsError when the name does not resolve.
  static TcpStream connect(std::string_view host, std::uint16_t port, ConnectOptions options = {});

  // TCP_NODELAY: send small writes at once instead of coalescing them.
  void set_nodelay(bool on);
  bool nodelay() const;
  // SO_KEEPALIVE with the given timing, or off.
  void set_keepalive(bool on, KeepAlive timing = {});
  bool keepalive() const;
};

// A listening TCP socket. bind() listens at once.
class TcpListener : public Socket {
 public:
  TcpListener() noexcept = default;

  // Binds to `address` (port 0: the kernel picks one; see local_address())
  // and listens. SO_REUSEADDR by default (ListenOptions). Throws
  // std::system_error ("bind 127.0.0.1:80: Permission denied").
  static TcpListener bind(const SocketAddress& address, ListenOptions options = {});

  // The port it listens on.
  std::uint16_t port() const { return local_address().port(); }

  // Waits for one connection. Throws std::system_error (EMFILE ... as is:
  // accept_loop is the call that rides them out).
  TcpStream accept(Deadline deadline = {});

  // Accepts until the callback stops the loop: fn(TcpStream) returns void
  // or bool (false: stop), or calls break_loop(). The callback usually
  // spins a fiber for the connection (moving the stream into it). When
  // accept runs out of descriptors (EMFILE, ENFILE) the loop does not spin
  // or fail: it reports (ListenOptions::on_backoff) and pauses, doubling
  // the pause while the error lasts, and goes on; the listen backlog keeps
  // the waiting clients meanwhile. Multishot accept on io_uring. Returns the
  // connections delivered.
  template <class F>
  std::size_t accept_loop(F&& fn, Deadline deadline = {}) {
    auto adapt = [&fn](int connection) -> decltype(auto) { return fn(TcpStream(connection)); };
    return detail::resilient_accept_loop(fd(), options_, detail::LoopFn<int>::of(adapt), deadline);
  }

  const ListenOptions& options() const noexcept { return options_; }

 private:
  TcpListener(int fd, ListenOptions options) noexcept : Socket(fd), options_(std::move(options)) {}
  ListenOptions options_;
};

}  // namespace spindle
