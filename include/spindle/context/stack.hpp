// Fiber stacks: mmap'ed, guard page below, pooled.
#pragma once

#include <cstddef>
#include <cstdint>

namespace spindle::context {

// One fiber stack: a private anonymous mapping whose lowest page is, when
// guarded, PROT_NONE, so running off the bottom faults instead of corrupting
// whatever lies below. Pages are committed by the kernel only when touched.
struct Stack {
  std::byte* base = nullptr;     // start of the mapping (the guard page, if any)
  std::size_t mapping_size = 0;  // whole mapping, guard included
  std::size_t guard_size = 0;    // 0 or one page

  std::byte* low() const noexcept { return base + guard_size; }
  std::byte* top() const noexcept { return base + mapping_size; }
  std::size_t usable_size() const noexcept { return mapping_size - guard_size; }
  bool guard_contains(const void* addr) const noexcept {
    auto* p = static_cast<const std::byte*>(addr);
    return guard_size != 0 && p >= base && p < base + guard_size;
  }
  explicit operator bool() const noexcept { return base != nullptr; }
};

// What a StackPool hands out.
struct StackOptions {
  // Usable bytes per stack, rounded up to whole pages. Virtual: a fiber that
  // touches 4 KiB of it costs 4 KiB of memory.
  std::size_t size = 128 * 1024;
  // A PROT_NONE page below each stack. It costs a second kernel mapping per
  // stack, which counts against vm.max_map_count (65530 by default): a process
  // with more than ~32,000 guarded fibers alive needs that limit raised.
  bool guard = true;
  // How many released stacks are kept for reuse; beyond that they are unmapped.
  std::size_t max_cached = 1024;
};

// Allocates stacks of one size and keeps released ones for reuse, so spawning
// costs no system call once warm. The free list is threaded through the
// cached stacks themselves: the pool allocates nothing on the heap.
// Not thread-safe: one pool per worker.
class StackPool {
 public:
  explicit StackPool(StackOptions options = {});
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  // A cached stack, or a new mapping. Throws std::system_error naming mmap or
  // mprotect (ENOMEM there usually means vm.max_map_count was reached).
  Stack allocate();
  // Allocates a stack of another size, bypassing the cache.
  Stack allocate(std::size_t size);
  // Returns a stack to the cache, or unmaps it when the cache is full or the
  // stack is not of the pool's size.
  void release(Stack stack) noexcept;

  std::size_t cached() const noexcept { return cached_count_; }
  const StackOptions& options() const noexcept { return options_; }

  // Maps a stack of `size` usable bytes without a pool.
  static Stack map(std::size_t size, bool guard);
  static void unmap(Stack stack) noexcept;
  // Tells ASan that no frames live on `stack` any more (a no-op in other
  // builds): for a stack whose context ended and that is started again.
  static void forget_frames(const Stack& stack) noexcept;

 private:
  struct FreeNode;
  StackOptions options_;
  FreeNode* free_ = nullptr;
  std::size_t cached_count_ = 0;
};

}  // namespace spindle::context
