// The sync layer's waits: fibers park through their scheduler, OS threads
// block on a futex; both are ended by the Waiter state machine
// (spindle/sync/detail/waiter.hpp).
#include "spindle/sync/detail/waiter.hpp"

#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <string>

#include "fiber/scheduler.hpp"
#include "loop/futex.hpp"

namespace spindle::detail {

namespace {

thread_local char t_thread_identity;

}  // namespace

std::int64_t monotonic_now_ns() noexcept {
  return Loop::now_ns();
}

void Waiter::complete() noexcept {
  FiberControl* f = fiber;  // read before the store: the waiter may vanish after it
  if (f != nullptr) {
    state.store(kDone, std::memory_order_release);
    // The fiber stays parked until this wake: nothing else can end a
    // claimed wait, so its control block is alive here.
    Scheduler::post(f, Scheduler::kRemoteWake);
  } else {
    std::atomic<std::uint32_t>* word = &state;
    state.store(kDone, std::memory_order_release);
    // The thread may have seen kDone and left: waking a dead address is
    // harmless (at worst a spurious wake-up of a later futex user there).
    futex_wake(word);
  }
}

void Waiter::end_early(std::uint32_t why) noexcept {
  std::uint32_t expected = kWaiting;
  if (state.compare_exchange_strong(expected, why, std::memory_order_acq_rel,
                                    std::memory_order_acquire)) {
    owner(fiber)->schedule(fiber);
  }
  // Otherwise a notifier has claimed the wait: its wake-up is on its way.
}

std::uint32_t Waiter::wait(std::int64_t deadline_ns, bool interruptible) noexcept {
  if (fiber != nullptr) {
    auto* s = owner(fiber);
    struct Hook : WaitHook, TimerNode {
      Waiter* waiter;
    } hook;
    hook.waiter = this;
    hook.interrupt = [](WaitHook* h) noexcept {
      static_cast<Hook*>(h)->waiter->end_early(kCancelled);
    };
    if (deadline_ns != kNoDeadline) {
      hook.deadline_ns = deadline_ns;
      hook.fire = [](TimerNode* t) noexcept {
        static_cast<Hook*>(t)->waiter->end_early(kTimedOut);
      };
      s->loop().add_timer(hook);
    }
    if (interruptible)
      s->park_interruptible(WaitKind::sync, &hook);
    else
      s->park(WaitKind::sync);
    if (hook.queued()) s->loop().remove_timer(hook);
    return state.load(std::memory_order_acquire);
  }
  for (;;) {
    std::uint32_t st = state.load(std::memory_order_acquire);
    if (st >= kDone) return st;
    if (st == kClaimed) {
      futex_wait(&state, kClaimed);  // a notifier is handing over
      continue;
    }
    if (deadline_ns != kNoDeadline && monotonic_now_ns() >= deadline_ns) {
      std::uint32_t expected = kWaiting;
      if (state.compare_exchange_strong(expected, kTimedOut, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
        return kTimedOut;
      }
      continue;
    }
    futex_wait(&state, kWaiting, deadline_ns == kNoDeadline ? -1 : deadline_ns);
  }
}

FiberControl* wait_context(const char* what) {
  Scheduler* s = Scheduler::current();
  if (s == nullptr) return nullptr;
  FiberControl* f = s->running();
  if (f == nullptr) {
    throw std::logic_error(std::string("spindle::") + what +
                           ": cannot block a runtime thread outside a fiber (a loop callback)");
  }
  return f;
}

FiberControl* peek_wait_context() noexcept {
  Scheduler* s = Scheduler::current();
  if (s == nullptr) return nullptr;
  FiberControl* f = s->running();
  return f != nullptr ? f : kLoopContext;
}

void prepare_wait(FiberControl* f, const char* what) {
  if (f == kLoopContext) {
    throw std::logic_error(std::string("spindle::") + what +
                           ": cannot block a runtime thread outside a fiber (a loop callback)");
  }
  if (f != nullptr) Scheduler::checkpoint(f);
}

void wait_checkpoint(FiberControl* fiber) {
  if (fiber != nullptr) Scheduler::checkpoint(fiber);
}

void throw_cancelled(FiberControl* fiber) {
  Scheduler::checkpoint(fiber);
  // A wait is interrupted only for a cancellation that applies; should it
  // have been withdrawn meanwhile, the fiber is still cancelled as a whole.
  throw Cancelled(nullptr);
}

const void* current_owner() noexcept {
  Scheduler* s = Scheduler::current();
  if (s != nullptr && s->running() != nullptr) return s->running();
  return &t_thread_identity;
}

}  // namespace spindle::detail
