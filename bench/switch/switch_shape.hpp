// The switch benchmark's shape, shared by the C++ programs: --switches
// switches (default ten million), the figure nanoseconds per switch, the
// smallest of --reps runs (default 5) after a warm-up of a tenth.
#pragma once

#include <cstdint>
#include <string>

#include "common/bench_util.hpp"

namespace bench {

struct SwitchShape {
  std::uint64_t switches, reps;

  static SwitchShape parse(int argc, char** argv) {
    Args args(argc, argv, {"switches", "reps"});
    return {args.num("switches", 10'000'000), args.num("reps", 5)};
  }
  std::string json() const { return "\"switches\": " + std::to_string(switches); }

  // The figure: once(switches) returning nanoseconds per switch.
  template <class Once>
  double best(Once&& once) const {
    return warm_best_time(reps, switches, once);
  }
};

// once() of the programs whose fibers yield to each other: two of them,
// each `start(body)` (returned to be joined), yielding by `yield()` half of
// `yields` times each. Nanoseconds per yield.
template <class Start, class Yield>
double two_yielding(std::uint64_t yields, Start&& start, Yield&& yield) {
  const std::uint64_t each = yields / 2;
  auto body = [each, &yield] {
    for (std::uint64_t i = 0; i < each; ++i) yield();
  };
  auto t0 = Clock::now();
  auto a = start(body);
  auto b = start(body);
  a.join();
  b.join();
  return ns_per_op(t0, 2 * each);
}

}  // namespace bench
