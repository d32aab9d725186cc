// resolve(): one c-ares channel per lookup, driven by the calling fiber.
//
// c-ares reports the sockets it wants watched through its socket-state
// callback; they go into a private epoll set, and the fiber waits for that
// set's descriptor to become readable (through the io layer's poll, so the
// worker keeps running other fibers) or for c-ares' next timeout, whichever
// is first. A lookup usually has one socket, but fails over to more (other
// servers, TCP after a truncated answer); the set covers them all with one
// wait.
#include "spindle/net/dns.hpp"

#include <ares.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>

#include "spindle/fiber/cancel.hpp"
#include "spindle/io/ops.hpp"

namespace spindle {
namespace {

class DnsCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "dns"; }
  std::string message(int status) const override { return ::ares_strerror(status); }
};

void ensure_library() {
  static const int status = ::ares_library_init(ARES_LIB_INIT_ALL);
  if (status != ARES_SUCCESS) throw DnsError(status, "(c-ares library init)");
}

// "10.0.0.1" or "::1" (with a "%scope" too) as an address with `port`.
std::optional<SocketAddress> parse_literal(std::string_view host, std::uint16_t port) {
  const bool v6 = host.find(':') != std::string_view::npos;
  std::string text;
  if (v6) text += '[';
  text += host;
  if (v6) text += ']';
  text += ':';
  text += std::to_string(port);
  return SocketAddress::try_parse(text);
}

// "127.0.0.1:5353,[::1]:53" for ares_set_servers_ports_csv, from the
// Resolver's list; each entry is checked by SocketAddress's parser.
std::string servers_csv(const std::vector<std::string>& servers) {
  std::string csv;
  for (const std::string& s : servers) {
    std::optional<SocketAddress> a = SocketAddress::try_parse(s);
    if (!a) a = parse_literal(s, 53);  // no port: DNS's
    if (!a || !a->is_ip()) {
      throw std::system_error(EINVAL, std::system_category(),
                              "resolver server \"" + s + "\": not an IP address (with :port)");
    }
    if (!csv.empty()) csv += ',';
    csv += a->to_string();
  }
  return csv;
}

struct Lookup {
  ares_channel channel = nullptr;
  int epoll_fd = -1;
  std::uint16_t port = 0;
  bool done = false;
  int status = ARES_SUCCESS;
  std::vector<SocketAddress> addresses;
  std::exception_ptr error;  // thrown inside a callback (bad_alloc)

  Lookup() = default;
  Lookup(const Lookup&) = delete;
  Lookup& operator=(const Lookup&) = delete;
  ~Lookup() {
    if (channel != nullptr) ::ares_destroy(channel);  // calls on_done(ARES_EDESTRUCTION)
    if (epoll_fd >= 0) ::close(epoll_fd);
  }

  static void on_socket(void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<Lookup*>(data);
    epoll_event ev{};
    ev.events = (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u);
    ev.data.fd = fd;
    if (ev.events == 0) {
      ::epoll_ctl(self->epoll_fd, EPOLL_CTL_DEL, fd, nullptr);  // may be closed already
      return;
    }
    if (::epoll_ctl(self->epoll_fd, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT &&
        ::epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0 && !self->error) {
      self->error = std::make_exception_ptr(
          std::system_error(errno, std::system_category(), "resolve: epoll_ctl"));
    }
  }

  static void on_done(void* data, int status, int /*timeouts*/, ares_addrinfo* result) {
    auto* self = static_cast<Lookup*>(data);
    self->done = true;
    self->status = status;
    if (status == ARES_SUCCESS && result != nullptr) {
      try {
        for (ares_addrinfo_node* n = result->nodes; n != nullptr; n = n->ai_next) {
          if (n->ai_family != AF_INET && n->ai_family != AF_INET6) continue;
          SocketAddress a = SocketAddress::from(n->ai_addr, n->ai_addrlen);
          a.set_port(self->port);
          bool seen = false;
          for (const SocketAddress& b : self->addresses) seen = seen || b == a;
          if (!seen) self->addresses.push_back(a);
        }
      } catch (...) {
        self->error = std::current_exception();
      }
    }
    if (result != nullptr) ::ares_freeaddrinfo(result);
  }
};

std::chrono::nanoseconds to_duration(const timeval& tv) {
  return std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
}

}  // namespace

const std::error_category& dns_category() noexcept {
  static const DnsCategory category;
  return category;
}

DnsError::DnsError(int ares_status, std::string_view host)
    : std::system_error(ares_status, dns_category(), "resolve \"" + std::string(host) + "\"") {}

bool DnsError::notfound() const noexcept {
  int s = code().value();
  return s == ARES_ENOTFOUND || s == ARES_ENODATA || s == ARES_ENONAME;
}

std::vector<SocketAddress> Resolver::resolve(std::string_view host, std::uint16_t port,
                                             Deadline deadline, int family) const {
  if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6) {
    throw std::system_error(EAFNOSUPPORT, std::system_category(),
                            "resolve \"" + std::string(host) + "\": family");
  }
  if (host.empty() || host.size() > 253 || host.find('\0') != std::string_view::npos) {
    throw DnsError(ARES_EBADNAME, host);
  }
  // A literal address needs no lookup (c-ares 1.18 asks the servers for
  // an IPv4 literal when both families are wanted).
  if (std::optional<SocketAddress> literal = parse_literal(host, port)) {
    if (family != AF_UNSPEC && literal->family() != family) throw DnsError(ARES_ENODATA, host);
    return {*literal};
  }
  ensure_library();
  checkpoint();
  Lookup lookup;
  lookup.port = port;
  lookup.epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (lookup.epoll_fd < 0) {
    throw std::system_error(errno, std::system_category(), "resolve: epoll_create1");
  }
  std::string lookups = use_hosts_file ? "fb" : "b";
  ares_options options{};
  options.sock_state_cb = &Lookup::on_socket;
  options.sock_state_cb_data = &lookup;
  options.timeout = static_cast<int>(attempt_timeout.count() > 0 ? attempt_timeout.count() : 1);
  options.tries = tries > 0 ? tries : 1;
  options.lookups = lookups.data();
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS;
  if (int s = ::ares_init_options(&lookup.channel, &options, mask); s != ARES_SUCCESS) {
    lookup.channel = nullptr;
    throw DnsError(s, host);
  }
  if (!servers.empty()) {
    std::string csv = servers_csv(servers);
    if (int s = ::ares_set_servers_ports_csv(lookup.channel, csv.c_str()); s != ARES_SUCCESS) {
      throw std::system_error(EINVAL, std::system_category(),
                              "resolver servers \"" + csv + "\": " + ::ares_strerror(s));
    }
  }
  std::string name(host);
  ares_addrinfo_hints hints{};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  ::ares_getaddrinfo(lookup.channel, name.c_str(), nullptr, &hints, &Lookup::on_done, &lookup);

  epoll_event ready[8];
  while (!lookup.done) {
    if (lookup.error) std::rethrow_exception(lookup.error);
    timeval tv{};
    Deadline step = deadline;
    if (timeval* next = ::ares_timeout(lookup.channel, nullptr, &tv)) {
      step = earlier(step, Deadline(to_duration(*next)));
    }
    bool timed_out = false;
    try {
      spindle::poll(lookup.epoll_fd, EPOLLIN, step);
    } catch (const TimedOut&) {
      timed_out = true;
    }
    if (timed_out) {
      if (deadline && std::chrono::steady_clock::now().time_since_epoch() >=
                          std::chrono::nanoseconds(deadline.ns())) {
        throw TimedOut();
      }
      ::ares_process_fd(lookup.channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // its timeouts
      continue;
    }
    int n = ::epoll_wait(lookup.epoll_fd, ready, 8, 0);
    for (int i = 0; i < n && !lookup.done; ++i) {
      int fd = ready[i].data.fd;
      bool in = (ready[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0;
      bool out = (ready[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0;
      ::ares_process_fd(lookup.channel, in ? fd : ARES_SOCKET_BAD, out ? fd : ARES_SOCKET_BAD);
    }
  }
  if (lookup.error) std::rethrow_exception(lookup.error);
  if (lookup.status != ARES_SUCCESS) throw DnsError(lookup.status, host);
  if (lookup.addresses.empty()) throw DnsError(ARES_ENODATA, host);
  return std::move(lookup.addresses);
}

std::vector<SocketAddress> resolve(std::string_view host, std::uint16_t port, Deadline deadline) {
  return Resolver{}.resolve(host, port, deadline);
}

}  // namespace spindle
