// spawn-ns and spawn-rss for spindle.
//
//   --mode=ns  : spawn+join --count fibers in batches of --batch; ns per fiber.
//   --mode=rss : --count fibers alive at once, each parked in
//                spindle::suspend() until all are spawned; (peak RSS -
//                baseline) / count in KiB per fiber. --no-stack-guard runs
//                with Options{.stack_guard = false} (for when
//                vm.max_map_count cannot be raised).
//
// The backend comes from SPINDLE_BACKEND and is reported in the output.
#include <spindle/fiber/fiber.hpp>
#include <spindle/fiber/runtime.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/bench_util.hpp"

namespace {

double spawn_ns(std::uint64_t count, std::uint64_t batch) {
  std::vector<spindle::Fiber<void>> fibers;
  fibers.reserve(batch);
  std::uint64_t ran = 0;
  auto start = bench::Clock::now();
  for (std::uint64_t done = 0; done < count; done += batch) {
    const std::uint64_t n = std::min(batch, count - done);
    for (std::uint64_t i = 0; i < n; ++i) fibers.push_back(spindle::spin([&ran] { ++ran; }));
    for (auto& f : fibers) f.join();
    fibers.clear();
  }
  double elapsed = bench::seconds_since(start);
  if (ran != count) std::abort();
  return elapsed * 1e9 / static_cast<double>(count);
}

double spawn_rss(std::uint64_t count) {
  std::vector<spindle::Fiber<void>> fibers;
  fibers.reserve(count);
  std::uint64_t parked = 0;
  const long baseline = bench::status_kib("VmRSS");
  for (std::uint64_t i = 0; i < count; ++i) {
    fibers.push_back(spindle::spin([&parked] {
      ++parked;
      spindle::suspend();
    }));
  }
  while (parked < count) spindle::yield();  // let every fiber park
  const long peak = bench::status_kib("VmHWM");
  for (auto& f : fibers) f.resume();
  for (auto& f : fibers) f.join();
  return static_cast<double>(peak - baseline) / static_cast<double>(count);
}

std::string backend_member() {
  std::string backend(spindle::to_string(spindle::metrics().backend));
  return "\"backend\": " + bench::json_string(backend);
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv, {"mode", "count", "batch", "reps", "no-stack-guard"});
  const std::string mode = args.str("mode", "ns");
  spindle::Options options;
  if (mode == "ns") {
    const auto count = args.num("count", 1'000'000);
    const auto batch = args.num("batch", 1'000);
    const auto reps = args.num("reps", 3);
    spindle::run(
        [&] {
          spawn_ns(count / 10, batch);  // warm-up (fills the stack pool)
          double best = bench::best_of(reps, [&] { return spawn_ns(count, batch); });
          bench::print_result(best, backend_member() + ", \"count\": " + std::to_string(count));
        },
        options);
  } else if (mode == "rss") {
    const auto count = args.num("count", 1'000'000);
    options.stack_guard = !args.flag("no-stack-guard");
    spindle::run(
        [&] {
          double kib = spawn_rss(count);
          bench::print_result(kib,
                              backend_member() + ", \"count\": " + std::to_string(count) +
                                  ", \"stack_size\": " + std::to_string(options.stack_size) +
                                  ", \"stack_guard\": " + (options.stack_guard ? "true" : "false"));
        },
        options);
  } else {
    std::fprintf(stderr, "--mode must be ns or rss\n");
    return 2;
  }
}
