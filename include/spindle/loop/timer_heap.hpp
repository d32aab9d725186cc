// Timers ordered by deadline: a 4-ary min-heap of intrusive nodes.
#pragma once

#include <cstddef>
#include <cstdint>

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
// binary one). The heap's array holds each node's deadline next to its
// pointer (16 bytes), so comparisons read the array only (a node is read
// for ties alone), and it is laid out so that the four children of a node
// share one 64-byte cache line. The node records its own position, so
// cancel needs no search. A million timers cost 16 MB of array. A node's
// deadline_ns must not change while it is queued. Not thread-safe: one heap
// per loop.
class TimerHeap {
 public:
  TimerHeap() noexcept = default;
  ~TimerHeap();
  TimerHeap(const TimerHeap&) = delete;
  TimerHeap& operator=(const TimerHeap&) = delete;

  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }
  TimerNode* top() const noexcept { return size_ == 0 ? nullptr : entries_[kRoot].node; }

  // Queues a node that is not queued. May allocate (the heap's array grows);
  // throws std::bad_alloc, and then the node stays unqueued.
  void push(TimerNode* node);
  // Removes a queued node; a node that is not queued is left alone.
  void remove(TimerNode* node) noexcept;
  // Removes and returns the earliest node, or nullptr.
  TimerNode* pop() noexcept;
  // Makes room for `n` nodes. Throws std::bad_alloc.
  void reserve(std::size_t n);
  // The sequence number the next push() will get.
  std::uint64_t next_sequence() const noexcept { return next_sequence_; }

 private:
  struct Entry {
    std::int64_t deadline_ns;
    TimerNode* node;
  };
  // The root's index: with three unused entries in front, the children of
  // entry i, at 4 * i - 8 ... 4 * i - 5, start on a multiple of four entries.
  static constexpr std::size_t kRoot = 3;

  static bool before(const Entry& a, const Entry& b) noexcept {
    return a.deadline_ns < b.deadline_ns ||
           (a.deadline_ns == b.deadline_ns && a.node->sequence < b.node->sequence);
  }
  void place(std::size_t i, const Entry& e) noexcept {
    entries_[i] = e;
    e.node->index = i;
  }
  void sift_up(std::size_t i, Entry e) noexcept;
  void sift_down(std::size_t i, Entry e) noexcept;
  void grow(std::size_t capacity);

  Entry* entries_ = nullptr;  // 64-byte aligned; kRoot + capacity_ entries
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
  std::uint64_t next_sequence_ = 0;
};

}  // namespace spindle
