// spindle::RecursiveMutex: a Mutex that its owner may lock again
// (Polyphony's re-entrant Mutex / Monitor).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>

#include "spindle/sync/mutex.hpp"

namespace spindle {

// A re-entrant lock: the fiber (or, outside fibers, the thread) that holds
// it may lock it again; it is released when unlock() has been called as many
// times as lock(). The owner is the fiber, not its thread: two fibers of one
// runtime exclude each other. Otherwise it behaves like Mutex (FIFO
// hand-off, suspends fibers, blocks threads, cancellation and deadlines only
// when it would wait).
class RecursiveMutex : public detail::TimedLocking<RecursiveMutex> {
 public:
  RecursiveMutex() noexcept = default;
  RecursiveMutex(const RecursiveMutex&) = delete;
  RecursiveMutex& operator=(const RecursiveMutex&) = delete;

  void lock() {
    const void* me = detail::current_owner();
    if (owner_.load(std::memory_order_relaxed) == me) {
      ++depth_;
      return;
    }
    mutex_.lock();
    take(me);
  }
  bool try_lock() noexcept {
    const void* me = detail::current_owner();
    if (owner_.load(std::memory_order_relaxed) == me) {
      ++depth_;
      return true;
    }
    if (!mutex_.try_lock()) return false;
    take(me);
    return true;
  }
  // lock_for / lock_until / try_lock_for / try_lock_until: detail::TimedLocking.

  // Throws std::logic_error when the caller does not hold the lock.
  void unlock() {
    if (owner_.load(std::memory_order_relaxed) != detail::current_owner()) {
      throw std::logic_error("spindle::RecursiveMutex::unlock: not held by the caller");
    }
    if (--depth_ == 0) {
      owner_.store(nullptr, std::memory_order_relaxed);
      mutex_.unlock();
    }
  }

  // Whether the caller holds it, and how many times.
  bool held() const noexcept {
    return owner_.load(std::memory_order_relaxed) == detail::current_owner();
  }
  std::uint32_t depth() const noexcept { return held() ? depth_ : 0; }

 private:
  friend class detail::TimedLocking<RecursiveMutex>;
  void take(const void* me) noexcept {
    owner_.store(me, std::memory_order_relaxed);
    depth_ = 1;
  }
  // After try_lock() has failed: the caller is not the owner and the mutex
  // was held.
  bool lock_contended_ns(std::int64_t deadline_ns) {
    if (!mutex_.lock_contended_ns(deadline_ns)) return false;
    take(detail::current_owner());
    return true;
  }

  Mutex mutex_;
  // Only the owner stores its own identity here, so a caller that reads its
  // own identity is the owner (relaxed suffices: the mutex orders the rest).
  std::atomic<const void*> owner_{nullptr};
  std::uint32_t depth_ = 0;  // touched by the owner only
};

}  // namespace spindle
