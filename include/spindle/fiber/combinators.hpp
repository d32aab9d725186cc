// Waiting for several fibers: await_all, select, race; delayed fibers.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include "spindle/fiber/cancel.hpp"
#include "spindle/fiber/fiber.hpp"

namespace spindle {

namespace detail {

template <class T>
using ValueOrMonostate = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
ValueOrMonostate<T> join_value(Fiber<T>& f) {
  if constexpr (std::is_void_v<T>) {
    f.join();
    return {};
  } else {
    return f.join();
  }
}

// Waits until every fiber in `pending[0..n)` is done, shielded from the
// caller's own cancellation (the fibers were cancelled; their frames must
// unwind before ours does). Marks their errors as seen.
inline void await_cancelled(FiberControl** pending, std::size_t n) {
  shield([&] {
    while (n > 0) {
      std::size_t i = wait_any(pending, n);
      pending[i]->error_observed = true;
      pending[i] = pending[--n];
    }
  });
}

}  // namespace detail

// Waits for every fiber and returns their results in order (std::monostate
// for void fibers). If one fails, the others are cancelled and awaited, and
// its exception is rethrown. If the caller is cancelled while waiting, the
// fibers are cancelled and awaited too.
template <class... T>
auto await_all(Fiber<T>&... fibers) -> std::tuple<detail::ValueOrMonostate<T>...> {
  std::array<detail::FiberControl*, sizeof...(T)> pending{detail::control_of(fibers)...};
  std::size_t n = pending.size();
  try {
    while (n > 0) {
      std::size_t i = detail::wait_any(pending.data(), n);
      if (pending[i]->error) {
        detail::FiberControl* failed = pending[i];
        pending[i] = pending[--n];
        for (std::size_t k = 0; k < n; ++k) FiberRef::cancel_control(pending[k]);
        detail::await_cancelled(pending.data(), n);
        failed->error_observed = true;
        std::rethrow_exception(failed->error);
      }
      pending[i] = pending[--n];
    }
  } catch (const Cancelled&) {
    for (std::size_t k = 0; k < n; ++k) FiberRef::cancel_control(pending[k]);
    detail::await_cancelled(pending.data(), n);
    throw;
  }
  return std::tuple<detail::ValueOrMonostate<T>...>(detail::join_value(fibers)...);
}

// What select() returns: which fiber finished first, and its value.
template <class T>
struct Selected {
  std::size_t index;
  detail::ValueOrMonostate<T> value;
};

// Waits for the first of `fibers` to finish, cancels the others and waits
// for them to unwind, then returns the winner's index and value (or rethrows
// its exception). The losers' results are discarded.
template <class T, class... More>
requires(std::is_same_v<Fiber<T>, More>&&...) Selected<T> select(Fiber<T>& first, More&... rest) {
  std::array<Fiber<T>*, 1 + sizeof...(More)> all{&first, &rest...};
  std::array<detail::FiberControl*, 1 + sizeof...(More)> controls{detail::control_of(first),
                                                                  detail::control_of(rest)...};
  std::size_t winner = controls.size();
  try {
    winner = detail::wait_any(controls.data(), controls.size());
  } catch (const Cancelled&) {
    for (auto* c : controls) FiberRef::cancel_control(c);
    detail::await_cancelled(controls.data(), controls.size());
    throw;
  }
  std::array<detail::FiberControl*, sizeof...(More)> losers{};
  std::size_t n = 0;
  for (std::size_t i = 0; i < controls.size(); ++i) {
    if (i != winner) losers[n++] = controls[i];
  }
  for (std::size_t k = 0; k < n; ++k) FiberRef::cancel_control(losers[k]);
  detail::await_cancelled(losers.data(), n);
  return Selected<T>{winner, detail::join_value(*all[winner])};
}

// Runs each function in a child fiber and returns the first result, as
// select() does (the functions must return the same type).
template <class F, class... More>
auto race(F&& first, More&&... rest) {
  auto a = spin(std::forward<F>(first));
  std::tuple<decltype(spin(std::forward<More>(rest)))...> others{spin(std::forward<More>(rest))...};
  return std::apply([&](auto&... o) { return select(a, o...); }, others);
}

// Calls fn every `interval` until it returns false (when it returns bool)
// or the fiber is cancelled (then Cancelled propagates). The n-th call is
// due at start + n·interval: no drift. If a call overruns, the periods it
// missed are skipped, not bunched.
template <class F>
void every(std::chrono::nanoseconds interval, F&& fn) {
  if (interval.count() <= 0) throw std::invalid_argument("spindle::every: interval must be > 0");
  const auto start = std::chrono::steady_clock::now();
  for (std::int64_t n = 1;; ++n) {  // call n-1 runs now; call n is due at start + n·interval
    if constexpr (std::is_same_v<std::invoke_result_t<F&>, bool>) {
      if (!fn()) return;
    } else {
      fn();
    }
    const auto now = std::chrono::steady_clock::now();
    if (start + n * interval <= now) n = (now - start) / interval + 1;  // skip missed periods
    sleep_until(start + n * interval);
  }
}

// A fiber that sleeps for `delay`, then runs fn.
template <class F>
auto after(std::chrono::nanoseconds delay, F&& fn, SpinOptions options = {}) {
  return spin(
      [delay, f = std::forward<F>(fn)]() mutable {
        sleep(delay);
        return std::invoke(f);
      },
      options);
}

}  // namespace spindle
