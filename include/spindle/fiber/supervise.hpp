// Supervision: children restarted by policy, within an intensity limit.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "spindle/fiber/cancel.hpp"
#include "spindle/fiber/combinators.hpp"
#include "spindle/fiber/fiber.hpp"
#include "spindle/loop/loop.hpp"

namespace spindle {

// When a supervised child is started again.
enum class Restart {
  never,     // a child that ends stays ended; a failure ends the supervisor with it
  on_error,  // restarted when it fails (an exception other than Cancelled)
  always,    // restarted however it ends
};

// What restarting one child does to the others.
enum class Strategy {
  one_for_one,  // only that child
  one_for_all,  // all children are cancelled and started again together
};

// How supervise() manages its children.
struct SuperviseOptions {
  Restart restart = Restart::on_error;
  Strategy strategy = Strategy::one_for_one;
  // At most max_restarts restarts within `within`; one more and the
  // supervisor gives up: it cancels the children and throws
  // SupervisorGaveUp.
  int max_restarts = 3;
  std::chrono::nanoseconds within = std::chrono::seconds(5);
  // Called (in the supervisor's fiber) each time a child ends: its index and
  // its exception (null when it returned normally).
  std::function<void(std::size_t child, std::exception_ptr error)> on_exit;
};

// Thrown by supervise() when restarts exceeded the intensity limit. The
// child's last failure is the nested exception (std::rethrow_if_nested).
class SupervisorGaveUp : public std::runtime_error, public std::nested_exception {
 public:
  explicit SupervisorGaveUp(const std::string& what) : std::runtime_error(what) {}
};

// Runs each function as a child fiber of the caller, restarts children
// according to `options`, and returns when no child is left running (every
// child ended and was not restarted). Cancelling the caller cancels the
// children and waits for them. Child failures are handled here and never
// propagate to the caller's other children.
template <class... F>
void supervise(SuperviseOptions options, F&&... fns) {
  std::vector<std::function<void()>> specs{std::function<void()>(std::forward<F>(fns))...};
  const std::size_t n = specs.size();
  std::vector<Fiber<void>> kids(n);
  std::vector<bool> running(n, false);
  std::deque<std::int64_t> restarts;  // when recent restarts happened
  auto start = [&](std::size_t i) {
    kids[i] = spin([&specs, i] { specs[i](); }, {.name = "supervised"});
    running[i] = true;
  };
  // Cancels every running child and waits for all of them, shielded.
  auto stop_all = [&] {
    std::vector<detail::FiberControl*> live;
    for (std::size_t i = 0; i < n; ++i) {
      if (running[i]) {
        FiberRef::cancel_control(detail::control_of(kids[i]));
        live.push_back(detail::control_of(kids[i]));
        running[i] = false;
      }
    }
    detail::await_cancelled(live.data(), live.size());
  };
  for (std::size_t i = 0; i < n; ++i) start(i);
  try {
    for (;;) {
      std::vector<detail::FiberControl*> live;
      std::vector<std::size_t> index;
      for (std::size_t i = 0; i < n; ++i) {
        if (running[i]) {
          live.push_back(detail::control_of(kids[i]));
          index.push_back(i);
        }
      }
      if (live.empty()) return;
      std::size_t i = index[detail::wait_any(live.data(), live.size())];
      running[i] = false;
      std::exception_ptr error;
      try {
        kids[i].join();
      } catch (const Cancelled&) {
        error = std::current_exception();
      } catch (...) {
        error = std::current_exception();
      }
      if (options.on_exit) options.on_exit(i, error);
      bool failed = false;
      if (error) {
        try {
          std::rethrow_exception(error);
        } catch (const Cancelled&) {
        } catch (...) {
          failed = true;
        }
      }
      if (failed && options.restart == Restart::never) {
        stop_all();
        std::rethrow_exception(error);  // like a nursery: the others were cancelled
      }
      bool again =
          options.restart == Restart::always || (options.restart == Restart::on_error && failed);
      if (!again) continue;
      std::int64_t now = Loop::now_ns();
      while (!restarts.empty() && now - restarts.front() > options.within.count()) {
        restarts.pop_front();
      }
      if (static_cast<int>(restarts.size()) >= options.max_restarts) {
        stop_all();
        try {
          if (error) std::rethrow_exception(error);
          throw std::runtime_error("child ended");
        } catch (...) {
          std::throw_with_nested(SupervisorGaveUp(
              "spindle::supervise: more than " + std::to_string(options.max_restarts) +
              " restarts within the intensity window; giving up"));
        }
      }
      restarts.push_back(now);
      if (options.strategy == Strategy::one_for_all) {
        stop_all();
        for (std::size_t k = 0; k < n; ++k) start(k);
      } else {
        start(i);
      }
    }
  } catch (const Cancelled&) {
    stop_all();
    throw;
  }
}

}  // namespace spindle
