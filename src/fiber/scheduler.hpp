// The per-thread fiber scheduler.
#pragma once

#include <cstdint>
#include <exception>

#include "fiber/run_queue.hpp"
#include "spindle/context/execution.hpp"
#include "spindle/context/stack.hpp"
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
  void launch(FiberControl* fiber, const SpinOptions& options) noexcept;
  void run_until_done();
  void rethrow_unhandled();

  // Makes a suspended fiber runnable (at the back of the queue).
  void schedule(FiberControl* fiber) noexcept {
    fiber->state = FiberState::ready;
    fiber->waiting = WaitKind::none;
    ready_.push_back(fiber);
  }
  // The running fiber gives up the CPU: it must already be queued (yield)
  // or suspended with a way to be scheduled again. Returns when it runs again.
  void switch_away(FiberControl* self) noexcept;
  void yield_running() noexcept;
  // Suspends the running fiber until schedule() is called for it.
  void park(WaitKind why) noexcept {
    FiberControl* self = running_;
    self->state = FiberState::suspended;
    self->waiting = why;
    switch_away(self);
  }

  // The last reference to a fiber's control block is gone.
  void destroy(FiberControl* fiber) noexcept;

 private:
  static void fiber_main(void* arg);
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
  std::exception_ptr unhandled_;
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

inline void Scheduler::yield_running() noexcept {
  FiberControl* self = running_;
  if (ready_.empty() && ((switches_ + 1) % kPollInterval != 0 || !loop_.has_work())) {
    ++switches_;
    return;  // nobody else to run and nothing to poll: keep going
  }
  self->state = FiberState::ready;
  ready_.push_back(self);
  switch_away(self);
}

}  // namespace spindle::detail
