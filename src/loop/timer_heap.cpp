#include "spindle/loop/timer_heap.hpp"

namespace spindle {

namespace {
constexpr std::size_t kArity = 4;
}

void TimerHeap::push(TimerNode* node) {
  if (node->queued()) return;
  node->sequence = next_sequence_++;
  heap_.push_back(node);
  sift_up(heap_.size() - 1, node);
}

void TimerHeap::remove(TimerNode* node) noexcept {
  if (!node->queued()) return;
  std::size_t i = node->index;
  node->index = TimerNode::kNotQueued;
  TimerNode* last = heap_.back();
  heap_.pop_back();
  if (i == heap_.size()) return;  // it was the last one
  if (i > 0 && before(last, heap_[(i - 1) / kArity])) {
    sift_up(i, last);
  } else {
    sift_down(i, last);
  }
}

TimerNode* TimerHeap::pop() noexcept {
  if (heap_.empty()) return nullptr;
  TimerNode* first = heap_.front();
  remove(first);
  return first;
}

void TimerHeap::sift_up(std::size_t i, TimerNode* node) noexcept {
  while (i > 0) {
    std::size_t parent = (i - 1) / kArity;
    if (!before(node, heap_[parent])) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, node);
}

void TimerHeap::sift_down(std::size_t i, TimerNode* node) noexcept {
  const std::size_t n = heap_.size();
  for (;;) {
    std::size_t first_child = i * kArity + 1;
    if (first_child >= n) break;
    std::size_t best = first_child;
    std::size_t end = first_child + kArity < n ? first_child + kArity : n;
    for (std::size_t c = first_child + 1; c < end; ++c) {
      if (before(heap_[c], heap_[best])) best = c;
    }
    if (!before(heap_[best], node)) break;
    place(i, heap_[best]);
    i = best;
  }
  place(i, node);
}

}  // namespace spindle
