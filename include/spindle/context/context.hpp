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

// Bytes of the frame a suspended context keeps at its stack pointer: what a
// switch to it reads first.
#if defined(__x86_64__)
inline constexpr std::size_t kSavedFrameBytes = 72;
#elif defined(__aarch64__)
inline constexpr std::size_t kSavedFrameBytes = 176;
#endif

// Starts loading a suspended context's saved frame into the cache, so that a
// switch to it soon after does not wait for memory: with thousands of
// contexts, the frame of the next one is rarely cached. Only a hint; it
// never faults.
inline void prefetch_context(const Context& c) noexcept {
  const char* frame = static_cast<const char*>(c.sp);
  for (std::size_t at = 0; at < kSavedFrameBytes; at += 64) __builtin_prefetch(frame + at);
  __builtin_prefetch(frame + kSavedFrameBytes - 1);  // the frame need not start a line
}

// Switches from the running context (saved into `from`) to `to`. Returns when
// some other context switches back to `from`. No system call, no allocation.
inline void switch_context(Context& from, const Context& to) noexcept {
  spindle_context_switch(&from.sp, to.sp);
}

}  // namespace spindle::context
