#include "spindle/net/tcp.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <vector>

#include "spindle/fiber/cancel.hpp"
#include "spindle/fiber/combinators.hpp"
#include "spindle/sync/channel.hpp"

namespace spindle {
namespace {

std::chrono::steady_clock::time_point time_of(Deadline d) {
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::nanoseconds(d.ns())));
}

// RFC 8305 section 4: alternate the families, starting with the first
// address's (the resolver's preference).
std::vector<SocketAddress> interleave(std::span<const SocketAddress> addresses) {
  std::vector<SocketAddress> first, second;
  const int lead = addresses.front().family();
  for (const SocketAddress& a : addresses) (a.family() == lead ? first : second).push_back(a);
  std::vector<SocketAddress> out;
  out.reserve(addresses.size());
  for (std::size_t i = 0; i < first.size() || i < second.size(); ++i) {
    if (i < first.size()) out.push_back(first[i]);
    if (i < second.size()) out.push_back(second[i]);
  }
  return out;
}

// One connection attempt's end: the connected descriptor, or the errno.
struct Attempt {
  std::size_t index = 0;
  int fd = -1;
  int error = 0;
};

// Connects without throwing (cancellation shows as ECANCELED): what an
// attempt fiber runs.
Attempt try_connect(std::size_t index, const SocketAddress& address) noexcept {
  Attempt a{index, -1, 0};
  Result<int> fd = nothrow::socket(address.family(), SOCK_STREAM);
  if (!fd) {
    a.error = fd.error();
    return a;
  }
  Result<void> r = nothrow::connect(*fd, address.data(), address.size());
  if (!r) {
    ::close(*fd);
    a.error = r.error();
    return a;
  }
  a.fd = *fd;
  return a;
}

std::string tried_list(const std::vector<SocketAddress>& order, std::size_t started) {
  std::string s;
  for (std::size_t i = 0; i < started; ++i) {
    if (i > 0) s += ", ";
    s += order[i].to_string();
  }
  return s;
}

}  // namespace

TcpStream TcpStream::connect(const SocketAddress& address, Deadline deadline) {
  TcpStream s(spindle::socket(address.family(), SOCK_STREAM));
  try {
    spindle::connect(s.fd(), address.data(), address.size(), deadline);
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), "connect " + address.to_string());
  }
  return s;
}

TcpStream TcpStream::connect(std::span<const SocketAddress> addresses, ConnectOptions options) {
  if (addresses.empty()) {
    throw std::system_error(EDESTADDRREQ, std::system_category(), "connect: no address to try");
  }
  if (addresses.size() == 1) return connect(addresses.front(), options.deadline);
  const std::vector<SocketAddress> order = interleave(addresses);
  const std::size_t n = order.size();

  Channel<Attempt> outcomes(n);  // room for every attempt's outcome: try_send never fails
  std::vector<Fiber<void>> attempts;
  std::vector<detail::FiberControl*> running;
  attempts.reserve(n);
  running.reserve(n);
  // Losers are cancelled and awaited before this frame (which they use)
  // goes away, also when the caller is cancelled or the deadline passes.
  struct Reaper {
    std::vector<detail::FiberControl*>& running;
    Channel<Attempt>& outcomes;
    ~Reaper() {
      for (detail::FiberControl* f : running) FiberRef::cancel_control(f);
      detail::await_cancelled(running.data(), running.size());
      while (std::optional<Attempt> late = outcomes.try_receive()) {
        if (late->fd >= 0) ::close(late->fd);  // connected after the winner
      }
    }
  } reaper{running, outcomes};

  auto start = [&](std::size_t i) {
    attempts.push_back(spin([&outcomes, &order, i] { outcomes.try_send(try_connect(i, order[i])); },
                            SpinOptions{.name = "happy-eyeballs"}));
    running.push_back(detail::control_of(attempts.back()));
  };
  start(0);
  std::size_t failed = 0;
  int first_error = 0;
  for (;;) {
    Deadline wait = options.deadline;
    if (attempts.size() < n) wait = earlier(wait, Deadline(options.attempt_delay));
    std::optional<Attempt> done = wait ? outcomes.receive_until(time_of(wait)) : outcomes.receive();
    if (!done) {  // the attempt delay, or the overall deadline
      if (options.deadline && std::chrono::steady_clock::now() >= time_of(options.deadline)) {
        throw TimedOut();
      }
      if (attempts.size() < n) start(attempts.size());
      continue;
    }
    if (done->fd >= 0) return TcpStream(done->fd);  // the reaper cancels the rest
    if (first_error == 0 || done->index == 0) first_error = done->error;
    if (++failed == n) {
      throw std::system_error(first_error, std::system_category(),
                              "connect " + tried_list(order, n));
    }
    if (attempts.size() < n) start(attempts.size());  // a failure starts the next at once
  }
}

TcpStream TcpStream::connect(std::string_view host, std::uint16_t port, ConnectOptions options) {
  const Resolver fallback;
  const Resolver& resolver = options.resolver != nullptr ? *options.resolver : fallback;
  std::vector<SocketAddress> addresses = resolver.resolve(host, port, options.deadline);
  return connect(std::span<const SocketAddress>(addresses), options);
}

void TcpStream::set_nodelay(bool on) {
  setsockopt(fd(), IPPROTO_TCP, TCP_NODELAY, int{on});
}

bool TcpStream::nodelay() const {
  return getsockopt<int>(fd(), IPPROTO_TCP, TCP_NODELAY) != 0;
}

void TcpStream::set_keepalive(bool on, KeepAlive timing) {
  if (on) {
    setsockopt(fd(), IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(timing.idle.count()));
    setsockopt(fd(), IPPROTO_TCP, TCP_KEEPINTVL, static_cast<int>(timing.interval.count()));
    setsockopt(fd(), IPPROTO_TCP, TCP_KEEPCNT, timing.count);
  }
  setsockopt(fd(), SOL_SOCKET, SO_KEEPALIVE, int{on});
}

bool TcpStream::keepalive() const {
  return getsockopt<int>(fd(), SOL_SOCKET, SO_KEEPALIVE) != 0;
}

TcpListener TcpListener::bind(const SocketAddress& address, ListenOptions options) {
  if (!address.is_ip()) {
    throw std::system_error(EAFNOSUPPORT, std::system_category(),
                            "TcpListener::bind " + address.to_string() + ": not an IP address");
  }
  TcpListener l(spindle::socket(address.family(), SOCK_STREAM), std::move(options));
  const ListenOptions& o = l.options_;
  try {
    if (o.reuse_address) setsockopt(l.fd(), SOL_SOCKET, SO_REUSEADDR, 1);
    if (o.reuse_port) setsockopt(l.fd(), SOL_SOCKET, SO_REUSEPORT, 1);
    if (address.is_ipv6()) setsockopt(l.fd(), IPPROTO_IPV6, IPV6_V6ONLY, int{o.v6_only});
    spindle::bind(l.fd(), address.data(), address.size());
    spindle::listen(l.fd(), o.backlog);
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), "TcpListener::bind " + address.to_string());
  }
  return l;
}

TcpStream TcpListener::accept(Deadline deadline) {
  return TcpStream(spindle::accept(fd(), deadline));
}

}  // namespace spindle
