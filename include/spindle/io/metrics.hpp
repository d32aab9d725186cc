// What the io layer of a runtime has done, and which kernel features it
// uses natively.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "spindle/io/blocking.hpp"
#include "spindle/loop/backend_kind.hpp"

namespace spindle {

struct IoMetrics {
  BackendKind backend = BackendKind::automatic;
  // Operations of this runtime's fibers (each op, each readiness wait and
  // each pool hop of one counts once).
  std::uint64_t ops_started = 0;
  std::uint64_t ops_completed = 0;
  std::uint64_t ops_in_flight = 0;  // fibers blocked in an operation now
  std::uint64_t ops_offloaded = 0;  // sent to the blocking pool
  // io_uring: SQEs prepared, CQEs reaped, io_uring_enter calls made by the
  // loop's thread, and waits that could block for CQEs. epoll: cqe_waits
  // counts the epoll waits that could block; the others stay 0.
  std::uint64_t sqes_submitted = 0;
  std::uint64_t cqes_reaped = 0;
  std::uint64_t kernel_enters = 0;
  std::uint64_t cqe_waits = 0;
  std::uint64_t kernel_in_flight = 0;  // io_uring: tracked SQEs without their CQE yet
  // Options::sidecar: whether this worker has a sidecar thread, and the
  // kernel calls it made (its io_uring_enter or ppoll calls).
  bool sidecar = false;
  std::uint64_t sidecar_calls = 0;
  // Time the loop spent blocked waiting for the kernel.
  std::chrono::nanoseconds time_waiting{0};
  // Errors of fire-and-forget operations (write_async ...).
  std::uint64_t async_errors = 0;
  // io_uring setup.
  bool sqpoll = false;
  std::string sqpoll_refused;          // why SQPOLL was not used, if it was asked for
  unsigned registered_files = 0;       // slots
  unsigned registered_files_used = 0;  // slots in use
  // Features running on their fallback path, space separated (io_uring;
  // "" when everything is native). See docs/io.md, "Kernel features".
  std::string fallbacks;
  BlockingPoolStats pool;
};

// Figures of the calling fiber's runtime. Throws std::logic_error outside
// a fiber.
IoMetrics io_metrics();

}  // namespace spindle
