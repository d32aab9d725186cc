// Signals as fiber calls, over the loop's signalfd.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <vector>

#include "spindle/fiber/fiber.hpp"
#include "spindle/io/result.hpp"
#include "spindle/loop/signal.hpp"

namespace spindle {

// A subscription of the calling fiber's runtime to some signals, taken one
// delivery at a time with next(). While it lives the signals are blocked
// in the runtime's thread and read from the loop's signalfd (Loop::signal:
// call block_signals() in main() before any thread starts, so that a
// signal sent to the process cannot reach another thread). Deliveries that
// come while nobody waits are queued (at most 64; beyond that the oldest
// is dropped and the next event's `count` includes it: standard signals
// merge anyway). Runtime thread only; move-only.
class SignalWatch {
 public:
  // Throws std::system_error (EINVAL) for a bad signal number, and
  // std::logic_error outside a fiber.
  explicit SignalWatch(std::initializer_list<int> signals);
  explicit SignalWatch(const std::vector<int>& signals);
  SignalWatch(SignalWatch&&) noexcept;
  SignalWatch& operator=(SignalWatch&&) noexcept;
  ~SignalWatch();

  // The next delivery; waits for one (a cancellation point). nullopt if
  // the deadline passed first.
  std::optional<SignalEvent> next(Deadline deadline = {});

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Waits for the first of `signals` to arrive and returns its delivery
// (signo, sender ...). A cancellation point; nullopt if the deadline passed.
// Deliveries before the call are not seen: keep a SignalWatch to miss none.
std::optional<SignalEvent> wait_signal(std::initializer_list<int> signals, Deadline deadline = {});

// Spins a child fiber of the caller that calls fn(const SignalEvent&) for
// each delivery of `signals`, in that fiber (so fn may suspend), until it
// is cancelled or fn throws. The subscription exists when on_signal
// returns. The caller's scope waits for its children: cancel the returned
// fiber when done.
Fiber<void> on_signal(std::initializer_list<int> signals,
                      std::function<void(const SignalEvent&)> fn);

}  // namespace spindle
