// The per-thread fiber scheduler.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>

#include "fiber/coarse_timers.hpp"
#include "fiber/run_queue.hpp"
#include "spindle/context/execution.hpp"
#include "spindle/context/stack.hpp"
#include "spindle/fiber/cancel.hpp"
#include "spindle/fiber/fiber.hpp"
#include "spindle/fiber/runtime.hpp"
#include "spindle/loop/loop.hpp"

namespace spindle::detail {

class Scheduler;

// The scheduler of the calling thread. constinit and initial-exec: reading it
// is one %fs-relative load, with no lazy-init wrapper or __tls_get_addr call
// on the yield path.
extern constinit thread_local Scheduler* tls_scheduler __attribute__((tls_model("initial-exec")));

// Runs the fibers of one runtime on one OS thread. Fibers switch to each
// other directly (yield, park); the scheduler's own context, on the thread's
// stack, is entered only to reap a finished fiber, to wait on the event loop
// when nothing is runnable, and every kPollInterval switches to give the loop
// a non-blocking turn so I/O and timers are not starved by busy fibers.
class Scheduler {
 public:
  static constexpr unsigned kPollInterval = 64;

  explicit Scheduler(const Options& options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // The scheduler of the calling thread, or nullptr outside a runtime.
  static Scheduler* current() noexcept { return tls_scheduler; }
  // The same, or std::logic_error naming `what` outside a runtime.
  static Scheduler& require(const char* what);

  FiberControl* running() const noexcept { return running_; }
  Loop& loop() noexcept { return loop_; }
  Metrics metrics() const;

  context::Stack acquire_stack(const SpinOptions& options);
  void release_stack(const context::Stack& stack) noexcept { stacks_.release(stack); }
  void launch(FiberControl* fiber, const SpinOptions& options, bool detached) noexcept;
  // Runs a done fiber's function again, in place, as a child of the running
  // fiber (FiberRef::restart).
  void relaunch(FiberControl* fiber) noexcept;
  void run_until_done();
  void rethrow_unhandled();

  // Makes a suspended fiber runnable (at the back of the queue). Only on
  // this scheduler's thread; see wake() for any thread.
  void schedule(FiberControl* fiber) noexcept {
    make_ready(fiber);
    ready_.push_back(fiber);
  }
  // The same, at the front of the queue: it runs next.
  void schedule_first(FiberControl* fiber) noexcept {
    make_ready(fiber);
    ready_.push_front(fiber);
  }

  // Events other threads post to a fiber (remote_events bits).
  static constexpr std::uint8_t kRemoteWake = 1;    // end its sync wait
  static constexpr std::uint8_t kRemoteCancel = 2;  // FiberRef::cancel
  // Delivers `events` to `fiber` from any thread: on the fiber's own
  // scheduler thread at once, from others through a lock-free list that the
  // scheduler drains, waking it (one eventfd write) only if it is blocked.
  static void post(FiberControl* fiber, std::uint8_t events) noexcept;
  // The running fiber gives up the CPU: it must already be queued (yield)
  // or suspended with a way to be scheduled again. Returns when it runs again.
  void switch_away(FiberControl* self) noexcept;
  void yield_running();
  // Suspends the running fiber until schedule() is called for it.
  void park(WaitKind why) noexcept {
    FiberControl* self = running_;
    self->state = FiberState::suspended;
    self->waiting = why;
    if (why == WaitKind::sync) ++sync_parked_;
    switch_away(self);
  }
  // park() in a wait that cancellation and deadlines can end through `hook`.
  // A cancellation already pending ends the wait at once (through the hook,
  // so a kernel operation already submitted is cancelled and waited for).
  // Does not throw: the caller decides what an interrupted wait means.
  void park_interruptible(WaitKind why, WaitHook* hook) noexcept {
    FiberControl* self = running_;
    self->wait_hook = hook;
    self->state = FiberState::suspended;
    self->waiting = why;
    if (why == WaitKind::sync) ++sync_parked_;
    if (self->pending_cancels != 0) interrupt(self);  // may queue self again: fine
    switch_away(self);
  }

  // Throws Cancelled if `fiber` (the running one) has an unshielded
  // cancellation pending.
  static void checkpoint(FiberControl* fiber) {
    if (fiber->pending_cancels != 0) [[unlikely]]
      throw_if_cancelled(fiber);
  }
  static void throw_if_cancelled(FiberControl* fiber);
  // The cancel scope whose cancellation applies at the fiber's current
  // position (nullptr: the fiber itself), and whether there is one.
  static bool effective_cancel(const FiberControl* fiber, const void** scope) noexcept;
  // A cancellation of `fiber` became pending: end its wait if it is parked
  // in an interruptible one and nothing shields it.
  void interrupt(FiberControl* fiber) noexcept;
  // FiberRef::cancel on the fiber's own thread.
  void cancel_local(FiberControl* fiber) noexcept;

  // Starts / stops the timer of a cancel scope's deadline (deadline.due_ns):
  // precise, or in a coarse slot (Options::coarse_timeouts).
  void arm_deadline(CancelScope::Deadline& d);
  void disarm_deadline(CancelScope::Deadline& d) noexcept;

  // FiberRef::shutdown on the fiber's own thread: flags the fiber and its
  // descendants, ends their until_shutdown() waits, and cancels what is
  // left after `grace`.
  void shutdown(FiberControl* fiber, std::chrono::nanoseconds grace);

  // The last reference to a fiber's control block is gone.
  void destroy(FiberControl* fiber) noexcept;

  // Per-runtime state of the io layer (src/io), created there on first use
  // and destroyed with the scheduler, before its loop and backend.
  struct Extension {
    void* state = nullptr;
    void (*destroy)(void* state) noexcept = nullptr;
  };
  Extension io_extension;

 private:
  static void fiber_main(void* arg);
  void make_ready(FiberControl* fiber) noexcept {
    if (fiber->waiting == WaitKind::sync) --sync_parked_;
    fiber->state = FiberState::ready;
    fiber->waiting = WaitKind::none;
    fiber->wait_hook = nullptr;
  }
  void drain_remote() noexcept;
  void link_child(FiberControl* parent, FiberControl* child) noexcept;
  void unlink_child(FiberControl* child) noexcept;
  // Parks a fiber whose function has returned until its children are done;
  // cancels them first if it failed or was cancelled.
  void wait_children(FiberControl* fiber) noexcept;
  // A child failed and nobody was waiting to receive its error.
  void propagate_failure(FiberControl* parent, FiberControl* child) noexcept;
  void cancel_children(FiberControl* fiber, FiberControl* except) noexcept;
  // Turns the failures collected during a graceful shutdown into the
  // fiber's error (ShutdownErrors).
  void collect_shutdown_errors(FiberControl* fiber) noexcept;
  [[noreturn]] void finish(FiberControl* fiber) noexcept;
  void resume_from_scheduler(FiberControl* fiber) noexcept;

  Options options_;
  Loop loop_;
  context::StackPool stacks_;
  context::Execution main_exec_;  // the scheduler's own context
  FiberControl* running_ = nullptr;
  FiberControl* zombie_ = nullptr;  // finished, waiting to drop its running reference
  RunQueue ready_;
  bool poll_due_ = false;  // a fiber came back for the loop's non-blocking turn
  std::uint64_t alive_ = 0;
  std::uint64_t spawned_ = 0;
  // Switches, counting a yield that found nobody else to run as one: every
  // kPollInterval-th goes through the loop.
  std::uint64_t switches_ = 0;
  std::uint64_t polls_ = 0;
  std::uint64_t sync_parked_ = 0;  // fibers in waits other threads may end
  // Fibers with remote events, pushed by other threads (a Treiber stack:
  // push is a CAS, the scheduler takes the whole list with one exchange).
  std::atomic<FiberControl*> remote_head_{nullptr};
  // True while the scheduler is, or is about to be, blocked in the loop:
  // only then does a remote post pay for a wake-up.
  std::atomic<bool> sleeping_{false};
  // Remote post() calls between their push and their last look at this
  // scheduler; the destructor waits for them.
  std::atomic<std::uint32_t> posts_in_flight_{0};
  std::exception_ptr unhandled_;
  std::unique_ptr<CoarseTimers> coarse_;  // null: precise deadlines
};

// The hot paths, inline so that yield() compiles to a handful of loads and
// stores around the register switch.
inline void Scheduler::switch_away(FiberControl* self) noexcept {
  if ((++switches_ % kPollInterval) != 0) {
    if (FiberControl* next = ready_.pop_front()) {
      next->state = FiberState::running;
      running_ = next;
      if (next != self) context::jump(self->exec, next->exec);
      return;
    }
  }
  // Nothing runnable, or time for the loop: the scheduler context decides.
  poll_due_ = true;
  running_ = nullptr;
  context::jump(self->exec, main_exec_);
}

inline void Scheduler::yield_running() {
  FiberControl* self = running_;
  checkpoint(self);
  if ((switches_ + 1) % kPollInterval != 0) {
    // The fast path of switch_away, with the queue rotated in one step.
    ++switches_;
    FiberControl* next = ready_.rotate(self);
    if (next == nullptr) return;  // nobody else to run: keep going
    self->state = FiberState::ready;
    next->state = FiberState::running;
    running_ = next;
    context::jump(self->exec, next->exec);
    return;
  }
  if (ready_.empty() && !loop_.has_work()) {
    ++switches_;
    return;  // nobody else to run and nothing to poll: keep going
  }
  self->state = FiberState::ready;
  ready_.push_back(self);
  switch_away(self);
}

}  // namespace spindle::detail
