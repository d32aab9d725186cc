// A worker's queue of fibers that other workers may steal.
#pragma once

#include <atomic>
#include <cstdint>

#include "spindle/fiber/fiber.hpp"

namespace spindle::detail {

// A bounded ring of never-run fibers (the design of Go's per-P run queue):
// only the owning worker pushes (a store and a release of the tail); the
// owner and thieves take from the head with a compare-and-swap, thieves
// half of what is there at once. FIFO for everyone. Slots are relaxed
// atomics: a thief may read a slot the owner is about to reuse, and then
// loses its compare-and-swap.
class StealRing {
 public:
  static constexpr std::uint32_t kSize = 256;

  // Owner only. False when full (the caller keeps the fiber elsewhere).
  bool push(FiberControl* f) noexcept {
    std::uint32_t h = head_.load(std::memory_order_acquire);
    std::uint32_t t = tail_.load(std::memory_order_relaxed);
    if (t - h >= kSize) return false;
    slots_[t % kSize].store(f, std::memory_order_relaxed);
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

  // Owner only: the oldest fiber, or nullptr.
  FiberControl* pop() noexcept {
    std::uint32_t h = head_.load(std::memory_order_acquire);
    for (;;) {
      std::uint32_t t = tail_.load(std::memory_order_relaxed);
      if (t == h) return nullptr;
      FiberControl* f = slots_[h % kSize].load(std::memory_order_relaxed);
      if (head_.compare_exchange_weak(h, h + 1, std::memory_order_acq_rel,
                                      std::memory_order_acquire))
        return f;
    }
  }

  // Any thread: takes half (rounded up) of the fibers into `out` (room for
  // kSize / 2). Returns how many.
  std::uint32_t steal_half(FiberControl** out) noexcept {
    for (;;) {
      std::uint32_t h = head_.load(std::memory_order_acquire);
      std::uint32_t t = tail_.load(std::memory_order_acquire);
      std::uint32_t n = t - h;
      n -= n / 2;
      if (n == 0) return 0;
      if (n > kSize / 2) continue;  // head and tail read at different moments
      for (std::uint32_t i = 0; i < n; ++i) {
        out[i] = slots_[(h + i) % kSize].load(std::memory_order_relaxed);
      }
      if (head_.compare_exchange_weak(h, h + n, std::memory_order_acq_rel,
                                      std::memory_order_relaxed))
        return n;
    }
  }

  // A snapshot, for the owner's choices and for idle workers' checks.
  bool empty() const noexcept {
    return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire);
  }
  std::uint32_t size() const noexcept {
    return tail_.load(std::memory_order_acquire) - head_.load(std::memory_order_acquire);
  }

 private:
  alignas(64) std::atomic<std::uint32_t> head_{0};
  alignas(64) std::atomic<std::uint32_t> tail_{0};
  std::atomic<FiberControl*> slots_[kSize] = {};
};

}  // namespace spindle::detail
