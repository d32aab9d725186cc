// Fibers blocking on the event loop: readiness waits and kernel completions.
#pragma once

#include <cstdint>

#include "spindle/fiber/fiber.hpp"
#include "spindle/loop/backend.hpp"

namespace spindle {

// Suspends the calling fiber until `fd` is readable (or has hung up or
// failed) and returns the ready events (EPOLLIN, EPOLLHUP, EPOLLERR ...).
// Throws std::system_error naming the fd (e.g. EBADF, or EBUSY when the fd
// has a Loop watcher), std::logic_error outside a fiber.
std::uint32_t wait_readable(int fd);
// Likewise for writability (EPOLLOUT).
std::uint32_t wait_writable(int fd);

namespace detail {

// A Completion that wakes the fiber that created it. Submit it to the
// backend, then call wait(): the fiber suspends until the completion
// arrives and wait() returns the result (>= 0 or -errno).
struct FiberCompletion : Completion {
  FiberControl* fiber;
  std::int32_t result = 0;
  std::uint32_t flags = 0;
  bool completed = false;

  FiberCompletion();  // binds to the calling fiber; std::logic_error outside one
  std::int32_t wait();
};

// The same for a readiness wait.
struct FiberPollWait : PollWait {
  FiberControl* fiber;
  std::int32_t result = 0;
  bool completed = false;

  explicit FiberPollWait(std::uint32_t events);
  std::int32_t wait(int fd);  // poll_once + suspend; result as above
};

}  // namespace detail
}  // namespace spindle
