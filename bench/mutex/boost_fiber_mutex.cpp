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
  struct Group {
    boost::fibers::mutex m;
    std::uint64_t state = 1;
    int fd = -1;
  };
  std::vector<std::unique_ptr<Group>> groups;
  for (std::uint64_t g = 0; g < s.groups; ++g) {
    groups.push_back(std::make_unique<Group>());
    if (s.io()) groups.back()->fd = bench::open_group_file(s, g);
  }
  const bool io = s.io();
  auto start = bench::Clock::now();
  std::vector<boost::fibers::fiber> fibers;
  for (auto& gp : groups) {
    Group* g = gp.get();
    for (std::uint64_t w = 0; w < s.workers; ++w) {
      fibers.emplace_back([g, ops, io] {
        for (std::uint64_t i = 0; i < ops; ++i) {
          std::lock_guard<boost::fibers::mutex> lk(g->m);
          if (io) {
            bench::check(::write(g->fd, bench::kLine, bench::kWriteSize) ==
                             static_cast<ssize_t>(bench::kWriteSize),
                         "write");
          } else {
            g->state = bench::lcg(g->state);
          }
        }
      });
    }
  }
  for (auto& f : fibers) f.join();
  double secs = bench::seconds_since(start);
  for (auto& g : groups) {
    if (io) {
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
  once(s, s.ops / 10);  // warm-up
  double best = -bench::best_of(s.reps, [&] { return -once(s, s.ops); });
  bench::print_result(best, s.json());
}
