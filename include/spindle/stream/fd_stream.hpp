// A Stream that owns a descriptor (a pipe end, a socket, a character
// device ...), on the io layer's operations.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <span>
#include <utility>

#include "spindle/io/result.hpp"
#include "spindle/stream/stream.hpp"

namespace spindle {

// Owns one descriptor and reads and writes it with the io layer's
// operations: each call suspends the calling fiber (not its thread) and is
// a cancellation point; the optional Deadline works as in io/ops.hpp
// (TimedOut when it passes). Errors are std::system_error naming the call
// and the fd ("read fd 7: Connection reset by peer"). Satisfies Stream,
// VectoredStream and FdBackedStream. Move-only; the destructor closes the
// descriptor (io's close in a fiber, close(2) outside one; neither throws).
// One fiber may read while another writes; two concurrent readers (or
// writers) of one FdStream interleave unpredictably, as with the fd itself.
class FdStream {
 public:
  FdStream() noexcept = default;
  // Takes ownership of `fd` (-1: an empty stream).
  explicit FdStream(int fd) noexcept : fd_(fd) {}
  FdStream(FdStream&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FdStream& operator=(FdStream&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~FdStream() { reset(); }

  int fd() const noexcept { return fd_; }
  bool is_open() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return is_open(); }
  // Gives the descriptor up without closing it.
  int release() noexcept { return std::exchange(fd_, -1); }

  // One read: at least one byte, at most buffer.size(); 0 at end of stream.
  std::size_t read_some(std::span<std::byte> buffer, Deadline deadline = {});
  // One write (possibly short); writev_some: one gather write.
  std::size_t write_some(std::span<const std::byte> data, Deadline deadline = {});
  std::size_t writev_some(std::span<const iovec> buffers, Deadline deadline = {});
  // All of `data` (several writes if needed).
  void write_all(std::span<const std::byte> data, Deadline deadline = {});
  // Closes the descriptor now (io's close: not a cancellation point).
  // Idempotent. Errors from close(2) (EIO on some file systems) throw.
  void close();
  // close() for the write direction only of a socket (shutdown(SHUT_WR));
  // a pipe has no such thing: close its write end instead.
  void shutdown_write();

 private:
  void reset() noexcept;
  int fd_ = -1;
};

// The two ends of a pipe as streams (O_NONBLOCK | O_CLOEXEC, from
// make_pipe()). Throws std::system_error("pipe2").
struct PipeStreams {
  FdStream read_end;
  FdStream write_end;
};
PipeStreams open_pipe();

}  // namespace spindle
