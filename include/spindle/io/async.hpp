// Fire-and-forget operations: the call returns at once, the runtime keeps
// the data alive and carries the operation out later, in order per fd.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "spindle/io/result.hpp"

namespace spindle {

// Operations queued by write_async / shutdown_async / close_async run in
// call order per fd, on a detached fiber of the caller's runtime (run()
// waits for them). A failed operation is reported to the async error
// handler, and the writes and shutdowns queued after it for the same fd are
// dropped; a queued close still happens. Each may carry a deadline (a
// point in time, measured when the operation runs).
//
// At most kAsyncQueueLimit bytes may wait in a runtime's queues: beyond
// that write_async throws std::system_error(ENOBUFS) (nothing is queued).
inline constexpr std::size_t kAsyncQueueLimit = 64 * 1024 * 1024;

// Queues a copy of `data`.
void write_async(int fd, std::span<const std::byte> data, Deadline deadline = {});
// Takes the buffer over (no copy).
void write_async(int fd, std::string data, Deadline deadline = {});
void write_async(int fd, std::vector<std::byte> data, Deadline deadline = {});
// Writes `data`, keeping `owner` (whatever owns the bytes) alive until done.
void write_async(int fd, std::shared_ptr<const void> owner, std::span<const std::byte> data,
                 Deadline deadline = {});
void shutdown_async(int fd, int how = SHUT_WR, Deadline deadline = {});
// Closes `fd` once everything queued before it for `fd` is done.
void close_async(int fd);

// Where failures of fire-and-forget operations go.
struct AsyncError {
  const char* op;  // "write_async", "shutdown_async", "close_async"
  int fd;
  std::error_code error;  // ETIMEDOUT for an expired deadline
};
using AsyncErrorHandler = std::function<void(const AsyncError&)>;
// Replaces the process-wide handler (nullptr: the default, which prints one
// line to stderr). It runs on the thread of the runtime whose operation
// failed, in a fiber: it must not throw. Thread-safe. Every failure is also
// counted in IoMetrics::async_errors.
void set_async_error_handler(AsyncErrorHandler handler);

// Bytes waiting in the calling fiber's runtime's async queues.
std::size_t async_queued_bytes();

}  // namespace spindle
