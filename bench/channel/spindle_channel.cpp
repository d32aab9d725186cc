// channel-rtt-ns: two spindle fibers of one runtime ping-pong an int over
// two unbuffered spindle::Channel<int>; nanoseconds per round trip (two
// rendezvous, two switches). The backend comes from SPINDLE_BACKEND.
// --workers 2 (channel-xworker-rtt-ns): the echo fiber runs on worker 1,
// so every hand-off crosses workers.
#include <spindle/fiber/fiber.hpp>
#include <spindle/fiber/runtime.hpp>
#include <spindle/sync/channel.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/bench_util.hpp"

namespace {

double once(std::uint64_t trips, unsigned workers) {
  spindle::Channel<std::uint64_t> ping, pong;
  auto start = bench::Clock::now();
  auto echo = spindle::spin_on(workers - 1, [&] {
    for (std::uint64_t i = 0; i < trips; ++i) pong.send(*ping.receive() + 1);
  });
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < trips; ++i) {
    ping.send(i);
    sum += *pong.receive();
  }
  echo.join();
  double ns = bench::ns_per_op(start, trips);
  if (sum != trips * (trips + 1) / 2) std::abort();  // every reply checked
  return ns;
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv, {"trips", "reps", "workers"});
  const auto trips = args.num("trips", 1'000'000);
  const auto reps = args.num("reps", 5);
  spindle::Options options;
  options.workers = static_cast<unsigned>(args.num("workers", 1));
  if (options.workers == 0) options.workers = 1;
  spindle::run(
      [&] {
        once(trips / 10, options.workers);  // warm-up
        double best = bench::best_of(reps, [&] { return once(trips, options.workers); });
        std::string backend(spindle::to_string(spindle::metrics().backend));
        bench::print_result(best, "\"backend\": " + bench::json_string(backend) +
                                      ", \"trips\": " + std::to_string(trips) +
                                      ", \"workers\": " + std::to_string(options.workers));
      },
      options);
}
