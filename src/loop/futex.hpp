// Thin wrappers over the futex system call for threads that block outside
// any loop: the sidecar handshake (loop) and OS-thread waiters (sync).
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdint>

#include "loop/timespec.hpp"

namespace spindle::detail {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "a futex word is an atomic<uint32_t>");

// Sleeps while `*word == expected`, until woken, interrupted or the absolute
// CLOCK_MONOTONIC `deadline_ns` (< 0: none). Returns at once if the word
// differs; callers re-check their condition in a loop (wake-ups can be
// spurious).
inline void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                       std::int64_t deadline_ns = -1) noexcept {
  timespec ts;
  timespec* timeout = timespec_or_null(deadline_ns, ts);
  // FUTEX_WAIT_BITSET takes an absolute deadline; plain FUTEX_WAIT a relative one.
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word),
            FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, timeout, nullptr,
            FUTEX_BITSET_MATCH_ANY);
}

// Wakes up to `count` threads sleeping on `word`.
inline void futex_wake(std::atomic<std::uint32_t>* word, int count = 1) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE | FUTEX_PRIVATE_FLAG,
            count, nullptr, nullptr, 0);
}

}  // namespace spindle::detail
