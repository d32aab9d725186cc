#include "spindle/sync/event.hpp"

namespace spindle {

bool Event::take_locked() noexcept {
  if (!set_) return false;
  if (mode_ == Mode::auto_reset) set_ = false;
  return true;
}

void Event::set() noexcept {
  detail::WakeChain chain;
  lock_.lock();
  if (mode_ == Mode::manual_reset) {
    set_ = true;
    while (detail::WaitNode* n = detail::claim_first(waiters_)) chain.add(n);
  } else if (detail::WaitNode* n = detail::claim_first(waiters_)) {
    chain.add(n);  // the signal goes straight to this waiter
  } else {
    set_ = true;
  }
  lock_.unlock();
  chain.complete();
}

void Event::reset() noexcept {
  detail::SpinGuard g(lock_);
  set_ = false;
}

bool Event::is_set() const noexcept {
  detail::SpinGuard g(lock_);
  return set_;
}

bool Event::try_wait() noexcept {
  detail::SpinGuard g(lock_);
  return take_locked();
}

bool Event::wait_ns(std::int64_t deadline_ns) {
  detail::WaitNode node;
  return detail::wait_in_list(
      lock_, waiters_, node, "Event::wait", deadline_ns, [this] { return take_locked(); },
      detail::NoLeave{});
}

}  // namespace spindle
