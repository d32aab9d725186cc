// switch-ns peer: Boost.Fiber. Two fibers on the default round-robin
// scheduler call boost::this_fiber::yield() in turn; nanoseconds per yield.
#include <boost/fiber/all.hpp>

#include <cstdint>

#include "common/bench_util.hpp"

namespace {

double once(std::uint64_t yields) {
  const std::uint64_t each = yields / 2;
  auto body = [each] {
    for (std::uint64_t i = 0; i < each; ++i) boost::this_fiber::yield();
  };
  auto start = bench::Clock::now();
  boost::fibers::fiber a(body);
  boost::fibers::fiber b(body);
  a.join();
  b.join();
  return bench::seconds_since(start) * 1e9 / static_cast<double>(2 * each);
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
