// What the two spindle echo servers (raw io operations, net layer) share:
// their command line and how they start, one runtime with N workers
// (--workers N: Options::workers, one listener, connections spread over
// the workers by work stealing) or N single-worker runtimes on their own
// threads (--runtimes N: one SO_REUSEPORT listener each, the kernel
// spreads the connections). --place round-robin starts each connection
// fiber on the next worker in turn (spin_on) instead of leaving the spread
// to stealing.
#pragma once

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <spindle/fiber/fiber.hpp>
#include <spindle/fiber/runtime.hpp>
#include <spindle/io/metrics.hpp>

#include "common/bench_util.hpp"

namespace bench {

struct EchoServerArgs {
  int port = 0;
  unsigned workers = 1;   // Options::workers of each runtime
  unsigned runtimes = 1;  // runtimes, each on its own thread with its own listener
  std::string recv = "single";
  bool round_robin = false;  // --place round-robin
};

// Parses --port P [--workers N] [--runtimes N] (and --recv when
// `with_recv`); exits 2 with the usage on bad input.
inline EchoServerArgs echo_server_args(int argc, char** argv, const char* name, bool with_recv) {
  bench::Args args(argc, argv, {"port", "workers", "runtimes", "recv", "place"});
  EchoServerArgs a;
  a.port = static_cast<int>(args.num("port", 0));
  a.workers = static_cast<unsigned>(args.num("workers", 1));
  a.runtimes = static_cast<unsigned>(args.num("runtimes", 1));
  a.recv = args.str("recv", "single");
  const std::string place = args.str("place", "steal");
  a.round_robin = place == "round-robin";
  bool recv_ok = a.recv == "single" || (with_recv && a.recv == "loop");
  if (a.port <= 0 || a.port > 65535 || a.workers == 0 || a.workers > 64 || a.runtimes == 0 ||
      a.runtimes > 64 || !recv_ok || (place != "steal" && place != "round-robin")) {
    std::fprintf(stderr,
                 "usage: %s --port P [--workers N] [--runtimes N] [--place steal|round-robin]%s\n",
                 name, with_recv ? " [--recv single|loop]" : "");
    std::exit(2);
  }
  return a;
}

// The options of each runtime.
inline spindle::Options echo_options(const EchoServerArgs& a) {
  return spindle::Options{.workers = a.workers, .stack_size = 32 * 1024};
}

// Starts the fiber of a connection: spin() (it runs on this worker unless
// an idle worker steals it first), or with --place round-robin on worker
// `next` (counting up) of the runtime.
template <class F>
void spawn_connection(const EchoServerArgs& a, unsigned& next, F&& fn) {
  if (a.round_robin) {
    spindle::spin_on(next++ % a.workers, std::forward<F>(fn));
  } else {
    spindle::spin(std::forward<F>(fn));
  }
}

// Raises the descriptor limit (1,000 connections), then runs
// runtime(ready) on `runtimes` threads (this one included); the first
// calls ready() once it listens, which prints "ready <backend>" for the
// echo client. Returns when every runtime has returned.
template <class Runtime>
void run_echo_runtimes(unsigned runtimes, Runtime runtime) {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
  auto say_ready = [] {
    std::printf("ready %s\n", std::string(spindle::to_string(spindle::metrics().backend)).c_str());
    std::fflush(stdout);
  };
  std::vector<std::thread> others;
  for (unsigned i = 1; i < runtimes; ++i) others.emplace_back([&runtime] { runtime([] {}); });
  runtime(say_ready);
  for (auto& t : others) t.join();
}

}  // namespace bench
