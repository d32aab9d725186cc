#include "fiber/coarse_timers.hpp"

namespace spindle::detail {

CoarseTimers::~CoarseTimers() {
  for (auto& [tick, slot] : slots_) loop_.remove_timer(*slot);
}

void CoarseTimers::add(CancelScope::Deadline& d) {
  std::int64_t tick = (d.due_ns + granularity_ - 1) / granularity_;
  auto& entry = slots_[tick];
  if (!entry) {
    entry = std::make_unique<Slot>();
    entry->owner = this;
    entry->tick = tick;
    entry->deadline_ns = tick * granularity_;
    entry->fire = &CoarseTimers::fire;
    loop_.add_timer(*entry);
  }
  Slot* slot = entry.get();
  d.slot = slot;
  d.slot_prev = nullptr;
  d.slot_next = slot->head;
  if (slot->head != nullptr) slot->head->slot_prev = &d;
  slot->head = &d;
}

void CoarseTimers::remove(CancelScope::Deadline& d) noexcept {
  auto* slot = static_cast<Slot*>(d.slot);
  if (slot == nullptr) return;
  if (d.slot_prev != nullptr)
    d.slot_prev->slot_next = d.slot_next;
  else
    slot->head = d.slot_next;
  if (d.slot_next != nullptr) d.slot_next->slot_prev = d.slot_prev;
  d.slot = nullptr;
  d.slot_next = d.slot_prev = nullptr;
  if (slot->head == nullptr) {
    loop_.remove_timer(*slot);
    slots_.erase(slot->tick);
  }
}

void CoarseTimers::fire(TimerNode* node) noexcept {
  auto* slot = static_cast<Slot*>(node);
  CoarseTimers* self = slot->owner;
  // Detach the whole list first: cancelling a scope may end its fiber's wait,
  // but the scope itself (and its deadline) stays until the fiber unwinds.
  CancelScope::Deadline* d = slot->head;
  slot->head = nullptr;
  while (d != nullptr) {
    CancelScope::Deadline* next = d->slot_next;
    d->slot = nullptr;
    d->slot_next = d->slot_prev = nullptr;
    d->scope->cancel();
    d = next;
  }
  self->slots_.erase(slot->tick);
}

}  // namespace spindle::detail
