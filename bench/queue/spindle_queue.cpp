// queue-msgs: spindle::Queue<int> (bounded), groups of producer and consumer
// fibers on one runtime (see queue_shape.hpp). Messages per second.
#include <spindle/fiber/fiber.hpp>
#include <spindle/fiber/runtime.hpp>
#include <spindle/sync/queue.hpp>

#include <memory>
#include <string>
#include <vector>

#include "queue/queue_shape.hpp"

namespace {

double once(const bench::QueueShape& s, std::uint64_t msgs) {
  struct Group {
    explicit Group(std::size_t cap) : q(cap) {}
    spindle::Queue<std::uint64_t> q;
    std::uint64_t producers_left = 0;
    std::uint64_t sum = 0;
  };
  auto groups = bench::make_groups<Group>(s.groups, s.capacity);
  return bench::measure_groups(
      s, msgs, groups, [](auto fn) { return spindle::spin(std::move(fn)); },
      [](Group& g) {
        std::uint64_t sum = 0;
        while (auto v = g.q.pop()) sum += *v;
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
  spindle::Options options;
  options.workers = static_cast<unsigned>(s.workers);
  spindle::run(
      [&] {
        once(s, s.messages / 10);  // warm-up
        // best_of takes the smallest: negate the rate.
        double best = -bench::best_of(s.reps, [&] { return -once(s, s.messages); });
        std::string backend(spindle::to_string(spindle::metrics().backend));
        bench::print_result(best, "\"backend\": " + bench::json_string(backend) + ", " + s.json() +
                                      ", \"workers\": " + std::to_string(s.workers));
      },
      options);
}
