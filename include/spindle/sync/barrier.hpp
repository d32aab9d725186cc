// spindle::Barrier: a reusable rendezvous of a fixed number of parties.
#pragma once

#include <chrono>
#include <cstdint>

#include "spindle/sync/detail/waiter.hpp"

namespace spindle {

// N parties (fibers or threads) call arrive_and_wait(); all return once the
// N-th has arrived, and the barrier starts its next phase. Like
// std::barrier without a completion function: arrive_and_wait() returns true
// in exactly one party per phase (the last to arrive), for work done once per
// phase.
//
// Cancellation and deadlines: a party that leaves while waiting (cancelled,
// or arrive_and_wait_for timed out) withdraws its arrival, so the phase still
// waits for N parties. A phase that completed before the cancellation took
// effect counts the party, which then returns normally.
class Barrier {
 public:
  explicit Barrier(std::int64_t parties);
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;

  bool arrive_and_wait() { return arrive_ns(detail::kNoDeadline) == kLeader; }
  // False if the deadline passed first (the arrival is withdrawn).
  template <class Rep, class Period>
  bool arrive_and_wait_for(const std::chrono::duration<Rep, Period>& timeout) {
    return arrive_ns(detail::sync_deadline(timeout)) != kTimedOut;
  }
  // Arrives for this phase and leaves for good: later phases need one party
  // fewer.
  void arrive_and_drop();

  std::int64_t parties() const noexcept;
  std::uint64_t phase() const noexcept;

 private:
  enum Outcome { kLeader, kFollower, kTimedOut };
  Outcome arrive_ns(std::int64_t deadline_ns);
  void complete_phase(detail::WakeChain& chain) noexcept;  // under lock_

  mutable detail::SpinLock lock_;
  std::int64_t parties_;
  std::int64_t arrived_ = 0;
  std::uint64_t phase_ = 0;
  detail::WaitList waiters_;
};

}  // namespace spindle
