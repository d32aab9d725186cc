#include "spindle/context/context.hpp"

#include <cstdint>
#include <cstring>

extern "C" void spindle_context_trampoline();

namespace spindle::context {

namespace {
constexpr std::uintptr_t kStackAlign = 16;
}

#if defined(__x86_64__)

// Must match the frame in switch_x86_64.S.
struct InitialFrame {
  std::uint16_t fpu_control;
  std::uint16_t pad0;
  std::uint32_t mxcsr;
  std::uint64_t pad1;
  std::uint64_t r15, r14, r13, r12, rbx, rbp;
  std::uint64_t return_address;
};
static_assert(sizeof(InitialFrame) == kSavedFrameBytes);

Context make_context(void* stack_top, EntryFn entry, void* arg) noexcept {
  auto top = reinterpret_cast<std::uintptr_t>(stack_top) & ~(kStackAlign - 1);
  // After `ret` pops the return address, rsp == top, 16-byte aligned: the
  // trampoline's `call` then gives the entry the alignment the ABI promises.
  auto* frame = reinterpret_cast<InitialFrame*>(top - sizeof(InitialFrame));
  std::memset(frame, 0, sizeof(*frame));
  frame->fpu_control = 0x037F;  // ABI default: all exceptions masked, extended precision
  frame->mxcsr = 0x1F80;        // ABI default: all exceptions masked, round to nearest
  frame->r12 = reinterpret_cast<std::uint64_t>(entry);
  frame->r13 = reinterpret_cast<std::uint64_t>(arg);
  frame->return_address = reinterpret_cast<std::uint64_t>(&spindle_context_trampoline);
  return Context{frame};
}

#elif defined(__aarch64__)

// Must match the frame in switch_aarch64.S.
struct InitialFrame {
  std::uint64_t x19, x20, x21, x22, x23, x24, x25, x26, x27, x28;
  std::uint64_t x29, x30;
  std::uint64_t d8_15[8];
  std::uint64_t fpcr;
  std::uint64_t pad;
};
static_assert(sizeof(InitialFrame) == kSavedFrameBytes);

Context make_context(void* stack_top, EntryFn entry, void* arg) noexcept {
  auto top = reinterpret_cast<std::uintptr_t>(stack_top) & ~(kStackAlign - 1);
  auto* frame = reinterpret_cast<InitialFrame*>(top - sizeof(InitialFrame));
  std::memset(frame, 0, sizeof(*frame));  // FPCR 0: round to nearest, no traps
  frame->x19 = reinterpret_cast<std::uint64_t>(entry);
  frame->x20 = reinterpret_cast<std::uint64_t>(arg);
  frame->x30 = reinterpret_cast<std::uint64_t>(&spindle_context_trampoline);
  return Context{frame};
}

#else
#error "spindle supports x86-64 and AArch64 only"
#endif

}  // namespace spindle::context
