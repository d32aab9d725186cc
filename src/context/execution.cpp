#include "spindle/context/execution.hpp"

#include <pthread.h>

#include "context/sanitizers.hpp"

#ifdef SPINDLE_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef SPINDLE_TSAN
#include <sanitizer/tsan_interface.h>
#endif

extern "C" void* __cxa_get_globals() noexcept;

namespace spindle::context {

namespace detail {

constinit thread_local CxxExceptionGlobals* tls_cxx_exception_globals
    __attribute__((tls_model("initial-exec"))) = nullptr;

CxxExceptionGlobals* load_cxx_exception_globals() noexcept {
  tls_cxx_exception_globals = static_cast<CxxExceptionGlobals*>(__cxa_get_globals());
  return tls_cxx_exception_globals;
}

}  // namespace detail

Execution Execution::for_current_thread() noexcept {
  Execution e;
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstack(&attr, &e.stack_low, &e.stack_size);
    pthread_attr_destroy(&attr);
  }
#ifdef SPINDLE_TSAN
  e.tsan_fiber = __tsan_get_current_fiber();
#endif
  return e;
}

Execution Execution::for_stack(void* low, std::size_t size) noexcept {
  Execution e;
  e.stack_low = low;
  e.stack_size = size;
#ifdef SPINDLE_TSAN
  e.tsan_fiber = __tsan_create_fiber(0);
#endif
  return e;
}

void Execution::release() noexcept {
#ifdef SPINDLE_TSAN
  if (tsan_fiber != nullptr) __tsan_destroy_fiber(tsan_fiber);
#endif
  tsan_fiber = nullptr;
}

#ifndef SPINDLE_FIBER_SANITIZERS
void jump_swapping_exceptions(Execution& from, Execution& to) noexcept {
  swap_exception_state(from, to);
  switch_context(from.ctx, to.ctx);
}
#endif

#ifdef SPINDLE_FIBER_SANITIZERS
void jump(Execution& from, Execution& to, bool from_is_finished) noexcept {
#ifdef SPINDLE_ASAN
  __sanitizer_start_switch_fiber(from_is_finished ? nullptr : &from.asan_fake_stack, to.stack_low,
                                 to.stack_size);
#else
  (void)from_is_finished;
#endif
#ifdef SPINDLE_TSAN
  __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
  swap_exception_state(from, to);
  switch_context(from.ctx, to.ctx);
#ifdef SPINDLE_ASAN
  __sanitizer_finish_switch_fiber(from.asan_fake_stack, nullptr, nullptr);
#endif
}
#endif

void on_context_entry() noexcept {
#ifdef SPINDLE_ASAN
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
}

}  // namespace spindle::context
