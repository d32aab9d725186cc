// spindle::Mutex: a lock that suspends the calling fiber (or blocks the
// calling thread) instead of its worker, with FIFO hand-off.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "spindle/sync/detail/timed_locking.hpp"
#include "spindle/sync/detail/waiter.hpp"

namespace spindle {

// A mutual-exclusion lock for fibers and threads alike: a fiber that waits
// suspends (its runtime keeps running other fibers), a plain OS thread
// blocks. Usable from fibers of different runtimes and from plain threads at
// once. Meets Lockable and TimedLockable, so std::lock_guard,
// std::unique_lock and std::scoped_lock work.
//
// Fairness: FIFO hand-off. unlock() with waiters passes the lock directly to
// the longest waiter, so a fiber that unlocks and locks again in a loop
// cannot starve the others (and try_lock() fails while anyone waits).
// Uncontended lock/unlock is one compare-and-swap each.
//
// Cancellation: lock() throws spindle::Cancelled only if it would have to
// wait (an uncontended lock() never throws), before or while waiting. A
// waiter that was handed the lock before its cancellation took effect keeps
// it: lock() returns, and the cancellation is delivered at the next
// suspension point. The lock is never lost.
//
// Not recursive (see RecursiveMutex); unlocking a mutex one does not hold is
// undefined, as for std::mutex. Not movable: waiters point into it.
class Mutex : public detail::TimedLocking<Mutex> {
 public:
  Mutex() noexcept = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() {
    std::uint32_t expected = kUnlocked;
    if (state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                       std::memory_order_relaxed)) [[likely]]
      return;
    lock_slow(detail::kNoDeadline, true);
  }
  bool try_lock() noexcept {
    std::uint32_t expected = kUnlocked;
    return state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }
  // lock_for / lock_until (lock() with a deadline: false if it expired
  // first, not an exception) and try_lock_for / try_lock_until come from
  // detail::TimedLocking.

  void unlock() noexcept {
    std::uint32_t expected = kLocked;
    if (state_.compare_exchange_strong(expected, kUnlocked, std::memory_order_release,
                                       std::memory_order_relaxed)) [[likely]]
      return;
    unlock_slow();
  }

  // Whether someone holds the lock (a snapshot, for tests and assertions).
  bool locked() const noexcept { return state_.load(std::memory_order_relaxed) != kUnlocked; }

  // lock() that cancellation cannot interrupt (CondVar re-locks with it).
  void lock_uninterruptible() noexcept;
  // lock_until() after try_lock() has failed, with a deadline in monotonic
  // nanoseconds (detail::kNoDeadline: none): the part that may wait.
  bool lock_contended_ns(std::int64_t deadline_ns) { return lock_slow(deadline_ns, true); }

 private:
  enum : std::uint32_t { kUnlocked = 0, kLocked = 1, kContended = 2 };
  bool lock_slow(std::int64_t deadline_ns, bool interruptible);
  void unlock_slow() noexcept;

  // kUnlocked, kLocked (no waiters) or kContended (waiters may be listed:
  // unlock() takes the slow path and hands the lock over).
  std::atomic<std::uint32_t> state_{kUnlocked};
  detail::SpinLock lock_;
  detail::WaitList waiters_;
};

}  // namespace spindle
