// Operations a fiber can block on. (The io layer grows in its own issue;
// this is the part the foundation needs: reads and writes on descriptors.)
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <span>

namespace spindle {

// Reads up to buffer.size() bytes from `fd` into `buffer`, suspending the
// calling fiber (not its thread) until some data, end of file, or an error.
// Returns the byte count (0 at end of file). On io_uring it is one read SQE;
// on epoll a non-blocking read(2), plus a readiness wait on EAGAIN: there the
// descriptor must be non-blocking (spindle::pipe makes it so).
// Throws std::system_error("read fd N"), spindle::Cancelled if the fiber is
// cancelled while it waits (after the kernel has let go of the buffer; data
// that arrived first is returned, and the cancellation waits for the next
// suspension point).
std::size_t read(int fd, std::span<std::byte> buffer);
// Writes all of `data` to `fd` (several writes if the kernel takes less),
// suspending as needed. Throws std::system_error("write fd N"); on EPIPE
// nothing is retried.
void write(int fd, std::span<const std::byte> data);

// The non-throwing forms for hot loops: the byte count, or -errno
// (-ECANCELED when the fiber was cancelled).
ssize_t read_some(int fd, std::span<std::byte> buffer) noexcept;
ssize_t write_some(int fd, std::span<const std::byte> data) noexcept;

// A pipe whose ends are O_NONBLOCK and O_CLOEXEC: [0] reads, [1] writes.
// Throws std::system_error("pipe2").
struct Pipe {
  int read_end = -1;
  int write_end = -1;
};
Pipe make_pipe();

}  // namespace spindle
