// FdStream on the io layer's operations.
#include "spindle/stream/fd_stream.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include "spindle/fiber/fiber.hpp"
#include "spindle/io/ops.hpp"

namespace spindle {

std::size_t FdStream::read_some(std::span<std::byte> buffer, Deadline deadline) {
  return spindle::read(fd_, buffer, deadline);
}

std::size_t FdStream::write_some(std::span<const std::byte> data, Deadline deadline) {
  iovec v{const_cast<std::byte*>(data.data()), data.size()};
  return spindle::writev_some(fd_, {&v, 1}, deadline);
}

std::size_t FdStream::writev_some(std::span<const iovec> buffers, Deadline deadline) {
  return spindle::writev_some(fd_, buffers, deadline);
}

void FdStream::write_all(std::span<const std::byte> data, Deadline deadline) {
  spindle::write(fd_, data, deadline);
}

void FdStream::close() {
  if (fd_ < 0) return;
  spindle::close(std::exchange(fd_, -1));
}

void FdStream::shutdown_write() {
  spindle::shutdown(fd_, SHUT_WR);
}

void FdStream::reset() noexcept {
  if (fd_ < 0) return;
  int fd = std::exchange(fd_, -1);
  // io's close drops a registered-file slot too; outside a fiber there is
  // none to drop.
  if (in_fiber()) {
    (void)spindle::nothrow::close(fd);
  } else {
    ::close(fd);
  }
}

PipeStreams open_pipe() {
  Pipe p = make_pipe();
  return {FdStream(p.read_end), FdStream(p.write_end)};
}

}  // namespace spindle
