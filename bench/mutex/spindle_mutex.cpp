// mutex-cpu-ops / mutex-io-ops: spindle::Mutex, groups of worker fibers on
// one runtime (see mutex_shape.hpp). In io mode the write is
// spindle::write: on io_uring one SQE, the fiber suspends holding the lock
// and the others queue on the mutex. Operations per second.
#include <spindle/fiber/fiber.hpp>
#include <spindle/fiber/runtime.hpp>
#include <spindle/io/ops.hpp>
#include <spindle/sync/mutex.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mutex/mutex_shape.hpp"

namespace {

double once(const bench::MutexShape& s, std::uint64_t ops) {
  using Group = bench::MutexGroup<spindle::Mutex>;
  auto start = [](auto fn) { return spindle::spin(std::move(fn)); };
  if (s.io()) {
    // One SQE on io_uring: the fiber suspends holding the lock.
    const auto line = std::as_bytes(std::span(bench::kLine, bench::kWriteSize));
    return bench::measure_groups<spindle::Mutex>(s, ops, start, [line](Group& g, std::uint64_t n) {
      for (std::uint64_t i = 0; i < n; ++i) {
        std::lock_guard<spindle::Mutex> lk(g.m);
        spindle::write(g.fd, line);
      }
    });
  }
  return bench::measure_groups<spindle::Mutex>(s, ops, start, [](Group& g, std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
      std::lock_guard<spindle::Mutex> lk(g.m);
      g.state = bench::lcg(g.state);
    }
  });
}

}  // namespace

int main(int argc, char** argv) {
  auto s = bench::MutexShape::parse(argc, argv);
  spindle::run([&] {
    double best =
        bench::warm_best_rate(s.reps, s.ops, [&](std::uint64_t ops) { return once(s, ops); });
    std::string backend(spindle::to_string(spindle::metrics().backend));
    bench::print_result(best, "\"backend\": " + bench::json_string(backend) + ", " + s.json());
  });
}
