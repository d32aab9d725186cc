// queue-msgs peer: Boost.Fiber, boost::fibers::buffered_channel (capacity
// rounded up to a power of two, as it requires; it holds one less), groups
// of producer and consumer fibers on one thread (see queue_shape.hpp).
// Messages per second.
#include <boost/fiber/all.hpp>

#include <cstdint>
#include <memory>
#include <vector>

#include "queue/queue_shape.hpp"

namespace {

std::size_t pow2(std::size_t n) {
  std::size_t p = 2;
  while (p < n) p *= 2;
  return p;
}

double once(const bench::QueueShape& s, std::uint64_t msgs) {
  struct Group {
    explicit Group(std::size_t cap) : q(cap) {}
    boost::fibers::buffered_channel<std::uint64_t> q;
    std::uint64_t producers_left = 0, sum = 0;
  };
  std::vector<std::unique_ptr<Group>> groups;
  for (std::uint64_t g = 0; g < s.groups; ++g) {
    groups.push_back(std::make_unique<Group>(pow2(s.capacity)));
  }
  auto start = bench::Clock::now();
  std::vector<boost::fibers::fiber> fibers;
  for (auto& gp : groups) {
    Group* g = gp.get();
    g->producers_left = s.producers;
    for (std::uint64_t c = 0; c < s.consumers; ++c) {
      fibers.emplace_back([g] {
        std::uint64_t sum = 0, v = 0;
        while (g->q.pop(v) == boost::fibers::channel_op_status::success) sum += v;
        g->sum += sum;
      });
    }
    for (std::uint64_t p = 0; p < s.producers; ++p) {
      fibers.emplace_back([g, msgs] {
        for (std::uint64_t i = 1; i <= msgs; ++i) g->q.push(i);
        if (--g->producers_left == 0) g->q.close();
      });
    }
  }
  for (auto& f : fibers) f.join();
  double secs = bench::seconds_since(start);
  for (auto& g : groups) bench::check_sum(g->sum, s.group_sum(msgs));
  return static_cast<double>(s.groups * s.producers * msgs) / secs;
}

}  // namespace

int main(int argc, char** argv) {
  auto s = bench::QueueShape::parse(argc, argv);
  once(s, s.messages / 10);  // warm-up
  double best = -bench::best_of(s.reps, [&] { return -once(s, s.messages); });
  bench::print_result(best, s.json());
}
