// The readiness waits pending on one descriptor.
#pragma once

#include <cstdint>

#include "spindle/loop/backend.hpp"

namespace spindle::detail {

// Intrusive doubly-linked list of PollWait nodes: add and remove are O(1)
// and allocate nothing.
class PollList {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  PollWait* head() const noexcept { return head_; }

  void push(PollWait* w) noexcept {
    w->prev = nullptr;
    w->next = head_;
    if (head_ != nullptr) head_->prev = w;
    head_ = w;
  }
  void remove(PollWait* w) noexcept {
    if (w->prev != nullptr)
      w->prev->next = w->next;
    else
      head_ = w->next;
    if (w->next != nullptr) w->next->prev = w->prev;
    w->next = w->prev = nullptr;
  }
  // The union of the events the waits want.
  std::uint32_t interest() const noexcept {
    std::uint32_t e = 0;
    for (PollWait* w = head_; w != nullptr; w = w->next) e |= w->events;
    return e;
  }

 private:
  PollWait* head_ = nullptr;
};

}  // namespace spindle::detail
