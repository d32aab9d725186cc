// The sync layer's waiting machinery (internal): a spinlock for the waiter
// lists, intrusive wait nodes, and the Waiter that parks a fiber (or blocks
// an OS thread) until a notifier, a deadline or a cancellation ends its wait.
// See docs/sync.md, "How a wait works".
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>

#include "spindle/fiber/fiber.hpp"
#include "spindle/fiber/spin_lock.hpp"

namespace spindle::detail {

// Deadlines are nanoseconds on CLOCK_MONOTONIC (std::chrono::steady_clock).
inline constexpr std::int64_t kNoDeadline = std::numeric_limits<std::int64_t>::max();

// Where a blocking call runs, as peek_wait_context() says: a fiber, nullptr
// (a plain thread), or this marker (a runtime thread outside any fiber: a
// loop callback). Never dereferenced.
inline FiberControl* const kLoopContext = reinterpret_cast<FiberControl*>(alignof(FiberControl));

std::int64_t monotonic_now_ns() noexcept;

// now + d, saturating (a huge duration means no deadline; a negative one,
// "already expired").
template <class Rep, class Period>
std::int64_t sync_deadline(const std::chrono::duration<Rep, Period>& d) noexcept {
  using ns = std::chrono::nanoseconds;
  std::int64_t now = monotonic_now_ns();
  if (d <= std::chrono::duration<Rep, Period>::zero()) return now;
  if (std::chrono::duration<long double, std::nano>(d).count() >=
      static_cast<long double>(kNoDeadline - now)) {
    return kNoDeadline;
  }
  return now + std::chrono::ceil<ns>(d).count();
}

// A time point of any clock as a deadline on the monotonic clock.
template <class Clock, class Duration>
std::int64_t sync_deadline_at(const std::chrono::time_point<Clock, Duration>& tp) noexcept {
  if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) {
    if (tp == std::chrono::time_point<Clock, Duration>::max()) return kNoDeadline;
    return std::chrono::ceil<std::chrono::nanoseconds>(tp.time_since_epoch()).count();
  } else {
    return sync_deadline(tp - Clock::now());
  }
}

struct Waiter;

// One entry in a primitive's waiter list, on the waiting party's stack.
// Several nodes may share one Waiter (a select waits on several channels).
// Linked and unlinked only under the owning primitive's lock.
struct WaitNode {
  WaitNode* prev = nullptr;
  WaitNode* next = nullptr;
  Waiter* waiter = nullptr;
  bool linked = false;
  std::uint32_t index = 0;   // which case of a select this node is
  std::uint32_t status = 0;  // what the notifier did (the primitive's code)
  void* slot = nullptr;      // where a value comes from or goes to
  std::uint64_t amount = 0;  // the primitive's parameter (permits, kind ...)
};

// An intrusive FIFO of WaitNodes. Not thread-safe: the primitive's lock
// protects it.
class WaitList {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  WaitNode* front() const noexcept { return head_; }

  void push_back(WaitNode* n) noexcept {
    n->next = nullptr;
    n->prev = tail_;
    if (tail_ != nullptr)
      tail_->next = n;
    else
      head_ = n;
    tail_ = n;
    n->linked = true;
  }
  // Unlinks `n` if it is linked (in this list).
  void remove(WaitNode* n) noexcept {
    if (!n->linked) return;
    if (n->prev != nullptr)
      n->prev->next = n->next;
    else
      head_ = n->next;
    if (n->next != nullptr)
      n->next->prev = n->prev;
    else
      tail_ = n->prev;
    n->prev = n->next = nullptr;
    n->linked = false;
  }
  WaitNode* pop_front() noexcept {
    WaitNode* n = head_;
    if (n != nullptr) remove(n);
    return n;
  }

 private:
  WaitNode* head_ = nullptr;
  WaitNode* tail_ = nullptr;
};

// The waiting party: a fiber (which parks) or an OS thread (which blocks on
// a futex). Its state decides, with one compare-and-swap, who ends the wait:
//
//   waiting --try_claim()--> claimed --complete()--> done   (a notifier)
//   waiting --------------------------------------> cancelled / timed_out
//                                                   (the waiter's own side)
//
// A notifier claims under the primitive's lock, hands over what it has (a
// value, the lock, permits) and then calls complete(), which wakes the
// waiter; after that it must not touch the waiter or its nodes. A waiter
// that timed out or was cancelled unlinks its nodes itself afterwards
// (notifiers skip and unlink nodes whose waiter they cannot claim).
struct Waiter {
  enum : std::uint32_t { kWaiting = 0, kClaimed = 1, kDone = 2, kCancelled = 3, kTimedOut = 4 };

  std::atomic<std::uint32_t> state{kWaiting};
  FiberControl* fiber = nullptr;  // nullptr: an OS thread
  std::uint32_t winner = 0;       // the index of the node that was completed
  bool select = false;            // nodes in several primitives' lists

  explicit Waiter(FiberControl* f) noexcept : fiber(f) {}
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  // A notifier takes the waiter (under the primitive's lock). False: it was
  // cancelled, timed out, or another notifier has it (a select).
  bool try_claim() noexcept {
    std::uint32_t expected = kWaiting;
    return state.compare_exchange_strong(expected, kClaimed, std::memory_order_acq_rel,
                                         std::memory_order_acquire);
  }
  // try_claim() by a notifier running on `self` (its fiber; nullptr or
  // kLoopContext otherwise). When the waiter is a fiber of the same runtime
  // and waits in this one list, nothing can race for its state: other
  // notifiers hold the list's lock, and its cancellation and deadline run on
  // this very thread. Then a plain load and store do, saving a locked
  // instruction on the hot same-thread hand-off.
  bool try_claim_from(const FiberControl* self) noexcept {
    if (self != nullptr && self != kLoopContext && fiber != nullptr && !select &&
        fiber->scheduler.load(std::memory_order_relaxed) ==
            self->scheduler.load(std::memory_order_relaxed)) {
      if (state.load(std::memory_order_relaxed) != kWaiting) return false;
      state.store(kClaimed, std::memory_order_relaxed);
      return true;
    }
    return try_claim();
  }
  // The claimed wait is done: wakes the waiter (a fiber through its
  // scheduler, from any thread; a thread through its futex). The waiter may
  // be gone when this returns. Call without holding the primitive's lock.
  void complete() noexcept;

  // Suspends the calling fiber or blocks the calling thread until the wait
  // ends, and returns how: kDone, kTimedOut (deadline_ns passed) or
  // kCancelled (only when `interruptible`: the fiber was cancelled; the
  // caller unlinks its nodes and calls Scheduler::checkpoint). Every node of
  // the waiter must be linked before, and no lock held.
  std::uint32_t wait(std::int64_t deadline_ns, bool interruptible = true) noexcept;

  // Used by the wait's interrupt hook and deadline timer (fiber's thread).
  void end_early(std::uint32_t why) noexcept;
};

// The fiber a blocking call is made from, or nullptr on a plain OS thread.
// std::logic_error (naming `what`) from a runtime thread outside a fiber (a
// loop callback must not block its thread).
FiberControl* wait_context(const char* what);
// The same without the check: kLoopContext on a runtime thread outside a
// fiber. Cheap enough to call before taking a lock.
FiberControl* peek_wait_context() noexcept;
// Under a primitive's lock, about to wait with the context from
// peek_wait_context(): true if the caller may link its node now. False when
// the caller must first unlock and call prepare_wait(), then retry (a
// cancellation may be pending, or the context is a loop callback).
inline bool may_wait_now(FiberControl* f) noexcept {
  return f != kLoopContext && (f == nullptr || f->pending_cancels == 0);
}
// Without the lock: throws std::logic_error for kLoopContext, and
// spindle::Cancelled if a cancellation applies; otherwise (a shielded one)
// returns and the caller waits anyway.
void prepare_wait(FiberControl* f, const char* what);
// Throws spindle::Cancelled if `fiber` has an unshielded cancellation
// pending (nullptr: a thread, nothing to do).
void wait_checkpoint(FiberControl* fiber);
// After a wait returned kCancelled: throws spindle::Cancelled.
[[noreturn]] void throw_cancelled(FiberControl* fiber);
// An opaque identity of the calling fiber, or of the calling thread outside
// fibers (recursive locks, pools).
const void* current_owner() noexcept;

// Wakes every node of a chain built through WaitNode::next by a notifier
// (nodes claimed and unlinked under the lock, woken after it is released).
inline void complete_chain(WaitNode* chain) noexcept {
  while (chain != nullptr) {
    WaitNode* next = chain->next;  // read first: the waiter may be gone after complete()
    chain->waiter->complete();
    chain = next;
  }
}

// A chain under construction (FIFO order).
class WakeChain {
 public:
  void add(WaitNode* n) noexcept {
    n->next = nullptr;
    if (tail_ != nullptr)
      tail_->next = n;
    else
      head_ = n;
    tail_ = n;
  }
  bool empty() const noexcept { return head_ == nullptr; }
  // Wakes them all; call after releasing the lock.
  void complete() noexcept {
    WaitNode* h = head_;
    head_ = tail_ = nullptr;
    complete_chain(h);
  }

 private:
  WaitNode* head_ = nullptr;
  WaitNode* tail_ = nullptr;
};

// Pops nodes from `list` until one whose waiter can be claimed (dead nodes
// are dropped from the list on the way). nullptr if none.
// `self`: see Waiter::try_claim_from (nullptr: any context).
inline WaitNode* claim_first(WaitList& list, const FiberControl* self = nullptr) noexcept {
  while (WaitNode* n = list.pop_front()) {
    if (n->waiter->try_claim_from(self)) {
      n->waiter->winner = n->index;
      return n;
    }
  }
  return nullptr;
}

// The shape of most waits on one list. Under `lock`: if `ready()` (which
// takes what the caller waits for) returns true, done; if the deadline has
// passed, false; otherwise `node` (prepared by the caller: amount, slot)
// joins `list` and the caller waits. A notifier that claims the node has
// done what ready() would have done. A waiter that leaves (deadline,
// cancellation) unlinks its node and calls `leave(chain)` under the lock, so
// the primitive may serve the waiters behind it. Only a call that would
// wait asks for the fiber (wait_context) and is a cancellation point.
// Returns true (got it) or false (deadline); throws spindle::Cancelled.
template <class Ready, class Leave>
bool wait_in_list(SpinLock& lock, WaitList& list, WaitNode& node, const char* what,
                  std::int64_t deadline_ns, Ready&& ready, Leave&& leave) {
  FiberControl* f = peek_wait_context();
  bool prepared = false;
  lock.lock();
  for (;;) {
    if (ready()) {
      lock.unlock();
      return true;
    }
    if (deadline_ns != kNoDeadline && monotonic_now_ns() >= deadline_ns) {
      lock.unlock();
      return false;
    }
    if (prepared || may_wait_now(f)) break;
    lock.unlock();
    prepare_wait(f, what);
    prepared = true;
    lock.lock();  // look again: things may have changed meanwhile
  }
  Waiter w(f);
  node.waiter = &w;
  list.push_back(&node);
  lock.unlock();
  std::uint32_t how = w.wait(deadline_ns);
  if (how == Waiter::kDone) return true;
  WakeChain chain;
  lock.lock();
  list.remove(&node);
  leave(chain);
  lock.unlock();
  chain.complete();
  if (how == Waiter::kTimedOut) return false;
  throw_cancelled(f);
}

// For wait_in_list: nothing to do when a waiter leaves.
struct NoLeave {
  void operator()(WakeChain&) const noexcept {}
};

}  // namespace spindle::detail
