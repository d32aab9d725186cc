// Signals as loop events, through a signalfd (Loop::signal).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <initializer_list>

#include "spindle/loop/loop.hpp"

namespace spindle {

// What a signal callback receives: the deliveries of one signal that a loop
// turn read together. Standard signals that arrive while one is already
// pending merge in the kernel (count 1); real-time signals queue, and each
// queued one counts.
struct SignalEvent {
  int signo = 0;
  std::uint32_t count = 0;  // deliveries coalesced into this call, >= 1
  pid_t pid = 0;            // sender of the last one (0 for the kernel)
  uid_t uid = 0;            // its real user id
  int code = 0;             // its si_code (SI_USER, SI_QUEUE, SI_TKILL, ...)
};

// One subscription made by Loop::signal. Cheap to copy; remove() ends it.
// Like a Watcher, it belongs to the loop's thread and must not outlive the
// loop.
class SignalSubscription {
 public:
  SignalSubscription() noexcept = default;
  int signo() const noexcept { return signo_; }
  bool active() const noexcept;
  // Ends the subscription; idempotent, safe inside any signal callback (a
  // subscriber removed during a delivery is not called for it). Removing the
  // last subscriber of a signal unblocks it again if it was not blocked
  // before the first subscription, after discarding deliveries of it that
  // are still pending, so it is never delivered the old way by surprise.
  void remove() noexcept;

 private:
  friend class detail::SignalSet;
  SignalSubscription(detail::SignalSet* set, int signo, std::uint32_t slot,
                     std::uint32_t generation) noexcept
      : set_(set), signo_(signo), slot_(slot), generation_(generation) {}
  detail::SignalSet* set_ = nullptr;
  int signo_ = 0;
  std::uint32_t slot_ = 0;
  std::uint32_t generation_ = 0;
};

// Blocks `signals` in the calling thread. Call it in main() before any
// thread starts, for every signal a loop will subscribe to: threads inherit
// the mask, and a signal sent to the process (kill) goes to a thread that
// does not block it, so it would reach the signalfd only by chance
// otherwise. Throws std::system_error (EINVAL) for a signal number out of
// range.
void block_signals(std::initializer_list<int> signals);

}  // namespace spindle
