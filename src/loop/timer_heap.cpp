#include "spindle/loop/timer_heap.hpp"

#include <cstring>
#include <new>

namespace spindle {

namespace {
constexpr std::size_t kArity = 4;
constexpr std::align_val_t kLine{64};
}  // namespace

TimerHeap::~TimerHeap() {
  if (entries_ != nullptr) ::operator delete(entries_, kLine);
}

void TimerHeap::grow(std::size_t capacity) {
  auto* fresh = static_cast<Entry*>(::operator new((kRoot + capacity) * sizeof(Entry), kLine));
  if (entries_ != nullptr) {
    std::memcpy(fresh + kRoot, entries_ + kRoot, size_ * sizeof(Entry));
    ::operator delete(entries_, kLine);
  }
  entries_ = fresh;
  capacity_ = capacity;
}

void TimerHeap::reserve(std::size_t n) {
  if (n > capacity_) grow(n);
}

void TimerHeap::push(TimerNode* node) {
  if (node->queued()) return;
  if (size_ == capacity_) grow(capacity_ < 64 ? 64 : capacity_ * 2);
  node->sequence = next_sequence_++;
  sift_up(kRoot + size_++, Entry{node->deadline_ns, node});
}

void TimerHeap::remove(TimerNode* node) noexcept {
  if (!node->queued()) return;
  std::size_t i = node->index;
  node->index = TimerNode::kNotQueued;
  Entry last = entries_[kRoot + --size_];
  if (i == kRoot + size_) return;  // it was the last one
  if (i > kRoot && before(last, entries_[(i - kRoot - 1) / kArity + kRoot])) {
    sift_up(i, last);
  } else {
    sift_down(i, last);
  }
}

TimerNode* TimerHeap::pop() noexcept {
  if (size_ == 0) return nullptr;
  TimerNode* first = entries_[kRoot].node;
  remove(first);
  return first;
}

void TimerHeap::sift_up(std::size_t i, Entry e) noexcept {
  while (i > kRoot) {
    std::size_t parent = (i - kRoot - 1) / kArity + kRoot;
    if (!before(e, entries_[parent])) break;
    place(i, entries_[parent]);
    i = parent;
  }
  place(i, e);
}

void TimerHeap::sift_down(std::size_t i, Entry e) noexcept {
  const std::size_t end = kRoot + size_;
  for (;;) {
    std::size_t first_child = kArity * (i - kRoot) + kRoot + 1;
    if (first_child >= end) break;
    std::size_t best = first_child;
    std::size_t last = first_child + kArity < end ? first_child + kArity : end;
    for (std::size_t c = first_child + 1; c < last; ++c) {
      if (before(entries_[c], entries_[best])) best = c;
    }
    if (!before(entries_[best], e)) break;
    place(i, entries_[best]);
    i = best;
  }
  place(i, e);
}

}  // namespace spindle
