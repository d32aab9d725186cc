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
#include "spindle/fiber/cancel.hpp"
#include "spindle/fiber/wait.hpp"

namespace spindle {

namespace {

// The io_uring backend of the running fiber's runtime, or nullptr on epoll.
UringBackend* uring_of(detail::Scheduler& s) {
  Backend& b = s.loop().backend();
  return b.kind() == BackendKind::io_uring ? static_cast<UringBackend*>(&b) : nullptr;
}

detail::FiberControl* running_fiber(const char* what) {
  detail::FiberControl* f = detail::Scheduler::require(what).running();
  if (f == nullptr)
    throw std::logic_error(std::string("spindle::") + what + " called outside a fiber");
  return f;
}

[[noreturn]] void throw_op(ssize_t rc, const char* op, int fd) {
  throw std::system_error(static_cast<int>(-rc), std::system_category(),
                          std::string(op) + " fd " + std::to_string(fd));
}

// The result of an operation that may have been cancelled: -ECANCELED with
// a cancellation pending becomes Cancelled; a result that won the race with
// the cancellation is returned (the cancellation waits for the next
// suspension point).
ssize_t settle(detail::FiberControl* f, ssize_t rc) {
  if (rc == -ECANCELED) detail::Scheduler::checkpoint(f);
  return rc;
}

// One operation: an SQE on io_uring; on epoll, the non-blocking syscall
// `attempt` (returning -errno), retried after each readiness wait for
// `events`. Returns the result or -errno; throws Cancelled.
template <class Prep, class Attempt>
ssize_t perform(const char* what, int fd, std::uint32_t events, Prep prep, Attempt attempt) {
  detail::FiberControl* f = running_fiber(what);
  auto& s = *static_cast<detail::Scheduler*>(f->scheduler);
  detail::Scheduler::checkpoint(f);
  if (UringBackend* u = uring_of(s)) {
    detail::FiberCompletion c;
    prep(u->prepare(&c));
    return settle(f, c.wait());
  }
  for (;;) {
    ssize_t n = attempt();
    if (n >= 0 || (n != -EAGAIN && n != -EINTR)) return n;
    if (n == -EINTR) continue;
    detail::FiberPollWait w(events);
    ssize_t rc = settle(f, w.wait(fd));
    if (rc < 0) return rc;
  }
}

ssize_t do_read(int fd, std::span<std::byte> buffer) {
  return perform(
      "read", fd, EPOLLIN | EPOLLRDHUP,
      [&](io_uring_sqe* sqe) {
        io_uring_prep_read(sqe, fd, buffer.data(), static_cast<unsigned>(buffer.size()),
                           static_cast<__u64>(-1));
      },
      [&]() -> ssize_t {
        ssize_t n = ::read(fd, buffer.data(), buffer.size());
        return n >= 0 ? n : -errno;
      });
}

ssize_t do_write(int fd, std::span<const std::byte> data) {
  return perform(
      "write", fd, EPOLLOUT,
      [&](io_uring_sqe* sqe) {
        io_uring_prep_write(sqe, fd, data.data(), static_cast<unsigned>(data.size()),
                            static_cast<__u64>(-1));
      },
      [&]() -> ssize_t {
        ssize_t n = ::write(fd, data.data(), data.size());
        return n >= 0 ? n : -errno;
      });
}

// The non-throwing forms report every failure as -errno.
template <class Op>
ssize_t nothrow(Op op) noexcept {
  try {
    return op();
  } catch (const Cancelled&) {
    return -ECANCELED;
  } catch (const std::system_error& e) {
    return -e.code().value();
  } catch (...) {
    return -EINVAL;
  }
}

}  // namespace

ssize_t read_some(int fd, std::span<std::byte> buffer) noexcept {
  return nothrow([&] { return do_read(fd, buffer); });
}

ssize_t write_some(int fd, std::span<const std::byte> data) noexcept {
  return nothrow([&] { return do_write(fd, data); });
}

std::size_t read(int fd, std::span<std::byte> buffer) {
  ssize_t n = do_read(fd, buffer);
  if (n < 0) throw_op(n, "read", fd);
  return static_cast<std::size_t>(n);
}

void write(int fd, std::span<const std::byte> data) {
  while (!data.empty()) {
    ssize_t n = do_write(fd, data);
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
