#include "fiber/workers.hpp"

#include "fiber/scheduler.hpp"

namespace spindle::detail {

void Workers::fiber_done() noexcept {
  if (alive_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    stopping_.store(true, std::memory_order_release);
    wake_all();
  }
}

void Workers::fail(std::exception_ptr error) noexcept {
  if (!failed_.exchange(true)) failure_ = std::move(error);
  stopping_.store(true, std::memory_order_release);
  wake_all();
}

void Workers::wake_all() noexcept {
  for (Scheduler* s : schedulers_) {
    if (s != nullptr) s->loop().backend().wake();
  }
}

int Workers::claim_idle(unsigned except) noexcept {
  std::uint64_t mask = idle_.load(std::memory_order_acquire);
  if (except < kMaxWorkers) mask &= ~(std::uint64_t{1} << except);
  while (mask != 0) {
    unsigned i = static_cast<unsigned>(__builtin_ctzll(mask));
    std::uint64_t bit = std::uint64_t{1} << i;
    if ((idle_.fetch_and(~bit) & bit) != 0) return static_cast<int>(i);
    mask &= ~bit;  // someone else claimed it
  }
  return -1;
}

void Workers::wake_one_idle() noexcept {
  int i = claim_idle(kMaxWorkers);
  if (i >= 0) schedulers_[static_cast<unsigned>(i)]->loop().backend().wake();
}

}  // namespace spindle::detail
