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

#include "common/bench_util.hpp"

namespace bench {

struct QueueShape {
  std::uint64_t groups, producers, consumers, messages, capacity, reps;

  static QueueShape parse(int argc, char** argv) {
    Args args(argc, argv, {"groups", "producers", "consumers", "messages", "capacity", "reps"});
    return {args.num("groups", 10),      args.num("producers", 10), args.num("consumers", 10),
            args.num("messages", 10000), args.num("capacity", 128), args.num("reps", 3)};
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

}  // namespace bench
