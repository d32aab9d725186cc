// spawn-ns peer: std::thread. Spawns and joins --count threads in batches of
// --batch; nanoseconds per thread.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "common/bench_util.hpp"

namespace {

double once(std::uint64_t count, std::uint64_t batch) {
  std::vector<std::thread> threads;
  threads.reserve(batch);
  std::atomic<std::uint64_t> ran{0};
  auto start = bench::Clock::now();
  for (std::uint64_t done = 0; done < count; done += batch) {
    const std::uint64_t n = std::min(batch, count - done);
    for (std::uint64_t i = 0; i < n; ++i) {
      threads.emplace_back([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
    }
    for (auto& t : threads) t.join();
    threads.clear();
  }
  double elapsed = bench::seconds_since(start);
  if (ran.load() != count) std::abort();
  return elapsed * 1e9 / static_cast<double>(count);
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv, {"count", "batch", "reps"});
  const auto count = args.num("count", 10'000);
  const auto batch = args.num("batch", 1'000);
  const auto reps = args.num("reps", 3);
  once(count / 10, batch);  // warm-up
  bench::print_result(bench::best_of(reps, [&] { return once(count, batch); }),
                      "\"count\": " + std::to_string(count));
}
