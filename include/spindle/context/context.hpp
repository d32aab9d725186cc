// The register switch: the lowest layer of spindle.
#pragma once

#include <cstddef>

extern "C" {
// Saves the callee-saved registers and floating-point control state of the
// running context on its own stack, stores its stack pointer in *save, then
// loads the context whose stack pointer is `load` and returns into it.
// Written in assembly per architecture (src/context/switch_<arch>.S).
void spindle_context_switch(void** save, void* load) noexcept;
}

namespace spindle::context {

// The entry point of a fresh context. It must never return: a context ends by
// switching away for the last time.
using EntryFn = void (*)(void* arg);

// A suspended execution context: only its saved stack pointer. Everything
// else (registers, FP control words, return address) lives on its stack.
struct Context {
  void* sp = nullptr;
};

// Prepares a context that, when first switched to, calls entry(arg) on the
// stack whose highest usable address is stack_top. The FP control state
// starts at the ABI defaults. Allocates nothing; writes one small frame below
// stack_top.
Context make_context(void* stack_top, EntryFn entry, void* arg) noexcept;

// Switches from the running context (saved into `from`) to `to`. Returns when
// some other context switches back to `from`. No system call, no allocation.
inline void switch_context(Context& from, const Context& to) noexcept {
  spindle_context_switch(&from.sp, to.sp);
}

}  // namespace spindle::context
