#include "spindle/io/ops.hpp"

#include <fcntl.h>
#include <liburing.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

#include "fiber/scheduler.hpp"
#include "loop/uring_backend.hpp"
#include "spindle/fiber/wait.hpp"

namespace spindle {

namespace {

// The io_uring backend of the calling fiber's runtime, or nullptr on epoll.
UringBackend* uring_of_current() {
  detail::Scheduler& s = detail::Scheduler::require("I/O");
  Backend& b = s.loop().backend();
  return b.kind() == BackendKind::io_uring ? static_cast<UringBackend*>(&b) : nullptr;
}

[[noreturn]] void throw_op(ssize_t rc, const char* op, int fd) {
  throw std::system_error(static_cast<int>(-rc), std::system_category(),
                          std::string(op) + " fd " + std::to_string(fd));
}

// On epoll: retries `attempt` (a non-blocking syscall returning -errno) after
// each readiness wait for `events`.
template <class Attempt>
ssize_t retry_when_ready(int fd, std::uint32_t events, Attempt attempt) noexcept {
  for (;;) {
    ssize_t n = attempt();
    if (n >= 0 || (n != -EAGAIN && n != -EINTR)) return n;
    if (n == -EINTR) continue;
    try {
      detail::FiberPollWait w(events);
      std::int32_t rc = w.wait(fd);
      if (rc < 0) return rc;
    } catch (const std::system_error& e) {
      return -e.code().value();
    } catch (...) {
      return -EINVAL;
    }
  }
}

}  // namespace

ssize_t read_some(int fd, std::span<std::byte> buffer) noexcept {
  try {
    if (UringBackend* u = uring_of_current()) {
      detail::FiberCompletion c;
      io_uring_prep_read(u->prepare(&c), fd, buffer.data(), static_cast<unsigned>(buffer.size()),
                         static_cast<__u64>(-1));
      return c.wait();
    }
  } catch (const std::system_error& e) {
    return -e.code().value();
  } catch (...) {
    return -EINVAL;
  }
  return retry_when_ready(fd, EPOLLIN | EPOLLRDHUP, [&]() -> ssize_t {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    return n >= 0 ? n : -errno;
  });
}

ssize_t write_some(int fd, std::span<const std::byte> data) noexcept {
  try {
    if (UringBackend* u = uring_of_current()) {
      detail::FiberCompletion c;
      io_uring_prep_write(u->prepare(&c), fd, data.data(), static_cast<unsigned>(data.size()),
                          static_cast<__u64>(-1));
      return c.wait();
    }
  } catch (const std::system_error& e) {
    return -e.code().value();
  } catch (...) {
    return -EINVAL;
  }
  return retry_when_ready(fd, EPOLLOUT, [&]() -> ssize_t {
    ssize_t n = ::write(fd, data.data(), data.size());
    return n >= 0 ? n : -errno;
  });
}

std::size_t read(int fd, std::span<std::byte> buffer) {
  ssize_t n = read_some(fd, buffer);
  if (n < 0) throw_op(n, "read", fd);
  return static_cast<std::size_t>(n);
}

void write(int fd, std::span<const std::byte> data) {
  while (!data.empty()) {
    ssize_t n = write_some(fd, data);
    if (n < 0) throw_op(n, "write", fd);
    data = data.subspan(static_cast<std::size_t>(n));
  }
}

Pipe make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::system_category(), "pipe2");
  }
  return Pipe{fds[0], fds[1]};
}

}  // namespace spindle
