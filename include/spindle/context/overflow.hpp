// Stack overflow reports: a fault in a fiber's guard page names the fiber.
#pragma once

#include <cstddef>
#include <cstdint>

namespace spindle::context {

// What the layer that owns fibers tells the overflow handler about a fault.
struct OverflowReport {
  std::uint64_t fiber_id = 0;
  const char* fiber_name = nullptr;  // NUL-terminated; may be empty
  std::size_t stack_size = 0;        // usable bytes
};

// Called from the SIGSEGV handler with the faulting address. Returns true and
// fills `report` when the address lies in the guard page of a live fiber's
// stack. Must be async-signal-safe: read memory, call nothing.
using OverflowLookup = bool (*)(const void* fault_address, OverflowReport& report);

// Installs (once per process) a SIGSEGV/SIGBUS handler that runs on an
// alternate signal stack. For a fault that `lookup` recognises it prints
//   spindle: fiber 42 "worker" overflowed its stack of 128 KiB (fault at 0x...)
// to stderr and aborts; any other fault goes to the handler that was there
// before (by default: the usual crash). Thread-safe.
void install_overflow_handler(OverflowLookup lookup);

// Gives the calling thread an alternate signal stack if it has none, so the
// handler can run even though the faulting stack is exhausted. Call once on
// every thread that runs fibers.
void ensure_alternate_signal_stack();

}  // namespace spindle::context
