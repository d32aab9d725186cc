#include "spindle/fiber/runtime.hpp"

#include "fiber/scheduler.hpp"

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

}  // namespace detail

Metrics metrics() {
  return detail::Scheduler::require("metrics").metrics();
}

Loop& current_loop() {
  return detail::Scheduler::require("current_loop").loop();
}

}  // namespace spindle
