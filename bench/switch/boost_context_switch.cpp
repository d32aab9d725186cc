// switch-ns peer: raw Boost.Context. Two boost::context::fiber objects (the
// main context and one fiber) resume each other; the figure is nanoseconds
// per resume, each resume being one switch.
#include <boost/context/fiber.hpp>

#include <cstdint>
#include <utility>

#include "common/bench_util.hpp"

namespace ctx = boost::context;

namespace {

double once(std::uint64_t switches) {
  const std::uint64_t rounds = switches / 2;  // one round = there and back
  bool stop = false;
  ctx::fiber other{[&stop](ctx::fiber&& caller) {
    while (!stop) caller = std::move(caller).resume();
    return std::move(caller);
  }};
  other = std::move(other).resume();  // start it outside the timed part
  auto start = bench::Clock::now();
  for (std::uint64_t i = 0; i < rounds; ++i) other = std::move(other).resume();
  double elapsed = bench::seconds_since(start);
  stop = true;
  other = std::move(other).resume();  // lets the fiber return
  return elapsed * 1e9 / static_cast<double>(2 * rounds);
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv, {"switches", "reps"});
  const auto switches = args.num("switches", 10'000'000);
  const auto reps = args.num("reps", 5);
  once(switches / 10);  // warm-up
  bench::print_result(bench::best_of(reps, [&] { return once(switches); }),
                      "\"switches\": " + std::to_string(switches));
}
