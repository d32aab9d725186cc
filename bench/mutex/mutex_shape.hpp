// The mutex benchmark's shape, shared by the C++ programs: `groups`
// independent groups, each with one mutex and `workers` workers that each
// lock it `ops` times and, under the lock,
//   --mode cpu: advance the group's state by 100 steps of a 64-bit LCG
//               (about 100 ns of dependent multiplies), or
//   --mode io:  write 64 bytes to the group's file (a small file write).
// The figure is lock-work-unlock operations per second (all groups), the
// best of `reps` after a warm-up of a tenth of the ops. The states and the
// file sizes are checked at the end.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/bench_util.hpp"

namespace bench {

struct MutexShape {
  std::string mode;
  std::uint64_t groups, workers, ops, reps;
  std::string dir;

  static MutexShape parse(int argc, char** argv) {
    Args args(argc, argv, {"mode", "groups", "workers", "ops", "reps", "dir"});
    MutexShape s{args.str("mode", "cpu"), args.num("groups", 10), args.num("workers", 10), 0,
                 args.num("reps", 3),     args.str("dir", "")};
    s.ops = args.num("ops", s.io() ? 200 : 2000);
    if (s.mode != "cpu" && s.mode != "io") {
      std::fprintf(stderr, "--mode cpu|io\n");
      std::exit(2);
    }
    if (s.dir.empty()) {
      const char* t = std::getenv("TMPDIR");
      s.dir = t != nullptr ? t : "/tmp";
    }
    return s;
  }
  bool io() const { return mode == "io"; }
  std::string json() const {
    return "\"mode\": " + json_string(mode) + ", \"groups\": " + std::to_string(groups) +
           ", \"workers\": " + std::to_string(workers) + ", \"ops\": " + std::to_string(ops);
  }
};

inline constexpr int kLcgSteps = 100;
inline std::uint64_t lcg(std::uint64_t x) {
  for (int i = 0; i < kLcgSteps; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
  return x;
}
// What a group's state must be after `n` operations, in any order.
inline std::uint64_t expected_state(std::uint64_t n) {
  std::uint64_t x = 1;
  for (std::uint64_t i = 0; i < n; ++i) x = lcg(x);
  return x;
}

inline constexpr std::size_t kWriteSize = 64;
inline const char kLine[kWriteSize + 1] =
    "spindle mutex benchmark: one small write under the lock.......\n";

// The group's file, created empty (O_APPEND: every write lands at the end).
inline int open_group_file(const MutexShape& s, std::uint64_t g) {
  std::string path =
      s.dir + "/spindle-bench-mutex-" + std::to_string(::getpid()) + "-" + std::to_string(g);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror(path.c_str());
    std::exit(1);
  }
  ::unlink(path.c_str());
  return fd;
}

inline void check_file(int fd, std::uint64_t writes) {
  struct stat st;
  check(::fstat(fd, &st) == 0 && static_cast<std::uint64_t>(st.st_size) == writes * kWriteSize,
        "file size");
}

// One group: its lock, its state and (io mode) its file.
template <class Mutex>
struct MutexGroup {
  Mutex m;
  std::uint64_t state = 1;
  int fd = -1;
};

// One measurement of `ops` operations per worker: makes the groups (and
// their files in io mode), then, timed, starts s.workers workers per group,
// each `start(fn)` (a thread or a fiber running fn, returned to be joined)
// of `work(group, ops)`, and joins them all; then checks every group's state
// or file. Operations per second.
template <class Mutex, class Start, class Work>
double measure_groups(const MutexShape& s, std::uint64_t ops, Start&& start, Work&& work) {
  auto groups = make_groups<MutexGroup<Mutex>>(s.groups);
  if (s.io()) {
    for (std::uint64_t g = 0; g < s.groups; ++g) groups[g]->fd = open_group_file(s, g);
  }
  auto t0 = Clock::now();
  std::vector<decltype(start([] {}))> workers;
  for (auto& gp : groups) {
    MutexGroup<Mutex>* g = gp.get();
    for (std::uint64_t w = 0; w < s.workers; ++w) {
      workers.push_back(start([g, ops, &work] { work(*g, ops); }));
    }
  }
  for (auto& w : workers) w.join();
  double rate = ops_per_second(t0, s.groups * s.workers * ops);
  for (auto& g : groups) {
    if (s.io()) {
      check_file(g->fd, s.workers * ops);
      ::close(g->fd);
    } else {
      check(g->state == expected_state(s.workers * ops), "state");
    }
  }
  return rate;
}

// The work of a worker of a peer whose write(2) blocks its thread: `ops`
// operations on group `g`, each under its lock.
template <class Mutex>
void blocking_work(MutexGroup<Mutex>& g, std::uint64_t ops, bool io) {
  for (std::uint64_t i = 0; i < ops; ++i) {
    std::lock_guard<Mutex> lk(g.m);
    if (io) {
      check(::write(g.fd, kLine, kWriteSize) == static_cast<ssize_t>(kWriteSize), "write");
    } else {
      g.state = lcg(g.state);
    }
  }
}

// once() of a peer whose workers are `Worker`s (std::thread,
// boost::fibers::fiber) made from a callable, locking a `Mutex`.
template <class Worker, class Mutex>
double measure_blocking_peer(const MutexShape& s, std::uint64_t ops) {
  const bool io = s.io();
  return measure_groups<Mutex>(
      s, ops, [](auto fn) { return Worker(std::move(fn)); },
      [io](MutexGroup<Mutex>& g, std::uint64_t n) { blocking_work(g, n, io); });
}

}  // namespace bench
