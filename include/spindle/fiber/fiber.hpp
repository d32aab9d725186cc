// Fibers: spin, join, yield, suspend/resume, sleep.
#pragma once

#include <any>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <new>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "spindle/context/execution.hpp"
#include "spindle/context/stack.hpp"
#include "spindle/fiber/spin_lock.hpp"
#include "spindle/loop/timer_heap.hpp"

namespace spindle {

class FiberRef;
template <class T>
class Fiber;
struct SpinOptions;
template <class F>
auto spin(F&& fn, SpinOptions options) -> Fiber<std::invoke_result_t<std::decay_t<F>&>>;

// Scheduling priority of a fiber on its worker.
enum class Priority : std::uint8_t { normal, high };

// Per-fiber settings for spin().
struct SpinOptions {
  // Shown in stack-overflow reports and dumps; truncated to 31 bytes.
  std::string_view name = {};
  // Usable stack bytes; 0 means the runtime's Options::stack_size (pooled).
  std::size_t stack_size = 0;
  // No parent: the spawning fiber does not wait for it, and its errors go to
  // run() instead (spin_detached sets this).
  bool detached = false;
  // The worker to run on (0 .. workers-1; spin_on sets it). -1: the
  // spawning worker, from which an idle worker may steal it before it first
  // runs. A fiber placed on a worker is never stolen.
  int worker = -1;
  // The fiber may move between workers after it has started: at a yield()
  // an idle worker may take it, and it may call migrate_to(). Only for code
  // that caches no thread-local address across a suspension point (errno
  // included: the compiler may keep &errno in a register across a switch).
  // See docs/fibers.md, "Workers".
  bool migratable = false;
  // Priority::high fibers run before normal ones on their worker; normal
  // ones still get a turn (see docs/fibers.md).
  Priority priority = Priority::normal;
};

namespace detail {
struct FiberControl;
FiberControl* control_of(const FiberRef& ref) noexcept;

// `runnable` covers both running and queued to run: nothing needs to tell
// them apart (the scheduler's running() names the one that runs), so a yield
// from one runnable fiber to another writes no state.
enum class FiberState : std::uint8_t { runnable, suspended, done };

// What a suspended fiber waits for (for resume() checks, dumps and reports).
// `sync` waits may be ended from other threads (the sync layer's
// primitives); the others only from the fiber's own runtime thread.
enum class WaitKind : std::uint8_t { none, resume, sleep, join, children, io, sync };

// How to end the wait a fiber is parked in before it completes, for
// cancellation and deadlines. interrupt() runs on the fiber's runtime thread,
// at most once per wait, and must make sure the fiber is scheduled exactly
// once: at once (unlink it from what it waits on), or when a kernel
// operation it asked to cancel has completed.
struct WaitHook {
  void (*interrupt)(WaitHook* self) noexcept = nullptr;
};

struct CancelScope;

// The sync layer's per-fiber mailbox (spindle/sync/mailbox.hpp): created on
// first use, from any thread; deleted with the control block.
struct MailboxSlot {
  struct Box {
    virtual ~Box() = default;
  };
  std::atomic<Box*> box{nullptr};
  MailboxSlot() noexcept = default;
  MailboxSlot(const MailboxSlot&) = delete;
  MailboxSlot& operator=(const MailboxSlot&) = delete;
  ~MailboxSlot() { delete box.load(std::memory_order_acquire); }
};
struct FiberControl;

// Called when a fiber finishes (upper layers' monitors). Runs on the
// fiber's thread, after its result is set; must not throw or suspend. The
// hook owns itself (typically deletes itself).
struct ExitHook {
  ExitHook* next = nullptr;
  void (*on_exit)(ExitHook* self, FiberControl* fiber) noexcept = nullptr;
};

// One fiber waiting for another to finish (join, select, supervise). Lives
// on the waiting fiber's stack; the finishing fiber schedules it.
struct DoneWaiter {
  FiberControl* waiter = nullptr;
  DoneWaiter* next = nullptr;
  DoneWaiter* prev = nullptr;
  bool fired = false;
};

// The fiber control block. It lives at the top of the fiber's own stack, so
// a fiber costs no heap allocation. Freed (its stack returned to the pool)
// when the fiber is done and the last FiberRef / Fiber handle is gone.
//
// Threads: a fiber belongs to one worker (`scheduler`) at a time, and only
// that worker's thread touches its plain fields. `scheduler` changes only
// while the fiber is not running and not parked (a never-run fiber stolen
// by another worker, a migratable one taken at a yield): hence the atomics
// for what other threads read (state, scheduler, pending_cancels). With
// several workers, the tree links, live_children, done_waiters, exit_hooks
// and remote_failures are guarded by `family` (a parent's lock guards its
// children's sibling links); a single worker takes no locks.
struct FiberControl {
  context::Execution exec;
  FiberControl* next = nullptr;           // run queue link (only while queued)
  std::atomic<void*> scheduler{nullptr};  // the owning Scheduler (detail::owner())
  context::Stack stack;
  std::uint64_t id = 0;
  std::atomic<std::uint32_t> refs{2};  // one for the handle, one while not done
  std::atomic<FiberState> state{FiberState::runnable};
  WaitKind waiting = WaitKind::none;
  bool error_observed = false;
  bool has_pending_resume = false;
  bool detached = false;           // spin_detached: no parent
  bool restart_requested = false;  // restart() of a running fiber
  // FiberRef::shutdown reached it (inherited by children). Atomic: it may
  // reach a fiber that has not started yet from another worker.
  std::atomic<bool> shutting_down{false};
  // Several workers: set as the fiber first runs, so that another worker
  // knows whether anything but its atomic flags may be touched yet.
  std::atomic<bool> started{false};
  bool migratable = false;       // SpinOptions::migratable
  bool high_priority = false;    // SpinOptions::priority == Priority::high
  std::int32_t home = -1;        // SpinOptions::worker: never stolen from it
  std::uint32_t stack_pool = 0;  // the worker whose stack pool the stack came from
  std::uint32_t pins = 0;        // armed deadlines keep a migratable fiber in place
  SpinLock family;               // see above (several workers only)
  // The fiber tree. Children are linked while they are not done; a fiber
  // that finishes first waits for them.
  FiberControl* parent = nullptr;
  FiberControl* first_child = nullptr;
  FiberControl* next_sibling = nullptr;
  FiberControl* prev_sibling = nullptr;
  std::uint32_t live_children = 0;
  DoneWaiter* done_waiters = nullptr;  // fibers waiting for this one to finish
  ExitHook* exit_hooks = nullptr;      // monitors, told when it finishes
  std::exception_ptr child_failure;    // a child's error, thrown at the next suspension point
  std::exception_ptr injected;         // raise(): thrown at the next suspension point
  std::vector<std::exception_ptr> shutdown_errors;  // children's failures while shutting down
  struct GraceTimer : TimerNode {
    FiberControl* fiber = nullptr;
  } grace_timer;  // FiberRef::shutdown: cancels what is left
  // FiberRef::shutdown from another worker, or of a fiber not started yet:
  // the grace its worker starts (when it has it, or when it starts).
  std::atomic<std::int64_t> requested_grace_ns{0};
  std::atomic<bool> grace_pending{false};
  WaitHook* wait_hook = nullptr;              // while parked in an interruptible wait
  CancelScope* scopes = nullptr;              // innermost cancel scope (on this fiber's stack)
  std::atomic<bool> cancel_requested{false};  // FiberRef::cancel(): the fiber as a whole
  // cancel_requested + cancelled scopes + child failure + raise(): 0 = fast
  // path. Atomic (relaxed) because a cancellation may reach a fiber that is
  // queued on, or being stolen by, another worker.
  std::atomic<std::uint32_t> pending_cancels{0};
  FiberControl* remote_next = nullptr;         // link in a scheduler's remote list
  std::atomic<std::uint8_t> remote_events{0};  // posted by other threads
  // Children that failed on another worker, for this fiber's own worker to
  // take in (linked through failed_next, each holding a reference).
  FiberControl* remote_failures = nullptr;
  FiberControl* failed_next = nullptr;
  std::exception_ptr error;
  std::any resume_value;
  void (*body)(FiberControl*) = nullptr;              // runs the function, keeps its result
  void (*destroy)(FiberControl*) noexcept = nullptr;  // destroys the whole control block
  char name[32] = {};
  MailboxSlot mailbox;  // the sync layer's per-fiber mailbox
};

// What Fiber<T>::interrupt(value) throws into the fiber: caught by the
// fiber's own frame, which then ends with `value` as its result.
struct InterruptedWith {
  std::any value;
};

template <class T>
struct ResultSlot : FiberControl {
  union {
    T value;
  };
  bool has_value = false;
  ResultSlot() noexcept {}
  ~ResultSlot() {}
};
template <>
struct ResultSlot<void> : FiberControl {};

template <class F, class T>
struct FiberBox final : ResultSlot<T> {
  union {
    F fn;
  };
  explicit FiberBox(F&& f) { new (&fn) F(std::move(f)); }
  explicit FiberBox(const F& f) { new (&fn) F(f); }
  ~FiberBox() {}

  // Runs the function (again, after restart()). Fiber<T>::interrupt(value)
  // ends it with that value instead.
  static void run_body(FiberControl* c) {
    auto* self = static_cast<FiberBox*>(c);
    self->clear_result();
    try {
      if constexpr (std::is_void_v<T>) {
        std::invoke(self->fn);
      } else {
        new (&self->value) T(std::invoke(self->fn));
        self->has_value = true;
      }
    } catch (InterruptedWith& i) {
      if constexpr (!std::is_void_v<T>) {
        new (&self->value) T(std::any_cast<T&&>(std::move(i.value)));
        self->has_value = true;
      }
    }
  }
  void clear_result() noexcept {
    if constexpr (!std::is_void_v<T>) {
      if (this->has_value) this->value.~T();
      this->has_value = false;
    }
  }
  // The function lives as long as the control block, so restart() can run
  // it again.
  static void destroy_box(FiberControl* c) noexcept {
    auto* self = static_cast<FiberBox*>(c);
    self->clear_result();
    self->fn.~F();
    self->~FiberBox();
  }
};

// Scheduler entry points used by the templates below (src/fiber/fiber.cpp).
context::Stack acquire_stack(const SpinOptions& options);
void release_stack(const context::Stack& stack) noexcept;
void launch(FiberControl* fiber, const SpinOptions& options, bool detached) noexcept;
void wait_done(FiberControl* fiber);  // suspends the caller until `fiber` is done
// Suspends the caller until one of `fibers` is done; returns its index (the
// lowest done one). Throws Cancelled if interrupted.
std::size_t wait_any(FiberControl* const* fibers, std::size_t n);
void add_ref(FiberControl* fiber) noexcept;
// An operation completed without suspending: spends one unit of the
// running fiber's cooperative budget, and yields when it is used up (see
// docs/fibers.md, "Cooperative budget"). Not a cancellation point.
void consume_budget() noexcept;
void set_name(FiberControl* fiber, std::string_view name) noexcept;  // truncates to 31 bytes
void drop_ref(FiberControl* fiber) noexcept;

// Calls hook->on_exit when `fiber` finishes (at once if it is done). On the
// fiber's runtime thread.
void add_exit_hook(FiberControl* fiber, ExitHook* hook) noexcept;

// The control block behind a handle (nullptr for an empty one).
detail::FiberControl* control_of(const FiberRef& ref) noexcept;

// Where the control block of type Box goes: at the top of the stack, aligned.
template <class Box>
void* box_address(const context::Stack& stack) noexcept {
  constexpr std::size_t align = alignof(Box) > 64 ? alignof(Box) : 64;
  auto top = reinterpret_cast<std::uintptr_t>(stack.top());
  return reinterpret_cast<void*>((top - sizeof(Box)) & ~(align - 1));
}

}  // namespace detail

// A shared, untyped reference to a fiber: its id and name, and resume().
// Copyable; keeps the fiber's control block (not the fiber) alive.
// Not thread-safe to use one FiberRef object from two threads at once.
class FiberRef {
 public:
  FiberRef() noexcept = default;
  FiberRef(const FiberRef& other) noexcept : ctrl_(other.ctrl_) {
    if (ctrl_ != nullptr) detail::add_ref(ctrl_);
  }
  FiberRef(FiberRef&& other) noexcept : ctrl_(std::exchange(other.ctrl_, nullptr)) {}
  FiberRef& operator=(FiberRef other) noexcept {
    std::swap(ctrl_, other.ctrl_);
    return *this;
  }
  ~FiberRef() {
    if (ctrl_ != nullptr) detail::drop_ref(ctrl_);
  }

  explicit operator bool() const noexcept { return ctrl_ != nullptr; }
  // Unique for the life of the process; the main fiber of the first run() is 1.
  std::uint64_t id() const noexcept { return ctrl_ != nullptr ? ctrl_->id : 0; }
  std::string_view name() const noexcept { return ctrl_ != nullptr ? ctrl_->name : ""; }
  void set_name(std::string_view name) noexcept;
  bool done() const noexcept {
    return ctrl_ != nullptr &&
           ctrl_->state.load(std::memory_order_acquire) == detail::FiberState::done;
  }

  // Where resume() puts a woken fiber in the run queue.
  enum class ResumeAt { back, front };

  // Wakes the fiber from suspend(), which then returns `value`. If the fiber
  // is not in suspend() yet, the value waits for it: its next suspend()
  // returns at once (a resume is never lost). ResumeAt::front runs it next,
  // before the fibers already runnable. Throws std::logic_error if the
  // fiber already has a resume pending, is blocked in another wait (sleep,
  // I/O, join) or is done. Call from a fiber of the same runtime; from
  // another worker the value is delivered through the fiber's worker (`at`
  // does not apply, and a fiber blocked in another wait gets it at its next
  // suspend() instead of an error).
  void resume(std::any value = {}, ResumeAt at = ResumeAt::back) const;

  // Makes the fiber's current (or next) suspension point throw `error`
  // (Polyphony's raise): a blocking call wakes and throws it. Deferred by
  // shield() like a cancellation. On the fiber's runtime thread only
  // (std::logic_error otherwise); a done fiber ignores it.
  void raise(std::exception_ptr error) const;
  template <class E>
  void raise(E error) const {
    raise(std::make_exception_ptr(std::move(error)));
  }

  // Runs the fiber's function again from the start. A done fiber is
  // restarted in place (same id, same stack) as a child of the caller; a
  // running one is cancelled, and once it has unwound (and its children
  // are done) runs again instead of finishing. Runtime thread only.
  void restart() const;

  // Graceful shutdown: flags the fiber and its descendants (shutting_down()
  // is then true in them, and in children they spawn later), ends their
  // until_shutdown() waits at once, and cancels whatever is still running
  // when `grace` has passed. Children's failures meanwhile do not cancel
  // their siblings: they are collected, and the fiber ends with
  // spindle::ShutdownErrors listing them. Returns at once; join() to wait.
  // From any fiber of the runtime (a fiber on another worker is reached
  // through that worker's queue, so it starts a moment later).
  void shutdown(std::chrono::nanoseconds grace) const;

  // The fiber that spawned this one (empty for the main fiber and detached
  // ones), and the children that are not done yet.
  FiberRef parent() const;
  std::vector<FiberRef> children() const;

  // Puts `msg` (as a std::any) in the fiber's mailbox, from any fiber or
  // thread; the fiber takes it with spindle::receive(). Defined in
  // spindle/sync/mailbox.hpp (include it or spindle/spindle.hpp). Throws
  // spindle::MailboxFull when the mailbox is full; try_send returns false.
  template <class M>
  void send(M&& msg) const;
  template <class M>
  bool try_send(M&& msg) const;

  // Cancels the fiber: its current suspension point (or its next one, if it
  // is running) throws spindle::Cancelled, unless a shield() defers it.
  // A blocked kernel operation is cancelled in the kernel first, and the
  // fiber resumes only once the kernel is done with its buffers. Once
  // cancelled, a fiber stays cancelled: every later suspension point throws
  // again (cleanup that must wait belongs in shield()). Thread-safe: may be
  // called from any thread; a done fiber ignores it.
  void cancel() const noexcept;
  // cancel() for a bare control block (combinators).
  static void cancel_control(detail::FiberControl* fiber) noexcept;
  // Whether cancel() was called for this fiber.
  // Thread-safe; a cancel() posted from another thread shows once the
  // fiber's runtime has taken it in.
  bool cancelled() const noexcept {
    return ctrl_ != nullptr && ctrl_->cancel_requested.load(std::memory_order_relaxed);
  }

  // A new reference to a control block (upper layers' bookkeeping).
  static FiberRef share(detail::FiberControl* fiber) noexcept {
    if (fiber != nullptr) detail::add_ref(fiber);
    return FiberRef(fiber);
  }

  friend bool operator==(const FiberRef& a, const FiberRef& b) noexcept {
    return a.ctrl_ == b.ctrl_;
  }

 protected:
  explicit FiberRef(detail::FiberControl* adopted) noexcept : ctrl_(adopted) {}
  detail::FiberControl* ctrl_ = nullptr;

  friend FiberRef current();
  friend detail::FiberControl* detail::control_of(const FiberRef& ref) noexcept;
};

// The handle spin() returns: a FiberRef that can also join the fiber and take
// its result. Move-only. Dropping it without join() detaches the fiber: it
// keeps running, and run() still waits for it (an exception it throws is then
// rethrown by run()).
template <class T>
class Fiber : public FiberRef {
 public:
  Fiber() noexcept = default;
  Fiber(Fiber&&) noexcept = default;
  Fiber& operator=(Fiber&&) noexcept = default;
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  // Ends the fiber with `value` as its result (Polyphony's interrupt /
  // move_on): its current or next suspension point unwinds it, and join()
  // returns `value`. Runtime thread only.
  template <class V = T>
  void interrupt(V value) const requires(!std::is_void_v<T>) {
    raise(std::make_exception_ptr(detail::InterruptedWith{std::any(T(std::move(value)))}));
  }
  void interrupt() const requires std::is_void_v<T> {
    raise(std::make_exception_ptr(detail::InterruptedWith{}));
  }

  // Suspends the caller until the fiber is done, then returns its value or
  // rethrows the exception that escaped it (spindle::Cancelled for a fiber
  // that ended by being cancelled). The handle is empty afterwards. Throws
  // spindle::Cancelled if the caller is cancelled while waiting (the handle
  // then stays valid), std::logic_error for an empty handle or a fiber
  // joining itself.
  T join() {
    detail::wait_done(ctrl_);
    detail::FiberControl* c = std::exchange(ctrl_, nullptr);
    struct Drop {
      detail::FiberControl* c;
      ~Drop() { detail::drop_ref(c); }
    } drop{c};
    c->error_observed = true;
    if (c->error) std::rethrow_exception(std::exchange(c->error, nullptr));
    if constexpr (!std::is_void_v<T>) {
      auto* slot = static_cast<detail::ResultSlot<T>*>(c);
      T value = std::move(slot->value);
      slot->value.~T();
      slot->has_value = false;
      return value;
    }
  }

 private:
  explicit Fiber(detail::FiberControl* adopted) noexcept : FiberRef(adopted) {}
  template <class F>
  friend auto spin(F&& fn, SpinOptions options) -> Fiber<std::invoke_result_t<std::decay_t<F>&>>;
};

// Starts `fn` as a new fiber of the calling fiber's runtime. It is queued to
// run after the fibers already runnable; spin() itself does not switch.
// Allocates nothing on the heap once the stack pool is warm. Throws
// std::logic_error outside spindle::run, std::system_error if no stack can be
// mapped. `fn` is moved into the fiber's own stack.
template <class F>
auto spin(F&& fn, SpinOptions options) -> Fiber<std::invoke_result_t<std::decay_t<F>&>> {
  using Fn = std::decay_t<F>;
  using T = std::invoke_result_t<Fn&>;
  using Box = detail::FiberBox<Fn, T>;
  context::Stack stack = detail::acquire_stack(options);
  Box* box;
  try {
    box = ::new (detail::box_address<Box>(stack)) Box(std::forward<F>(fn));
  } catch (...) {
    detail::release_stack(stack);
    throw;
  }
  box->stack = stack;
  box->body = &Box::run_body;
  box->destroy = &Box::destroy_box;
  detail::launch(box, options, options.detached);
  return Fiber<T>(box);
}

// A fiber with no parent: the caller does not wait for it, cancelling the
// caller does not cancel it, and an exception escaping it (unjoined) is
// rethrown by run() when everything is done. The runtime still waits for it.
template <class F>
auto spin_detached(F&& fn, SpinOptions options = {})
    -> Fiber<std::invoke_result_t<std::decay_t<F>&>> {
  options.detached = true;
  return spin(std::forward<F>(fn), options);
}

// spin() with default options.
template <class F>
auto spin(F&& fn) -> Fiber<std::invoke_result_t<std::decay_t<F>&>> {
  return spin(std::forward<F>(fn), SpinOptions{});
}

// The fiber that is running. Throws std::logic_error outside a fiber.
FiberRef current();

// Lets the other runnable fibers run; the caller stays runnable and continues
// after them (FIFO). Also gives the event loop a turn now and then. A
// cancellation point: throws spindle::Cancelled if the fiber was cancelled.
// Outside a fiber it does nothing.
void yield();

// Parks the calling fiber until FiberRef::resume() wakes it and returns the
// value passed there. Throws spindle::Cancelled if cancelled while waiting,
// std::logic_error outside a fiber.
std::any suspend();

// Suspends the calling fiber for at least `duration` (never less; the
// deadline is on CLOCK_MONOTONIC with nanosecond resolution). A zero or
// negative duration behaves like yield(). Throws spindle::Cancelled if
// cancelled while sleeping.
void sleep(std::chrono::nanoseconds duration);

// Suspends the calling fiber until `deadline` has passed.
void sleep_until(std::chrono::steady_clock::time_point deadline);

// True when called from a fiber.
bool in_fiber() noexcept;

// Whether the calling fiber is asked to shut down (FiberRef::shutdown on it
// or an ancestor). A server's accept loop checks it.
bool shutting_down() noexcept;

// What a fiber ends with when children failed during its graceful
// shutdown: every failure, in the order they happened.
class ShutdownErrors : public std::runtime_error {
 public:
  explicit ShutdownErrors(std::vector<std::exception_ptr> errors);
  const std::vector<std::exception_ptr>& errors() const noexcept { return errors_; }

 private:
  std::vector<std::exception_ptr> errors_;
};

}  // namespace spindle
