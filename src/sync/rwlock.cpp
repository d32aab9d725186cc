#include "spindle/sync/rwlock.hpp"

namespace spindle {

void RWLock::serve(detail::WakeChain& chain) noexcept {
  if (writer_) return;
  while (detail::WaitNode* w = writers_waiting_.front()) {
    if (readers_ != 0) return;  // the writer waits for the readers to leave
    writers_waiting_.remove(w);
    if (w->waiter->try_claim()) {
      writer_ = true;
      chain.add(w);
      return;
    }
  }
  while (detail::WaitNode* r = detail::claim_first(readers_waiting_)) {
    ++readers_;
    chain.add(r);
  }
}

bool RWLock::try_lock() noexcept {
  detail::SpinGuard g(lock_);
  if (!can_write()) return false;
  writer_ = true;
  return true;
}

bool RWLock::try_lock_shared() noexcept {
  detail::SpinGuard g(lock_);
  if (!can_read()) return false;
  ++readers_;
  return true;
}

bool RWLock::lock_ns(bool shared, std::int64_t deadline_ns) {
  detail::WaitNode node;
  return detail::wait_in_list(
      lock_, shared ? readers_waiting_ : writers_waiting_, node,
      shared ? "RWLock::lock_shared" : "RWLock::lock", deadline_ns,
      [this, shared] {
        if (shared) {
          if (!can_read()) return false;
          ++readers_;
        } else {
          if (!can_write()) return false;
          writer_ = true;
        }
        return true;
      },
      // A writer that leaves may let the readers in.
      [this](detail::WakeChain& chain) { serve(chain); });
}

void RWLock::unlock() noexcept {
  detail::WakeChain chain;
  lock_.lock();
  writer_ = false;
  serve(chain);
  lock_.unlock();
  chain.complete();
}

void RWLock::unlock_shared() noexcept {
  detail::WakeChain chain;
  lock_.lock();
  --readers_;
  serve(chain);
  lock_.unlock();
  chain.complete();
}

std::uint32_t RWLock::readers() const noexcept {
  detail::SpinGuard g(lock_);
  return readers_;
}

bool RWLock::writer() const noexcept {
  detail::SpinGuard g(lock_);
  return writer_;
}

}  // namespace spindle
