#include "spindle/sync/wait_group.hpp"

#include <stdexcept>

namespace spindle {

void WaitGroup::add(std::int64_t delta) {
  detail::WakeChain chain;
  lock_.lock();
  if (count_ + delta < 0) {
    lock_.unlock();
    throw std::logic_error("spindle::WaitGroup: negative counter (more done() than add())");
  }
  count_ += delta;
  if (count_ == 0) {
    while (detail::WaitNode* n = detail::claim_first(waiters_)) chain.add(n);
  }
  lock_.unlock();
  chain.complete();
}

std::int64_t WaitGroup::count() const noexcept {
  detail::SpinGuard g(lock_);
  return count_;
}

bool WaitGroup::wait_ns(std::int64_t deadline_ns) {
  detail::WaitNode node;
  return detail::wait_in_list(
      lock_, waiters_, node, "WaitGroup::wait", deadline_ns, [this] { return count_ == 0; },
      detail::NoLeave{});
}

}  // namespace spindle
