// spindle::Throttler and throttled_loop: rate limiting.
#pragma once

#include <chrono>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "spindle/sync/detail/waiter.hpp"

namespace spindle {

// Lets calls through at most at a given rate, spaced evenly: the n-th call
// of a Throttler made at rate r runs no earlier than start + n/r. Shared by
// fibers (which sleep) and threads (which sleep) alike: each caller reserves
// the next free slot and waits for it. A caller that comes late does not
// make up for the lost time with a burst (slots are never in the past).
//
// Cancellation: a fiber cancelled while waiting for its slot throws
// spindle::Cancelled (the slot is lost, not given to another caller).
class Throttler {
 public:
  // `per_second` > 0; std::invalid_argument otherwise.
  explicit Throttler(double per_second);
  explicit Throttler(std::chrono::nanoseconds interval);
  Throttler(const Throttler&) = delete;
  Throttler& operator=(const Throttler&) = delete;

  // Waits for the next slot.
  void wait();
  // Takes the next slot if it is due now (no waiting).
  bool try_acquire() noexcept;
  // wait(), then fn().
  template <class F>
  decltype(auto) call(F&& fn) {
    wait();
    return std::forward<F>(fn)();
  }

  std::chrono::nanoseconds interval() const noexcept {
    return std::chrono::nanoseconds(interval_ns_);
  }

 private:
  const std::int64_t interval_ns_;
  detail::SpinLock lock_;
  std::int64_t next_ns_ = 0;  // the earliest time of the next slot
};

// Calls fn() at most `per_second` times a second (Polyphony's
// throttled_loop), forever, until fn returns false (if it returns bool), or
// `count` times when given. Cancellable while it waits.
template <class F>
void throttled_loop(double per_second, F&& fn) {
  Throttler t(per_second);
  for (;;) {
    t.wait();
    if constexpr (std::is_same_v<std::invoke_result_t<F&>, bool>) {
      if (!fn()) return;
    } else {
      fn();
    }
  }
}
template <class F>
void throttled_loop(double per_second, std::uint64_t count, F&& fn) {
  Throttler t(per_second);
  for (std::uint64_t i = 0; i < count; ++i) {
    t.wait();
    if constexpr (std::is_same_v<std::invoke_result_t<F&>, bool>) {
      if (!fn()) return;
    } else {
      fn();
    }
  }
}

}  // namespace spindle
