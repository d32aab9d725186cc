// SpinLock's contended path.
#include "spindle/fiber/spin_lock.hpp"

#include <sched.h>

namespace spindle::detail {

void SpinLock::lock_slow() noexcept {
  for (unsigned spins = 0;; ++spins) {
    if (!flag_.load(std::memory_order_relaxed) && !flag_.exchange(true, std::memory_order_acquire))
      return;
    if (spins < 64) {
      cpu_relax();
    } else {
      ::sched_yield();  // the holder may have been preempted
    }
  }
}

}  // namespace spindle::detail
