#include "spindle/sync/mutex.hpp"

namespace spindle {

bool Mutex::lock_slow(std::int64_t deadline_ns, bool interruptible) {
  detail::FiberControl* f = detail::wait_context("Mutex::lock");
  if (interruptible) detail::wait_checkpoint(f);  // it is held: lock() would wait
  detail::Waiter w(f);
  detail::WaitNode node;
  node.waiter = &w;
  lock_.lock();
  // Take it if it is free; otherwise mark it contended so that unlock()
  // comes here to hand it over.
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (s == kUnlocked) {
      if (state_.compare_exchange_weak(s, kLocked, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        lock_.unlock();
        return true;
      }
    } else if (s == kLocked) {
      if (state_.compare_exchange_weak(s, kContended, std::memory_order_relaxed,
                                       std::memory_order_relaxed))
        break;
    } else {
      break;
    }
  }
  if (deadline_ns != detail::kNoDeadline && detail::monotonic_now_ns() >= deadline_ns) {
    lock_.unlock();
    return false;
  }
  waiters_.push_back(&node);
  lock_.unlock();
  std::uint32_t how = w.wait(deadline_ns, interruptible);
  if (how == detail::Waiter::kDone) return true;  // handed over by unlock()
  lock_.lock();
  waiters_.remove(&node);
  if (waiters_.empty()) {
    std::uint32_t c = kContended;
    state_.compare_exchange_strong(c, kLocked, std::memory_order_relaxed);
  }
  lock_.unlock();
  if (how == detail::Waiter::kTimedOut) return false;
  detail::throw_cancelled(f);
}

void Mutex::lock_uninterruptible() noexcept {
  std::uint32_t expected = kUnlocked;
  if (state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                     std::memory_order_relaxed))
    return;
  // wait_context throws only in a loop callback, where CondVar cannot wait
  // in the first place; lock_slow cannot time out or be cancelled here.
  lock_slow(detail::kNoDeadline, false);
}

void Mutex::unlock_slow() noexcept {
  lock_.lock();
  if (detail::WaitNode* n = detail::claim_first(waiters_)) {
    // Hand-off: the lock stays held and now belongs to the waiter.
    if (waiters_.empty()) state_.store(kLocked, std::memory_order_relaxed);
    lock_.unlock();
    n->waiter->complete();
    return;
  }
  state_.store(kUnlocked, std::memory_order_release);
  lock_.unlock();
}

}  // namespace spindle
