// Nanosecond counts in the timespec shapes the kernel takes.
#pragma once

#include <cstdint>

namespace spindle::detail {

// Fills `ts` (a timespec or __kernel_timespec) with `ns` (a timeout or a
// deadline) and returns it; returns null for a negative `ns`, which the
// kernel's calls take as "no limit".
template <class Timespec>
Timespec* timespec_or_null(std::int64_t ns, Timespec& ts) noexcept {
  if (ns < 0) return nullptr;
  ts.tv_sec = ns / 1'000'000'000;
  ts.tv_nsec = ns % 1'000'000'000;
  return &ts;
}

}  // namespace spindle::detail
