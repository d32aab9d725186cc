// What TcpListener and UnixListener share: listen options and an accept
// loop that survives running out of descriptors.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <system_error>

#include "spindle/io/loops.hpp"
#include "spindle/io/result.hpp"

namespace spindle {

// Reported by an accept loop each time it stops accepting for a while
// because accept failed for lack of resources (EMFILE, ENFILE, ENOBUFS,
// ENOMEM): the error and how long the loop now waits before trying again.
using AcceptBackoffReport =
    std::function<void(const std::system_error&, std::chrono::milliseconds)>;

struct ListenOptions {
  // Connections the kernel queues before accept (listen(2)'s backlog).
  int backlog = SOMAXCONN;
  // SO_REUSEADDR (TCP): rebind a port whose old connections are in TIME_WAIT.
  bool reuse_address = true;
  // SO_REUSEPORT (TCP): several sockets on one port, the kernel spreads
  // connections among them (one listener per worker).
  bool reuse_port = false;
  // IPV6_V6ONLY for an IPv6 listener (true: IPv4 clients cannot connect to
  // "[::]:port").
  bool v6_only = false;
  // The accept loop's pause when out of descriptors: starts at
  // backoff_min, doubles while the error lasts, at most backoff_max.
  std::chrono::milliseconds backoff_min{10};
  std::chrono::milliseconds backoff_max{1000};
  // Where accept_loop reports each pause. Empty: one line on stderr
  // ("spindle: accept fd 5: Too many open files; pausing accepts for 10 ms").
  AcceptBackoffReport on_backoff;
};

namespace detail {

// Accepts from `fd` with the io layer's accept_loop (multishot on
// io_uring), pausing with exponential backoff on resource exhaustion
// instead of failing or spinning; the next successful accept resets the
// pause. Other errors throw. Returns the connections delivered.
std::size_t resilient_accept_loop(int fd, const ListenOptions& options, LoopFn<int> fn,
                                  Deadline deadline);

}  // namespace detail
}  // namespace spindle
