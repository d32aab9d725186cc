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
  auto groups = bench::make_groups<Group>(s.groups, pow2(s.capacity));
  return bench::measure_groups(
      s, msgs, groups, [](auto fn) { return boost::fibers::fiber(std::move(fn)); },
      [](Group& g) {
        std::uint64_t sum = 0, v = 0;
        while (g.q.pop(v) == boost::fibers::channel_op_status::success) sum += v;
        g.sum += sum;
      },
      [](Group& g, std::uint64_t n) {
        for (std::uint64_t i = 1; i <= n; ++i) g.q.push(i);
        if (--g.producers_left == 0) g.q.close();
      });
}

}  // namespace

int main(int argc, char** argv) {
  auto s = bench::QueueShape::parse(argc, argv);
  double best =
      bench::warm_best_rate(s.reps, s.messages, [&](std::uint64_t msgs) { return once(s, msgs); });
  bench::print_result(best, s.json());
}
