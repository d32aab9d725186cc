// The free functions of the fiber API: spin's helpers, yield, suspend,
// resume, sleep, join, and waits on the loop.
#include <sys/epoll.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

#include "fiber/scheduler.hpp"
#include "loop/uring_backend.hpp"
#include "spindle/fiber/fiber.hpp"
#include "spindle/fiber/wait.hpp"

namespace spindle {

namespace detail {

context::Stack acquire_stack(const SpinOptions& options) {
  return Scheduler::require("spin").acquire_stack(options);
}

void release_stack(const context::Stack& stack) noexcept {
  if (Scheduler* s = Scheduler::current())
    s->release_stack(stack);
  else
    context::StackPool::unmap(stack);
}

void launch(FiberControl* fiber, const SpinOptions& options, bool detached) noexcept {
  Scheduler::current()->launch(fiber, options, detached);
}

void set_name(FiberControl* fiber, std::string_view name) noexcept {
  std::size_t n = std::min(name.size(), sizeof(fiber->name) - 1);
  if (n != 0) std::memcpy(fiber->name, name.data(), n);
  fiber->name[n] = '\0';
}

void consume_budget() noexcept {
  if (Scheduler* s = Scheduler::current()) s->consume_budget();
}

void add_ref(FiberControl* fiber) noexcept {
  fiber->refs.fetch_add(1, std::memory_order_relaxed);
}

void drop_ref(FiberControl* fiber) noexcept {
  if (fiber->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) Scheduler::release(fiber);
}

void wait_done(FiberControl* fiber) {
  if (fiber == nullptr) throw std::logic_error("spindle::Fiber::join: empty handle");
  if (fiber->state.load(std::memory_order_acquire) == FiberState::done) return;
  Scheduler& s = Scheduler::require("Fiber::join");
  FiberControl* self = s.running();
  if (self == nullptr) throw std::logic_error("spindle::Fiber::join called outside a fiber");
  if (self == fiber) throw std::logic_error("spindle::Fiber::join: a fiber cannot join itself");
  FiberControl* target = fiber;
  wait_any(&target, 1);
}

FiberControl* control_of(const FiberRef& ref) noexcept {
  return ref.ctrl_;
}

void add_exit_hook(FiberControl* fiber, ExitHook* hook) noexcept {
  bool done;
  {
    FamilyGuard g(fiber, owner(fiber)->multi());
    done = fiber->state.load(std::memory_order_relaxed) == FiberState::done;
    if (!done) {
      hook->next = fiber->exit_hooks;
      fiber->exit_hooks = hook;
    }
  }
  if (done) hook->on_exit(hook, fiber);
}

std::size_t wait_any(FiberControl* const* fibers, std::size_t n) {
  Scheduler& s = Scheduler::require("wait");
  FiberControl* self = s.running();
  if (self == nullptr) throw std::logic_error("spindle: waiting for fibers outside a fiber");
  for (std::size_t i = 0; i < n; ++i) {
    if (fibers[i]->state.load(std::memory_order_acquire) == FiberState::done) return i;
  }
  Scheduler::checkpoint(self);
  constexpr std::size_t kInline = 8;
  DoneWaiter inline_waiters[kInline];
  std::unique_ptr<DoneWaiter[]> heap_waiters;
  DoneWaiter* waiters = inline_waiters;
  if (n > kInline) {
    heap_waiters = std::make_unique<DoneWaiter[]>(n);
    waiters = heap_waiters.get();
  }
  for (std::size_t i = 0; i < n; ++i) waiters[i].waiter = self;
  if (std::size_t done = s.link_done_waiters(fibers, waiters, n); done != n) return done;
  struct AnyWait : WaitHook {
    FiberControl* self;
  } wait;
  wait.self = self;
  wait.interrupt = [](WaitHook* h) noexcept {
    auto* w = static_cast<AnyWait*>(h);
    owner(w->self)->schedule(w->self);
  };
  // A joiner does not move while it waits, so `s` stays its scheduler. A
  // wake-up from another worker may be stale (meant for an earlier wait):
  // look at the nodes, and wait again if none fired and nothing cancels.
  for (;;) {
    s.park_interruptible(WaitKind::join, &wait);
    if (s.any_fired(fibers, waiters, n)) break;
    const void* scope;
    if (Scheduler::effective_cancel(self, &scope)) break;
  }
  std::size_t winner = s.unlink_done_waiters(fibers, waiters, n);
  if (winner == n) Scheduler::checkpoint(self);  // interrupted: throws
  return winner;
}

FiberCompletion::FiberCompletion() {
  Scheduler& s = Scheduler::require("I/O");
  fiber = s.running();
  if (fiber == nullptr) throw std::logic_error("spindle: I/O called outside a fiber");
  callback = [](Completion* c, std::int32_t res, std::uint32_t flags) noexcept {
    auto* self = static_cast<FiberCompletion*>(c);
    self->result = res;
    self->flags = flags;
    self->completed = true;
    if (self->fiber->state.load(std::memory_order_relaxed) == FiberState::suspended) {
      // Completions come in batches and the fibers they wake run after the
      // batch: time enough to fetch each one's saved frame, which with
      // thousands of connections is no longer cached (measured: a third
      // of the server's user time at 1,000 echo connections went to that
      // miss). Not done in schedule() itself: fibers that wake each other
      // through sync primitives usually have it cached already.
      context::prefetch_context(self->fiber->exec.ctx);
      owner(self->fiber)->schedule(self->fiber);
    }
  };
}

std::int32_t FiberCompletion::wait() {
  if (completed) return result;
  Scheduler* s = owner(fiber);
  // Interrupting asks the kernel to cancel; the fiber wakes only when the
  // operation's own completion arrives, so its buffers are never written
  // after the fiber has moved on.
  struct OpWait : WaitHook {
    FiberCompletion* op;
  } wait;
  wait.op = this;
  wait.interrupt = [](WaitHook* h) noexcept {
    FiberCompletion* op = static_cast<OpWait*>(h)->op;
    Backend& b = owner(op->fiber)->loop().backend();
    if (b.kind() == BackendKind::io_uring) static_cast<UringBackend&>(b).cancel(op);
  };
  s->park_interruptible(WaitKind::io, &wait);
  return result;
}

FiberPollWait::FiberPollWait(std::uint32_t wanted) {
  Scheduler& s = Scheduler::require("wait_readable");
  fiber = s.running();
  if (fiber == nullptr) throw std::logic_error("spindle: wait on fd called outside a fiber");
  events = wanted;
  callback = [](Completion* c, std::int32_t res, std::uint32_t) noexcept {
    auto* self = static_cast<FiberPollWait*>(c);
    self->result = res;
    self->completed = true;
    if (self->fiber->state.load(std::memory_order_relaxed) == FiberState::suspended) {
      // Completions come in batches and the fibers they wake run after the
      // batch: time enough to fetch each one's saved frame, which with
      // thousands of connections is no longer cached (measured: a third
      // of the server's user time at 1,000 echo connections went to that
      // miss). Not done in schedule() itself: fibers that wake each other
      // through sync primitives usually have it cached already.
      context::prefetch_context(self->fiber->exec.ctx);
      owner(self->fiber)->schedule(self->fiber);
    }
  };
}

std::int32_t FiberPollWait::wait(int fd) {
  Scheduler* s = owner(fiber);
  Scheduler::checkpoint(fiber);
  s->loop().backend().poll_once(fd, this);  // may complete at once (regular files on epoll)
  if (completed) return result;
  struct Wait : WaitHook {
    FiberPollWait* poll;
    int fd;
  } wait;
  wait.poll = this;
  wait.fd = fd;
  wait.interrupt = [](WaitHook* h) noexcept {
    auto* w = static_cast<Wait*>(h);
    owner(w->poll->fiber)->loop().backend().cancel_poll(w->fd, w->poll);
  };
  s->park_interruptible(WaitKind::io, &wait);
  return result;
}

}  // namespace detail

namespace {

std::uint32_t wait_events(int fd, std::uint32_t events, const char* what) {
  detail::FiberPollWait w(events);
  std::int32_t rc = w.wait(fd);
  if (rc == -ECANCELED) detail::Scheduler::checkpoint(w.fiber);
  if (rc < 0) {
    throw std::system_error(-rc, std::system_category(),
                            std::string(what) + " fd " + std::to_string(fd));
  }
  return static_cast<std::uint32_t>(rc);
}

}  // namespace

std::uint32_t wait_readable(int fd) {
  return wait_events(fd, EPOLLIN | EPOLLRDHUP, "wait_readable");
}
std::uint32_t wait_writable(int fd) {
  return wait_events(fd, EPOLLOUT, "wait_writable");
}

void FiberRef::set_name(std::string_view name) noexcept {
  if (ctrl_ != nullptr) detail::set_name(ctrl_, name);
}

void FiberRef::resume(std::any value, ResumeAt at) const {
  if (ctrl_ == nullptr) throw std::logic_error("spindle::FiberRef::resume: empty handle");
  detail::FiberControl* f = ctrl_;
  auto fail = [f](const char* why) {
    throw std::logic_error("spindle::FiberRef::resume: fiber " + std::to_string(f->id) + " " + why);
  };
  detail::FiberState state = f->state.load(std::memory_order_acquire);
  if (state == detail::FiberState::done) fail("is done");
  auto* sched = detail::owner(f);
  detail::Scheduler* here = detail::Scheduler::current();
  if (here != sched) {
    if (here == nullptr || !here->multi() || sched->workers() != here->workers()) {
      fail("belongs to another runtime");
    }
    // Another worker: the value waits in the fiber (under its family
    // lock), and its worker wakes it if it is in suspend().
    {
      detail::FamilyGuard g(f, true);
      if (f->has_pending_resume) fail("already has a resume pending");
      f->resume_value = std::move(value);
      f->has_pending_resume = true;
    }
    detail::Scheduler::post(f, detail::Scheduler::kRemoteResume);
    return;
  }
  detail::FamilyGuard g(f, sched->multi());
  if (f->has_pending_resume) fail("already has a resume pending");
  if (state == detail::FiberState::suspended) {
    if (f->waiting != detail::WaitKind::resume) fail("is blocked in another wait");
    f->resume_value = std::move(value);
    f->has_pending_resume = true;
    if (at == ResumeAt::front)
      sched->schedule_first(f);
    else
      sched->schedule(f);
    return;
  }
  // Running or runnable: its next suspend() returns this value at once.
  f->resume_value = std::move(value);
  f->has_pending_resume = true;
}

namespace {

detail::FiberControl* owned_here(detail::FiberControl* f, const char* what) {
  if (f == nullptr)
    throw std::logic_error(std::string("spindle::FiberRef::") + what + ": empty handle");
  if (detail::Scheduler::current() != detail::owner(f)) {
    throw std::logic_error(std::string("spindle::FiberRef::") + what +
                           ": call it from the fiber's own runtime thread");
  }
  return f;
}

}  // namespace

void FiberRef::raise(std::exception_ptr error) const {
  detail::FiberControl* f = owned_here(ctrl_, "raise");
  if (!error) throw std::invalid_argument("spindle::FiberRef::raise: null exception");
  if (f->state.load(std::memory_order_relaxed) == detail::FiberState::done) return;
  if (!f->injected) f->pending_cancels.fetch_add(1, std::memory_order_relaxed);
  f->injected = std::move(error);
  detail::owner(f)->interrupt(f);
}

void FiberRef::restart() const {
  detail::FiberControl* f = owned_here(ctrl_, "restart");
  auto* sched = detail::owner(f);
  if (f->state.load(std::memory_order_relaxed) == detail::FiberState::done) {
    sched->relaunch(f);
    return;
  }
  f->restart_requested = true;
  sched->cancel_local(f);
}

void FiberRef::shutdown(std::chrono::nanoseconds grace) const {
  if (ctrl_ == nullptr) throw std::logic_error("spindle::FiberRef::shutdown: empty handle");
  detail::Scheduler& here = detail::Scheduler::require("FiberRef::shutdown");
  detail::FiberControl* f = ctrl_;
  detail::Scheduler* o = detail::owner(f);
  if (!here.multi()) {
    if (o != &here) {
      throw std::logic_error(
          "spindle::FiberRef::shutdown: call it from a fiber of the fiber's own runtime");
    }
    here.shutdown(f, grace);
    return;
  }
  if (o->workers() != here.workers()) {
    throw std::logic_error(
        "spindle::FiberRef::shutdown: call it from a fiber of the fiber's own runtime");
  }
  if (o == &here && f->started.load()) {
    here.shutdown(f, grace);
    return;
  }
  // Its own worker arms the grace timer: now if the fiber runs, or as it
  // starts (a fiber not started yet may still be stolen).
  f->requested_grace_ns.store(grace.count(), std::memory_order_relaxed);
  f->grace_pending.store(true);
  detail::Scheduler::post(f, detail::Scheduler::kRemoteShutdownRoot);
}

namespace {

std::string describe(const std::vector<std::exception_ptr>& errors) {
  std::string text =
      "spindle: " + std::to_string(errors.size()) + " failure(s) during graceful shutdown";
  for (const auto& e : errors) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      text += "; ";
      text += x.what();
    } catch (...) {
      text += "; (not a std::exception)";
    }
  }
  return text;
}

}  // namespace

ShutdownErrors::ShutdownErrors(std::vector<std::exception_ptr> errors)
    : std::runtime_error(describe(errors)), errors_(std::move(errors)) {}

bool shutting_down() noexcept {
  detail::Scheduler* s = detail::Scheduler::current();
  return s != nullptr && s->running() != nullptr &&
         s->running()->shutting_down.load(std::memory_order_relaxed);
}

FiberRef FiberRef::parent() const {
  return ctrl_ != nullptr ? share(ctrl_->parent) : FiberRef();
}

std::vector<FiberRef> FiberRef::children() const {
  std::vector<FiberRef> out;
  if (ctrl_ == nullptr) return out;
  detail::FamilyGuard g(ctrl_, detail::owner(ctrl_)->multi());
  for (detail::FiberControl* c = ctrl_->first_child; c != nullptr; c = c->next_sibling) {
    out.push_back(share(c));
  }
  return out;
}

FiberRef current() {
  detail::Scheduler& s = detail::Scheduler::require("current");
  detail::FiberControl* f = s.running();
  if (f == nullptr) throw std::logic_error("spindle::current called outside a fiber");
  return FiberRef::share(f);
}

bool in_fiber() noexcept {
  detail::Scheduler* s = detail::Scheduler::current();
  return s != nullptr && s->running() != nullptr;
}

void yield() {
  detail::Scheduler* s = detail::Scheduler::current();
  if (s == nullptr || s->running() == nullptr) return;
  s->yield_running();
}

std::any suspend() {
  detail::Scheduler& s = detail::Scheduler::require("suspend");
  detail::FiberControl* f = s.running();
  if (f == nullptr) throw std::logic_error("spindle::suspend called outside a fiber");
  detail::Scheduler::checkpoint(f);
  auto take = [&s, f](std::any* out) {
    detail::FamilyGuard g(f, s.multi());  // a resume may come from another worker
    if (!f->has_pending_resume) return false;
    f->has_pending_resume = false;
    *out = std::exchange(f->resume_value, std::any{});
    return true;
  };
  std::any value;
  struct SuspendWait : detail::WaitHook {
    detail::FiberControl* self;
  } wait;
  wait.self = f;
  wait.interrupt = [](detail::WaitHook* h) noexcept {
    auto* self = static_cast<SuspendWait*>(h)->self;
    detail::owner(self)->schedule(self);
  };
  // A wake-up from another worker may be stale (meant for an earlier
  // suspend): without a value and without a cancellation, wait again.
  while (!take(&value)) {
    s.park_interruptible(detail::WaitKind::resume, &wait);
    if (take(&value)) break;
    detail::Scheduler::checkpoint(f);  // interrupted: throws
  }
  return value;
}

namespace {

struct SleepTimer : TimerNode, detail::WaitHook {
  detail::FiberControl* fiber;
};

}  // namespace

void sleep_until(std::chrono::steady_clock::time_point deadline) {
  detail::Scheduler& s = detail::Scheduler::require("sleep");
  detail::FiberControl* f = s.running();
  if (f == nullptr) throw std::logic_error("spindle::sleep called outside a fiber");
  std::int64_t ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
  if (ns <= Loop::now_ns()) {
    s.yield_running();
    return;
  }
  detail::Scheduler::checkpoint(f);
  SleepTimer timer;
  timer.deadline_ns = ns;
  timer.fiber = f;
  timer.fire = [](TimerNode* node) noexcept {
    auto* t = static_cast<SleepTimer*>(node);
    detail::owner(t->fiber)->schedule(t->fiber);
  };
  timer.interrupt = [](detail::WaitHook* h) noexcept {
    auto* t = static_cast<SleepTimer*>(h);
    auto* sched = detail::owner(t->fiber);
    sched->loop().remove_timer(*t);
    sched->schedule(t->fiber);
  };
  s.loop().add_timer(timer);
  s.park_interruptible(detail::WaitKind::sleep, &timer);
  if (timer.queued()) s.loop().remove_timer(timer);
  detail::Scheduler::checkpoint(f);  // interrupted, or cancelled as it woke
}

void sleep(std::chrono::nanoseconds duration) {
  if (duration.count() <= 0) {
    yield();
    return;
  }
  sleep_until(
      std::chrono::steady_clock::time_point(std::chrono::nanoseconds(Loop::now_ns()) + duration));
}

}  // namespace spindle
