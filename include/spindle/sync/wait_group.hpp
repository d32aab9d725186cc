// spindle::WaitGroup: wait for a collection of tasks to finish (Go's).
#pragma once

#include <chrono>
#include <cstdint>

#include "spindle/sync/detail/waiter.hpp"

namespace spindle {

// A counter of outstanding tasks: add(n) before starting them, done() as
// each finishes (from any fiber or thread), wait() until the counter is
// zero. As in Go, a WaitGroup may be reused once wait() has returned.
//
// Cancellation and deadlines: only when wait() would wait; the counter is
// not affected by a waiter leaving.
class WaitGroup {
 public:
  WaitGroup() noexcept = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  // Adds `delta` (may be negative). Throws std::logic_error if the counter
  // would go below zero (it is left unchanged then).
  void add(std::int64_t delta = 1);
  void done() { add(-1); }

  void wait() { wait_ns(detail::kNoDeadline); }
  // False if the deadline passed first.
  template <class Rep, class Period>
  bool wait_for(const std::chrono::duration<Rep, Period>& timeout) {
    return wait_ns(detail::sync_deadline(timeout));
  }
  template <class Clock, class Duration>
  bool wait_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    return wait_ns(detail::sync_deadline_at(deadline));
  }

  std::int64_t count() const noexcept;

 private:
  bool wait_ns(std::int64_t deadline_ns);

  mutable detail::SpinLock lock_;
  std::int64_t count_ = 0;
  detail::WaitList waiters_;
};

}  // namespace spindle
