#include "spindle/sync/throttler.hpp"

#include <cmath>
#include <stdexcept>
#include <thread>

#include "fiber/scheduler.hpp"
#include "spindle/fiber/fiber.hpp"

namespace spindle {

namespace {

std::int64_t interval_of(double per_second) {
  if (!(per_second > 0) || !std::isfinite(per_second)) {
    throw std::invalid_argument("spindle::Throttler: the rate must be > 0 per second");
  }
  double ns = 1e9 / per_second;
  return ns < 1 ? 1 : static_cast<std::int64_t>(std::llround(ns));
}

}  // namespace

Throttler::Throttler(double per_second) : interval_ns_(interval_of(per_second)) {}

Throttler::Throttler(std::chrono::nanoseconds interval) : interval_ns_(interval.count()) {
  if (interval.count() <= 0) throw std::invalid_argument("spindle::Throttler: interval <= 0");
}

void Throttler::wait() {
  std::int64_t now = detail::monotonic_now_ns();
  std::int64_t slot;
  {
    detail::SpinGuard g(lock_);
    slot = next_ns_ > now ? next_ns_ : now;
    next_ns_ = slot + interval_ns_;
  }
  if (slot <= now) return;
  auto when = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(slot));
  detail::Scheduler* s = detail::Scheduler::current();
  if (s != nullptr && s->running() != nullptr) {
    sleep_until(when);
  } else if (s != nullptr) {
    throw std::logic_error(
        "spindle::Throttler::wait: cannot block a runtime thread outside a fiber");
  } else {
    std::this_thread::sleep_until(when);
  }
}

bool Throttler::try_acquire() noexcept {
  std::int64_t now = detail::monotonic_now_ns();
  detail::SpinGuard g(lock_);
  if (next_ns_ > now) return false;
  next_ns_ = now + interval_ns_;
  return true;
}

}  // namespace spindle
