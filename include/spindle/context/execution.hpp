// An execution context as the sanitizers need to see it.
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

// A context plus the bookkeeping that ASan and TSan need to follow a stack
// switch. In builds without sanitizers it is a Context and two words; jump()
// compiles to the bare register switch.
struct Execution {
  Context ctx;
  void* stack_low = nullptr;  // lowest usable address of the stack
  std::size_t stack_size = 0;
  void* asan_fake_stack = nullptr;
  void* tsan_fiber = nullptr;

  // Describes the stack of the calling OS thread (for the scheduler's own
  // context) and registers it with the sanitizers.
  static Execution for_current_thread() noexcept;
  // Describes a fresh fiber stack [low, low + size).
  static Execution for_stack(void* low, std::size_t size) noexcept;
  // Releases the sanitizer state of a context that will never run again.
  // Must be called from another context.
  void release() noexcept;
};

// Switches from `from` to `to`. `from_is_finished` tells the sanitizers that
// `from` will never be resumed (its fake stack can be dropped).
#ifdef SPINDLE_FIBER_SANITIZERS
void jump(Execution& from, Execution& to, bool from_is_finished = false) noexcept;
#else
inline void jump(Execution& from, Execution& to, bool = false) noexcept {
  switch_context(from.ctx, to.ctx);
}
#endif

// Must be the first call in the entry function of a fresh context, before any
// other code runs on the new stack (a no-op without sanitizers).
void on_context_entry() noexcept;

}  // namespace spindle::context
