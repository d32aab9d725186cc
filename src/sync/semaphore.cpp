#include "spindle/sync/semaphore.hpp"

#include <limits>
#include <stdexcept>
#include <string>

namespace spindle {

namespace {

void check_count(std::int64_t n, const char* what) {
  if (n < 1) throw std::invalid_argument(std::string("spindle::Semaphore::") + what + ": n < 1");
}

}  // namespace

Semaphore::Semaphore(std::int64_t initial) : count_(initial) {
  if (initial < 0) throw std::invalid_argument("spindle::Semaphore: negative initial count");
}

void Semaphore::serve(detail::WakeChain& chain) noexcept {
  while (detail::WaitNode* n = waiters_.front()) {
    auto want = static_cast<std::int64_t>(n->amount);
    if (want > count_) break;  // FIFO: the head waits for its permits
    waiters_.remove(n);
    if (n->waiter->try_claim()) {
      count_ -= want;
      chain.add(n);
    }
  }
}

bool Semaphore::try_acquire(std::int64_t n) {
  check_count(n, "try_acquire");
  detail::SpinGuard g(lock_);
  if (!waiters_.empty() || count_ < n) return false;
  count_ -= n;
  return true;
}

bool Semaphore::acquire_ns(std::int64_t n, std::int64_t deadline_ns) {
  check_count(n, "acquire");
  detail::WaitNode node;
  node.amount = static_cast<std::uint64_t>(n);
  return detail::wait_in_list(
      lock_, waiters_, node, "Semaphore::acquire", deadline_ns,
      [this, n] {
        if (!waiters_.empty() || count_ < n) return false;
        count_ -= n;
        return true;
      },
      // Leaving the queue may unblock the waiters behind us.
      [this](detail::WakeChain& chain) { serve(chain); });
}

void Semaphore::release(std::int64_t n) {
  check_count(n, "release");
  detail::WakeChain chain;
  lock_.lock();
  if (count_ > std::numeric_limits<std::int64_t>::max() - n) {
    lock_.unlock();
    throw std::overflow_error("spindle::Semaphore::release: the count would overflow");
  }
  count_ += n;
  serve(chain);
  lock_.unlock();
  chain.complete();
}

std::int64_t Semaphore::available() const noexcept {
  detail::SpinGuard g(lock_);
  return count_;
}

}  // namespace spindle
