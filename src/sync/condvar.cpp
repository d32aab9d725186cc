#include "spindle/sync/condvar.hpp"

#include <stdexcept>

namespace spindle {

bool CondVar::wait_ns(std::unique_lock<Mutex>& lock, std::int64_t deadline_ns) {
  if (!lock.owns_lock()) throw std::logic_error("spindle::CondVar::wait: the lock is not held");
  detail::FiberControl* f = detail::wait_context("CondVar::wait");
  detail::wait_checkpoint(f);
  detail::Waiter w(f);
  detail::WaitNode node;
  node.waiter = &w;
  lock_.lock();
  waiters_.push_back(&node);
  lock_.unlock();
  // Registered before the mutex is released: a notification sent after the
  // caller saw its condition false cannot be missed.
  Mutex* m = lock.mutex();
  m->unlock();
  std::uint32_t how = w.wait(deadline_ns);
  if (how != detail::Waiter::kDone) {
    lock_.lock();
    waiters_.remove(&node);
    lock_.unlock();
  }
  m->lock_uninterruptible();
  if (how == detail::Waiter::kCancelled) detail::throw_cancelled(f);
  return how == detail::Waiter::kDone;
}

void CondVar::notify_one() noexcept {
  lock_.lock();
  detail::WaitNode* n = detail::claim_first(waiters_);
  lock_.unlock();
  if (n != nullptr) n->waiter->complete();
}

void CondVar::notify_all() noexcept {
  detail::WakeChain chain;
  lock_.lock();
  while (detail::WaitNode* n = detail::claim_first(waiters_)) chain.add(n);
  lock_.unlock();
  chain.complete();
}

}  // namespace spindle
