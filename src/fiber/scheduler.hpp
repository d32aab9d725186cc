// The per-thread fiber scheduler.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>

#include "fiber/coarse_timers.hpp"
#include "fiber/run_queue.hpp"
#include "fiber/steal_ring.hpp"
#include "fiber/workers.hpp"
#include "spindle/context/execution.hpp"
#include "spindle/context/stack.hpp"
#include "spindle/fiber/cancel.hpp"
#include "spindle/fiber/fiber.hpp"
#include "spindle/fiber/runtime.hpp"
#include "spindle/loop/loop.hpp"

namespace spindle::detail {

class Scheduler;

// The worker that owns `f` (see FiberControl).
inline Scheduler* owner(const FiberControl* f) noexcept {
  return static_cast<Scheduler*>(f->scheduler.load(std::memory_order_acquire));
}

// Locks a fiber's `family` when the runtime has several workers.
class FamilyGuard {
 public:
  FamilyGuard(FiberControl* f, bool multi) noexcept : f_(f), locked_(multi) {
    if (locked_) f_->family.lock();
  }
  ~FamilyGuard() {
    if (locked_) f_->family.unlock();
  }
  FamilyGuard(const FamilyGuard&) = delete;
  FamilyGuard& operator=(const FamilyGuard&) = delete;

 private:
  FiberControl* f_;
  bool locked_;
};

// The scheduler of the calling thread. constinit and initial-exec: reading it
// is one %fs-relative load, with no lazy-init wrapper or __tls_get_addr call
// on the yield path.
extern constinit thread_local Scheduler* tls_scheduler __attribute__((tls_model("initial-exec")));

// Runs the fibers of one worker of a runtime on one OS thread. Fibers
// switch to each other directly (yield, park); the scheduler's own context,
// on the thread's stack, is entered only to reap a finished fiber, to hand a
// fiber to another worker, to wait on the event loop when nothing is
// runnable, and every kPollInterval switches to give the loop a
// non-blocking turn so I/O and timers are not starved by busy fibers.
//
// Queues. `high_` (Priority::high) comes first, but after kHighBurst of
// them in a row a normal fiber gets a turn. With one worker the normal
// queue is `ready_`, strictly FIFO. With several: `lifo_` holds the fiber
// just woken by another worker (it runs next, at most kLifoBurst times in
// a row), `ready_` the fibers that stay here, and `ring_` the fibers that
// have never run, which idle workers steal (half at a time); `overflow_`
// keeps what the ring has no room for. Every kFairTick picks the ring goes
// first, so new fibers are not starved by a busy ready_.
class Scheduler {
 public:
  static constexpr unsigned kPollInterval = 64;
  static constexpr unsigned kHighBurst = 16;
  static constexpr unsigned kLifoBurst = 3;
  static constexpr unsigned kFairTick = 61;
  // Idle spinning before parking: rounds of looking for work (4 pauses
  // each; a steal attempt every 8th).
  static constexpr unsigned kIdleSpins = 512;
  // Operations a fiber may complete without suspending before it is made
  // to yield (Tokio's figure): see consume_budget().
  static constexpr unsigned kBudget = 128;

  // `workers` null: a runtime of one worker.
  explicit Scheduler(const Options& options, Workers* workers = nullptr, unsigned index = 0);
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
  bool multi() const noexcept { return workers_ != nullptr; }
  Workers* workers() const noexcept { return workers_; }
  unsigned index() const noexcept { return index_; }
  unsigned worker_count() const noexcept { return workers_ != nullptr ? workers_->count() : 1; }

  context::Stack acquire_stack(const SpinOptions& options);
  void release_stack(const context::Stack& stack) noexcept { stacks_.release(stack); }
  void launch(FiberControl* fiber, const SpinOptions& options, bool detached) noexcept;
  // Runs a done fiber's function again, in place, as a child of the running
  // fiber (FiberRef::restart).
  void relaunch(FiberControl* fiber) noexcept;
  void run_until_done();
  void rethrow_unhandled();
  // The cooperative budget: an operation that completed without suspending
  // (an I/O call that was ready, a channel that had a value) spends one
  // unit; the kBudget-th in a row, with no switch in between, requeues the
  // running fiber behind the others (and gives the loop its turn when due),
  // so an always-ready fiber cannot starve its worker. Not a cancellation
  // point. No-op outside a fiber.
  void consume_budget() noexcept;
  std::exception_ptr take_unhandled() noexcept { return std::exchange(unhandled_, nullptr); }

  // Makes a suspended fiber of this worker runnable (at the back of its
  // queue). Only on this scheduler's thread; see post() for any thread.
  void schedule(FiberControl* fiber) noexcept {
    make_ready(fiber);
    enqueue(fiber);
  }
  // The same, at the front of the queue: it runs next.
  void schedule_first(FiberControl* fiber) noexcept {
    make_ready(fiber);
    if (fiber->high_priority) {
      ++high_count_;
      fast_until_ = 0;
      high_.push_front(fiber);
    } else {
      ready_.push_front(fiber);
    }
  }

  // Events other threads post to a fiber (remote_events bits).
  static constexpr std::uint8_t kRemoteWake = 1;           // end its sync wait
  static constexpr std::uint8_t kRemoteCancel = 2;         // FiberRef::cancel
  static constexpr std::uint8_t kRemoteStart = 4;          // run it here (spin_on, migrate_to)
  static constexpr std::uint8_t kRemoteFamily = 8;         // children or joined fibers changed
  static constexpr std::uint8_t kRemoteShutdown = 16;      // FiberRef::shutdown reached it
  static constexpr std::uint8_t kRemoteRelease = 32;       // its last reference is gone
  static constexpr std::uint8_t kRemoteShutdownRoot = 64;  // FiberRef::shutdown from elsewhere
  static constexpr std::uint8_t kRemoteResume = 128;       // FiberRef::resume from elsewhere
  // Delivers `events` to `fiber` from any thread: on the fiber's own
  // scheduler thread at once, from others through a lock-free list that the
  // scheduler drains, waking it (one eventfd write) only if it is blocked.
  static void post(FiberControl* fiber, std::uint8_t events) noexcept;
  // The running fiber gives up the CPU: it must already be queued (yield)
  // or suspended with a way to be scheduled again. Returns when it runs again.
  void switch_away(FiberControl* self) noexcept;
  void yield_running();
  void yield_slow(FiberControl* self);
  // Suspends the running fiber until schedule() is called for it.
  void park(WaitKind why) noexcept {
    FiberControl* self = running_;
    self->state.store(FiberState::suspended, std::memory_order_relaxed);
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
    self->state.store(FiberState::suspended, std::memory_order_relaxed);
    self->waiting = why;
    if (why == WaitKind::sync) ++sync_parked_;
    if (self->pending_cancels.load(std::memory_order_relaxed) != 0) {
      interrupt(self);  // may queue self again: fine
    }
    switch_away(self);
  }

  // Throws Cancelled if `fiber` (the running one) has an unshielded
  // cancellation pending.
  static void checkpoint(FiberControl* fiber) {
    if (fiber->pending_cancels.load(std::memory_order_relaxed) != 0) [[unlikely]]
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

  // The last reference to a fiber's control block is gone: frees it here
  // (a worker of the fiber's runtime) or on its owner.
  static void release(FiberControl* fiber) noexcept;
  void destroy(FiberControl* fiber) noexcept;

  // Waits for fibers to finish (join, select, supervise): links the
  // waiter's nodes, or returns the index of one that is done already.
  // Several workers: under each target's family lock.
  std::size_t link_done_waiters(FiberControl* const* fibers, DoneWaiter* waiters,
                                std::size_t n) noexcept;
  // Unlinks them; returns the index of the first that fired (n: none).
  std::size_t unlink_done_waiters(FiberControl* const* fibers, DoneWaiter* waiters,
                                  std::size_t n) noexcept;
  // Whether any of them fired (without unlinking).
  bool any_fired(FiberControl* const* fibers, DoneWaiter* waiters, std::size_t n) noexcept;
  // The running fiber moves to worker `target` (migrate_to).
  void migrate_running(unsigned target);
  // Puts a new fiber on worker `target` (spin_on from another worker).
  void start_on(FiberControl* fiber, unsigned target) noexcept;

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
    fiber->state.store(FiberState::runnable, std::memory_order_relaxed);
    fiber->waiting = WaitKind::none;
    fiber->wait_hook = nullptr;
  }
  // A fiber that has run goes to its worker's queue.
  void enqueue(FiberControl* fiber) noexcept {
    if (fiber->high_priority) [[unlikely]] {
      ++high_count_;
      fast_until_ = 0;
      high_.push_back(fiber);
    } else {
      ready_.push_back(fiber);
    }
  }
  // A fiber that has never run: stealable with several workers.
  void enqueue_new(FiberControl* fiber) noexcept;
  FiberControl* pick() noexcept {
    if (high_count_ == 0 && !multi()) [[likely]]
      return ready_.pop_front();
    return pick_slow();
  }
  FiberControl* pick_slow() noexcept;
  // Whether the loop's turn at a poll interval could do anything: a timer,
  // a watcher or an operation in flight, or a post from another thread
  // (the scheduler context drains those). If not, the turn is skipped and
  // the switch stays fiber to fiber.
  bool poll_needed() const noexcept {
    return loop_.has_work() || remote_head_.load(std::memory_order_relaxed) != nullptr;
  }
  // Sets fast_until_ for the yields after the switch that brings
  // switches_ to `switches`.
  void refill_fast_yields(std::uint64_t switches) noexcept {
    fast_until_ = multi() || high_count_ != 0 ? 0 : (switches / kPollInterval + 1) * kPollInterval;
  }
  bool has_runnable() const noexcept {
    if (!multi()) return !ready_.empty() || high_count_ != 0;
    return !ready_.empty() || high_count_ != 0 || lifo_ != nullptr || !ring_.empty() ||
           !overflow_.empty();
  }
  void run_until_done_multi();
  // Takes half of another worker's never-run fibers. True if it got any.
  bool steal() noexcept;
  // Parks this worker until something may have work for it.
  void park_worker();
  // Pushes `f` on this scheduler's remote list (any thread) and wakes it if
  // it is parked.
  void push_remote(FiberControl* f) noexcept;
  void drain_remote() noexcept;
  // What post() delivers, on the fiber's worker (`woken_remotely`: from the
  // remote list, so a woken fiber takes the LIFO slot).
  void handle_events(FiberControl* f, std::uint8_t events, bool woken_remotely = false) noexcept;
  void after_switch_in() noexcept;
  void link_child(FiberControl* parent, FiberControl* child) noexcept;
  void unlink_child(FiberControl* child) noexcept;
  std::uint32_t live_children(FiberControl* f) noexcept {
    FamilyGuard g(f, multi());
    return f->live_children;
  }
  // Parks a fiber whose function has returned until its children are done;
  // cancels them first if it failed or was cancelled.
  void wait_children(FiberControl* fiber) noexcept;
  // A child failed and nobody was waiting to receive its error.
  void propagate_failure(FiberControl* parent, FiberControl* child) noexcept;
  // Children that failed on other workers (kRemoteFamily).
  void absorb_remote_failures(FiberControl* parent) noexcept;
  void cancel_children(FiberControl* fiber, FiberControl* except) noexcept;
  void mark_shutdown(FiberControl* fiber) noexcept;
  // FiberRef::shutdown asked from another worker, or before the fiber
  // started: arms its grace timer here (once).
  void start_requested_shutdown(FiberControl* fiber) noexcept;
  // Wakes a fiber waiting in join/select for a fiber that finished.
  void wake_joiner(FiberControl* waiter) noexcept;
  // Turns the failures collected during a graceful shutdown into the
  // fiber's error (ShutdownErrors).
  void collect_shutdown_errors(FiberControl* fiber) noexcept;
  [[noreturn]] void finish(FiberControl* fiber) noexcept;
  void finish_family(FiberControl* fiber) noexcept;
  void resume_from_scheduler(FiberControl* fiber) noexcept;

  Options options_;
  Workers* workers_;
  unsigned index_;
  Loop loop_;
  context::StackPool stacks_;
  context::Execution main_exec_;  // the scheduler's own context
  FiberControl* running_ = nullptr;
  FiberControl* zombie_ = nullptr;  // finished, waiting to drop its running reference
  // Handed to another worker once its context is saved (migrate_to, or a
  // migratable fiber given to an idle worker at a yield).
  FiberControl* handoff_ = nullptr;
  unsigned handoff_to_ = 0;
  RunQueue ready_;
  RunQueue high_;
  std::uint32_t high_count_ = 0;
  std::uint32_t high_run_ = 0;  // high-priority picks in a row
  FiberControl* lifo_ = nullptr;
  std::uint32_t lifo_run_ = 0;  // LIFO picks in a row
  std::uint32_t fair_tick_ = 0;
  StealRing ring_;
  RunQueue overflow_;
  std::uint64_t steal_seed_ = 0;
  bool poll_due_ = false;    // a fiber came back for the loop's non-blocking turn
  std::uint64_t alive_ = 0;  // one worker only (Workers counts for several)
  std::uint64_t spawned_ = 0;
  std::uint64_t stolen_ = 0;
  std::uint64_t parks_ = 0;
  // Switches, counting a yield that found nobody else to run as one: every
  // kPollInterval-th goes through the loop.
  std::uint64_t switches_ = 0;
  // The one test of yield's fast path (besides the running fiber's own
  // flags): a yield that brings switches_ below this needs no decision.
  // It is the next multiple of kPollInterval (the loop's turn), or 0 while
  // there are several workers or queued high-priority fibers; yield_slow()
  // sets it again.
  std::uint64_t fast_until_ = 0;
  std::uint64_t polls_ = 0;
  std::uint64_t sync_parked_ = 0;                  // fibers in waits other threads may end
  std::uint64_t budget_mark_ = ~std::uint64_t{0};  // switches_ when budget_ was refilled
  std::uint32_t budget_ = kBudget;
  std::uint64_t budget_yields_ = 0;
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

  friend class Workers;
};

// The hot paths, inline so that yield() compiles to a handful of loads and
// stores around the register switch.
inline void Scheduler::switch_away(FiberControl* self) noexcept {
  if ((++switches_ % kPollInterval) != 0 || !poll_needed()) {
    if (FiberControl* next = pick()) {
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
  std::uint64_t switches = switches_ + 1;
  if ((switches >= fast_until_) | (self->pending_cancels.load(std::memory_order_relaxed) != 0) |
      self->high_priority) [[unlikely]] {
    yield_slow(self);
    return;
  }
  // One worker, plain FIFO, no turn of the loop due: the fast path of
  // switch_away, with the queue rotated in one step. It calls nothing before
  // the switch, so the compiler needs no callee-saved register (and saves
  // none) around it.
  switches_ = switches;
  FiberControl* next = ready_.rotate(self);
  if (next == nullptr) return;  // nobody else to run: keep going
  running_ = next;
  context::jump(self->exec, next->exec);
}

// A cancellation to deliver, several workers, priorities or the turn of the
// loop: out of line, so the fast path above stays a leaf.
[[gnu::noinline]] inline void Scheduler::yield_slow(FiberControl* self) {
  checkpoint(self);
  refill_fast_yields(switches_ + 1);  // every way out below is one switch
  if (!has_runnable() && ((switches_ + 1) % kPollInterval != 0 || !loop_.has_work()) &&
      !(multi() && remote_head_.load(std::memory_order_relaxed) != nullptr)) {
    ++switches_;
    return;  // nobody else to run and nothing to poll: keep going
  }
  if (self->migratable && multi()) [[unlikely]] {
    // A parked worker may take it, once its context is saved.
    int idle = self->pins == 0 && !self->grace_timer.queued() ? workers_->claim_idle(index_) : -1;
    if (idle >= 0) {
      handoff_ = self;
      handoff_to_ = static_cast<unsigned>(idle);
      running_ = nullptr;
      ++switches_;
      context::jump(self->exec, main_exec_);
      return;
    }
  }
  enqueue(self);
  switch_away(self);
}

}  // namespace spindle::detail
