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

Scheduler::Scheduler(const Options& options)
    : options_(options),
      loop_(options.backend,
            BackendOptions{.uring_entries = options.uring_entries,
                           .uring_sqpoll = options.uring_sqpoll,
                           .uring_sqpoll_idle_ms = options.uring_sqpoll_idle_ms,
                           .uring_registered_files = options.uring_registered_files}),
      stacks_(context::StackOptions{.size = options.stack_size,
                                    .guard = options.stack_guard,
                                    .max_cached = options.stack_cache}),
      main_exec_(context::Execution::for_current_thread()) {
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
  if (io_extension.destroy != nullptr) io_extension.destroy(io_extension.state);
  tls_scheduler = nullptr;
  // Fibers still alive here (run() failed) are abandoned: their stacks stay
  // mapped, since handles or kernel operations may still point into them.
}

context::Stack Scheduler::acquire_stack(const SpinOptions& options) {
  return options.stack_size == 0 ? stacks_.allocate() : stacks_.allocate(options.stack_size);
}

void Scheduler::launch(FiberControl* f, const SpinOptions& options, bool detached) noexcept {
  f->scheduler = this;
  f->id = g_next_fiber_id.fetch_add(1, std::memory_order_relaxed);
  set_name(f, options.name);
  f->detached = detached;
  f->exec = context::Execution::for_stack(f->stack.low(), f->stack.usable_size());
  // The fiber's frames start below its control block.
  f->exec.ctx = context::make_context(f, &Scheduler::fiber_main, f);
  if (!detached && running_ != nullptr) {
    link_child(running_, f);
    // A cancelled fiber's new children start cancelled; a fiber shutting
    // down has children that are shutting down.
    if (running_->cancel_requested.load(std::memory_order_relaxed)) cancel_local(f);
    f->shutting_down = running_->shutting_down;
  }
  ++alive_;
  ++spawned_;
  schedule(f);
}

void Scheduler::relaunch(FiberControl* f) noexcept {
  f->error = nullptr;
  f->error_observed = false;
  f->child_failure = nullptr;
  f->injected = nullptr;
  f->cancel_requested.store(false, std::memory_order_relaxed);
  f->pending_cancels = 0;
  f->has_pending_resume = false;
  f->exec.release();
  // The frames of the previous run are gone below the control block.
  context::Stack below = f->stack;
  below.mapping_size = static_cast<std::size_t>(reinterpret_cast<std::byte*>(f) - f->stack.base);
  context::StackPool::forget_frames(below);
  f->exec = context::Execution::for_stack(f->stack.low(), f->stack.usable_size());
  f->exec.ctx = context::make_context(f, &Scheduler::fiber_main, f);
  f->parent = nullptr;
  if (!f->detached && running_ != nullptr) link_child(running_, f);
  add_ref(f);  // the reference a live fiber holds on itself
  ++alive_;
  schedule(f);
}

void Scheduler::link_child(FiberControl* parent, FiberControl* child) noexcept {
  child->parent = parent;
  child->prev_sibling = nullptr;
  child->next_sibling = parent->first_child;
  if (parent->first_child != nullptr) parent->first_child->prev_sibling = child;
  parent->first_child = child;
  ++parent->live_children;
}

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
  for (FiberControl* c = f->first_child; c != nullptr; c = c->next_sibling) {
    if (c != except) cancel_local(c);
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
    static_cast<Scheduler*>(parent->scheduler)->cancel_children(parent, nullptr);
  };
  while (f->live_children > 0) park_interruptible(WaitKind::children, &wait);
}

void Scheduler::propagate_failure(FiberControl* parent, FiberControl* child) noexcept {
  child->error_observed = true;  // reported through the parent
  if (parent->shutting_down) {
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
    ++parent->pending_cancels;
  }
  cancel_children(parent, child);
  interrupt(parent);
}

void Scheduler::fiber_main(void* arg) {
  context::on_context_entry();
  auto* f = static_cast<FiberControl*>(arg);
  Scheduler* s = tls_scheduler;
  for (;;) {
    try {
      f->body(f);
    } catch (...) {
      f->error = std::current_exception();
    }
    if (f->live_children > 0) s->wait_children(f);
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
    f->pending_cancels = 0;
  }
  s->finish(f);
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

void Scheduler::shutdown(FiberControl* f, std::chrono::nanoseconds grace) {
  if (f->state == FiberState::done) return;
  struct Mark {
    static void down(FiberControl* x) noexcept {
      x->shutting_down = true;
      for (CancelScope* sc = x->scopes; sc != nullptr; sc = sc->outer) {
        if (sc->wakes_on_shutdown) sc->cancel();
      }
      for (FiberControl* c = x->first_child; c != nullptr; c = c->next_sibling) down(c);
    }
  };
  Mark::down(f);
  loop_.remove_timer(f->grace_timer);
  f->grace_timer.fiber = f;
  f->grace_timer.deadline_ns = Loop::now_ns() + (grace.count() > 0 ? grace.count() : 0);
  f->grace_timer.fire = [](TimerNode* node) noexcept {
    FiberControl* fiber = static_cast<FiberControl::GraceTimer*>(node)->fiber;
    static_cast<Scheduler*>(fiber->scheduler)->cancel_local(fiber);
  };
  loop_.add_timer(f->grace_timer);
}

void Scheduler::finish(FiberControl* f) noexcept {
  loop_.remove_timer(f->grace_timer);
  f->state = FiberState::done;
  --alive_;
  bool received = false;  // someone waiting for it takes its result
  for (DoneWaiter* w = std::exchange(f->done_waiters, nullptr); w != nullptr;) {
    DoneWaiter* next = w->next;
    w->fired = true;
    w->next = w->prev = nullptr;
    received = true;
    if (w->waiter->state == FiberState::suspended) schedule(w->waiter);
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
      propagate_failure(parent, f);
    }
    if (parent->live_children == 0 && parent->state == FiberState::suspended &&
        parent->waiting == WaitKind::children) {
      schedule(parent);
    }
  }
  zombie_ = f;
  running_ = nullptr;
  ++switches_;
  context::jump(f->exec, main_exec_, /*from_is_finished=*/true);
  __builtin_unreachable();
}

void Scheduler::resume_from_scheduler(FiberControl* f) noexcept {
  f->state = FiberState::running;
  running_ = f;
  ++switches_;
  context::jump(main_exec_, f->exec);
  if (zombie_ != nullptr) drop_ref(std::exchange(zombie_, nullptr));
}

void Scheduler::run_until_done() {
  while (alive_ > 0) {
    if (remote_head_.load(std::memory_order_relaxed) != nullptr) drain_remote();
    if (!ready_.empty()) {
      if (poll_due_ && loop_.has_work()) {
        ++polls_;
        loop_.turn(0);
      }
      poll_due_ = false;
      resume_from_scheduler(ready_.pop_front());
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

void Scheduler::post(FiberControl* f, std::uint8_t events) noexcept {
  auto* s = static_cast<Scheduler*>(f->scheduler);
  if (tls_scheduler == s) {
    // On the fiber's own thread: no queue.
    if ((events & kRemoteCancel) != 0) s->cancel_local(f);
    if ((events & kRemoteWake) != 0 && f->state == FiberState::suspended) s->schedule(f);
    return;
  }
  if (f->remote_events.fetch_or(events, std::memory_order_acq_rel) != 0) {
    return;  // already listed; the drain sees the new bits
  }
  add_ref(f);  // the list holds the fiber until the drain
  // Once pushed, the fiber may run, finish, and its runtime end before this
  // thread looks at sleeping_: the destructor waits for posts in flight.
  s->posts_in_flight_.fetch_add(1, std::memory_order_seq_cst);
  FiberControl* head = s->remote_head_.load(std::memory_order_relaxed);
  do {
    f->remote_next = head;
  } while (!s->remote_head_.compare_exchange_weak(head, f, std::memory_order_seq_cst,
                                                  std::memory_order_relaxed));
  if (s->sleeping_.load()) s->loop_.backend().wake();
  s->posts_in_flight_.fetch_sub(1, std::memory_order_release);
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
    if ((events & kRemoteCancel) != 0) cancel_local(f);
    if ((events & kRemoteWake) != 0 && f->state == FiberState::suspended) schedule(f);
    drop_ref(f);
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
        --f->pending_cancels;
        std::rethrow_exception(std::exchange(*slot, nullptr));
      }
    }
  }
  throw Cancelled(scope);
}

void Scheduler::interrupt(FiberControl* f) noexcept {
  if (f->state != FiberState::suspended || f->wait_hook == nullptr) return;
  const void* scope;
  if (!effective_cancel(f, &scope)) return;  // shielded: delivered after the shield
  WaitHook* hook = std::exchange(f->wait_hook, nullptr);
  hook->interrupt(hook);
}

void Scheduler::arm_deadline(CancelScope::Deadline& d) {
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
}

void Scheduler::cancel_local(FiberControl* f) noexcept {
  if (f->state == FiberState::done || f->cancel_requested.load(std::memory_order_relaxed)) return;
  f->cancel_requested.store(true, std::memory_order_relaxed);
  ++f->pending_cancels;
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
  return m;
}

}  // namespace spindle::detail
