// An execution context: registers, stack, sanitizer and exception state.
#pragma once

#include <cstddef>

#include "spindle/context/context.hpp"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SPINDLE_FIBER_SANITIZERS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SPINDLE_FIBER_SANITIZERS 1
#endif
#endif

namespace spindle::context {

namespace detail {

// The C++ runtime's per-thread exception bookkeeping (Itanium C++ ABI
// __cxa_eh_globals, as libstdc++ and libc++abi lay it out): the chain of
// exceptions being handled and the number of uncaught ones. It is per
// thread, but each context needs its own, or a fiber that suspends inside a
// catch block would see (and rethrow) another fiber's exception.
struct CxxExceptionGlobals {
  void* caught_exceptions;
  unsigned int uncaught_exceptions;
};

extern constinit thread_local CxxExceptionGlobals* tls_cxx_exception_globals
    __attribute__((tls_model("initial-exec")));
CxxExceptionGlobals* load_cxx_exception_globals() noexcept;

inline CxxExceptionGlobals* cxx_exception_globals() noexcept {
  CxxExceptionGlobals* g = tls_cxx_exception_globals;
  return g != nullptr ? g : load_cxx_exception_globals();
}

}  // namespace detail

// A context plus what must follow it across a switch: its stack bounds and
// the bookkeeping of ASan and TSan (in sanitizer builds), and its own C++
// exception state. Without sanitizers jump() is the register switch plus
// four moves.
struct Execution {
  Context ctx;
  void* stack_low = nullptr;  // lowest usable address of the stack
  std::size_t stack_size = 0;
  void* asan_fake_stack = nullptr;
  void* tsan_fiber = nullptr;
  // This context's exception state while it is switched out.
  void* caught_exceptions = nullptr;
  unsigned int uncaught_exceptions = 0;

  // Describes the stack of the calling OS thread (for the scheduler's own
  // context) and registers it with the sanitizers.
  static Execution for_current_thread() noexcept;
  // Describes a fresh fiber stack [low, low + size).
  static Execution for_stack(void* low, std::size_t size) noexcept;
  // Releases the sanitizer state of a context that will never run again.
  // Must be called from another context.
  void release() noexcept;
};

// Parks the running context's exception state in `from` and installs `to`'s.
// The saved fields of a running context are kept empty (installing clears
// them), so the usual switch, with no exception in flight on either side, is
// five loads and no store.
inline void swap_exception_state(Execution& from, Execution& to) noexcept {
  detail::CxxExceptionGlobals* g = detail::cxx_exception_globals();
  void* caught = g->caught_exceptions;
  unsigned int uncaught = g->uncaught_exceptions;
  if ((caught == nullptr) & (uncaught == 0) & (to.caught_exceptions == nullptr) &
      (to.uncaught_exceptions == 0)) [[likely]] {
    return;
  }
  from.caught_exceptions = caught;
  from.uncaught_exceptions = uncaught;
  g->caught_exceptions = to.caught_exceptions;
  g->uncaught_exceptions = to.uncaught_exceptions;
  to.caught_exceptions = nullptr;
  to.uncaught_exceptions = 0;
}

// Switches from `from` to `to`, each with its own C++ exception state.
// `from_is_finished` tells the sanitizers that `from` will never be resumed
// (its fake stack can be dropped).
#ifdef SPINDLE_FIBER_SANITIZERS
void jump(Execution& from, Execution& to, bool from_is_finished = false) noexcept;
#else
// jump() when the exception state must move: out of line, so that the
// usual jump is a leaf (its callers need no callee-saved register for it).
void jump_swapping_exceptions(Execution& from, Execution& to) noexcept;

inline void jump(Execution& from, Execution& to, bool = false) noexcept {
  detail::CxxExceptionGlobals* g = detail::tls_cxx_exception_globals;
  if ((g == nullptr) |
      (g != nullptr && ((g->caught_exceptions != nullptr) | (g->uncaught_exceptions != 0))) |
      (to.caught_exceptions != nullptr) | (to.uncaught_exceptions != 0)) [[unlikely]] {
    jump_swapping_exceptions(from, to);
    return;
  }
  switch_context(from.ctx, to.ctx);
}
#endif

// Must be the first call in the entry function of a fresh context, before any
// other code runs on the new stack (a no-op without sanitizers).
void on_context_entry() noexcept;

}  // namespace spindle::context
