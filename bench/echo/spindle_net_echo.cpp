// The spindle echo server of the echo benchmark on the net layer's API:
// TcpListener::accept_loop and a fiber per TcpStream doing read_some +
// write_all, as a user would write it. bench/echo/spindle_echo.cpp is the
// same server on the raw io operations (the benchmark's "spindle_raw"), so
// the two figures show what the high-level API costs.
//
//   bench_spindle_net_echo --port P [--workers N]
//
// Prints "ready <backend>" once it listens on 127.0.0.1:P and serves until
// it is killed. Each worker is one runtime with its own SO_REUSEPORT
// listener; the benchmark runs one.

#include <array>
#include <cstdio>

#include <spindle/fiber/fiber.hpp>
#include <spindle/fiber/runtime.hpp>
#include <spindle/net/tcp.hpp>

#include "common/bench_util.hpp"
#include "echo/spindle_workers.hpp"

namespace {

void serve_connection(spindle::TcpStream conn) {
  conn.set_nodelay(true);
  std::array<std::byte, 4096> buffer;
  try {
    while (std::size_t n = conn.read_some(buffer)) conn.write_all({buffer.data(), n});
  } catch (const std::system_error&) {
    // A reset connection ends like the end of stream.
  }
}

template <class Ready>
void worker(int port, Ready ready) {
  spindle::run(
      [&] {
        spindle::ListenOptions options;
        options.reuse_port = true;
        auto listener = spindle::TcpListener::bind(
            spindle::SocketAddress::loopback_v4(static_cast<std::uint16_t>(port)), options);
        ready();
        listener.accept_loop([](spindle::TcpStream conn) {
          spindle::spin([conn = std::move(conn)]() mutable { serve_connection(std::move(conn)); });
        });
      },
      spindle::Options{.stack_size = 32 * 1024});
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv, {"port", "workers"});
  const int port = static_cast<int>(args.num("port", 0));
  const unsigned workers = static_cast<unsigned>(args.num("workers", 1));
  if (port <= 0 || port > 65535 || workers == 0) {
    std::fprintf(stderr, "usage: bench_spindle_net_echo --port P [--workers N]\n");
    return 2;
  }
  bench::run_echo_workers(workers, [=](auto ready) { worker(port, ready); });
}
