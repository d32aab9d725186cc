// The scale benchmark's shape, shared by the C++ programs (the Go peer,
// bench/peers/go/scale, takes the same flags and defaults):
//
//   --mode=forkjoin : --trees binary trees of --depth (default 50 of 12):
//                     each node spawns one child fiber for one subtree,
//                     computes the other itself and joins the child;
//                     fibers spawned per second.
//   --mode=yield    : --fibers fibers (default 64), all spawned by the
//                     calling fiber, each yield --yields times (default
//                     20,000); yields per second.
//
// The figure is the best of --reps runs (default 3) after a warm-up of a
// tenth. A program supplies only its primitives: spawn(fn), starting fn
// (void()) on a new fiber and returning something to join(), and yield().
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/bench_util.hpp"

namespace bench {

struct ScaleShape {
  std::string mode;
  std::uint64_t workers;  // the program's --workers (spindle) or --threads (Boost)
  std::uint64_t depth, trees, fibers, yields, reps;

  // `workers_flag`: the name of the program's flag for its worker count.
  static ScaleShape parse(int argc, char** argv, const char* workers_flag) {
    Args args(argc, argv, {"mode", workers_flag, "depth", "trees", "fibers", "yields", "reps"});
    ScaleShape s{args.str("mode", "forkjoin"), args.num(workers_flag, 2), args.num("depth", 12),
                 args.num("trees", 50),        args.num("fibers", 64),    args.num("yields", 20000),
                 args.num("reps", 3)};
    if (s.mode != "forkjoin" && s.mode != "yield") {
      std::fprintf(stderr, "--mode forkjoin|yield\n");
      std::exit(2);
    }
    return s;
  }

  // The figure, on the calling fiber.
  template <class Spawn, class Yield>
  double best(Spawn&& spawn, Yield&& yield) const {
    if (mode == "forkjoin") {
      return warm_best_rate(reps, trees, [&](std::uint64_t n) { return forkjoin(n, spawn); });
    }
    return warm_best_rate(reps, yields, [&](std::uint64_t n) { return yielding(n, spawn, yield); });
  }

  // What fork_join(depth) returns: the leaves of the tree. It spawns one
  // fewer fibers (one per inner node).
  static std::uint64_t leaves(std::uint64_t depth) { return std::uint64_t{1} << depth; }

  // One tree, counting its leaves.
  template <class Spawn>
  static std::uint64_t fork_join(std::uint64_t depth, Spawn& spawn) {
    if (depth == 0) return 1;
    std::uint64_t theirs = 0;
    auto child = spawn([&theirs, depth, &spawn] { theirs = fork_join(depth - 1, spawn); });
    std::uint64_t mine = fork_join(depth - 1, spawn);
    child.join();
    return mine + theirs;
  }

  // Fibers spawned per second over `n` trees.
  template <class Spawn>
  double forkjoin(std::uint64_t n, Spawn& spawn) const {
    auto start = Clock::now();
    for (std::uint64_t t = 0; t < n; ++t) check(fork_join(depth, spawn) == leaves(depth), "tree");
    return ops_per_second(start, n * (leaves(depth) - 1));
  }

  // Yields per second of `fibers` fibers yielding `each` times.
  template <class Spawn, class Yield>
  double yielding(std::uint64_t each, Spawn& spawn, Yield& yield) const {
    auto body = [each, &yield] {
      for (std::uint64_t k = 0; k < each; ++k) yield();
    };
    std::vector<decltype(spawn(body))> all;
    all.reserve(fibers);
    auto start = Clock::now();
    for (std::uint64_t i = 0; i < fibers; ++i) all.push_back(spawn(body));
    for (auto& f : all) f.join();
    return ops_per_second(start, fibers * each);
  }
};

}  // namespace bench
