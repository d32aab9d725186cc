// The spindle echo server of the echo benchmark, on the raw io operations
// (socket, bind, listen, accept_loop, recv, send): one fiber per
// connection that receives into a buffer on its stack and sends it back.
//
//   bench_spindle_echo --port P [--workers N] [--runtimes N] [--place steal|round-robin]
//                      [--recv single|loop]
//
// Prints "ready <backend>" once it listens on 127.0.0.1:P and serves until
// it is killed. --workers N: one runtime with Options::workers = N (one
// listener; the connection fibers, spawned by the accepting fiber, are
// spread over the workers by stealing). --runtimes N: N single-worker
// runtimes on their own threads, each with its own SO_REUSEPORT listener,
// so that the kernel spreads the connections. --place round-robin starts
// each connection fiber on the next worker in turn (spin_on) instead of
// leaving the spread to stealing. --recv loop receives with a
// multishot recv_loop per connection from one buffer ring (one worker
// only) instead of one recv per message (for comparison; the benchmark uses
// single).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <spindle/fiber/fiber.hpp>
#include <spindle/fiber/runtime.hpp>
#include <spindle/io/buffer_ring.hpp>
#include <spindle/io/loops.hpp>
#include <spindle/io/ops.hpp>

#include "common/bench_util.hpp"
#include "echo/spindle_workers.hpp"

namespace {

void serve_connection(int fd) {
  spindle::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
  std::array<std::byte, 4096> buffer;
  for (;;) {
    auto got = spindle::nothrow::recv(fd, buffer);
    if (!got || *got == 0) break;
    if (!spindle::nothrow::send(fd, std::span(buffer.data(), *got))) break;
  }
  spindle::close(fd);
}

// --recv loop: a multishot receive per connection (recv_loop) from one
// buffer ring shared by the runtime's connections (one worker only: a ring
// belongs to the worker that made it).
void serve_connection_loop(int fd, spindle::BufferRing& ring) {
  spindle::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
  try {
    spindle::recv_loop(fd, ring, [fd](std::span<const std::byte> chunk) {
      return spindle::nothrow::send(fd, chunk).ok();
    });
  } catch (const std::system_error&) {
    // A reset connection: close it like the end of stream.
  }
  spindle::close(fd);
}

int listen_on(int port) {
  int fd = spindle::socket(AF_INET, SOCK_STREAM);
  spindle::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  spindle::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  spindle::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  spindle::listen(fd);
  return fd;
}

// One runtime with its listener. `ready` is called once it listens.
template <class Ready>
void serve(const bench::EchoServerArgs& a, Ready ready) {
  spindle::run(
      [&] {
        int listener = listen_on(a.port);
        std::optional<spindle::BufferRing> ring;
        if (a.recv == "loop") ring.emplace(4096, 4096);
        ready();
        unsigned next = 0;
        spindle::accept_loop(listener, [&](int fd) {
          if (ring) {
            spindle::spin([fd, &ring] { serve_connection_loop(fd, *ring); });
          } else {
            bench::spawn_connection(a, next, [fd] { serve_connection(fd); });
          }
        });
      },
      bench::echo_options(a));
}

}  // namespace

int main(int argc, char** argv) {
  const auto a = bench::echo_server_args(argc, argv, "bench_spindle_echo", true);
  if (a.recv == "loop" && a.workers > 1) {
    std::fprintf(stderr, "bench_spindle_echo: --recv loop needs --workers 1\n");
    return 2;
  }
  bench::run_echo_runtimes(a.runtimes, [&](auto ready) { serve(a, ready); });
}
