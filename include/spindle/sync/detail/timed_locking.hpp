// The timed names of spindle's locks, written once.
#pragma once

#include <chrono>
#include <cstdint>

#include "spindle/sync/detail/waiter.hpp"

namespace spindle::detail {

// Gives a lock lock_for / lock_until and the TimedLockable names
// try_lock_for / try_lock_until (for std::unique_lock), all from its
// try_lock() and, when that fails, lock_contended_ns(deadline in monotonic
// nanoseconds). Each returns false when the deadline passed first (not an
// exception). The clock is read, and the lock tried, once: the uncontended
// path is one try_lock().
template <class Lock>
class TimedLocking {
 public:
  template <class Rep, class Period>
  bool lock_for(const std::chrono::duration<Rep, Period>& timeout) {
    return self().try_lock() || self().lock_contended_ns(sync_deadline(timeout));
  }
  template <class Clock, class Duration>
  bool lock_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    return self().try_lock() || self().lock_contended_ns(sync_deadline_at(deadline));
  }
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) {
    return lock_for(timeout);
  }
  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    return lock_until(deadline);
  }

 private:
  Lock& self() noexcept { return static_cast<Lock&>(*this); }
};

}  // namespace spindle::detail
