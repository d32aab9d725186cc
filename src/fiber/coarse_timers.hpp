// Deadlines grouped into coarse time slots that share one loop timer.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>

#include "spindle/fiber/cancel.hpp"
#include "spindle/loop/loop.hpp"

namespace spindle::detail {

// With Options::coarse_timeouts = g, a cancel-scope deadline is rounded up
// to the next multiple of g (so it is never early, and at most g late) and
// joins the slot for that instant. A slot is one timer in the loop's heap
// and an intrusive list of deadlines: a server with 100,000 idle
// connections, each with an idle timeout reset on every request, keeps a
// few hundred timers in the heap, and a reset is a list move.
class CoarseTimers {
 public:
  CoarseTimers(Loop& loop, std::int64_t granularity_ns) noexcept
      : loop_(loop), granularity_(granularity_ns) {}
  ~CoarseTimers();
  CoarseTimers(const CoarseTimers&) = delete;
  CoarseTimers& operator=(const CoarseTimers&) = delete;

  // Files `d` (whose due_ns is set) in its slot. May allocate a new slot.
  void add(CancelScope::Deadline& d);
  void remove(CancelScope::Deadline& d) noexcept;
  std::size_t slots() const noexcept { return slots_.size(); }

 private:
  struct Slot : TimerNode {
    CoarseTimers* owner = nullptr;
    std::int64_t tick = 0;
    CancelScope::Deadline* head = nullptr;
  };
  static void fire(TimerNode* node) noexcept;

  Loop& loop_;
  std::int64_t granularity_;
  std::unordered_map<std::int64_t, std::unique_ptr<Slot>> slots_;
};

}  // namespace spindle::detail
