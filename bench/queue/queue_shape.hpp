// The queue benchmark's shape, shared by the C++ programs: `groups`
// independent groups, each with one queue (capacity `capacity`),
// `producers` producers pushing `messages` integers each and `consumers`
// consumers popping until the queue is closed (the group closes it when its
// producers are done). The figure is messages per second (all groups), the
// best of `reps` after a warm-up run of a tenth of the messages. Every
// consumer sums what it pops, and the sums are checked.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/bench_util.hpp"

namespace bench {

struct QueueShape {
  std::uint64_t groups, producers, consumers, messages, capacity, reps;
  std::uint64_t workers;  // spindle's Options::workers (the peers ignore it)

  static QueueShape parse(int argc, char** argv) {
    Args args(argc, argv,
              {"groups", "producers", "consumers", "messages", "capacity", "reps", "workers"});
    return {args.num("groups", 10),      args.num("producers", 10), args.num("consumers", 10),
            args.num("messages", 10000), args.num("capacity", 128), args.num("reps", 3),
            args.num("workers", 1)};
  }
  std::uint64_t total() const { return groups * producers * messages; }
  // What the consumers of one group must have summed: each producer pushes
  // 1..messages.
  std::uint64_t group_sum(std::uint64_t msgs) const { return producers * msgs * (msgs + 1) / 2; }
  std::string json() const {
    return "\"groups\": " + std::to_string(groups) +
           ", \"producers\": " + std::to_string(producers) +
           ", \"consumers\": " + std::to_string(consumers) +
           ", \"messages\": " + std::to_string(messages) +
           ", \"capacity\": " + std::to_string(capacity);
  }
};

inline void check_sum(std::uint64_t got, std::uint64_t want) {
  if (got != want) {
    std::fprintf(stderr, "wrong sum: %llu, want %llu\n", static_cast<unsigned long long>(got),
                 static_cast<unsigned long long>(want));
    std::exit(1);
  }
}

// One measurement of `msgs` messages per producer over `groups` (pointers
// to groups with a `producers_left` and a `sum`): timed, starts each
// group's consumers, `consume(group)`, then its producers,
// `produce(group, msgs)`, each by `start(fn)` (a thread or a fiber running
// fn, returned to be joined), and joins them all; then checks every group's
// sum. Messages per second.
template <class Groups, class Start, class Consume, class Produce>
double measure_groups(const QueueShape& s, std::uint64_t msgs, const Groups& groups, Start&& start,
                      Consume&& consume, Produce&& produce) {
  auto t0 = Clock::now();
  std::vector<decltype(start([] {}))> workers;
  for (auto& gp : groups) {
    auto* g = gp.get();
    g->producers_left = s.producers;
    for (std::uint64_t c = 0; c < s.consumers; ++c) {
      workers.push_back(start([g, &consume] { consume(*g); }));
    }
    for (std::uint64_t p = 0; p < s.producers; ++p) {
      workers.push_back(start([g, msgs, &produce] { produce(*g, msgs); }));
    }
  }
  for (auto& w : workers) w.join();
  double rate = ops_per_second(t0, s.groups * s.producers * msgs);
  for (auto& g : groups) check_sum(g->sum, s.group_sum(msgs));
  return rate;
}

}  // namespace bench
