// spindle::Event: a flag that fibers and threads wait for.
#pragma once

#include <chrono>
#include <cstdint>

#include "spindle/sync/detail/waiter.hpp"

namespace spindle {

// An event, manual or auto reset.
//
// - Manual reset: set() wakes every waiter and stays set (wait() returns at
//   once) until reset().
// - Auto reset (the default): set() wakes exactly one waiter; with nobody
//   waiting the event stays set until one wait() consumes it. Several set()
//   calls with nobody waiting count as one (it is a flag, not a counter).
//
// Cancellation and deadlines: only when wait() would wait. An auto-reset
// signal that was given to a waiter before its cancellation took effect is
// consumed by it (wait returns; the cancellation comes at the next
// suspension point); otherwise it goes to the next waiter or stays set. A
// signal is never lost.
class Event {
 public:
  enum class Mode : std::uint8_t { auto_reset, manual_reset };

  explicit Event(Mode mode = Mode::auto_reset, bool initially_set = false) noexcept
      : mode_(mode), set_(initially_set) {}
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  // From any fiber or thread.
  void set() noexcept;
  void reset() noexcept;
  bool is_set() const noexcept;

  void wait() { wait_ns(detail::kNoDeadline); }
  // Returns at once: whether the event was set (consuming it, auto reset).
  bool try_wait() noexcept;
  // False if the deadline passed first.
  template <class Rep, class Period>
  bool wait_for(const std::chrono::duration<Rep, Period>& timeout) {
    return wait_ns(detail::sync_deadline(timeout));
  }
  template <class Clock, class Duration>
  bool wait_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    return wait_ns(detail::sync_deadline_at(deadline));
  }

  Mode mode() const noexcept { return mode_; }

 private:
  bool wait_ns(std::int64_t deadline_ns);
  bool take_locked() noexcept;  // under lock_: the event is set (consumed if auto)

  const Mode mode_;
  mutable detail::SpinLock lock_;
  bool set_;
  detail::WaitList waiters_;
};

}  // namespace spindle
