// switch-ns: two spindle fibers call spindle::yield() in turn; nanoseconds
// per yield. The backend comes from SPINDLE_BACKEND (the runner runs this
// program once per backend) and is reported in the output.
#include <spindle/fiber/fiber.hpp>
#include <spindle/fiber/runtime.hpp>

#include <cstdint>
#include <string>

#include "common/bench_util.hpp"

namespace {

double once(std::uint64_t yields) {
  const std::uint64_t each = yields / 2;
  auto body = [each] {
    for (std::uint64_t i = 0; i < each; ++i) spindle::yield();
  };
  auto start = bench::Clock::now();
  auto a = spindle::spin(body);
  auto b = spindle::spin(body);
  a.join();
  b.join();
  return bench::seconds_since(start) * 1e9 / static_cast<double>(2 * each);
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv, {"switches", "reps"});
  const auto switches = args.num("switches", 10'000'000);
  const auto reps = args.num("reps", 5);
  spindle::run([&] {
    once(switches / 10);  // warm-up
    double best = bench::best_of(reps, [&] { return once(switches); });
    std::string backend(spindle::to_string(spindle::metrics().backend));
    bench::print_result(best, "\"backend\": " + bench::json_string(backend) +
                                  ", \"switches\": " + std::to_string(switches));
  });
}
