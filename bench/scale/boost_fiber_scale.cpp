// scale peer: Boost.Fiber with its work_stealing algorithm on --threads
// threads (the figure), the workloads of bench/scale/scale_shape.hpp.
// work_stealing can be set up once per process, so the one-thread figure
// comes from a second run of this program (--threads 1).
#include <boost/fiber/algo/work_stealing.hpp>
#include <boost/fiber/all.hpp>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/bench_util.hpp"
#include "scale/scale_shape.hpp"

int main(int argc, char** argv) {
  const auto shape = bench::ScaleShape::parse(argc, argv, "threads");
  const auto threads = static_cast<std::uint32_t>(shape.workers);

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
  double best = shape.best([](auto fn) { return boost::fibers::fiber(std::move(fn)); },
                           [] { boost::this_fiber::yield(); });
  done = true;
  for (auto& t : helpers) t.join();
  bench::print_result(best, "\"threads\": " + std::to_string(threads));
}
