// spindle::CondVar: a condition variable for spindle::Mutex.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "spindle/sync/detail/waiter.hpp"
#include "spindle/sync/mutex.hpp"

namespace spindle {

// Waits for a condition under a spindle::Mutex, like std::condition_variable
// (fibers suspend, threads block; notifiers may be anywhere). Waiters are
// woken in FIFO order; there are no spurious wake-ups, but as with any
// condition variable another party may change the state between the
// notification and the re-lock: loop on the predicate (wait(lock, pred)).
//
// Cancellation: wait() throws spindle::Cancelled (always: waiting is what
// it does) with the mutex locked again. A waiter that a notify_one() picked
// before its cancellation took effect returns normally instead, so a
// notify_one() is never lost; the cancellation comes at the next suspension
// point. The re-lock itself is not interruptible.
//
// Deadlines: wait_for/wait_until return std::cv_status::timeout (the
// predicate forms return the predicate's value), with the mutex locked.
class CondVar {
 public:
  CondVar() noexcept = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void wait(std::unique_lock<Mutex>& lock) { wait_ns(lock, detail::kNoDeadline); }
  template <class Pred>
  void wait(std::unique_lock<Mutex>& lock, Pred pred) {
    while (!pred()) wait(lock);
  }
  template <class Rep, class Period>
  std::cv_status wait_for(std::unique_lock<Mutex>& lock,
                          const std::chrono::duration<Rep, Period>& timeout) {
    return wait_ns(lock, detail::sync_deadline(timeout)) ? std::cv_status::no_timeout
                                                         : std::cv_status::timeout;
  }
  template <class Rep, class Period, class Pred>
  bool wait_for(std::unique_lock<Mutex>& lock, const std::chrono::duration<Rep, Period>& timeout,
                Pred pred) {
    return wait_until_ns(lock, detail::sync_deadline(timeout), pred);
  }
  template <class Clock, class Duration>
  std::cv_status wait_until(std::unique_lock<Mutex>& lock,
                            const std::chrono::time_point<Clock, Duration>& deadline) {
    return wait_ns(lock, detail::sync_deadline_at(deadline)) ? std::cv_status::no_timeout
                                                             : std::cv_status::timeout;
  }
  template <class Clock, class Duration, class Pred>
  bool wait_until(std::unique_lock<Mutex>& lock,
                  const std::chrono::time_point<Clock, Duration>& deadline, Pred pred) {
    return wait_until_ns(lock, detail::sync_deadline_at(deadline), pred);
  }

  // Wakes the longest waiter (if any) / every waiter. From any fiber or
  // thread, with or without the mutex held.
  void notify_one() noexcept;
  void notify_all() noexcept;

 private:
  // False: the deadline passed.
  bool wait_ns(std::unique_lock<Mutex>& lock, std::int64_t deadline_ns);
  template <class Pred>
  bool wait_until_ns(std::unique_lock<Mutex>& lock, std::int64_t deadline_ns, Pred& pred) {
    while (!pred()) {
      if (!wait_ns(lock, deadline_ns)) return pred();
    }
    return true;
  }

  detail::SpinLock lock_;
  detail::WaitList waiters_;
};

}  // namespace spindle
