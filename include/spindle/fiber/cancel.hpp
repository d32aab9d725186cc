// Cancellation, timeouts and shields.
#pragma once

#include <chrono>
#include <optional>
#include <type_traits>
#include <utility>

#include "spindle/fiber/fiber.hpp"
#include "spindle/loop/timer_heap.hpp"

namespace spindle {

// Thrown at a suspension point of a cancelled fiber (FiberRef::cancel) or
// inside an expired cancel_after / move_on_after scope. Deliberately not a
// std::exception: `catch (const std::exception&)` cannot swallow it. Let it
// propagate; the scope it belongs to catches it.
class Cancelled {
 public:
  explicit Cancelled(const void* scope = nullptr) noexcept : scope_(scope) {}
  const char* what() const noexcept { return "spindle::Cancelled"; }
  // The cancel scope that was cancelled (nullptr: the fiber itself).
  const void* scope() const noexcept { return scope_; }

 private:
  const void* scope_;
};

// Thrown by cancel_after() when its deadline expired before the function
// returned. Not a std::exception either.
class TimedOut {
 public:
  const char* what() const noexcept { return "spindle::TimedOut"; }
};

namespace detail {

// A region of a fiber's code that can be cancelled on its own (by a
// deadline), or that shields its contents from outer cancellation. Lives on
// the fiber's stack; scopes nest as a linked list from the innermost.
struct CancelScope {
  CancelScope* outer = nullptr;
  FiberControl* fiber = nullptr;
  bool shield = false;
  bool cancelled = false;
  bool wakes_on_shutdown = false;  // until_shutdown(): FiberRef::shutdown cancels it
  // The deadline: a precise loop timer, or a member of a coarse time slot
  // shared with other deadlines (Options::coarse_timeouts).
  struct Deadline : TimerNode {
    CancelScope* scope = nullptr;
    std::int64_t due_ns = 0;  // 0: none
    Deadline* slot_next = nullptr;
    Deadline* slot_prev = nullptr;
    void* slot = nullptr;
    bool armed = false;  // counted in the fiber's pins
  } deadline;

  // Enters the scope on the running fiber; a deadline of 0 means none.
  CancelScope(bool shield, std::int64_t deadline_ns);
  ~CancelScope();
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;

  void cancel() noexcept;
  // Moves the deadline (0: none). No effect once the scope is cancelled.
  void set_deadline(std::int64_t deadline_ns) noexcept;
  // Whether `c` was thrown for this scope.
  bool owns(const Cancelled& c) const noexcept { return c.scope() == this; }
};

std::int64_t deadline_after(std::chrono::nanoseconds d) noexcept;

}  // namespace detail

// The deadline of a cancel_after / move_on_after scope, handed to a function
// that takes a `Timeout&`: reset() pushes it back (an idle timeout renewed
// on each request). Valid only inside the function.
class Timeout {
 public:
  // The deadline becomes now + the scope's original timeout (or `timeout`).
  void reset() noexcept { scope_->set_deadline(detail::deadline_after(timeout_)); }
  void reset(std::chrono::nanoseconds timeout) noexcept {
    scope_->set_deadline(detail::deadline_after(timeout));
  }
  // Whether the deadline has expired (the scope is cancelled).
  bool expired() const noexcept { return scope_->cancelled; }

 private:
  Timeout(detail::CancelScope* scope, std::chrono::nanoseconds timeout) noexcept
      : scope_(scope), timeout_(timeout) {}
  template <class F>
  friend auto cancel_after(std::chrono::nanoseconds, F&&);
  template <class F>
  friend auto move_on_after(std::chrono::nanoseconds, F&&);
  detail::CancelScope* scope_;
  std::chrono::nanoseconds timeout_;
};

namespace detail {

template <class F>
decltype(auto) call_with_timeout(F& fn, Timeout& timeout) {
  if constexpr (std::is_invocable_v<F&, Timeout&>) {
    return fn(timeout);
  } else {
    (void)timeout;
    return fn();
  }
}

template <class F>
using TimeoutResult = std::conditional_t<std::is_invocable_v<F&, Timeout&>,
                                         std::invoke_result<F&, Timeout&>, std::invoke_result<F&>>;

}  // namespace detail

// Throws spindle::Cancelled if the calling fiber has a cancellation pending
// that no shield defers; otherwise does nothing. Every blocking spindle call
// does this; call it in long CPU-bound loops to make them cancellable.
void checkpoint();

// Whether the calling fiber has a cancellation pending (no throw).
bool cancellation_pending() noexcept;

// Runs fn(). If `timeout` expires first, fn's current suspension point
// throws Cancelled, fn unwinds, and cancel_after throws spindle::TimedOut.
// Scopes nest: the innermost expiring deadline wins, and an outer deadline
// that expires inside an inner scope is not swallowed by it.
// fn may take a `spindle::Timeout&` to push its deadline back.
template <class F>
auto cancel_after(std::chrono::nanoseconds timeout, F&& fn) {
  using T = typename detail::TimeoutResult<F>::type;
  detail::CancelScope scope(false, detail::deadline_after(timeout));
  Timeout handle(&scope, timeout);
  try {
    if constexpr (std::is_void_v<T>) {
      detail::call_with_timeout(fn, handle);
      return;
    } else {
      return T(detail::call_with_timeout(fn, handle));
    }
  } catch (const Cancelled& c) {
    if (!scope.owns(c)) throw;
  }
  throw TimedOut();
}

// Like cancel_after, but an expired timeout returns an empty optional (for
// a void fn: false) instead of throwing.
template <class F>
auto move_on_after(std::chrono::nanoseconds timeout, F&& fn) {
  using T = typename detail::TimeoutResult<F>::type;
  detail::CancelScope scope(false, detail::deadline_after(timeout));
  Timeout handle(&scope, timeout);
  if constexpr (std::is_void_v<T>) {
    try {
      detail::call_with_timeout(fn, handle);
      return true;
    } catch (const Cancelled& c) {
      if (!scope.owns(c)) throw;
    }
    return false;
  } else {
    try {
      return std::optional<T>(detail::call_with_timeout(fn, handle));
    } catch (const Cancelled& c) {
      if (!scope.owns(c)) throw;
    }
    return std::optional<T>();
  }
}

// Runs fn() until it returns or the calling fiber (or an ancestor) is asked
// to shut down (FiberRef::shutdown): then fn's current suspension point
// unwinds and until_shutdown returns an empty optional (false for a void
// fn). A fiber already shutting down gets the empty result at fn's first
// suspension point. For the waits a server gives up on shutdown: accept,
// reading the next request.
template <class F>
auto until_shutdown(F&& fn);

// Runs fn() with cancellation of the fiber (and of enclosing scopes)
// deferred until it returns: for cleanup that must wait (flush, close,
// say goodbye). With a timeout, the shield itself expires and fn is
// cancelled then (spindle::TimedOut is thrown, as by cancel_after).
template <class F>
auto shield(F&& fn) -> std::invoke_result_t<F&> {
  detail::CancelScope scope(true, 0);
  return std::forward<F>(fn)();
}
template <class F>
auto shield(std::chrono::nanoseconds timeout, F&& fn) -> std::invoke_result_t<F&> {
  detail::CancelScope scope(true, detail::deadline_after(timeout));
  try {
    return std::forward<F>(fn)();
  } catch (const Cancelled& c) {
    if (!scope.owns(c)) throw;
  }
  throw TimedOut();
}

namespace detail {
// Enters a scope that FiberRef::shutdown cancels (cancelled at once if the
// fiber is shutting down already).
void mark_wakes_on_shutdown(CancelScope& scope) noexcept;
}  // namespace detail

template <class F>
auto until_shutdown(F&& fn) {
  using T = std::invoke_result_t<F&>;
  detail::CancelScope scope(false, 0);
  detail::mark_wakes_on_shutdown(scope);
  if constexpr (std::is_void_v<T>) {
    try {
      std::forward<F>(fn)();
      return true;
    } catch (const Cancelled& c) {
      if (!scope.owns(c)) throw;
    }
    return false;
  } else {
    try {
      return std::optional<T>(std::forward<F>(fn)());
    } catch (const Cancelled& c) {
      if (!scope.owns(c)) throw;
    }
    return std::optional<T>();
  }
}

}  // namespace spindle
