// The FIFO of runnable fibers.
#pragma once

#include "spindle/fiber/fiber.hpp"

namespace spindle::detail {

// Intrusive singly-linked FIFO through FiberControl::next: push and pop are a
// few stores and allocate nothing. A fiber's `next` means something only
// while it is queued: taking it out leaves the link as it was (one store
// less per switch).
class RunQueue {
 public:
  bool empty() const noexcept { return head_ == nullptr; }

  void push_back(FiberControl* f) noexcept {
    f->next = nullptr;
    if (tail_ != nullptr)
      tail_->next = f;
    else
      head_ = f;
    tail_ = f;
  }
  void push_front(FiberControl* f) noexcept {
    f->next = head_;
    head_ = f;
    if (tail_ == nullptr) tail_ = f;
  }
  // pop_front() then push_back(f) in one step (a yield): the fiber that runs
  // next, or nullptr (and f not queued) if the queue was empty.
  FiberControl* rotate(FiberControl* f) noexcept {
    FiberControl* first = head_;
    if (first == nullptr) return nullptr;
    FiberControl* second = first->next;
    f->next = nullptr;
    if (second == nullptr) {
      head_ = f;  // the usual two-fiber ping-pong: the queue is just f
    } else {
      head_ = second;
      tail_->next = f;
    }
    tail_ = f;
    return first;
  }
  FiberControl* pop_front() noexcept {
    FiberControl* f = head_;
    if (f == nullptr) return nullptr;
    head_ = f->next;
    if (head_ == nullptr) tail_ = nullptr;
    return f;
  }

 private:
  FiberControl* head_ = nullptr;
  FiberControl* tail_ = nullptr;
};

}  // namespace spindle::detail
