// What the two spindle echo servers (raw io operations, net layer) share:
// N workers, each one runtime on its own thread.
#pragma once

#include <sys/resource.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <spindle/io/metrics.hpp>

namespace bench {

// Raises the descriptor limit (1,000 connections), then runs
// worker(ready) on `workers` threads (this one included); the first
// worker calls ready() once it listens, which prints "ready <backend>" for
// the echo client. Returns when every worker has returned.
template <class Worker>
void run_echo_workers(unsigned workers, Worker worker) {
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
  for (unsigned i = 1; i < workers; ++i) others.emplace_back([&worker] { worker([] {}); });
  worker(say_ready);
  for (auto& t : others) t.join();
}

}  // namespace bench
