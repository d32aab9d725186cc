// The spindle echo server of the echo benchmark on the net layer's API:
// TcpListener::accept_loop and a fiber per TcpStream doing read_some +
// write_all, as a user would write it. bench/echo/spindle_echo.cpp is the
// same server on the raw io operations (the benchmark's "spindle_raw"), so
// the two figures show what the high-level API costs.
//
//   bench_spindle_net_echo --port P [--workers N] [--runtimes N] [--place steal|round-robin]
//
// Prints "ready <backend>" once it listens on 127.0.0.1:P and serves until
// it is killed. --workers, --runtimes and --place as in spindle_echo.cpp (one
// runtime with Options::workers = N, or N runtimes with SO_REUSEPORT
// listeners).

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
void serve(const bench::EchoServerArgs& a, Ready ready) {
  spindle::run(
      [&] {
        spindle::ListenOptions options;
        options.reuse_port = true;
        auto listener = spindle::TcpListener::bind(
            spindle::SocketAddress::loopback_v4(static_cast<std::uint16_t>(a.port)), options);
        ready();
        unsigned next = 0;
        listener.accept_loop([&](spindle::TcpStream conn) {
          bench::spawn_connection(
              a, next, [conn = std::move(conn)]() mutable { serve_connection(std::move(conn)); });
        });
      },
      bench::echo_options(a));
}

}  // namespace

int main(int argc, char** argv) {
  const auto a = bench::echo_server_args(argc, argv, "bench_spindle_net_echo", false);
  bench::run_echo_runtimes(a.runtimes, [&](auto ready) { serve(a, ready); });
}
