// scale peer: Boost.Fiber with its work_stealing algorithm on --threads
// threads (the figure), the same workloads as bench/scale/spindle_scale.cpp.
// work_stealing can be set up once per process, so the one-thread figure
// comes from a second run of this program (--threads 1).
#include <boost/fiber/algo/work_stealing.hpp>
#include <boost/fiber/all.hpp>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "common/bench_util.hpp"

namespace {

std::int64_t tree(int depth) {
  if (depth == 0) return 1;
  std::int64_t theirs = 0;
  boost::fibers::fiber child([&theirs, depth] { theirs = tree(depth - 1); });
  std::int64_t mine = tree(depth - 1);
  child.join();
  return mine + theirs;
}

double forkjoin(int depth, std::uint64_t trees) {
  auto start = bench::Clock::now();
  for (std::uint64_t t = 0; t < trees; ++t) {
    if (tree(depth) != (std::int64_t{1} << depth)) std::abort();
  }
  double spawns = static_cast<double>(trees) * static_cast<double>((std::int64_t{1} << depth) - 1);
  return spawns / bench::seconds_since(start);
}

double yields(std::uint64_t fibers, std::uint64_t each) {
  std::vector<boost::fibers::fiber> all;
  all.reserve(fibers);
  auto start = bench::Clock::now();
  for (std::uint64_t i = 0; i < fibers; ++i) {
    all.emplace_back([each] {
      for (std::uint64_t k = 0; k < each; ++k) boost::this_fiber::yield();
    });
  }
  for (auto& f : all) f.join();
  return static_cast<double>(fibers * each) / bench::seconds_since(start);
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv, {"mode", "threads", "depth", "trees", "fibers", "yields", "reps"});
  const std::string mode = args.str("mode", "forkjoin");
  const auto threads = static_cast<std::uint32_t>(args.num("threads", 2));
  const int depth = static_cast<int>(args.num("depth", 12));
  const auto trees = args.num("trees", 50);
  const auto fibers = args.num("fibers", 64);
  const auto each = args.num("yields", 20000);
  const auto reps = args.num("reps", 3);

  // The helper threads join the work-stealing pool and sleep in their
  // dispatcher until the main thread is done.
  std::atomic<bool> done{false};
  boost::fibers::barrier ready(threads);
  std::vector<std::thread> helpers;
  for (std::uint32_t i = 1; i < threads; ++i) {
    helpers.emplace_back([&] {
      boost::fibers::use_scheduling_algorithm<boost::fibers::algo::work_stealing>(threads);
      ready.wait();
      while (!done.load()) boost::this_fiber::sleep_for(std::chrono::milliseconds(1));
    });
  }
  boost::fibers::use_scheduling_algorithm<boost::fibers::algo::work_stealing>(threads);
  ready.wait();
  double best;
  if (mode == "forkjoin") {
    forkjoin(depth, trees / 10 + 1);  // warm-up
    best = -bench::best_of(reps, [&] { return -forkjoin(depth, trees); });
  } else {
    yields(fibers, each / 10 + 1);
    best = -bench::best_of(reps, [&] { return -yields(fibers, each); });
  }
  done = true;
  for (auto& t : helpers) t.join();
  bench::print_result(best, "\"threads\": " + std::to_string(threads));
}
