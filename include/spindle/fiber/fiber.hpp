// Fibers: spin, join, yield, suspend/resume, sleep.
#pragma once

#include <any>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>

#include "spindle/context/execution.hpp"
#include "spindle/context/stack.hpp"

namespace spindle {

class FiberRef;
template <class T>
class Fiber;
struct SpinOptions;
template <class F>
auto spin(F&& fn, SpinOptions options) -> Fiber<std::invoke_result_t<std::decay_t<F>&>>;

// Per-fiber settings for spin().
struct SpinOptions {
  // Shown in stack-overflow reports and dumps; truncated to 31 bytes.
  std::string_view name = {};
  // Usable stack bytes; 0 means the runtime's Options::stack_size (pooled).
  std::size_t stack_size = 0;
};

namespace detail {

enum class FiberState : std::uint8_t { ready, running, suspended, done };

// What a suspended fiber waits for (for resume() checks, dumps and reports).
// `sync` waits may be ended from other threads (the sync layer's
// primitives); the others only from the fiber's own runtime thread.
enum class WaitKind : std::uint8_t { none, resume, sleep, join, io, sync };

// How to end the wait a fiber is parked in before it completes, for
// cancellation and deadlines. interrupt() runs on the fiber's runtime thread,
// at most once per wait, and must make sure the fiber is scheduled exactly
// once: at once (unlink it from what it waits on), or when a kernel
// operation it asked to cancel has completed.
struct WaitHook {
  void (*interrupt)(WaitHook* self) noexcept = nullptr;
};

struct CancelScope;

// The fiber control block. It lives at the top of the fiber's own stack, so
// a fiber costs no heap allocation. Freed (its stack returned to the pool)
// when the fiber is done and the last FiberRef / Fiber handle is gone.
struct FiberControl {
  context::Execution exec;
  FiberControl* next = nullptr;  // run queue link
  void* scheduler = nullptr;     // the owning Scheduler
  context::Stack stack;
  std::uint64_t id = 0;
  std::atomic<std::uint32_t> refs{2};  // one for the handle, one while not done
  FiberState state = FiberState::ready;
  WaitKind waiting = WaitKind::none;
  bool error_observed = false;
  bool has_pending_resume = false;
  FiberControl* joiner = nullptr;
  WaitHook* wait_hook = nullptr;               // while parked in an interruptible wait
  CancelScope* scopes = nullptr;               // innermost cancel scope (on this fiber's stack)
  std::atomic<bool> cancel_requested{false};   // FiberRef::cancel(): the fiber as a whole
  std::uint32_t pending_cancels = 0;           // cancel_requested + cancelled scopes: 0 = fast path
  FiberControl* remote_next = nullptr;         // link in a scheduler's remote list
  std::atomic<std::uint8_t> remote_events{0};  // posted by other threads
  std::exception_ptr error;
  std::any resume_value;
  void (*body)(FiberControl*) = nullptr;              // runs the function, keeps its result
  void (*destroy)(FiberControl*) noexcept = nullptr;  // destroys the whole control block
  char name[32] = {};
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

  static void run_body(FiberControl* c) {
    auto* self = static_cast<FiberBox*>(c);
    struct DestroyFn {
      FiberBox* box;
      ~DestroyFn() { box->fn.~F(); }
    } guard{self};
    if constexpr (std::is_void_v<T>) {
      std::invoke(self->fn);
    } else {
      new (&self->value) T(std::invoke(self->fn));
      self->has_value = true;
    }
  }
  static void destroy_box(FiberControl* c) noexcept {
    auto* self = static_cast<FiberBox*>(c);
    if constexpr (!std::is_void_v<T>) {
      if (self->has_value) self->value.~T();
    }
    self->~FiberBox();
  }
};

// Scheduler entry points used by the templates below (src/fiber/fiber.cpp).
context::Stack acquire_stack(const SpinOptions& options);
void release_stack(const context::Stack& stack) noexcept;
void launch(FiberControl* fiber, const SpinOptions& options) noexcept;
void wait_done(FiberControl* fiber);  // suspends the caller until `fiber` is done
void add_ref(FiberControl* fiber) noexcept;
void set_name(FiberControl* fiber, std::string_view name) noexcept;  // truncates to 31 bytes
void drop_ref(FiberControl* fiber) noexcept;

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
    return ctrl_ != nullptr && ctrl_->state == detail::FiberState::done;
  }

  // Wakes the fiber from suspend(), which then returns `value`. If the fiber
  // is not in suspend() yet, the value waits for it: its next suspend()
  // returns at once (a resume is never lost). Throws std::logic_error if the
  // fiber already has a resume pending, is blocked in another wait (sleep,
  // I/O, join) or is done. Call from a fiber of the same runtime.
  void resume(std::any value = {}) const;

  // Cancels the fiber: its current suspension point (or its next one, if it
  // is running) throws spindle::Cancelled, unless a shield() defers it.
  // A blocked kernel operation is cancelled in the kernel first, and the
  // fiber resumes only once the kernel is done with its buffers. Once
  // cancelled, a fiber stays cancelled: every later suspension point throws
  // again (cleanup that must wait belongs in shield()). Thread-safe: may be
  // called from any thread; a done fiber ignores it.
  void cancel() const noexcept;
  // Whether cancel() was called for this fiber.
  // Thread-safe; a cancel() posted from another thread shows once the
  // fiber's runtime has taken it in.
  bool cancelled() const noexcept {
    return ctrl_ != nullptr && ctrl_->cancel_requested.load(std::memory_order_relaxed);
  }

  friend bool operator==(const FiberRef& a, const FiberRef& b) noexcept {
    return a.ctrl_ == b.ctrl_;
  }

 protected:
  explicit FiberRef(detail::FiberControl* adopted) noexcept : ctrl_(adopted) {}
  detail::FiberControl* ctrl_ = nullptr;

  friend FiberRef current();
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
  detail::launch(box, options);
  return Fiber<T>(box);
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

}  // namespace spindle
