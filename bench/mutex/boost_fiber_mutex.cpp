// mutex-cpu-ops / mutex-io-ops peer: boost::fibers::mutex, one Boost.Fiber
// fiber per worker, all on one thread (see mutex_shape.hpp); the io write is
// write(2), which blocks the thread (Boost.Fiber has no asynchronous I/O).
// Operations per second.
#include <unistd.h>

#include <boost/fiber/all.hpp>
#include <memory>
#include <mutex>
#include <vector>

#include "mutex/mutex_shape.hpp"

namespace {

double once(const bench::MutexShape& s, std::uint64_t ops) {
  return bench::measure_blocking_peer<boost::fibers::fiber, boost::fibers::mutex>(s, ops);
}

}  // namespace

int main(int argc, char** argv) {
  auto s = bench::MutexShape::parse(argc, argv);
  double best =
      bench::warm_best_rate(s.reps, s.ops, [&](std::uint64_t ops) { return once(s, ops); });
  bench::print_result(best, s.json());
}
