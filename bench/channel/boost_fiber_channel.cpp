// channel-rtt-ns peer: Boost.Fiber. Two fibers on the default round-robin
// scheduler ping-pong an int over two boost::fibers::unbuffered_channel;
// nanoseconds per round trip.
#include <boost/fiber/all.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/bench_util.hpp"

namespace {

double once(std::uint64_t trips) {
  boost::fibers::unbuffered_channel<std::uint64_t> ping, pong;
  auto start = bench::Clock::now();
  boost::fibers::fiber echo([&] {
    std::uint64_t v = 0;
    for (std::uint64_t i = 0; i < trips; ++i) {
      ping.pop(v);
      pong.push(v + 1);
    }
  });
  std::uint64_t sum = 0, v = 0;
  for (std::uint64_t i = 0; i < trips; ++i) {
    ping.push(i);
    pong.pop(v);
    sum += v;
  }
  echo.join();
  double ns = bench::ns_per_op(start, trips);
  if (sum != trips * (trips + 1) / 2) std::abort();
  return ns;
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv, {"trips", "reps"});
  const auto trips = args.num("trips", 1'000'000);
  const auto reps = args.num("reps", 5);
  bench::print_result(bench::warm_best_time(reps, trips, once),
                      "\"trips\": " + std::to_string(trips));
}
