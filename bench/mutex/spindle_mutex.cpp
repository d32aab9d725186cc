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
  struct Group {
    spindle::Mutex m;
    std::uint64_t state = 1;
    int fd = -1;
  };
  std::vector<std::unique_ptr<Group>> groups;
  for (std::uint64_t g = 0; g < s.groups; ++g) {
    groups.push_back(std::make_unique<Group>());
    if (s.io()) groups.back()->fd = bench::open_group_file(s, g);
  }
  const auto line = std::as_bytes(std::span(bench::kLine, bench::kWriteSize));
  auto start = bench::Clock::now();
  std::vector<spindle::Fiber<void>> fibers;
  for (auto& gp : groups) {
    Group* g = gp.get();
    for (std::uint64_t w = 0; w < s.workers; ++w) {
      if (s.io()) {
        fibers.push_back(spindle::spin([g, ops, line] {
          for (std::uint64_t i = 0; i < ops; ++i) {
            std::lock_guard<spindle::Mutex> lk(g->m);
            spindle::write(g->fd, line);
          }
        }));
      } else {
        fibers.push_back(spindle::spin([g, ops] {
          for (std::uint64_t i = 0; i < ops; ++i) {
            std::lock_guard<spindle::Mutex> lk(g->m);
            g->state = bench::lcg(g->state);
          }
        }));
      }
    }
  }
  for (auto& f : fibers) f.join();
  double secs = bench::seconds_since(start);
  for (auto& g : groups) {
    if (s.io()) {
      bench::check_file(g->fd, s.workers * ops);
      ::close(g->fd);
    } else {
      bench::check(g->state == bench::expected_state(s.workers * ops), "state");
    }
  }
  return static_cast<double>(s.groups * s.workers * ops) / secs;
}

}  // namespace

int main(int argc, char** argv) {
  auto s = bench::MutexShape::parse(argc, argv);
  spindle::run([&] {
    once(s, s.ops / 10);  // warm-up
    double best = -bench::best_of(s.reps, [&] { return -once(s, s.ops); });
    std::string backend(spindle::to_string(spindle::metrics().backend));
    bench::print_result(best, "\"backend\": " + bench::json_string(backend) + ", " + s.json());
  });
}
