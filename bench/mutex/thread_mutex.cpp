// mutex-cpu-ops / mutex-io-ops peer: std::mutex, one std::thread per worker
// (see mutex_shape.hpp); the io write is write(2). Operations per second.
#include <unistd.h>

#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "mutex/mutex_shape.hpp"

namespace {

double once(const bench::MutexShape& s, std::uint64_t ops) {
  return bench::measure_blocking_peer<std::thread, std::mutex>(s, ops);
}

}  // namespace

int main(int argc, char** argv) {
  auto s = bench::MutexShape::parse(argc, argv);
  double best =
      bench::warm_best_rate(s.reps, s.ops, [&](std::uint64_t ops) { return once(s, ops); });
  bench::print_result(best, s.json());
}
