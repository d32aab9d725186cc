// Timers ordered by deadline: a 4-ary min-heap of intrusive nodes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace spindle {

// A timer that the owner embeds (a fiber's sleep keeps one on its stack).
// Deadlines are nanoseconds on CLOCK_MONOTONIC; equal deadlines fire in the
// order the timers were inserted.
struct TimerNode {
  static constexpr std::size_t kNotQueued = ~std::size_t{0};
  std::int64_t deadline_ns = 0;
  void (*fire)(TimerNode* self) noexcept = nullptr;
  std::uint64_t sequence = 0;      // insertion order, for ties
  std::size_t index = kNotQueued;  // position in the heap

  bool queued() const noexcept { return index != kNotQueued; }
};

// Insert, cancel and pop are O(log n) with a 4-ary heap (shallower than a
// binary one, and its children share cache lines), and the node records its
// own position so cancel needs no search. A million timers cost 8 MB of
// pointers. Not thread-safe: one heap per loop.
class TimerHeap {
 public:
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  TimerNode* top() const noexcept { return heap_.empty() ? nullptr : heap_.front(); }

  // Queues a node that is not queued. May allocate (the heap's array grows).
  void push(TimerNode* node);
  // Removes a queued node; a node that is not queued is left alone.
  void remove(TimerNode* node) noexcept;
  // Removes and returns the earliest node, or nullptr.
  TimerNode* pop() noexcept;
  void reserve(std::size_t n) { heap_.reserve(n); }
  // The sequence number the next push() will get.
  std::uint64_t next_sequence() const noexcept { return next_sequence_; }

 private:
  bool before(const TimerNode* a, const TimerNode* b) const noexcept {
    return a->deadline_ns < b->deadline_ns ||
           (a->deadline_ns == b->deadline_ns && a->sequence < b->sequence);
  }
  void place(std::size_t i, TimerNode* node) noexcept {
    heap_[i] = node;
    node->index = i;
  }
  void sift_up(std::size_t i, TimerNode* node) noexcept;
  void sift_down(std::size_t i, TimerNode* node) noexcept;

  std::vector<TimerNode*> heap_;
  std::uint64_t next_sequence_ = 0;
};

}  // namespace spindle
