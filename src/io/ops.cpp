// The single operations of include/spindle/io/ops.hpp on both backends.
#include "spindle/io/ops.hpp"

#include <linux/futex.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <vector>

#include "io/io_internal.hpp"
#include "spindle/fiber/fiber.hpp"

namespace spindle {

using namespace io_detail;

namespace {

constexpr std::uint32_t kReadable = EPOLLIN | EPOLLRDHUP;
constexpr std::uint32_t kWritable = EPOLLOUT;

off_t as_off(std::uint64_t offset) noexcept {
  return offset == kNoOffset ? static_cast<off_t>(-1) : static_cast<off_t>(offset);
}

// --- reads and writes ---------------------------------------------------------------

// epoll: a read that never blocks: RWF_NOWAIT also makes a blocking pipe or
// socket non-blocking for this call, and makes a regular file say EAGAIN
// instead of waiting for the disk (the caller then finds it unpollable and
// uses the pool). Without RWF_NOWAIT support: a plain call for streams (the
// fd must be O_NONBLOCK), the pool for offsets (files).
ssize_t nowait_readv(int fd, const iovec* iov, int count, std::uint64_t offset) {
  ssize_t n = ::preadv2(fd, iov, count, as_off(offset), RWF_NOWAIT);
  if (n >= 0) return n;
  if (errno != EOPNOTSUPP) return -errno;
  if (offset != kNoOffset) return -EAGAIN;
  return errno_result(::readv(fd, iov, count));
}
ssize_t nowait_writev(int fd, const iovec* iov, int count, std::uint64_t offset) {
  ssize_t n = ::pwritev2(fd, iov, count, as_off(offset), RWF_NOWAIT);
  if (n >= 0) return n;
  if (errno != EOPNOTSUPP) return -errno;
  if (offset != kNoOffset) return -EAGAIN;
  return errno_result(::writev(fd, iov, count));
}
ssize_t blocking_readv(int fd, const iovec* iov, int count, std::uint64_t offset) {
  return errno_result(offset == kNoOffset ? ::readv(fd, iov, count)
                                          : ::preadv(fd, iov, count, as_off(offset)));
}
ssize_t blocking_writev(int fd, const iovec* iov, int count, std::uint64_t offset) {
  return errno_result(offset == kNoOffset ? ::writev(fd, iov, count)
                                          : ::pwritev(fd, iov, count, as_off(offset)));
}

int iov_count(std::span<const iovec> v) noexcept {
  return static_cast<int>(std::min<std::size_t>(v.size(), IOV_MAX));
}

}  // namespace

namespace io_detail {

unsigned len32(std::size_t n) noexcept {
  return static_cast<unsigned>(std::min<std::size_t>(n, UINT_MAX));
}

namespace {

// io_uring: when a stream operation is tried as a system call before its
// SQE (attempt_first). A system call costs as much as the io_uring_enter
// that submits a whole round of SQEs, so the call is made only where it
// saves a wait:
// - a read after a read that filled its buffer (more is probably there);
// - a write after a write on the same fd (a stream being written: the call
//   nearly always completes, and the fiber writes on without waiting a
//   round per write). A write after a read (request / response) goes to
//   the ring: its fiber waits for the next request anyway, so the SQE
//   rides along with the round's others for free.
bool read_likely(Op& op, int fd) noexcept {
  return op.uring != nullptr && (op.st->hint(fd) & kHintReadReady) != 0;
}
ssize_t note_read(Op& op, int fd, ssize_t n, std::size_t asked) noexcept {
  if (op.uring != nullptr) {
    bool full = n > 0 && static_cast<std::size_t>(n) == asked;
    op.st->update_hints(fd, kHintReadReady | kHintWriting, full ? kHintReadReady : 0);
  }
  return n;
}
bool write_likely(Op& op, int fd) noexcept {
  return op.uring != nullptr && (op.st->hint(fd) & kHintWriting) != 0;
}
ssize_t note_write(Op& op, int fd, ssize_t n) noexcept {
  if (op.uring != nullptr) op.st->update_hints(fd, 0, kHintWriting);
  return n;
}
// Buffered writes to regular files refuse RWF_NOWAIT on most file systems:
// such an fd is not tried again.
ssize_t uring_nowait_writev(Op& op, int fd, const iovec* iov, int count) noexcept {
  ssize_t n = errno_result(::pwritev2(fd, iov, count, -1, RWF_NOWAIT));
  if (n == -EOPNOTSUPP) op.st->update_hints(fd, 0, kHintNoNowait);
  return n;
}

}  // namespace

ssize_t read_core(Op& op, int fd, std::span<std::byte> b, std::uint64_t offset) {
  iovec iov{b.data(), b.size()};
  ssize_t n = attempt_first(op, read_likely(op, fd), [&] {
    return errno_result(::preadv2(fd, &iov, 1, as_off(offset), RWF_NOWAIT));
  });
  if (n != kGoToRing) return note_read(op, fd, n, b.size());
  n = perform(
      op, fd, kReadable,
      [&](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd, b.data(), len32(b.size()), offset); },
      [&] { return nowait_readv(fd, &iov, 1, offset); },
      [&] { return blocking_readv(fd, &iov, 1, offset); });
  return note_read(op, fd, n, b.size());
}

ssize_t write_core(Op& op, int fd, std::span<const std::byte> b, std::uint64_t offset) {
  iovec iov{const_cast<std::byte*>(b.data()), b.size()};
  bool likely =
      offset == kNoOffset && write_likely(op, fd) && (op.st->hint(fd) & kHintNoNowait) == 0;
  ssize_t n = attempt_first(op, likely, [&] { return uring_nowait_writev(op, fd, &iov, 1); });
  if (n != kGoToRing) return note_write(op, fd, n);
  n = perform(
      op, fd, kWritable,
      [&](io_uring_sqe* sqe) { io_uring_prep_write(sqe, fd, b.data(), len32(b.size()), offset); },
      [&] { return nowait_writev(fd, &iov, 1, offset); },
      [&] { return blocking_writev(fd, &iov, 1, offset); });
  return note_write(op, fd, n);
}

ssize_t readv_core(Op& op, int fd, std::span<const iovec> v, std::uint64_t offset) {
  int n = iov_count(v);
  return perform(
      op, fd, kReadable,
      [&](io_uring_sqe* sqe) {
        io_uring_prep_readv(sqe, fd, v.data(), static_cast<unsigned>(n), offset);
      },
      [&] { return nowait_readv(fd, v.data(), n, offset); },
      [&] { return blocking_readv(fd, v.data(), n, offset); });
}

ssize_t writev_core(Op& op, int fd, std::span<const iovec> v, std::uint64_t offset) {
  int n = iov_count(v);
  return perform(
      op, fd, kWritable,
      [&](io_uring_sqe* sqe) {
        io_uring_prep_writev(sqe, fd, v.data(), static_cast<unsigned>(n), offset);
      },
      [&] { return nowait_writev(fd, v.data(), n, offset); },
      [&] { return blocking_writev(fd, v.data(), n, offset); });
}

// Writes all of `data`; returns its size or -errno.
ssize_t write_all(Op& op, int fd, std::span<const std::byte> data, std::uint64_t offset) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n =
        write_core(op, fd, data.subspan(done), offset == kNoOffset ? kNoOffset : offset + done);
    if (n < 0) return n;
    if (n == 0) return -EIO;  // a write that takes nothing would loop forever
    done += static_cast<std::size_t>(n);
  }
  return static_cast<ssize_t>(done);
}

// A copy of an iovec array that can be advanced past what was written.
class IovCursor {
 public:
  explicit IovCursor(std::span<const iovec> v) {
    if (v.size() <= local_.size()) {
      std::copy(v.begin(), v.end(), local_.begin());
      data_ = local_.data();
    } else {
      heap_.assign(v.begin(), v.end());
      data_ = heap_.data();
    }
    size_ = v.size();
    skip_empty();
  }
  std::span<const iovec> rest() const noexcept { return {data_, size_}; }
  bool empty() const noexcept { return size_ == 0; }
  void advance(std::size_t n) noexcept {
    while (n > 0 && size_ > 0) {
      std::size_t take = std::min(n, data_->iov_len);
      data_->iov_base = static_cast<char*>(data_->iov_base) + take;
      data_->iov_len -= take;
      n -= take;
      skip_empty();
    }
  }

 private:
  void skip_empty() noexcept {
    while (size_ > 0 && data_->iov_len == 0) {
      ++data_;
      --size_;
    }
  }
  std::array<iovec, 16> local_;
  std::vector<iovec> heap_;
  iovec* data_ = nullptr;
  std::size_t size_ = 0;
};

template <class One>
ssize_t gather_all(std::span<const iovec> v, std::uint64_t offset, One&& one) {
  IovCursor cursor(v);
  std::size_t done = 0;
  while (!cursor.empty()) {
    ssize_t n = one(cursor.rest(), offset == kNoOffset ? kNoOffset : offset + done);
    if (n < 0) return n;
    if (n == 0) return -EIO;
    done += static_cast<std::size_t>(n);
    cursor.advance(static_cast<std::size_t>(n));
  }
  return static_cast<ssize_t>(done);
}

// --- sockets ---------------------------------------------------------------------------

ssize_t recv_core(Op& op, int fd, std::span<std::byte> b, int flags) {
  auto attempt = [&] { return errno_result(::recv(fd, b.data(), b.size(), flags | MSG_DONTWAIT)); };
  // MSG_WAITALL asks the kernel to wait for the whole buffer: no early try.
  ssize_t n = attempt_first(op, (flags & MSG_WAITALL) == 0 && read_likely(op, fd), attempt);
  if (n != kGoToRing) return note_read(op, fd, n, b.size());
  n = perform(
      op, fd, kReadable,
      [&](io_uring_sqe* sqe) { io_uring_prep_recv(sqe, fd, b.data(), b.size(), flags); }, attempt,
      attempt);
  return note_read(op, fd, n, b.size());
}

ssize_t send_core(Op& op, int fd, std::span<const std::byte> b, int flags) {
  flags |= MSG_NOSIGNAL;
  auto attempt = [&] { return errno_result(::send(fd, b.data(), b.size(), flags | MSG_DONTWAIT)); };
  ssize_t n = attempt_first(op, write_likely(op, fd), attempt);
  if (n != kGoToRing) return note_write(op, fd, n);
  n = perform(
      op, fd, kWritable,
      [&](io_uring_sqe* sqe) { io_uring_prep_send(sqe, fd, b.data(), b.size(), flags); }, attempt,
      attempt);
  return note_write(op, fd, n);
}

ssize_t recvmsg_core(Op& op, int fd, msghdr& m, int flags) {
  flags |= MSG_CMSG_CLOEXEC;
  auto attempt = [&] { return errno_result(::recvmsg(fd, &m, flags | MSG_DONTWAIT)); };
  return perform(
      op, fd, kReadable,
      [&](io_uring_sqe* sqe) { io_uring_prep_recvmsg(sqe, fd, &m, static_cast<unsigned>(flags)); },
      attempt, attempt);
}

ssize_t sendmsg_core(Op& op, int fd, const msghdr& m, int flags) {
  flags |= MSG_NOSIGNAL;
  auto attempt = [&] { return errno_result(::sendmsg(fd, &m, flags | MSG_DONTWAIT)); };
  return perform(
      op, fd, kWritable,
      [&](io_uring_sqe* sqe) { io_uring_prep_sendmsg(sqe, fd, &m, static_cast<unsigned>(flags)); },
      attempt, attempt);
}

ssize_t sendv_core(Op& op, int fd, std::span<const iovec> v) {
  return gather_all(v, kNoOffset, [&](std::span<const iovec> rest, std::uint64_t) {
    msghdr m{};
    m.msg_iov = const_cast<iovec*>(rest.data());
    m.msg_iovlen = static_cast<std::size_t>(iov_count(rest));
    return sendmsg_core(op, fd, m, 0);
  });
}

ssize_t accept_core(Op& op, int fd, sockaddr* addr, socklen_t* len) {
  constexpr int kFlags = SOCK_CLOEXEC | SOCK_NONBLOCK;
  auto attempt = [&] { return errno_result(::accept4(fd, addr, len, kFlags)); };
  return perform(
      op, fd, kReadable,
      [&](io_uring_sqe* sqe) { io_uring_prep_accept(sqe, fd, addr, len, kFlags); }, attempt,
      attempt);
}

// A Unix socket whose listener's backlog is full fails a non-blocking
// connect with EAGAIN, and no readiness event says when to retry (the
// socket polls writable all along): back off with sleeps, 1 ms doubling to
// 64 ms, until it goes through or the deadline ends it.
void backoff(unsigned& round) {
  sleep(std::chrono::milliseconds(1u << std::min(round, 6u)));
  ++round;
}

ssize_t connect_core(Op& op, int fd, const sockaddr* addr, socklen_t len) {
  unsigned round = 0;
  if (op.uring != nullptr) {
    for (;;) {
      ssize_t rc =
          submit(op, fd, [&](io_uring_sqe* sqe) { io_uring_prep_connect(sqe, fd, addr, len); });
      if (rc != -EAGAIN) return rc;
      backoff(round);
    }
  }
  for (;;) {
    if (::connect(fd, addr, len) == 0) return 0;
    int err = errno;
    if (err == EAGAIN) {
      backoff(round);
      continue;
    }
    if (err != EINPROGRESS && err != EINTR) return -err;
    break;
  }
  if (ssize_t r = wait_ready(op, fd, kWritable); r < 0) return r == kUnpollable ? -ENOTSOCK : r;
  int so_error = 0;
  socklen_t l = sizeof(so_error);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &l) != 0) return -errno;
  return -so_error;
}

// --- splice and tee ------------------------------------------------------------------

// After EAGAIN from a splice/tee between `in` and `out`: waits for the side
// that is not ready. Returns 0 to retry, -errno, or kUnpollable when both
// sides look ready (one is a file: the caller goes to the pool).
ssize_t splice_wait(Op& op, int in, int out) {
  pollfd p[2] = {{in, POLLIN, 0}, {out, POLLOUT, 0}};
  if (::poll(p, 2, 0) < 0) return -errno;
  ssize_t r;
  if ((p[1].revents & (POLLOUT | POLLERR | POLLHUP | POLLNVAL)) == 0) {
    r = wait_ready(op, out, kWritable);
  } else if ((p[0].revents & (POLLIN | POLLERR | POLLHUP | POLLRDHUP | POLLNVAL)) == 0) {
    r = wait_ready(op, in, kReadable);
  } else {
    return kUnpollable;
  }
  return r < 0 ? r : 0;
}

template <class Prep, class Sys>
ssize_t splice_like(Op& op, int in, int out, Prep&& prep, Sys&& sys) {
  for (;;) {
    ssize_t n;
    if (op.uring != nullptr) {
      n = submit(op, out, prep);
    } else {
      n = sys(SPLICE_F_NONBLOCK);
      if (n == -EINTR) continue;
    }
    if (n != -EAGAIN) return n;
    ssize_t w = splice_wait(op, in, out);
    if (w == kUnpollable) {
      if (op.uring != nullptr) {
        yield();  // a race: both sides became ready meanwhile
        continue;
      }
      n = offload(op, [&] { return sys(0u); });
      if (n != -EAGAIN) return n;
      yield();
      continue;
    }
    if (w < 0) return w;
  }
}

ssize_t splice_core(Op& op, int in, std::int64_t off_in, int out, std::int64_t off_out,
                    std::size_t len, unsigned flags) {
  flags &= ~static_cast<unsigned>(SPLICE_F_NONBLOCK);
  return splice_like(
      op, in, out,
      [&](io_uring_sqe* sqe) {
        io_uring_prep_splice(sqe, in, off_in, out, off_out, len32(len), flags);
      },
      [&](unsigned extra) {
        loff_t oi = off_in, oo = off_out;
        return errno_result(::splice(in, off_in < 0 ? nullptr : &oi, out,
                                     off_out < 0 ? nullptr : &oo, len, flags | extra));
      });
}

ssize_t tee_core(Op& op, int in, int out, std::size_t len, unsigned flags) {
  flags &= ~static_cast<unsigned>(SPLICE_F_NONBLOCK);
  return splice_like(
      op, in, out, [&](io_uring_sqe* sqe) { io_uring_prep_tee(sqe, in, out, len32(len), flags); },
      [&](unsigned extra) { return errno_result(::tee(in, out, len, flags | extra)); });
}

// Moves exactly `len` bytes (fewer only at end of input) with splices.
ssize_t splice_exactly(Op& op, int in, int out, std::size_t len, std::int64_t offset_in) {
  std::size_t done = 0;
  while (done < len) {
    std::int64_t off = offset_in < 0 ? -1 : offset_in + static_cast<std::int64_t>(done);
    ssize_t n = splice_core(op, in, off, out, -1, len - done, SPLICE_F_MOVE);
    if (n < 0) return n;
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return static_cast<ssize_t>(done);
}

ssize_t sendfile_core(Op& op, int out, int in, std::uint64_t offset, std::size_t count) {
  std::size_t done = 0;
  if (op.uring == nullptr) {
    while (done < count) {
      off_t off = static_cast<off_t>(offset + done);
      ssize_t n = errno_result(::sendfile(out, in, &off, count - done));
      if (n == -EINTR) continue;
      if (n == -EAGAIN) {
        ssize_t r = wait_ready(op, out, kWritable);
        if (r == kUnpollable) {
          n = offload(op, [&] {
            off_t o = static_cast<off_t>(offset + done);
            return errno_result(::sendfile(out, in, &o, count - done));
          });
        } else if (r < 0) {
          return r;
        } else {
          continue;
        }
      }
      if (n < 0) return n;
      if (n == 0) break;
      done += static_cast<std::size_t>(n);
    }
    return static_cast<ssize_t>(done);
  }
  // io_uring: file -> pipe linked to pipe -> out, one round trip per chunk.
  PipeLease lease(*op.st);
  std::size_t cap = pipe_capacity(lease.write_end());
  while (done < count) {
    std::size_t chunk = std::min(count - done, cap);
    detail::FiberCompletion into, outof;
    io_uring_sqe* a = op.uring->prepare(&into);
    io_uring_prep_splice(a, in, static_cast<std::int64_t>(offset + done), lease.write_end(), -1,
                         len32(chunk), SPLICE_F_MOVE);
    a->flags |= IOSQE_IO_LINK;
    io_uring_sqe* b = op.uring->prepare(&outof);
    io_uring_prep_splice(b, lease.read_end(), -1, out, -1, len32(chunk), SPLICE_F_MOVE);
    use_fixed(op, b, out);
    ssize_t r1 = into.wait();
    ssize_t r2 = outof.wait();                // both CQEs are reaped before anything can throw
    if (r1 < 0) return settle(op.fiber, r1);  // the linked splice was cancelled too
    if (r1 == 0) break;
    // A short first splice breaks the link (the second is cancelled); a
    // short second one leaves data in the pipe: move the rest by hand.
    std::size_t moved = r2 > 0 ? static_cast<std::size_t>(r2) : 0;
    if (moved < static_cast<std::size_t>(r1)) {
      lease.dirty = true;
      if (r2 < 0 && r2 != -ECANCELED) return r2;
      std::size_t rest = static_cast<std::size_t>(r1) - moved;
      ssize_t n = splice_exactly(op, lease.read_end(), out, rest, -1);
      if (n < 0) return n;
      if (static_cast<std::size_t>(n) < rest) return -EIO;
      lease.dirty = false;
    }
    done += static_cast<std::size_t>(r1);
  }
  return static_cast<ssize_t>(done);
}

// --- files ----------------------------------------------------------------------------------

ssize_t openat_core(Op& op, int dirfd, const char* path, int flags, mode_t mode) {
  flags |= O_CLOEXEC;
  return file_op(
      op, -1, [&](io_uring_sqe* sqe) { io_uring_prep_openat(sqe, dirfd, path, flags, mode); },
      [&] { return errno_result(::openat(dirfd, path, flags, mode)); });
}

ssize_t statx_core(Op& op, int dirfd, const char* path, int flags, unsigned mask,
                   struct ::statx* out) {
  return file_op(
      op, -1, [&](io_uring_sqe* sqe) { io_uring_prep_statx(sqe, dirfd, path, flags, mask, out); },
      [&] { return errno_result(::statx(dirfd, path, flags, mask, out)); });
}

ssize_t fsync_core(Op& op, int fd, bool data_only) {
  return file_op(
      op, fd,
      [&](io_uring_sqe* sqe) {
        io_uring_prep_fsync(sqe, fd, data_only ? IORING_FSYNC_DATASYNC : 0);
      },
      [&] { return errno_result(data_only ? ::fdatasync(fd) : ::fsync(fd)); });
}

ssize_t fallocate_core(Op& op, int fd, int mode, std::uint64_t offset, std::uint64_t len) {
  return file_op(
      op, fd,
      [&](io_uring_sqe* sqe) {
        io_uring_prep_fallocate(sqe, fd, mode, static_cast<off_t>(offset), static_cast<off_t>(len));
      },
      [&] {
        return errno_result(
            ::fallocate(fd, mode, static_cast<off_t>(offset), static_cast<off_t>(len)));
      });
}

ssize_t unlinkat_core(Op& op, int dirfd, const char* path, int flags) {
  return file_op(
      op, -1, [&](io_uring_sqe* sqe) { io_uring_prep_unlinkat(sqe, dirfd, path, flags); },
      [&] { return errno_result(::unlinkat(dirfd, path, flags)); });
}

ssize_t renameat_core(Op& op, int od, const char* op_, int nd, const char* np, unsigned flags) {
  return file_op(
      op, -1, [&](io_uring_sqe* sqe) { io_uring_prep_renameat(sqe, od, op_, nd, np, flags); },
      [&] { return errno_result(::renameat2(od, op_, nd, np, flags)); });
}

ssize_t mkdirat_core(Op& op, int dirfd, const char* path, mode_t mode) {
  return file_op(
      op, -1, [&](io_uring_sqe* sqe) { io_uring_prep_mkdirat(sqe, dirfd, path, mode); },
      [&] { return errno_result(::mkdirat(dirfd, path, mode)); });
}

ssize_t close_core(Op& op, int fd) {
  unregister_fd(fd);
  op.st->update_hints(fd, kHintReadReady | kHintNoNowait | kHintWriting, 0);
  if (op.uring == nullptr) {
    // close(2) releases the descriptor even when it reports an error; never retry.
    return errno_result(::close(fd));
  }
  // The close is queued before the wait: a cancellation or deadline may
  // stop the wait, never the close.
  return submit(op, -1, [&](io_uring_sqe* sqe) { io_uring_prep_close(sqe, fd); });
}

// --- sockets without waiting ------------------------------------------------------------

ssize_t socket_core(Op& op, int domain, int type, int protocol) {
  type |= SOCK_CLOEXEC | SOCK_NONBLOCK;
  if (op.uring != nullptr && native(Feature::socket, *op.uring)) {
    return submit(op, -1,
                  [&](io_uring_sqe* sqe) { io_uring_prep_socket(sqe, domain, type, protocol, 0); });
  }
  return errno_result(::socket(domain, type, protocol));
}

ssize_t bind_core(Op& op, int fd, const sockaddr* addr, socklen_t len) {
  if (op.uring != nullptr && native(Feature::bind, *op.uring)) {
    return submit(op, fd,
                  [&](io_uring_sqe* sqe) { io_uring_prep_rw(kOpBind, sqe, fd, addr, 0, len); });
  }
  return errno_result(::bind(fd, addr, len));
}

ssize_t listen_core(Op& op, int fd, int backlog) {
  if (op.uring != nullptr && native(Feature::listen, *op.uring)) {
    return submit(op, fd, [&](io_uring_sqe* sqe) {
      io_uring_prep_rw(kOpListen, sqe, fd, nullptr, static_cast<unsigned>(backlog), 0);
    });
  }
  return errno_result(::listen(fd, backlog));
}

ssize_t shutdown_core(Op& op, int fd, int how) {
  if (op.uring != nullptr) {
    return submit(op, fd, [&](io_uring_sqe* sqe) { io_uring_prep_shutdown(sqe, fd, how); });
  }
  return errno_result(::shutdown(fd, how));
}

// --- fd passing ------------------------------------------------------------------------------

ssize_t send_fds_core(Op& op, int sock, std::span<const std::byte> data, std::span<const int> fds) {
  if (data.empty() || fds.size() > kMaxPassedFds) return -EINVAL;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
  std::memset(control, 0, sizeof(control));
  iovec iov{const_cast<std::byte*>(data.data()), data.size()};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (!fds.empty()) {
    m.msg_control = control;
    m.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n = sendmsg_core(op, sock, m, 0);
  if (n < 0) return n;
  // The descriptors went with the first byte; send the rest of the data.
  if (static_cast<std::size_t>(n) < data.size()) {
    ssize_t rest = write_all(op, sock, data.subspan(static_cast<std::size_t>(n)), kNoOffset);
    if (rest < 0) return rest;
  }
  return static_cast<ssize_t>(data.size());
}

ssize_t recv_fds_core(Op& op, int sock, std::span<std::byte> buffer, std::span<int> fds,
                      ReceivedFds* out) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
  iovec iov{buffer.data(), buffer.size()};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = CMSG_SPACE(sizeof(int) * std::min(fds.size(), kMaxPassedFds));
  if (fds.empty()) m.msg_controllen = CMSG_SPACE(sizeof(int));  // room to detect (and close) strays
  ssize_t n = recvmsg_core(op, sock, m, 0);
  if (n < 0) return n;
  std::size_t got = 0;
  bool overflow = (m.msg_flags & MSG_CTRUNC) != 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const auto* data = reinterpret_cast<const unsigned char*>(CMSG_DATA(c));
    for (std::size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, data + i * sizeof(int), sizeof(int));
      if (got < fds.size()) {
        fds[got++] = fd;
      } else {
        ::close(fd);
        overflow = true;
      }
    }
  }
  if (overflow) {
    for (std::size_t i = 0; i < got; ++i) ::close(fds[i]);
    return -EMSGSIZE;
  }
  out->bytes = static_cast<std::size_t>(n);
  out->fds = got;
  return n;
}

// --- processes ------------------------------------------------------------------------------

ssize_t pidfd_open(pid_t pid) {
  return errno_result(::syscall(SYS_pidfd_open, pid, 0));
}

ssize_t waitid_core(Op& op, idtype_t type, int id, int options, siginfo_t* info) {
  std::memset(info, 0, sizeof(*info));
  if (op.uring != nullptr && native(Feature::waitid, *op.uring)) {
    return submit(op, -1, [&](io_uring_sqe* sqe) {
      io_uring_prep_rw(kOpWaitid, sqe, id, nullptr, static_cast<unsigned>(type), 0);
      sqe->file_index = static_cast<unsigned>(options);
      sqe->addr2 = reinterpret_cast<std::uint64_t>(info);
    });
  }
  // A pidfd turns readable when the child exits: wait for that, then reap
  // without blocking. Stops and continues do not make it readable: with
  // WSTOPPED / WCONTINUED the fallback also looks every 10 ms.
  int pidfd = id;
  bool own = false;
  if (type == P_PID) {
    ssize_t fd = pidfd_open(id);
    if (fd < 0) return fd == -ESRCH ? -ECHILD : fd;
    pidfd = static_cast<int>(fd);
    own = true;
  }
  struct Closer {
    int fd;
    bool own;
    ~Closer() {
      if (own) ::close(fd);
    }
  } closer{pidfd, own};
  const bool poll_often = (options & (WSTOPPED | WCONTINUED)) != 0;
  for (;;) {
    if (::waitid(P_PIDFD, static_cast<id_t>(pidfd), info, options | WNOHANG) != 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (info->si_pid != 0) return 0;
    if ((options & WNOHANG) != 0) return 0;
    if (poll_often) {
      sleep(std::chrono::milliseconds(10));
      continue;
    }
    ssize_t r = wait_ready(op, pidfd, EPOLLIN);
    if (r < 0) return r;
  }
}

// --- futexes ---------------------------------------------------------------------------------

ssize_t futex_wait_core(Op& op, std::atomic<std::uint32_t>& word, std::uint32_t expected) {
  auto* addr = reinterpret_cast<std::uint32_t*>(&word);
  if (op.uring != nullptr && native(Feature::futex, *op.uring)) {
    return submit(op, -1, [&](io_uring_sqe* sqe) {
      io_uring_prep_rw(kOpFutexWait, sqe, static_cast<int>(kFutex2SizeU32 | kFutex2Private), addr,
                       0, expected);
      sqe->addr3 = FUTEX_BITSET_MATCH_ANY;
    });
  }
  // A pool thread waits in slices, so that a stop is never missed between
  // its check and its FUTEX_WAIT; the stop also wakes the word.
  struct Job : detail::BlockingJob {
    std::uint32_t* addr;
    std::uint32_t expected;
    std::atomic<bool> stopped{false};
    ssize_t result = 0;
  } job;
  job.addr = addr;
  job.expected = expected;
  job.run = [](detail::BlockingJob* j) noexcept {
    auto* self = static_cast<Job*>(j);
    timespec slice{0, 50'000'000};
    for (;;) {
      // A stop (cancellation, deadline) ends the wait as the kernel would:
      // with -ECANCELED, not as a wake-up.
      if (self->stopped.load(std::memory_order_acquire)) {
        self->result = -ECANCELED;
        return;
      }
      long rc =
          ::syscall(SYS_futex, self->addr, FUTEX_WAIT_PRIVATE, self->expected, &slice, nullptr, 0);
      if (rc == 0) {
        self->result = self->stopped.load(std::memory_order_acquire) ? -ECANCELED : 0;
        return;
      }
      if (errno == ETIMEDOUT || errno == EINTR) continue;
      self->result = -errno;
      return;
    }
  };
  job.stop = [](detail::BlockingJob* j) noexcept {
    auto* self = static_cast<Job*>(j);
    self->stopped.store(true, std::memory_order_release);
    ::syscall(SYS_futex, self->addr, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
  };
  ++op.st->offloaded;
  if (!detail::run_blocking(job)) detail::blocking_checkpoint();
  return settle(op.fiber, job.result);
}

ssize_t futex_wake_core(Op& op, std::atomic<std::uint32_t>& word, int count) {
  auto* addr = reinterpret_cast<std::uint32_t*>(&word);
  if (op.uring != nullptr && native(Feature::futex, *op.uring)) {
    return submit(op, -1, [&](io_uring_sqe* sqe) {
      io_uring_prep_rw(kOpFutexWake, sqe, static_cast<int>(kFutex2SizeU32 | kFutex2Private), addr,
                       0, static_cast<std::uint64_t>(count));
      sqe->addr3 = FUTEX_BITSET_MATCH_ANY;
    });
  }
  return errno_result(::syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0));
}

ssize_t poll_core(Op& op, int fd, std::uint32_t events) {
  ssize_t r = wait_ready(op, fd, events);
  if (r == kUnpollable) return static_cast<ssize_t>(events & (EPOLLIN | EPOLLOUT));
  return r;
}

ssize_t nop_core(Op& op) {
  if (op.uring != nullptr) return submit(op, -1, [](io_uring_sqe* sqe) { io_uring_prep_nop(sqe); });
  yield();
  return 0;
}

}  // namespace io_detail

namespace {

// Out-parameter operations in the non-throwing style.
template <class T, class Body>
Result<T> quiet_out(Deadline d, Body&& body) noexcept {
  T value{};
  Result<void> r = quiet<void>(d, [&] { return body(value); });
  if (!r) return Result<T>::failure(r.error());
  return Result<T>(value);
}

}  // namespace

// --- the throwing forms ------------------------------------------------------------------------

std::size_t read(int fd, std::span<std::byte> buffer, Deadline d) {
  return checked({"read", fd}, d, [&] {
    Op op = begin("read");
    return read_core(op, fd, buffer, kNoOffset);
  });
}

void write(int fd, std::span<const std::byte> data, Deadline d) {
  checked({"write", fd}, d, [&] {
    Op op = begin("write");
    return write_all(op, fd, data, kNoOffset);
  });
}

ssize_t read_some(int fd, std::span<std::byte> buffer, Deadline d) noexcept {
  Result<std::size_t> r = nothrow::read(fd, buffer, d);
  return r ? static_cast<ssize_t>(*r) : -r.error();
}

ssize_t write_some(int fd, std::span<const std::byte> data, Deadline d) noexcept {
  Result<std::size_t> r = quiet<std::size_t>(d, [&] {
    Op op = begin("write");
    return write_core(op, fd, data, kNoOffset);
  });
  return r ? static_cast<ssize_t>(*r) : -r.error();
}

namespace {

template <class Buffer>
ssize_t read_into_core(int fd, Buffer& buffer, const ReadInto& how) {
  Op op = begin("read");
  if (how.offset != ReadInto::kAppend) buffer.resize(how.offset);
  std::size_t added = 0;
  for (;;) {
    std::size_t size = buffer.size();
    std::size_t room = how.limit > size ? how.limit - size : 0;
    if (room == 0) {
      // Full: only the end of the input may come now.
      std::byte probe[1];
      ssize_t n = read_core(op, fd, probe, kNoOffset);
      if (n < 0) return n;
      return n == 0 ? static_cast<ssize_t>(added) : -EMSGSIZE;
    }
    std::size_t want = std::min(room, std::max<std::size_t>(how.max, 1));
    buffer.resize(size + want);
    auto* tail = reinterpret_cast<std::byte*>(buffer.data()) + size;
    ssize_t n;
    try {
      n = read_core(op, fd, {tail, want}, kNoOffset);
    } catch (...) {
      buffer.resize(size);
      throw;
    }
    buffer.resize(size + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
    if (n < 0) return n;
    added += static_cast<std::size_t>(n);
    if (n == 0 || !how.until_eof) return static_cast<ssize_t>(added);
  }
}

}  // namespace

std::size_t read_into(int fd, std::string& buffer, ReadInto how, Deadline d) {
  return checked({"read", fd}, d, [&] { return read_into_core(fd, buffer, how); });
}

std::size_t read_into(int fd, std::vector<std::byte>& buffer, ReadInto how, Deadline d) {
  return checked({"read", fd}, d, [&] { return read_into_core(fd, buffer, how); });
}

std::size_t pread(int fd, std::span<std::byte> buffer, std::uint64_t offset, Deadline d) {
  return checked({"pread", fd}, d, [&] {
    Op op = begin("pread");
    return read_core(op, fd, buffer, offset);
  });
}

std::size_t pwrite(int fd, std::span<const std::byte> data, std::uint64_t offset, Deadline d) {
  return checked({"pwrite", fd}, d, [&] {
    Op op = begin("pwrite");
    return write_all(op, fd, data, offset);
  });
}

std::size_t readv(int fd, std::span<const iovec> buffers, Deadline d) {
  return checked({"readv", fd}, d, [&] {
    Op op = begin("readv");
    return readv_core(op, fd, buffers, kNoOffset);
  });
}

std::size_t preadv(int fd, std::span<const iovec> buffers, std::uint64_t offset, Deadline d) {
  return checked({"preadv", fd}, d, [&] {
    Op op = begin("preadv");
    return readv_core(op, fd, buffers, offset);
  });
}

namespace {
ssize_t writev_all(int fd, std::span<const iovec> buffers, std::uint64_t offset) {
  Op op = begin("writev");
  return gather_all(buffers, offset, [&](std::span<const iovec> rest, std::uint64_t off) {
    return writev_core(op, fd, rest, off);
  });
}
}  // namespace

std::size_t writev(int fd, std::span<const iovec> buffers, Deadline d) {
  return checked({"writev", fd}, d, [&] { return writev_all(fd, buffers, kNoOffset); });
}

std::size_t writev_some(int fd, std::span<const iovec> buffers, Deadline d) {
  return checked({"writev", fd}, d, [&] {
    Op op = begin("writev");
    return writev_core(op, fd, buffers, kNoOffset);
  });
}

std::size_t pwritev(int fd, std::span<const iovec> buffers, std::uint64_t offset, Deadline d) {
  return checked({"pwritev", fd}, d, [&] { return writev_all(fd, buffers, offset); });
}

int socket(int domain, int type, int protocol, Deadline d) {
  return static_cast<int>(checked({"socket"}, d, [&] {
    Op op = begin("socket");
    return socket_core(op, domain, type, protocol);
  }));
}

void bind(int fd, const sockaddr* address, socklen_t length, Deadline d) {
  checked({"bind", fd}, d, [&] {
    Op op = begin("bind");
    return bind_core(op, fd, address, length);
  });
}

void listen(int fd, int backlog, Deadline d) {
  checked({"listen", fd}, d, [&] {
    Op op = begin("listen");
    return listen_core(op, fd, backlog);
  });
}

int accept(int fd, Deadline d) {
  return accept(fd, nullptr, nullptr, d);
}

int accept(int fd, sockaddr* address, socklen_t* length, Deadline d) {
  return static_cast<int>(checked({"accept", fd}, d, [&] {
    Op op = begin("accept");
    return accept_core(op, fd, address, length);
  }));
}

void connect(int fd, const sockaddr* address, socklen_t length, Deadline d) {
  checked({"connect", fd}, d, [&] {
    Op op = begin("connect");
    return connect_core(op, fd, address, length);
  });
}

void shutdown(int fd, int how, Deadline d) {
  checked({"shutdown", fd}, d, [&] {
    Op op = begin("shutdown");
    return shutdown_core(op, fd, how);
  });
}

std::size_t recv(int fd, std::span<std::byte> buffer, int flags, Deadline d) {
  return checked({"recv", fd}, d, [&] {
    Op op = begin("recv");
    return recv_core(op, fd, buffer, flags);
  });
}

namespace io_detail {
ssize_t send_all(Op& op, int fd, std::span<const std::byte> data, int flags) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send_core(op, fd, data.subspan(done), flags);
    if (n < 0) return n;
    done += static_cast<std::size_t>(n);
  }
  return static_cast<ssize_t>(done);
}
}  // namespace io_detail

namespace {
ssize_t send_all(int fd, std::span<const std::byte> data, int flags) {
  Op op = begin("send");
  return send_all(op, fd, data, flags);
}
}  // namespace

std::size_t send(int fd, std::span<const std::byte> data, int flags, Deadline d) {
  return checked({"send", fd}, d, [&] { return send_all(fd, data, flags); });
}

std::size_t send_some(int fd, std::span<const std::byte> data, int flags, Deadline d) {
  return checked({"send", fd}, d, [&] {
    Op op = begin("send");
    return send_core(op, fd, data, flags);
  });
}

std::size_t sendv(int fd, std::span<const iovec> buffers, Deadline d) {
  return checked({"sendv", fd}, d, [&] {
    Op op = begin("sendv");
    return sendv_core(op, fd, buffers);
  });
}

std::size_t recvmsg(int fd, msghdr& message, int flags, Deadline d) {
  return checked({"recvmsg", fd}, d, [&] {
    Op op = begin("recvmsg");
    return recvmsg_core(op, fd, message, flags);
  });
}

std::size_t sendmsg(int fd, const msghdr& message, int flags, Deadline d) {
  return checked({"sendmsg", fd}, d, [&] {
    Op op = begin("sendmsg");
    return sendmsg_core(op, fd, message, flags);
  });
}

void send_fds(int socket, std::span<const std::byte> data, std::span<const int> fds, Deadline d) {
  checked({"send_fds", socket}, d, [&] {
    Op op = begin("send_fds");
    return send_fds_core(op, socket, data, fds);
  });
}

ReceivedFds recv_fds(int socket, std::span<std::byte> buffer, std::span<int> fds, Deadline d) {
  ReceivedFds out;
  checked({"recv_fds", socket}, d, [&] {
    Op op = begin("recv_fds");
    return recv_fds_core(op, socket, buffer, fds, &out);
  });
  return out;
}

void setsockopt(int fd, int level, int name, const void* value, socklen_t length) {
  if (::setsockopt(fd, level, name, value, length) != 0) throw_errno(errno, {"setsockopt", fd});
}

socklen_t getsockopt(int fd, int level, int name, void* value, socklen_t length) {
  if (::getsockopt(fd, level, name, value, &length) != 0) throw_errno(errno, {"getsockopt", fd});
  return length;
}

std::size_t splice(int fd_in, std::int64_t offset_in, int fd_out, std::int64_t offset_out,
                   std::size_t length, unsigned flags, Deadline d) {
  return checked({"splice", fd_in}, d, [&] {
    Op op = begin("splice");
    return splice_core(op, fd_in, offset_in, fd_out, offset_out, length, flags);
  });
}

std::size_t tee(int fd_in, int fd_out, std::size_t length, unsigned flags, Deadline d) {
  return checked({"tee", fd_in}, d, [&] {
    Op op = begin("tee");
    return tee_core(op, fd_in, fd_out, length, flags);
  });
}

std::size_t sendfile(int out_fd, int in_fd, std::uint64_t offset, std::size_t count, Deadline d) {
  return checked({"sendfile", out_fd}, d, [&] {
    Op op = begin("sendfile");
    return sendfile_core(op, out_fd, in_fd, offset, count);
  });
}

int openat(int dirfd, const char* path, int flags, mode_t mode, Deadline d) {
  return static_cast<int>(checked({"openat", kNoFd, path}, d, [&] {
    Op op = begin("openat");
    return openat_core(op, dirfd, path, flags, mode);
  }));
}

int open(const char* path, int flags, mode_t mode, Deadline d) {
  return openat(AT_FDCWD, path, flags, mode, d);
}

struct ::statx statx(int dirfd, const char* path, int flags, unsigned mask, Deadline d) {
  struct ::statx out {};
  checked({"statx", kNoFd, path}, d, [&] {
    Op op = begin("statx");
    return statx_core(op, dirfd, path, flags, mask, &out);
  });
  return out;
}

struct ::statx fstatx(int fd, unsigned mask, Deadline d) {
  struct ::statx out {};
  checked({"statx", fd}, d, [&] {
    Op op = begin("statx");
    return statx_core(op, fd, "", AT_EMPTY_PATH, mask, &out);
  });
  return out;
}

void fsync(int fd, Deadline d) {
  checked({"fsync", fd}, d, [&] {
    Op op = begin("fsync");
    return fsync_core(op, fd, false);
  });
}

void fdatasync(int fd, Deadline d) {
  checked({"fdatasync", fd}, d, [&] {
    Op op = begin("fdatasync");
    return fsync_core(op, fd, true);
  });
}

void fallocate(int fd, int mode, std::uint64_t offset, std::uint64_t length, Deadline d) {
  checked({"fallocate", fd}, d, [&] {
    Op op = begin("fallocate");
    return fallocate_core(op, fd, mode, offset, length);
  });
}

void unlinkat(int dirfd, const char* path, int flags, Deadline d) {
  checked({"unlinkat", kNoFd, path}, d, [&] {
    Op op = begin("unlinkat");
    return unlinkat_core(op, dirfd, path, flags);
  });
}

void unlink(const char* path, Deadline d) {
  unlinkat(AT_FDCWD, path, 0, d);
}

void renameat(int old_dirfd, const char* old_path, int new_dirfd, const char* new_path,
              unsigned flags, Deadline d) {
  checked({"renameat", kNoFd, old_path}, d, [&] {
    Op op = begin("renameat");
    return renameat_core(op, old_dirfd, old_path, new_dirfd, new_path, flags);
  });
}

void rename(const char* old_path, const char* new_path, Deadline d) {
  renameat(AT_FDCWD, old_path, AT_FDCWD, new_path, 0, d);
}

void mkdirat(int dirfd, const char* path, mode_t mode, Deadline d) {
  checked({"mkdirat", kNoFd, path}, d, [&] {
    Op op = begin("mkdirat");
    return mkdirat_core(op, dirfd, path, mode);
  });
}

void mkdir(const char* path, mode_t mode, Deadline d) {
  mkdirat(AT_FDCWD, path, mode, d);
}

void close(int fd, Deadline d) {
  checked({"close", fd}, d, [&] {
    Op op = begin("close", false);  // closes even in a cancelled fiber
    return close_core(op, fd);
  });
}

siginfo_t waitid(pid_t pid, int options, Deadline d) {
  siginfo_t info;
  checked({"waitid", static_cast<int>(pid)}, d, [&] {
    Op op = begin("waitid");
    return waitid_core(op, P_PID, pid, options, &info);
  });
  return info;
}

siginfo_t waitid_pidfd(int pidfd, int options, Deadline d) {
  siginfo_t info;
  checked({"waitid", pidfd}, d, [&] {
    Op op = begin("waitid");
    return waitid_core(op, P_PIDFD, pidfd, options, &info);
  });
  return info;
}

std::uint32_t poll(int fd, std::uint32_t events, Deadline d) {
  return static_cast<std::uint32_t>(checked({"poll", fd}, d, [&] {
    Op op = begin("poll");
    return poll_core(op, fd, events);
  }));
}

std::uint32_t wait_readable(int fd, Deadline d) {
  return static_cast<std::uint32_t>(checked({"wait_readable", fd}, d, [&] {
    Op op = begin("wait_readable");
    return poll_core(op, fd, kReadable);
  }));
}

std::uint32_t wait_writable(int fd, Deadline d) {
  return static_cast<std::uint32_t>(checked({"wait_writable", fd}, d, [&] {
    Op op = begin("wait_writable");
    return poll_core(op, fd, kWritable);
  }));
}

bool futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, Deadline d) {
  bool woken = true;
  checked({"futex_wait"}, d, [&] {
    Op op = begin("futex_wait");
    ssize_t rc = futex_wait_core(op, word, expected);
    if (rc == -EAGAIN || rc == -EWOULDBLOCK) {
      woken = false;
      return ssize_t{0};
    }
    return rc;
  });
  return woken;
}

int futex_wake(std::atomic<std::uint32_t>& word, int count) {
  return static_cast<int>(checked({"futex_wake"}, Deadline(), [&] {
    Op op = begin("futex_wake");
    return futex_wake_core(op, word, count);
  }));
}

void nop(Deadline d) {
  checked({"nop"}, d, [&] {
    Op op = begin("nop");
    return nop_core(op);
  });
}

Pipe make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::system_category(), "pipe2");
  }
  return Pipe{fds[0], fds[1]};
}

// --- the non-throwing forms
// ------------------------------------------------------------------------

namespace nothrow {

Result<std::size_t> read(int fd, std::span<std::byte> buffer, Deadline d) noexcept {
  return quiet<std::size_t>(d, [&] {
    Op op = begin("read");
    return read_core(op, fd, buffer, kNoOffset);
  });
}

Result<void> write(int fd, std::span<const std::byte> data, Deadline d) noexcept {
  return quiet<void>(d, [&] {
    Op op = begin("write");
    return write_all(op, fd, data, kNoOffset);
  });
}

Result<std::size_t> pread(int fd, std::span<std::byte> buffer, std::uint64_t offset,
                          Deadline d) noexcept {
  return quiet<std::size_t>(d, [&] {
    Op op = begin("pread");
    return read_core(op, fd, buffer, offset);
  });
}

Result<std::size_t> pwrite(int fd, std::span<const std::byte> data, std::uint64_t offset,
                           Deadline d) noexcept {
  return quiet<std::size_t>(d, [&] {
    Op op = begin("pwrite");
    return write_all(op, fd, data, offset);
  });
}

Result<std::size_t> readv(int fd, std::span<const iovec> buffers, Deadline d) noexcept {
  return quiet<std::size_t>(d, [&] {
    Op op = begin("readv");
    return readv_core(op, fd, buffers, kNoOffset);
  });
}

Result<std::size_t> preadv(int fd, std::span<const iovec> buffers, std::uint64_t offset,
                           Deadline d) noexcept {
  return quiet<std::size_t>(d, [&] {
    Op op = begin("preadv");
    return readv_core(op, fd, buffers, offset);
  });
}

Result<std::size_t> writev(int fd, std::span<const iovec> buffers, Deadline d) noexcept {
  return quiet<std::size_t>(d, [&] { return writev_all(fd, buffers, kNoOffset); });
}

Result<std::size_t> writev_some(int fd, std::span<const iovec> buffers, Deadline d) noexcept {
  return quiet<std::size_t>(d, [&] {
    Op op = begin("writev");
    return writev_core(op, fd, buffers, kNoOffset);
  });
}

Result<std::size_t> pwritev(int fd, std::span<const iovec> buffers, std::uint64_t offset,
                            Deadline d) noexcept {
  return quiet<std::size_t>(d, [&] { return writev_all(fd, buffers, offset); });
}

Result<int> socket(int domain, int type, int protocol, Deadline d) noexcept {
  return quiet<int>(d, [&] {
    Op op = begin("socket");
    return socket_core(op, domain, type, protocol);
  });
}

Result<void> bind(int fd, const sockaddr* address, socklen_t length, Deadline d) noexcept {
  return quiet<void>(d, [&] {
    Op op = begin("bind");
    return bind_core(op, fd, address, length);
  });
}

Result<void> listen(int fd, int backlog, Deadline d) noexcept {
  return quiet<void>(d, [&] {
    Op op = begin("listen");
    return listen_core(op, fd, backlog);
  });
}

Result<int> accept(int fd, Deadline d) noexcept {
  return nothrow::accept(fd, nullptr, nullptr, d);
}

Result<int> accept(int fd, sockaddr* address, socklen_t* length, Deadline d) noexcept {
  return quiet<int>(d, [&] {
    Op op = begin("accept");
    return accept_core(op, fd, address, length);
  });
}

Result<void> connect(int fd, const sockaddr* address, socklen_t length, Deadline d) noexcept {
  return quiet<void>(d, [&] {
    Op op = begin("connect");
    return connect_core(op, fd, address, length);
  });
}

Result<void> shutdown(int fd, int how, Deadline d) noexcept {
  return quiet<void>(d, [&] {
    Op op = begin("shutdown");
    return shutdown_core(op, fd, how);
  });
}

Result<std::size_t> recv(int fd, std::span<std::byte> buffer, int flags, Deadline d) noexcept {
  return quiet<std::size_t>(d, [&] {
    Op op = begin("recv");
    return recv_core(op, fd, buffer, flags);
  });
}

Result<std::size_t> send(int fd, std::span<const std::byte> data, int flags, Deadline d) noexcept {
  return quiet<std::size_t>(d, [&] { return send_all(fd, data, flags); });
}

Result<std::size_t> send_some(int fd, std::span<const std::byte> data, int flags,
                              Deadline d) noexcept {
  return quiet<std::size_t>(d, [&] {
    Op op = begin("send");
    return send_core(op, fd, data, flags);
  });
}

Result<std::size_t> sendv(int fd, std::span<const iovec> buffers, Deadline d) noexcept {
  return quiet<std::size_t>(d, [&] {
    Op op = begin("sendv");
    return sendv_core(op, fd, buffers);
  });
}

Result<std::size_t> recvmsg(int fd, msghdr& message, int flags, Deadline d) noexcept {
  return quiet<std::size_t>(d, [&] {
    Op op = begin("recvmsg");
    return recvmsg_core(op, fd, message, flags);
  });
}

Result<std::size_t> sendmsg(int fd, const msghdr& message, int flags, Deadline d) noexcept {
  return quiet<std::size_t>(d, [&] {
    Op op = begin("sendmsg");
    return sendmsg_core(op, fd, message, flags);
  });
}

Result<void> send_fds(int socket, std::span<const std::byte> data, std::span<const int> fds,
                      Deadline d) noexcept {
  return quiet<void>(d, [&] {
    Op op = begin("send_fds");
    return send_fds_core(op, socket, data, fds);
  });
}

Result<ReceivedFds> recv_fds(int socket, std::span<std::byte> buffer, std::span<int> fds,
                             Deadline d) noexcept {
  return quiet_out<ReceivedFds>(d, [&](ReceivedFds& out) {
    Op op = begin("recv_fds");
    return recv_fds_core(op, socket, buffer, fds, &out);
  });
}

Result<std::size_t> splice(int fd_in, std::int64_t offset_in, int fd_out, std::int64_t offset_out,
                           std::size_t length, unsigned flags, Deadline d) noexcept {
  return quiet<std::size_t>(d, [&] {
    Op op = begin("splice");
    return splice_core(op, fd_in, offset_in, fd_out, offset_out, length, flags);
  });
}

Result<std::size_t> tee(int fd_in, int fd_out, std::size_t length, unsigned flags,
                        Deadline d) noexcept {
  return quiet<std::size_t>(d, [&] {
    Op op = begin("tee");
    return tee_core(op, fd_in, fd_out, length, flags);
  });
}

Result<std::size_t> sendfile(int out_fd, int in_fd, std::uint64_t offset, std::size_t count,
                             Deadline d) noexcept {
  return quiet<std::size_t>(d, [&] {
    Op op = begin("sendfile");
    return sendfile_core(op, out_fd, in_fd, offset, count);
  });
}

Result<int> openat(int dirfd, const char* path, int flags, mode_t mode, Deadline d) noexcept {
  return quiet<int>(d, [&] {
    Op op = begin("openat");
    return openat_core(op, dirfd, path, flags, mode);
  });
}

Result<int> open(const char* path, int flags, mode_t mode, Deadline d) noexcept {
  return nothrow::openat(AT_FDCWD, path, flags, mode, d);
}

Result<struct ::statx> statx(int dirfd, const char* path, int flags, unsigned mask,
                             Deadline d) noexcept {
  return quiet_out<struct ::statx>(d, [&](struct ::statx& out) {
    Op op = begin("statx");
    return statx_core(op, dirfd, path, flags, mask, &out);
  });
}

Result<void> fsync(int fd, Deadline d) noexcept {
  return quiet<void>(d, [&] {
    Op op = begin("fsync");
    return fsync_core(op, fd, false);
  });
}

Result<void> fdatasync(int fd, Deadline d) noexcept {
  return quiet<void>(d, [&] {
    Op op = begin("fdatasync");
    return fsync_core(op, fd, true);
  });
}

Result<void> fallocate(int fd, int mode, std::uint64_t offset, std::uint64_t length,
                       Deadline d) noexcept {
  return quiet<void>(d, [&] {
    Op op = begin("fallocate");
    return fallocate_core(op, fd, mode, offset, length);
  });
}

Result<void> unlinkat(int dirfd, const char* path, int flags, Deadline d) noexcept {
  return quiet<void>(d, [&] {
    Op op = begin("unlinkat");
    return unlinkat_core(op, dirfd, path, flags);
  });
}

Result<void> renameat(int old_dirfd, const char* old_path, int new_dirfd, const char* new_path,
                      unsigned flags, Deadline d) noexcept {
  return quiet<void>(d, [&] {
    Op op = begin("renameat");
    return renameat_core(op, old_dirfd, old_path, new_dirfd, new_path, flags);
  });
}

Result<void> mkdirat(int dirfd, const char* path, mode_t mode, Deadline d) noexcept {
  return quiet<void>(d, [&] {
    Op op = begin("mkdirat");
    return mkdirat_core(op, dirfd, path, mode);
  });
}

Result<void> close(int fd, Deadline d) noexcept {
  return quiet<void>(d, [&] {
    Op op = begin("close", false);  // closes even in a cancelled fiber
    return close_core(op, fd);
  });
}

Result<siginfo_t> waitid(pid_t pid, int options, Deadline d) noexcept {
  return quiet_out<siginfo_t>(d, [&](siginfo_t& info) {
    Op op = begin("waitid");
    return waitid_core(op, P_PID, pid, options, &info);
  });
}

Result<siginfo_t> waitid_pidfd(int pidfd, int options, Deadline d) noexcept {
  return quiet_out<siginfo_t>(d, [&](siginfo_t& info) {
    Op op = begin("waitid");
    return waitid_core(op, P_PIDFD, pidfd, options, &info);
  });
}

Result<std::uint32_t> poll(int fd, std::uint32_t events, Deadline d) noexcept {
  return quiet<std::uint32_t>(d, [&] {
    Op op = begin("poll");
    return poll_core(op, fd, events);
  });
}

Result<bool> futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                        Deadline d) noexcept {
  return quiet_out<bool>(d, [&](bool& woken) {
    Op op = begin("futex_wait");
    ssize_t rc = futex_wait_core(op, word, expected);
    woken = rc >= 0;
    return rc == -EAGAIN ? ssize_t{0} : rc;
  });
}

Result<void> nop(Deadline d) noexcept {
  return quiet<void>(d, [&] {
    Op op = begin("nop");
    return nop_core(op);
  });
}

}  // namespace nothrow

}  // namespace spindle
