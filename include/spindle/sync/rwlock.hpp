// spindle::RWLock: a readers-writer lock with writer preference.
#pragma once

#include <chrono>
#include <cstdint>

#include "spindle/sync/detail/waiter.hpp"

namespace spindle {

// Many readers or one writer. Meets SharedTimedLockable, so std::shared_lock
// and std::unique_lock work.
//
// Writer preference: once a writer waits, new readers queue behind it; when
// the lock is released, waiting writers go first (in FIFO order), and the
// readers that waited meanwhile are admitted together when no writer waits.
// So writers are never starved by a stream of readers; a stream of writers
// can starve readers (choose it when writes are rare and must not wait).
//
// Cancellation and deadlines: only when the call would wait. A waiter that
// was granted the lock before its cancellation took effect keeps it; one
// that leaves lets the others in (a reader queued behind a writer that gave
// up is admitted at once).
class RWLock {
 public:
  RWLock() noexcept = default;
  RWLock(const RWLock&) = delete;
  RWLock& operator=(const RWLock&) = delete;

  // Exclusive (writer) side.
  void lock() { lock_ns(false, detail::kNoDeadline); }
  bool try_lock() noexcept;
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) {
    return lock_ns(false, detail::sync_deadline(timeout));
  }
  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    return lock_ns(false, detail::sync_deadline_at(deadline));
  }
  template <class Rep, class Period>
  bool lock_for(const std::chrono::duration<Rep, Period>& timeout) {
    return try_lock_for(timeout);
  }
  void unlock() noexcept;

  // Shared (reader) side.
  void lock_shared() { lock_ns(true, detail::kNoDeadline); }
  bool try_lock_shared() noexcept;
  template <class Rep, class Period>
  bool try_lock_shared_for(const std::chrono::duration<Rep, Period>& timeout) {
    return lock_ns(true, detail::sync_deadline(timeout));
  }
  template <class Clock, class Duration>
  bool try_lock_shared_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    return lock_ns(true, detail::sync_deadline_at(deadline));
  }
  template <class Rep, class Period>
  bool lock_shared_for(const std::chrono::duration<Rep, Period>& timeout) {
    return try_lock_shared_for(timeout);
  }
  void unlock_shared() noexcept;

  // Snapshots, for tests and assertions.
  std::uint32_t readers() const noexcept;
  bool writer() const noexcept;

 private:
  bool lock_ns(bool shared, std::int64_t deadline_ns);
  bool can_read() const noexcept { return !writer_ && writers_waiting_.empty(); }
  bool can_write() const noexcept { return !writer_ && readers_ == 0 && writers_waiting_.empty(); }
  void serve(detail::WakeChain& chain) noexcept;  // under lock_

  mutable detail::SpinLock lock_;
  std::uint32_t readers_ = 0;
  bool writer_ = false;
  detail::WaitList readers_waiting_;
  detail::WaitList writers_waiting_;
};

}  // namespace spindle
