// nop-ops: io_uring NOP round trips through fibers: each of --fibers
// fibers calls spindle::nop() in a loop (one SQE, the fiber suspends, the
// scheduler's loop submits and reaps, the fiber resumes), --ops in all.
// Round trips per second, the best of --reps after a warm-up.
#include <spindle/fiber/fiber.hpp>
#include <spindle/fiber/runtime.hpp>
#include <spindle/io/ops.hpp>

#include <string>
#include <vector>

#include "common/bench_util.hpp"

int main(int argc, char** argv) {
  bench::Args args(argc, argv, {"ops", "fibers", "reps"});
  const std::uint64_t ops = args.num("ops", 1'000'000);
  const std::uint64_t fibers = args.num("fibers", 1);
  const std::uint64_t reps = args.num("reps", 3);
  bench::check(fibers > 0 && ops >= fibers, "--fibers 1.. --ops >= --fibers");
  spindle::run([&] {
    auto once = [&](std::uint64_t total) {
      auto start = bench::Clock::now();
      std::vector<spindle::Fiber<void>> fs;
      for (std::uint64_t f = 0; f < fibers; ++f) {
        fs.push_back(spindle::spin([n = total / fibers] {
          for (std::uint64_t i = 0; i < n; ++i) spindle::nop();
        }));
      }
      for (auto& f : fs) f.join();
      return static_cast<double>(total / fibers * fibers) / bench::seconds_since(start);
    };
    once(ops / 10);  // warm-up
    double best = -bench::best_of(reps, [&] { return -once(ops); });
    std::string backend(spindle::to_string(spindle::metrics().backend));
    bench::print_result(best, "\"backend\": " + bench::json_string(backend) +
                                  ", \"fibers\": " + std::to_string(fibers));
  });
}
