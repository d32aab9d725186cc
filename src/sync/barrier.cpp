#include "spindle/sync/barrier.hpp"

#include <stdexcept>

namespace spindle {

Barrier::Barrier(std::int64_t parties) : parties_(parties) {
  if (parties < 1) throw std::invalid_argument("spindle::Barrier: fewer than one party");
}

void Barrier::complete_phase(detail::WakeChain& chain) noexcept {
  arrived_ = 0;
  ++phase_;
  while (detail::WaitNode* w = detail::claim_first(waiters_)) chain.add(w);
}

Barrier::Outcome Barrier::arrive_ns(std::int64_t deadline_ns) {
  detail::FiberControl* f = detail::wait_context("Barrier::arrive_and_wait");
  detail::WakeChain chain;
  detail::Waiter w(f);
  detail::WaitNode node;
  node.waiter = &w;
  lock_.lock();
  if (++arrived_ >= parties_) {
    complete_phase(chain);
    lock_.unlock();
    chain.complete();
    return kLeader;
  }
  if (f != nullptr && f->pending_cancels != 0) {
    --arrived_;
    lock_.unlock();
    detail::wait_checkpoint(f);  // throws unless shielded
    return arrive_ns(deadline_ns);
  }
  if (deadline_ns != detail::kNoDeadline && detail::monotonic_now_ns() >= deadline_ns) {
    --arrived_;
    lock_.unlock();
    return kTimedOut;
  }
  waiters_.push_back(&node);
  lock_.unlock();
  std::uint32_t how = w.wait(deadline_ns);
  if (how == detail::Waiter::kDone) return kFollower;
  lock_.lock();
  if (!node.linked) {
    // The phase completed (counting us) as we left: we passed.
    lock_.unlock();
    return kFollower;
  }
  waiters_.remove(&node);
  --arrived_;  // withdraw the arrival: the phase still needs N parties
  lock_.unlock();
  if (how == detail::Waiter::kTimedOut) return kTimedOut;
  detail::throw_cancelled(f);
}

void Barrier::arrive_and_drop() {
  detail::WakeChain chain;
  lock_.lock();
  if (parties_ == 0) {
    lock_.unlock();
    throw std::logic_error("spindle::Barrier::arrive_and_drop: no party left");
  }
  // As std::barrier: one party fewer for this phase and the next ones.
  --parties_;
  if (arrived_ > 0 && arrived_ >= parties_) complete_phase(chain);
  lock_.unlock();
  chain.complete();
}

std::int64_t Barrier::parties() const noexcept {
  detail::SpinGuard g(lock_);
  return parties_;
}

std::uint64_t Barrier::phase() const noexcept {
  detail::SpinGuard g(lock_);
  return phase_;
}

}  // namespace spindle
