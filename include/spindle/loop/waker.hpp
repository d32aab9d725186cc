// Wake a loop from another thread or process: an eventfd (Loop::waker).
#pragma once

#include <cstdint>
#include <memory>

#include "spindle/loop/loop.hpp"

namespace spindle {

namespace detail {
struct WakerState;
}

// A handle to a waker made by Loop::waker. Copies share one eventfd, which
// stays open while any copy (or the loop's watch of it) lives, so a copy
// held by another thread can never write to a closed or reused descriptor.
//
// wake() is thread-safe, async-signal-safe, and works from a forked child
// (the eventfd is inherited by fork, and closed by exec). Wakes coalesce:
// the loop calls the callback once per turn however many wakes came, and
// passes their number.
class Waker {
 public:
  Waker() noexcept = default;
  // One write(2) to the eventfd; never blocks. Any thread, any process.
  void wake() const noexcept;
  // Stops the loop's watch: no callback after this. Call it on the loop's
  // thread, while the loop lives. Idempotent; wake() stays harmless
  // afterwards, even once the loop is gone.
  void close() noexcept;
  // Whether the loop still watches it (loop thread, while the loop lives).
  bool active() const noexcept;
  // The eventfd, e.g. to learn its number in a forked child.
  int fd() const noexcept;
  explicit operator bool() const noexcept { return state_ != nullptr; }

 private:
  friend class Loop;
  explicit Waker(std::shared_ptr<detail::WakerState> state) noexcept : state_(std::move(state)) {}
  std::shared_ptr<detail::WakerState> state_;
};

}  // namespace spindle
