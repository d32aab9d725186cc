// spindle::Latch: a single-use countdown that fibers and threads wait on.
#pragma once

#include <chrono>
#include <cstdint>

#include "spindle/sync/detail/waiter.hpp"

namespace spindle {

// Like std::latch: created with a count, count_down() decrements it (from
// any fiber or thread), wait() returns once it reached zero, and it stays
// open forever after.
//
// Cancellation and deadlines: only when wait() would wait; a waiter that
// leaves changes nothing.
class Latch {
 public:
  explicit Latch(std::int64_t count);
  Latch(const Latch&) = delete;
  Latch& operator=(const Latch&) = delete;

  // Throws std::logic_error if the count would go below zero (unchanged then).
  void count_down(std::int64_t n = 1);
  bool try_wait() const noexcept;
  void wait() { wait_ns(detail::kNoDeadline); }
  template <class Rep, class Period>
  bool wait_for(const std::chrono::duration<Rep, Period>& timeout) {
    return wait_ns(detail::sync_deadline(timeout));
  }
  template <class Clock, class Duration>
  bool wait_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    return wait_ns(detail::sync_deadline_at(deadline));
  }
  void arrive_and_wait(std::int64_t n = 1) {
    count_down(n);
    wait();
  }

  std::int64_t count() const noexcept;

 private:
  bool wait_ns(std::int64_t deadline_ns);

  mutable detail::SpinLock lock_;
  std::int64_t count_;
  detail::WaitList waiters_;
};

}  // namespace spindle
