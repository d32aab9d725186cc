// scale for spindle: the same workload at 1 worker and at --workers (the
// figure), so the speedup comes from the same run.
//
//   --mode=forkjoin : binary trees of spawns: each node spawns one child
//                     fiber for one subtree, computes the other itself and
//                     joins the child; fibers per second.
//   --mode=yield    : --fibers fibers (spawned from the main fiber, so idle
//                     workers steal them before they start) each yield
//                     --yields times; yields per second.
//
// The backend comes from SPINDLE_BACKEND and is reported in the output.
#include <spindle/fiber/fiber.hpp>
#include <spindle/fiber/runtime.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/bench_util.hpp"

namespace {

std::int64_t tree(int depth) {
  if (depth == 0) return 1;
  auto child = spindle::spin([depth] { return tree(depth - 1); });
  std::int64_t mine = tree(depth - 1);
  return mine + child.join();
}

// Fibers per second over `trees` trees of `depth`.
double forkjoin(int depth, std::uint64_t trees) {
  auto start = bench::Clock::now();
  for (std::uint64_t t = 0; t < trees; ++t) {
    if (tree(depth) != (std::int64_t{1} << depth)) std::abort();
  }
  double spawns = static_cast<double>(trees) * static_cast<double>((std::int64_t{1} << depth) - 1);
  return spawns / bench::seconds_since(start);
}

double yields(std::uint64_t fibers, std::uint64_t each) {
  std::vector<spindle::Fiber<void>> all;
  all.reserve(fibers);
  auto start = bench::Clock::now();
  for (std::uint64_t i = 0; i < fibers; ++i) {
    all.push_back(spindle::spin([each] {
      for (std::uint64_t k = 0; k < each; ++k) spindle::yield();
    }));
  }
  for (auto& f : all) f.join();
  return static_cast<double>(fibers * each) / bench::seconds_since(start);
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv, {"mode", "workers", "depth", "trees", "fibers", "yields", "reps"});
  const std::string mode = args.str("mode", "forkjoin");
  const auto workers = static_cast<unsigned>(args.num("workers", 2));
  const int depth = static_cast<int>(args.num("depth", 12));
  const auto trees = args.num("trees", 50);
  const auto fibers = args.num("fibers", 64);
  const auto each = args.num("yields", 20000);
  const auto reps = args.num("reps", 3);
  std::string backend;
  auto measure = [&](unsigned n) {
    spindle::Options options;
    options.workers = n;
    // Fork/join keeps up to a few thousand fibers alive: keep their stacks.
    options.stack_cache = 8192;
    return spindle::run(
        [&] {
          backend = spindle::to_string(spindle::metrics().backend);
          // Best of `reps`: the highest rate (best_of keeps the smallest).
          if (mode == "forkjoin") {
            forkjoin(depth, trees / 10 + 1);  // warm-up (fills the stack pools)
            return -bench::best_of(reps, [&] { return -forkjoin(depth, trees); });
          }
          yields(fibers, each / 10 + 1);
          return -bench::best_of(reps, [&] { return -yields(fibers, each); });
        },
        options);
  };
  double one = measure(1);
  double many = measure(workers);
  char note[160];
  std::snprintf(note, sizeof(note), "1 worker: %.3g/s; speedup at %u: %.2fx", one, workers,
                many / one);
  bench::print_result(many, "\"backend\": " + bench::json_string(backend) +
                                ", \"workers\": " + std::to_string(workers) + ", \"one_worker\": " +
                                std::to_string(one) + ", \"note\": " + bench::json_string(note));
}
