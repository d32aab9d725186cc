#include "spindle/sync/latch.hpp"

#include <stdexcept>

namespace spindle {

Latch::Latch(std::int64_t count) : count_(count) {
  if (count < 0) throw std::invalid_argument("spindle::Latch: negative count");
}

void Latch::count_down(std::int64_t n) {
  detail::WakeChain chain;
  lock_.lock();
  if (n < 0 || n > count_) {
    lock_.unlock();
    throw std::logic_error("spindle::Latch::count_down: below zero");
  }
  count_ -= n;
  if (count_ == 0) {
    while (detail::WaitNode* w = detail::claim_first(waiters_)) chain.add(w);
  }
  lock_.unlock();
  chain.complete();
}

bool Latch::try_wait() const noexcept {
  detail::SpinGuard g(lock_);
  return count_ == 0;
}

std::int64_t Latch::count() const noexcept {
  detail::SpinGuard g(lock_);
  return count_;
}

bool Latch::wait_ns(std::int64_t deadline_ns) {
  detail::WaitNode node;
  return detail::wait_in_list(
      lock_, waiters_, node, "Latch::wait", deadline_ns, [this] { return count_ == 0; },
      detail::NoLeave{});
}

}  // namespace spindle
