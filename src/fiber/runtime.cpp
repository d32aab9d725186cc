#include "spindle/fiber/runtime.hpp"

#include <signal.h>

#include "fiber/scheduler.hpp"
#include "spindle/loop/signal.hpp"

namespace spindle {

namespace detail {

Runtime::Runtime(const Options& options) : scheduler_(new Scheduler(options)) {}

Runtime::~Runtime() {
  delete static_cast<Scheduler*>(scheduler_);
}

void Runtime::run_until_done() {
  static_cast<Scheduler*>(scheduler_)->run_until_done();
}

void Runtime::rethrow_unhandled() {
  static_cast<Scheduler*>(scheduler_)->rethrow_unhandled();
}

void Runtime::handle_shutdown_signals(const FiberRef& main, std::chrono::nanoseconds grace) {
  auto* s = static_cast<Scheduler*>(scheduler_);
  FiberControl* f = control_of(main);
  unsigned* received = &shutdown_signals_;  // shared by both subscriptions
  auto on_signal = [s, f, grace, received](const SignalEvent& event) {
    *received += event.count;
    if (f->state == FiberState::done) return;
    if (*received == 1) {
      s->shutdown(f, grace);
    } else {
      s->cancel_local(f);
    }
  };
  // The subscriptions end with the loop, after the main fiber.
  s->loop().signal(SIGINT, on_signal);
  s->loop().signal(SIGTERM, on_signal);
}

}  // namespace detail

Metrics metrics() {
  return detail::Scheduler::require("metrics").metrics();
}

Loop& current_loop() {
  return detail::Scheduler::require("current_loop").loop();
}

}  // namespace spindle
