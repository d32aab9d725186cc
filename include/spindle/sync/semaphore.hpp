// spindle::Semaphore: a counting semaphore for fibers and threads.
#pragma once

#include <chrono>
#include <cstdint>

#include "spindle/sync/detail/waiter.hpp"

namespace spindle {

// A counting semaphore. acquire(n) takes n permits, waiting (a fiber
// suspends, a thread blocks) until they are available; release(n) gives n
// back. Waiters are served strictly in FIFO order: a waiter for many permits
// holds back later waiters for few (no starvation of large requests), and
// try_acquire() fails while anyone waits.
//
// Cancellation and deadlines: only when acquire() would wait. A waiter that
// was granted its permits before its cancellation took effect keeps them
// (acquire returns; the cancellation comes at the next suspension point); a
// waiter that leaves (cancelled, timed out) lets the waiters behind it be
// served. No permit is ever lost.
class Semaphore {
 public:
  explicit Semaphore(std::int64_t initial = 0);
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  // n >= 1; std::invalid_argument otherwise.
  void acquire(std::int64_t n = 1) { acquire_ns(n, detail::kNoDeadline); }
  bool try_acquire(std::int64_t n = 1);
  // acquire() with a deadline: false if it expired first.
  template <class Rep, class Period>
  bool acquire_for(const std::chrono::duration<Rep, Period>& timeout, std::int64_t n = 1) {
    return acquire_ns(n, detail::sync_deadline(timeout));
  }
  template <class Clock, class Duration>
  bool acquire_until(const std::chrono::time_point<Clock, Duration>& deadline, std::int64_t n = 1) {
    return acquire_ns(n, detail::sync_deadline_at(deadline));
  }
  // The std::counting_semaphore names.
  template <class Rep, class Period>
  bool try_acquire_for(const std::chrono::duration<Rep, Period>& timeout) {
    return acquire_for(timeout);
  }
  template <class Clock, class Duration>
  bool try_acquire_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    return acquire_until(deadline);
  }

  // Gives back n >= 1 permits, serving waiters. From anywhere. Throws
  // std::overflow_error if the count would exceed INT64_MAX.
  void release(std::int64_t n = 1);

  // Permits available now (a snapshot).
  std::int64_t available() const noexcept;

 private:
  bool acquire_ns(std::int64_t n, std::int64_t deadline_ns);
  void serve(detail::WakeChain& chain) noexcept;  // under lock_

  mutable detail::SpinLock lock_;
  std::int64_t count_;
  detail::WaitList waiters_;  // WaitNode::amount: permits wanted
};

}  // namespace spindle
