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
  std::vector<std::unique_ptr<Group>> groups;
  for (std::uint64_t g = 0; g < s.groups; ++g)
    groups.push_back(std::make_unique<Group>(s.capacity));
  auto start = bench::Clock::now();
  std::vector<spindle::Fiber<void>> fibers;
  for (auto& gp : groups) {
    Group* g = gp.get();
    g->producers_left = s.producers;
    for (std::uint64_t c = 0; c < s.consumers; ++c) {
      fibers.push_back(spindle::spin([g] {
        std::uint64_t sum = 0;
        while (auto v = g->q.pop()) sum += *v;
        g->sum += sum;
      }));
    }
    for (std::uint64_t p = 0; p < s.producers; ++p) {
      fibers.push_back(spindle::spin([g, msgs] {
        for (std::uint64_t i = 1; i <= msgs; ++i) g->q.push(i);
        if (--g->producers_left == 0) g->q.close();
      }));
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
  spindle::run([&] {
    once(s, s.messages / 10);  // warm-up
    // best_of takes the smallest: negate the rate.
    double best = -bench::best_of(s.reps, [&] { return -once(s, s.messages); });
    std::string backend(spindle::to_string(spindle::metrics().backend));
    bench::print_result(best, "\"backend\": " + bench::json_string(backend) + ", " + s.json());
  });
}
