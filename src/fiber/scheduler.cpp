#include "fiber/scheduler.hpp"

#include <sched.h>
#include <signal.h>

#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string>

#include "spindle/context/overflow.hpp"

namespace spindle::detail {

constinit thread_local Scheduler* tls_scheduler __attribute__((tls_model("initial-exec"))) =
    nullptr;

namespace {

std::atomic<std::uint64_t> g_next_fiber_id{1};

bool is_cancellation(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const Cancelled&) {
    return true;
  } catch (...) {
    return false;
  }
}

// The SIGSEGV handler's question: is this fault in the guard page (or just
// below the stack) of the fiber running on this thread? Only reads memory.
bool find_overflowing_fiber(const void* fault, context::OverflowReport& report) {
  Scheduler* s = Scheduler::current();
  if (s == nullptr) return false;
  FiberControl* f = s->running();
  if (f == nullptr || !f->stack) return false;
  auto* p = static_cast<const std::byte*>(fault);
  // A frame larger than the guard page can step over it: count faults up to
  // 64 KiB below the stack as overflows too.
  constexpr std::size_t kSlack = 64 * 1024;
  bool below = p < f->stack.low() && p + kSlack >= f->stack.base;
  if (!f->stack.guard_contains(fault) && !below) return false;
  report.fiber_id = f->id;
  report.fiber_name = f->name;
  report.stack_size = f->stack.usable_size();
  return true;
}

}  // namespace

Scheduler& Scheduler::require(const char* what) {
  Scheduler* s = tls_scheduler;
  if (s == nullptr) {
    throw std::logic_error(std::string("spindle::") + what + " called outside spindle::run");
  }
  return *s;
}

Scheduler::Scheduler(const Options& options, Workers* workers, unsigned index)
    : options_(options),
      workers_(workers),
      index_(index),
      loop_(options.backend,
            BackendOptions{.uring_entries = options.uring_entries,
                           .uring_sqpoll = options.uring_sqpoll,
                           .uring_sqpoll_idle_ms = options.uring_sqpoll_idle_ms,
                           .uring_registered_files = options.uring_registered_files,
                           .sidecar = options.sidecar}),
      stacks_(context::StackOptions{.size = options.stack_size,
                                    .guard = options.stack_guard,
                                    .max_cached = options.stack_cache}),
      main_exec_(context::Execution::for_current_thread()),
      steal_seed_(0x9e3779b97f4a7c15ULL * (index + 1)) {
  if (tls_scheduler != nullptr) {
    throw std::logic_error("spindle::run called inside a running spindle runtime");
  }
  if (options.ignore_sigpipe) {
    struct sigaction current;
    if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL &&
        (current.sa_flags & SA_SIGINFO) == 0) {
      ::signal(SIGPIPE, SIG_IGN);
    }
  }
  if (options.coarse_timeouts.count() > 0) {
    coarse_ = std::make_unique<CoarseTimers>(loop_, options.coarse_timeouts.count());
  }
  context::ensure_alternate_signal_stack();
  context::install_overflow_handler(&find_overflowing_fiber);
  tls_scheduler = this;
}

Scheduler::~Scheduler() {
  // A post() from another thread may still be touching this scheduler
  // (sleeping_, the waker) after its fiber ran and finished.
  while (posts_in_flight_.load(std::memory_order_acquire) != 0) ::sched_yield();
  if (zombie_ != nullptr) drop_ref(std::exchange(zombie_, nullptr));
  // Control blocks released on other threads after the last turn; other
  // events no longer matter (every fiber is done, or abandoned).
  for (FiberControl* f = remote_head_.exchange(nullptr); f != nullptr;) {
    FiberControl* next = f->remote_next;
    if ((f->remote_events.exchange(0) & kRemoteRelease) != 0) {
      destroy(f);
    } else {
      drop_ref(f);
    }
    f = next;
  }
  if (io_extension.destroy != nullptr) io_extension.destroy(io_extension.state);
  tls_scheduler = nullptr;
  // Fibers still alive here (run() failed) are abandoned: their stacks stay
  // mapped, since handles or kernel operations may still point into them.
}

context::Stack Scheduler::acquire_stack(const SpinOptions& options) {
  if (options.worker >= 0 && static_cast<unsigned>(options.worker) >= worker_count()) {
    throw std::out_of_range("spindle::spin: worker " + std::to_string(options.worker) +
                            " does not exist (the runtime has " + std::to_string(worker_count()) +
                            ")");
  }
  return options.stack_size == 0 ? stacks_.allocate() : stacks_.allocate(options.stack_size);
}

void Scheduler::launch(FiberControl* f, const SpinOptions& options, bool detached) noexcept {
  f->scheduler.store(this, std::memory_order_relaxed);
  f->id = g_next_fiber_id.fetch_add(1, std::memory_order_relaxed);
  set_name(f, options.name);
  f->detached = detached;
  f->migratable = options.migratable;
  f->high_priority = options.priority == Priority::high;
  f->home = options.worker;
  f->stack_pool = index_;
  f->exec = context::Execution::for_stack(f->stack.low(), f->stack.usable_size());
  // The fiber's frames start below its control block.
  f->exec.ctx = context::make_context(f, &Scheduler::fiber_main, f);
  if (!detached && running_ != nullptr) {
    link_child(running_, f);
    // A cancelled fiber's new children start cancelled; a fiber shutting
    // down has children that are shutting down.
    if (running_->cancel_requested.load(std::memory_order_relaxed)) cancel_local(f);
    f->shutting_down.store(running_->shutting_down.load(std::memory_order_relaxed),
                           std::memory_order_relaxed);
  }
  if (multi())
    workers_->fiber_started();
  else
    ++alive_;
  ++spawned_;
  if (options.worker >= 0 && static_cast<unsigned>(options.worker) != index_) {
    start_on(f, static_cast<unsigned>(options.worker));
    return;
  }
  make_ready(f);
  enqueue_new(f);
}

void Scheduler::enqueue_new(FiberControl* f) noexcept {
  if (!multi() || f->high_priority || f->home >= 0) {
    enqueue(f);
    return;
  }
  if (!ring_.push(f)) overflow_.push_back(f);
  // Publish the fiber before looking for a parked worker to take it; a
  // parking worker sets its bit before its last look at the rings.
  if (workers_->idle_after_publish()) workers_->wake_one_idle();
}

void Scheduler::start_on(FiberControl* f, unsigned target) noexcept {
  f->state.store(FiberState::runnable, std::memory_order_relaxed);
  f->scheduler.store(workers_->at(target), std::memory_order_release);
  post(f, kRemoteStart);
}

void Scheduler::relaunch(FiberControl* f) noexcept {
  f->error = nullptr;
  f->error_observed = false;
  f->child_failure = nullptr;
  f->injected = nullptr;
  f->cancel_requested.store(false, std::memory_order_relaxed);
  f->pending_cancels.store(0, std::memory_order_relaxed);
  f->has_pending_resume = false;
  f->exec.release();
  // The frames of the previous run are gone below the control block.
  context::Stack below = f->stack;
  below.mapping_size = static_cast<std::size_t>(reinterpret_cast<std::byte*>(f) - f->stack.base);
  context::StackPool::forget_frames(below);
  f->exec = context::Execution::for_stack(f->stack.low(), f->stack.usable_size());
  f->exec.ctx = context::make_context(f, &Scheduler::fiber_main, f);
  f->parent = nullptr;
  f->scheduler.store(this, std::memory_order_relaxed);
  f->started.store(false, std::memory_order_relaxed);
  if (!f->detached && running_ != nullptr) link_child(running_, f);
  add_ref(f);  // the reference a live fiber holds on itself
  if (multi())
    workers_->fiber_started();
  else
    ++alive_;
  schedule(f);
}

void Scheduler::link_child(FiberControl* parent, FiberControl* child) noexcept {
  FamilyGuard g(parent, multi());
  child->parent = parent;
  child->prev_sibling = nullptr;
  child->next_sibling = parent->first_child;
  if (parent->first_child != nullptr) parent->first_child->prev_sibling = child;
  parent->first_child = child;
  ++parent->live_children;
}

// Under the parent's family lock (several workers).
void Scheduler::unlink_child(FiberControl* child) noexcept {
  FiberControl* parent = child->parent;
  if (child->prev_sibling != nullptr)
    child->prev_sibling->next_sibling = child->next_sibling;
  else
    parent->first_child = child->next_sibling;
  if (child->next_sibling != nullptr) child->next_sibling->prev_sibling = child->prev_sibling;
  child->prev_sibling = child->next_sibling = nullptr;
  --parent->live_children;
}

void Scheduler::cancel_children(FiberControl* f, FiberControl* except) noexcept {
  FamilyGuard g(f, multi());
  for (FiberControl* c = f->first_child; c != nullptr; c = c->next_sibling) {
    if (c == except) continue;
    if (multi())
      post(c, kRemoteCancel);  // on its own worker
    else
      cancel_local(c);
  }
}

void Scheduler::wait_children(FiberControl* f) noexcept {
  if (f->error || f->cancel_requested.load(std::memory_order_relaxed)) cancel_children(f, nullptr);
  struct ChildrenWait : WaitHook {
    FiberControl* fiber;
  } wait;
  wait.fiber = f;
  // Cancelling the parent cancels the children; it still waits for them:
  // the last one to finish schedules it.
  wait.interrupt = [](WaitHook* h) noexcept {
    FiberControl* parent = static_cast<ChildrenWait*>(h)->fiber;
    owner(parent)->cancel_children(parent, nullptr);
  };
  while (live_children(f) > 0) park_interruptible(WaitKind::children, &wait);
}

void Scheduler::propagate_failure(FiberControl* parent, FiberControl* child) noexcept {
  if (parent->shutting_down.load(std::memory_order_relaxed)) {
    // Shutting down: keep the others going until their grace ends.
    try {
      parent->shutdown_errors.push_back(child->error);
      return;
    } catch (...) {
      // No memory to collect it: report it the usual way.
    }
  }
  if (!parent->child_failure) {
    parent->child_failure = child->error;
    parent->pending_cancels.fetch_add(1, std::memory_order_relaxed);
  }
  cancel_children(parent, child);
  interrupt(parent);
}

void Scheduler::absorb_remote_failures(FiberControl* parent) noexcept {
  FiberControl* failed;
  {
    FamilyGuard g(parent, true);
    failed = std::exchange(parent->remote_failures, nullptr);
  }
  while (failed != nullptr) {
    FiberControl* c = failed;
    failed = std::exchange(c->failed_next, nullptr);
    propagate_failure(parent, c);
    drop_ref(c);
  }
}

void Scheduler::fiber_main(void* arg) {
  context::on_context_entry();
  auto* f = static_cast<FiberControl*>(arg);
  if (tls_scheduler->multi()) {
    f->started.store(true);
    tls_scheduler->start_requested_shutdown(f);
  }
  for (;;) {
    try {
      f->body(f);
    } catch (...) {
      f->error = std::current_exception();
    }
    // A migratable fiber may have changed workers: look again.
    Scheduler* s = tls_scheduler;
    if (s->live_children(f) > 0) s->wait_children(f);
    // A child's failure that arrived after the function's last suspension
    // point is the fiber's result.
    if (!f->error && f->child_failure) f->error = std::exchange(f->child_failure, nullptr);
    if (!f->shutdown_errors.empty()) s->collect_shutdown_errors(f);
    if (!f->restart_requested) break;
    // restart() of a running fiber: it was cancelled to stop; run it again.
    f->restart_requested = false;
    f->error = nullptr;
    f->child_failure = nullptr;
    f->injected = nullptr;
    f->cancel_requested.store(false, std::memory_order_relaxed);
    f->pending_cancels.store(0, std::memory_order_relaxed);
  }
  tls_scheduler->finish(f);
}

void Scheduler::collect_shutdown_errors(FiberControl* f) noexcept {
  // The fiber's own failure joins the list, unless it is only the
  // cancellation that ended the grace period.
  try {
    if (f->error && !is_cancellation(f->error)) f->shutdown_errors.push_back(f->error);
    f->error = std::make_exception_ptr(ShutdownErrors(std::move(f->shutdown_errors)));
  } catch (...) {
    f->error = std::current_exception();
  }
  f->shutdown_errors.clear();
}

void Scheduler::mark_shutdown(FiberControl* x) noexcept {
  x->shutting_down.store(true);
  if (multi()) {
    // Not started: it reads the flag when it starts, and has nothing else.
    if (!x->started.load()) return;
    if (owner(x) != this) {
      post(x, kRemoteShutdown);
      return;
    }
  }
  for (CancelScope* sc = x->scopes; sc != nullptr; sc = sc->outer) {
    if (sc->wakes_on_shutdown) sc->cancel();
  }
  FamilyGuard g(x, multi());
  for (FiberControl* c = x->first_child; c != nullptr; c = c->next_sibling) {
    if (multi())
      post(c, kRemoteShutdown);
    else
      mark_shutdown(c);
  }
}

void Scheduler::shutdown(FiberControl* f, std::chrono::nanoseconds grace) {
  if (f->state.load(std::memory_order_relaxed) == FiberState::done) return;
  mark_shutdown(f);
  loop_.remove_timer(f->grace_timer);
  f->grace_timer.fiber = f;
  f->grace_timer.deadline_ns = Loop::now_ns() + (grace.count() > 0 ? grace.count() : 0);
  f->grace_timer.fire = [](TimerNode* node) noexcept {
    // Armed on the fiber's worker, which it does not leave while armed.
    FiberControl* fiber = static_cast<FiberControl::GraceTimer*>(node)->fiber;
    owner(fiber)->cancel_local(fiber);
  };
  loop_.add_timer(f->grace_timer);
}

void Scheduler::start_requested_shutdown(FiberControl* f) noexcept {
  if (!f->grace_pending.load(std::memory_order_relaxed) || !f->grace_pending.exchange(false)) {
    return;
  }
  try {
    shutdown(f, std::chrono::nanoseconds(f->requested_grace_ns.load(std::memory_order_relaxed)));
  } catch (...) {
    cancel_local(f);  // no memory for the grace timer: no grace
  }
}

void Scheduler::wake_joiner(FiberControl* waiter) noexcept {
  if (owner(waiter) == this) {
    if (waiter->state.load(std::memory_order_relaxed) == FiberState::suspended &&
        waiter->waiting == WaitKind::join) {
      schedule(waiter);
    }
  } else {
    post(waiter, kRemoteFamily);  // its wait_any looks at its nodes again
  }
}

void Scheduler::finish(FiberControl* f) noexcept {
  loop_.remove_timer(f->grace_timer);
  if (multi()) {
    finish_family(f);
  } else {
    f->state.store(FiberState::done, std::memory_order_release);
    --alive_;
    bool received = false;  // someone waiting for it takes its result
    for (DoneWaiter* w = std::exchange(f->done_waiters, nullptr); w != nullptr;) {
      DoneWaiter* next = w->next;
      w->fired = true;
      w->next = w->prev = nullptr;
      received = true;
      if (w->waiter->state.load(std::memory_order_relaxed) == FiberState::suspended) {
        schedule(w->waiter);
      }
      w = next;
    }
    for (ExitHook* h = std::exchange(f->exit_hooks, nullptr); h != nullptr;) {
      ExitHook* next = h->next;
      h->on_exit(h, f);
      h = next;
    }
    if (FiberControl* parent = f->parent) {
      unlink_child(f);
      if (f->error && !received && !f->error_observed && !is_cancellation(f->error)) {
        f->error_observed = true;  // reported through the parent
        propagate_failure(parent, f);
      }
      if (parent->live_children == 0 &&
          parent->state.load(std::memory_order_relaxed) == FiberState::suspended &&
          parent->waiting == WaitKind::children) {
        schedule(parent);
      }
    }
  }
  zombie_ = f;
  running_ = nullptr;
  ++switches_;
  if (multi()) workers_->fiber_done();
  context::jump(f->exec, main_exec_, /*from_is_finished=*/true);
  __builtin_unreachable();
}

void Scheduler::finish_family(FiberControl* f) noexcept {
  // Exit hooks first (they may read the result, which a joiner then takes);
  // then, under the fiber's lock, it is done and its joiners are told.
  bool received = false;
  bool failed = false;
  for (;;) {
    ExitHook* hooks;
    {
      FamilyGuard g(f, true);
      hooks = std::exchange(f->exit_hooks, nullptr);
      if (hooks == nullptr) {
        for (DoneWaiter* w = f->done_waiters; w != nullptr; w = w->next) received = true;
        failed = f->parent != nullptr && f->error && !received && !f->error_observed &&
                 !is_cancellation(f->error);
        if (failed) f->error_observed = true;  // reported through the parent
        f->state.store(FiberState::done, std::memory_order_release);
        for (DoneWaiter* w = std::exchange(f->done_waiters, nullptr); w != nullptr;) {
          DoneWaiter* next = w->next;
          FiberControl* waiter = w->waiter;
          w->fired = true;
          w->next = w->prev = nullptr;
          // The node may vanish once the lock is released; the waiter
          // cannot: it unlinks under this lock before it moves on.
          wake_joiner(waiter);
          w = next;
        }
        break;
      }
    }
    for (ExitHook* h = hooks; h != nullptr;) {
      ExitHook* next = h->next;
      h->on_exit(h, f);
      h = next;
    }
  }
  FiberControl* parent = f->parent;
  if (parent == nullptr) return;
  bool here = owner(parent) == this;
  bool last;
  {
    FamilyGuard g(parent, true);
    unlink_child(f);
    last = parent->live_children == 0;
    if (failed && !here) {
      add_ref(f);  // the parent's worker takes the failure in
      f->failed_next = parent->remote_failures;
      parent->remote_failures = f;
    }
  }
  if (!here) {
    if (failed || last) post(parent, kRemoteFamily);
    return;
  }
  if (failed) propagate_failure(parent, f);
  if (last && parent->state.load(std::memory_order_relaxed) == FiberState::suspended &&
      parent->waiting == WaitKind::children) {
    schedule(parent);
  }
}

void Scheduler::resume_from_scheduler(FiberControl* f) noexcept {
  running_ = f;
  ++switches_;
  context::jump(main_exec_, f->exec);
  after_switch_in();
}

// Back in the scheduler's context: what the fiber that left asked for.
void Scheduler::after_switch_in() noexcept {
  if (zombie_ != nullptr) drop_ref(std::exchange(zombie_, nullptr));
  if (handoff_ != nullptr) start_on(std::exchange(handoff_, nullptr), handoff_to_);
}

void Scheduler::migrate_running(unsigned target) {
  FiberControl* self = running_;
  if (self == nullptr) throw std::logic_error("spindle::migrate_to called outside a fiber");
  if (target >= worker_count()) {
    throw std::out_of_range("spindle::migrate_to: worker " + std::to_string(target) +
                            " does not exist (the runtime has " + std::to_string(worker_count()) +
                            ")");
  }
  if (!self->migratable) {
    throw std::logic_error("spindle::migrate_to: fiber " + std::to_string(self->id) +
                           " was not spawned migratable");
  }
  if (self->pins != 0 || self->grace_timer.queued()) {
    throw std::logic_error("spindle::migrate_to: fiber " + std::to_string(self->id) +
                           " has a deadline armed on this worker");
  }
  if (target == index_) return;
  handoff_ = self;
  handoff_to_ = target;
  running_ = nullptr;
  ++switches_;
  context::jump(self->exec, main_exec_);
}

FiberControl* Scheduler::pick_slow() noexcept {
  if (high_count_ != 0) {
    bool normal_waits =
        !ready_.empty() || lifo_ != nullptr || (multi() && (!ring_.empty() || !overflow_.empty()));
    if (high_run_ < kHighBurst || !normal_waits) {
      ++high_run_;
      --high_count_;
      return high_.pop_front();
    }
  }
  high_run_ = 0;  // a normal fiber's turn
  if (!multi()) return ready_.pop_front();
  auto pop_new = [this]() noexcept -> FiberControl* {
    FiberControl* f = ring_.pop();
    if (f == nullptr) f = overflow_.pop_front();
    if (!overflow_.empty() && ring_.size() < StealRing::kSize / 2) {
      // Top the ring up from the overflow so that others can steal them.
      while (ring_.size() < StealRing::kSize / 2) {
        FiberControl* g = overflow_.pop_front();
        if (g == nullptr) break;
        ring_.push(g);
      }
      if (workers_->idle_after_publish()) workers_->wake_one_idle();
    }
    return f;
  };
  if (++fair_tick_ % kFairTick == 0) {
    if (FiberControl* f = pop_new()) return f;
  }
  if (lifo_ != nullptr) {
    if (lifo_run_ < kLifoBurst) {
      ++lifo_run_;
      return std::exchange(lifo_, nullptr);
    }
    ready_.push_back(std::exchange(lifo_, nullptr));
  }
  lifo_run_ = 0;
  if (FiberControl* f = ready_.pop_front()) return f;
  return pop_new();
}

void Scheduler::consume_budget() noexcept {
  FiberControl* self = running_;
  if (self == nullptr) return;
  if (budget_mark_ != switches_) {  // a switch since the last refill: a new turn
    budget_mark_ = switches_;
    budget_ = kBudget;
  }
  if (--budget_ != 0) return;
  ++budget_yields_;
  enqueue(self);
  switch_away(self);
}

void Scheduler::run_until_done() {
  if (multi()) {
    run_until_done_multi();
    return;
  }
  while (alive_ > 0) {
    if (remote_head_.load(std::memory_order_relaxed) != nullptr) drain_remote();
    if (has_runnable()) {
      if (poll_due_ && loop_.has_work()) {
        ++polls_;
        loop_.turn(0);
      }
      poll_due_ = false;
      resume_from_scheduler(pick());
      continue;
    }
    // Nothing to run: block in the loop. Announce it first, then look at the
    // remote list once more, so a post racing with us either is seen here or
    // sees `sleeping_` and wakes the loop (both sides are seq_cst).
    sleeping_.store(true);
    if (remote_head_.load() != nullptr) {
      sleeping_.store(false);
      continue;
    }
    if (!loop_.has_work() && sync_parked_ == 0) {
      sleeping_.store(false);
      throw std::runtime_error("spindle::run: deadlock: " + std::to_string(alive_) +
                               " fiber(s) are suspended and nothing can wake them");
    }
    ++polls_;
    loop_.turn(-1);
    sleeping_.store(false);
  }
}

void Scheduler::run_until_done_multi() {
  while (!workers_->stopping()) {
    if (remote_head_.load(std::memory_order_relaxed) != nullptr) drain_remote();
    if (FiberControl* f = pick()) {
      if (poll_due_ && loop_.has_work()) {
        ++polls_;
        loop_.turn(0);
      }
      poll_due_ = false;
      resume_from_scheduler(f);
      continue;
    }
    if (loop_.has_work()) {
      ++polls_;
      loop_.turn(0);
      if (has_runnable()) continue;
    }
    if (steal()) continue;
    park_worker();
  }
}

bool Scheduler::steal() noexcept {
  unsigned n = workers_->count();
  steal_seed_ ^= steal_seed_ << 13;
  steal_seed_ ^= steal_seed_ >> 7;
  steal_seed_ ^= steal_seed_ << 17;
  unsigned start = static_cast<unsigned>(steal_seed_ % n);
  FiberControl* got[StealRing::kSize / 2];
  for (unsigned i = 0; i < n; ++i) {
    unsigned v = (start + i) % n;
    if (v == index_) continue;
    std::uint32_t k = workers_->at(v)->ring_.steal_half(got);
    if (k == 0) continue;
    for (std::uint32_t j = 0; j < k; ++j) {
      got[j]->scheduler.store(this, std::memory_order_release);
      if (!ring_.push(got[j])) overflow_.push_back(got[j]);
    }
    stolen_ += k;
    return true;
  }
  return false;
}

void Scheduler::park_worker() {
  // A short spin first (about 80 us at most: kIdleSpins rounds of a few
  // pauses): work often arrives within microseconds (a reply from the
  // other worker), and parking costs two system calls plus the scheduler's
  // wake-up latency. Pauses, not sched_yield: on a loaded machine a yield
  // can hand the core to another process for a whole time slice.
  for (unsigned i = 0; i < kIdleSpins; ++i) {
    if (remote_head_.load(std::memory_order_relaxed) != nullptr || workers_->stopping()) return;
    if ((i % 8) == 0 && steal()) return;
    for (int k = 0; k < 4; ++k) cpu_relax();
  }
  // Announce, then look once more: whoever makes work after our look sees
  // the announcement and wakes us (both sides are seq_cst).
  workers_->set_idle(index_);
  sleeping_.store(true);
  bool work = remote_head_.load() != nullptr || workers_->stopping();
  for (unsigned v = 0; !work && v < workers_->count(); ++v) {
    if (v != index_ && !workers_->at(v)->ring_.empty()) work = true;
  }
  if (!work) {
    ++polls_;
    ++parks_;
    loop_.turn(-1);
  }
  sleeping_.store(false);
  workers_->clear_idle(index_);
}

void Scheduler::post(FiberControl* f, std::uint8_t events) noexcept {
  Scheduler* s = owner(f);
  if (tls_scheduler == s) {
    s->handle_events(f, events);  // on the fiber's own thread: no queue
    return;
  }
  if (f->remote_events.fetch_or(events, std::memory_order_acq_rel) != 0) {
    return;  // already listed; the drain sees the new bits
  }
  add_ref(f);  // the list holds the fiber until the drain
  s->push_remote(f);
}

void Scheduler::push_remote(FiberControl* f) noexcept {
  // Once pushed, the fiber may run, finish, and its runtime end before this
  // thread looks at sleeping_: the destructor waits for posts in flight.
  posts_in_flight_.fetch_add(1, std::memory_order_seq_cst);
  FiberControl* head = remote_head_.load(std::memory_order_relaxed);
  do {
    f->remote_next = head;
  } while (!remote_head_.compare_exchange_weak(head, f, std::memory_order_seq_cst,
                                               std::memory_order_relaxed));
  if (sleeping_.load()) loop_.backend().wake();
  posts_in_flight_.fetch_sub(1, std::memory_order_release);
}

void Scheduler::release(FiberControl* f) noexcept {
  Scheduler* s = owner(f);
  Scheduler* here = tls_scheduler;
  if (here == s && !s->multi()) {
    here->destroy(f);
    return;
  }
  if (here != nullptr && here->multi() && here->workers_ == s->workers_) {
    // Any worker of its runtime may free it, keeping the stack while its
    // pool has room; otherwise the stack goes home, so that a worker that
    // only runs stolen fibers does not unmap what its spawner maps again.
    if (f->stack_pool == here->index_ || here->stacks_.cached() < here->options_.stack_cache ||
        here->workers_->stopping()) {
      here->destroy(f);
      return;
    }
    s = here->workers_->at(f->stack_pool);
  }
  // The stack goes back to its pool on that pool's thread. No reference is
  // left, so the fiber is on no remote list.
  f->remote_events.store(kRemoteRelease, std::memory_order_relaxed);
  s->push_remote(f);
}

void Scheduler::drain_remote() noexcept {
  FiberControl* list = remote_head_.exchange(nullptr, std::memory_order_acquire);
  // Pushed newest first: reverse to deliver in posting order.
  FiberControl* ordered = nullptr;
  while (list != nullptr) {
    FiberControl* next = list->remote_next;
    list->remote_next = ordered;
    ordered = list;
    list = next;
  }
  while (ordered != nullptr) {
    FiberControl* f = ordered;
    ordered = f->remote_next;  // read before the bits are cleared: f may be re-posted then
    std::uint8_t events = f->remote_events.exchange(0, std::memory_order_acq_rel);
    if ((events & kRemoteRelease) != 0) {
      destroy(f);  // no reference was held for this one
      continue;
    }
    handle_events(f, events, /*woken_remotely=*/true);
    drop_ref(f);
  }
}

void Scheduler::handle_events(FiberControl* f, std::uint8_t events, bool woken_remotely) noexcept {
  if (multi()) {
    // Read `started` first: a worker that took the fiber set its owner
    // before it started it.
    bool started = f->started.load();
    if (owner(f) != this) {
      post(f, events);  // it moved meanwhile: forward
      return;
    }
    if ((events & kRemoteStart) != 0) {
      make_ready(f);
      enqueue(f);  // placed here (spin_on, migrate_to): it stays
    }
    if (!started) {
      // Never run, maybe being stolen right now: only its atomic flags. A
      // shutdown's grace timer is armed by the worker that starts it.
      if ((events & kRemoteCancel) != 0) cancel_local(f);
      if ((events & (kRemoteShutdown | kRemoteShutdownRoot)) != 0) f->shutting_down.store(true);
      return;
    }
  }
  if ((events & kRemoteCancel) != 0) cancel_local(f);
  if ((events & kRemoteShutdown) != 0) mark_shutdown(f);
  if ((events & kRemoteShutdownRoot) != 0) start_requested_shutdown(f);
  bool suspended = f->state.load(std::memory_order_relaxed) == FiberState::suspended;
  if ((events & kRemoteFamily) != 0) {
    absorb_remote_failures(f);
    suspended = f->state.load(std::memory_order_relaxed) == FiberState::suspended;
    if (suspended && ((f->waiting == WaitKind::children && live_children(f) == 0) ||
                      f->waiting == WaitKind::join)) {
      schedule(f);  // join re-checks its nodes; children, the count
      suspended = false;
    }
  }
  if ((events & kRemoteResume) != 0 && suspended && f->waiting == WaitKind::resume) {
    schedule(f);  // suspend() takes the value (or waits again if it is gone)
    suspended = false;
  }
  if ((events & kRemoteWake) != 0 && suspended) {
    make_ready(f);
    if (woken_remotely && multi() && !f->high_priority) {
      // Runs next: a reply from another worker is usually what the
      // fibers here wait for (ping-pong). Bounded by kLifoBurst.
      if (lifo_ != nullptr) ready_.push_back(lifo_);
      lifo_ = f;
    } else {
      enqueue(f);
    }
  }
}

bool Scheduler::effective_cancel(const FiberControl* f, const void** scope) noexcept {
  for (const CancelScope* s = f->scopes; s != nullptr; s = s->outer) {
    if (s->cancelled) {
      *scope = s;
      return true;
    }
    if (s->shield) return false;
  }
  *scope = nullptr;
  return f->child_failure || f->injected || f->cancel_requested.load(std::memory_order_relaxed);
}

void Scheduler::throw_if_cancelled(FiberControl* f) {
  const void* scope;
  if (!effective_cancel(f, &scope)) return;
  if (scope == nullptr) {
    // At the fiber's own level: a child's failure first, then raise(), then
    // cancellation (which stays pending).
    for (std::exception_ptr* slot : {&f->child_failure, &f->injected}) {
      if (*slot) {
        f->pending_cancels.fetch_sub(1, std::memory_order_relaxed);
        std::rethrow_exception(std::exchange(*slot, nullptr));
      }
    }
  }
  throw Cancelled(scope);
}

void Scheduler::interrupt(FiberControl* f) noexcept {
  if (f->state.load(std::memory_order_relaxed) != FiberState::suspended || f->wait_hook == nullptr)
    return;
  const void* scope;
  if (!effective_cancel(f, &scope)) return;  // shielded: delivered after the shield
  WaitHook* hook = std::exchange(f->wait_hook, nullptr);
  hook->interrupt(hook);
}

void Scheduler::arm_deadline(CancelScope::Deadline& d) {
  if (!d.armed) {
    d.armed = true;
    ++d.scope->fiber->pins;  // a migratable fiber stays while its deadline is in this loop
  }
  if (coarse_) {
    coarse_->add(d);
  } else {
    d.deadline_ns = d.due_ns;
    loop_.add_timer(d);
  }
}

void Scheduler::disarm_deadline(CancelScope::Deadline& d) noexcept {
  if (coarse_) coarse_->remove(d);
  loop_.remove_timer(d);
  if (d.armed) {
    d.armed = false;
    --d.scope->fiber->pins;
  }
}

void Scheduler::cancel_local(FiberControl* f) noexcept {
  if (f->state.load(std::memory_order_relaxed) == FiberState::done ||
      f->cancel_requested.exchange(true, std::memory_order_relaxed))
    return;
  f->pending_cancels.fetch_add(1, std::memory_order_relaxed);
  // A fiber that has not started (several workers: maybe being stolen) has
  // no wait to end and no children.
  if (multi() && !f->started.load()) return;
  interrupt(f);
  cancel_children(f, nullptr);  // cancellation travels down the tree
}

void Scheduler::rethrow_unhandled() {
  if (unhandled_) std::rethrow_exception(std::exchange(unhandled_, nullptr));
}

void Scheduler::destroy(FiberControl* f) noexcept {
  // Attached fibers report failures to their parent (or joiner) when they
  // finish; a detached fiber's failure nobody saw goes to run().
  if (f->detached && f->error && !f->error_observed && !unhandled_ && !is_cancellation(f->error)) {
    unhandled_ = f->error;
  }
  context::Stack stack = f->stack;
  f->exec.release();
  f->destroy(f);
  stacks_.release(stack);
}

Metrics Scheduler::metrics() const {
  Metrics m;
  m.backend = loop_.backend_kind();
  m.backend_reason = loop_.backend_reason();
  m.fibers_spawned = spawned_;
  m.fibers_alive = alive_;
  m.context_switches = switches_;
  m.loop_polls = polls_;
  m.stacks_cached = stacks_.cached();
  m.worker = index_;
  m.workers = worker_count();
  if (multi()) m.fibers_alive = workers_->alive();
  m.fibers_stolen = stolen_;
  m.worker_parks = parks_;
  m.budget_yields = budget_yields_;
  return m;
}

}  // namespace spindle::detail

namespace spindle::detail {

std::size_t Scheduler::link_done_waiters(FiberControl* const* fibers, DoneWaiter* waiters,
                                         std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    FiberControl* target = fibers[i];
    DoneWaiter* w = &waiters[i];
    bool done;
    {
      FamilyGuard g(target, multi());
      done = target->state.load(std::memory_order_relaxed) == FiberState::done;
      if (!done) {
        w->fired = false;
        w->prev = nullptr;
        w->next = target->done_waiters;
        if (target->done_waiters != nullptr) target->done_waiters->prev = w;
        target->done_waiters = w;
      }
    }
    if (done) {
      // Finished since the caller looked: undo the links made so far.
      unlink_done_waiters(fibers, waiters, i);
      return i;
    }
  }
  return n;
}

std::size_t Scheduler::unlink_done_waiters(FiberControl* const* fibers, DoneWaiter* waiters,
                                           std::size_t n) noexcept {
  std::size_t winner = n;
  for (std::size_t i = 0; i < n; ++i) {
    FiberControl* target = fibers[i];
    DoneWaiter* w = &waiters[i];
    FamilyGuard g(target, multi());
    if (w->fired) {  // finish() already took the whole list
      if (winner == n) winner = i;
      continue;
    }
    if (w->prev != nullptr)
      w->prev->next = w->next;
    else
      target->done_waiters = w->next;
    if (w->next != nullptr) w->next->prev = w->prev;
    w->next = w->prev = nullptr;
  }
  return winner;
}

bool Scheduler::any_fired(FiberControl* const* fibers, DoneWaiter* waiters,
                          std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    FamilyGuard g(fibers[i], multi());
    if (waiters[i].fired) return true;
  }
  return false;
}

}  // namespace spindle::detail
