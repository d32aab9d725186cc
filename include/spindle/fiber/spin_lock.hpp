// A small spinlock for short critical sections shared by threads: the
// fiber tree across workers, and the sync layer's waiter lists.
#pragma once

#include <atomic>

#include "spindle/context/cpu_relax.hpp"

namespace spindle::detail {

// A test-and-test-and-set lock. Held
// for a few dozen instructions, never across a park or a system call; after
// a short spin it yields the CPU (the holder may have been preempted).
class SpinLock {
 public:
  void lock() noexcept {
    if (!flag_.exchange(true, std::memory_order_acquire)) [[likely]]
      return;
    lock_slow();
  }
  bool try_lock() noexcept {
    return !flag_.load(std::memory_order_relaxed) &&
           !flag_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { flag_.store(false, std::memory_order_release); }

 private:
  void lock_slow() noexcept;
  std::atomic<bool> flag_{false};
};

// Locks a SpinLock for a scope.
class SpinGuard {
 public:
  explicit SpinGuard(SpinLock& lock) noexcept : lock_(lock) { lock_.lock(); }
  ~SpinGuard() { lock_.unlock(); }
  SpinGuard(const SpinGuard&) = delete;
  SpinGuard& operator=(const SpinGuard&) = delete;

 private:
  SpinLock& lock_;
};

}  // namespace spindle::detail
