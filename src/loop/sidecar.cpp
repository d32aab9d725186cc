#include "loop/sidecar.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <system_error>

#include "loop/futex.hpp"
#include "spindle/context/cpu_relax.hpp"
#include "spindle/loop/loop.hpp"

namespace spindle::detail {

Sidecar::Sidecar(Call call, void* target) : call_(call), target_(target) {
  // Block every signal before the thread exists, so that it never has a
  // moment with the creator's mask; the creator's mask is restored after.
  sigset_t all;
  sigset_t old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    thread_ = std::thread([this] { main(); });
  } catch (...) {
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    throw;  // std::system_error from std::thread
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::pthread_setname_np(thread_.native_handle(), "spindle-sidecar");
}

Sidecar::~Sidecar() {
  hand_over(kStop);
  thread_.join();
}

void Sidecar::hand_over(std::uint32_t state) noexcept {
  // Release: publishes timeout_ns_ or result_ with the state. Acquire:
  // orders the check of the mark after the waiter's announcement.
  if ((request_.exchange(state, std::memory_order_acq_rel) & kSleeping) != 0) {
    futex_wake(&request_);
  }
}

std::uint32_t Sidecar::await_change(std::uint32_t state, std::int64_t& spin_ns) noexcept {
  // Spin first, reading the clock every 16 pauses only (not at all if the
  // change comes within the first 16).
  std::uint32_t seen = request_.load(std::memory_order_acquire);
  std::int64_t deadline = -1;
  for (unsigned spins = 1; seen == state; ++spins) {
    if (spins % 16 == 0) {
      std::int64_t now = Loop::now_ns();
      if (deadline < 0) {
        deadline = now + spin_ns;
      } else if (now >= deadline) {
        break;
      }
    }
    cpu_relax();
    seen = request_.load(std::memory_order_acquire);
  }
  if (seen != state) {
    spin_ns = kMaxSpinNs;  // the other side runs: spinning pays
    return seen;
  }
  // A spin in vain: the other side is blocked, or waits for this very CPU.
  // Halve the next spin (not below the floor, which finds the other side
  // running again), so that a side that keeps sleeping does not keep
  // burning CPU first.
  spin_ns = std::max(kMinSpinNs, spin_ns / 2);
  // Then sleep, announced by the mark, so that the other side wakes us.
  // Only this side sets the mark, and only the other side clears it (by
  // changing the state), so a failed exchange means the state changed.
  while ((seen & ~kSleeping) == state) {
    if (seen == state &&
        !request_.compare_exchange_weak(seen, state | kSleeping, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
      continue;
    }
    futex_wait(&request_, state | kSleeping);
    seen = request_.load(std::memory_order_acquire);
  }
  return seen;
}

int Sidecar::run(std::int64_t timeout_ns) noexcept {
  timeout_ns_ = timeout_ns;
  // After a post, the helper is busy and sees kRun when its posted call
  // ends; otherwise it spins or sleeps waiting for a request.
  hand_over(kRun);
  await_change(kRun, run_spin_ns_);
  return result_;
}

void Sidecar::post() noexcept {
  std::uint32_t seen = request_.load(std::memory_order_relaxed);
  // Only the helper changes an idle word meanwhile (by marking it sleeping).
  while ((seen & ~kSleeping) == kIdle) {
    if (request_.compare_exchange_weak(seen, kPosted, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
      if ((seen & kSleeping) != 0) futex_wake(&request_);
      return;
    }
  }
}

void Sidecar::main() noexcept {
  for (;;) {
    // kRun may come marked: the loop can be asleep before we look.
    switch (await_change(kIdle, idle_spin_ns_) & ~kSleeping) {
      case kStop:
        return;
      case kPosted: {
        call_(target_, 0);  // the loop's next run or post sees what it missed
        calls_.fetch_add(1, std::memory_order_relaxed);
        // Back to idle unless the loop upgraded the request meanwhile.
        std::uint32_t expected = kPosted;
        request_.compare_exchange_strong(expected, kIdle, std::memory_order_acq_rel);
        break;
      }
      case kRun:
        result_ = call_(target_, timeout_ns_);
        calls_.fetch_add(1, std::memory_order_relaxed);
        hand_over(kIdle);
        break;
      default:
        return;
    }
  }
}

}  // namespace spindle::detail
