// The CPU's spin-wait hint, for every layer's bounded spins (the fiber
// layer's SpinLock and idle workers, the loop's sidecar hand-off).
#pragma once

namespace spindle::detail {

// Tells the CPU the caller is spinning (x86 pause, AArch64 yield): the
// sibling hyperthread gets the core's resources and leaving the spin does
// not pay for a mispredicted memory order.
inline void cpu_relax() noexcept {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace spindle::detail
