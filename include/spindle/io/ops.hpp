// Operations a fiber can block on. Each suspends the calling fiber (not its
// thread) until the kernel is done. On io_uring each is one SQE; on epoll a
// non-blocking system call retried after a readiness wait, and the file
// operations that epoll cannot make non-blocking run on the blocking pool
// (spindle::blocking). docs/io.md describes each one.
//
// Every operation:
// - takes an optional Deadline as its last argument (a duration from now or
//   a steady_clock time point); when it expires the operation is cancelled
//   in the kernel, waited for, and fails with spindle::TimedOut
//   (ETIMEDOUT in the non-throwing form);
// - is a cancellation point: a fiber cancelled while it waits throws
//   spindle::Cancelled once the kernel has let go of its buffers (ECANCELED
//   in the non-throwing form). An operation that completed before the
//   cancellation arrived reports its result; the cancellation then waits
//   for the next suspension point, so no data is lost;
// - throws std::system_error naming the operation and its fd or path
//   ("read fd 5: Connection reset by peer"); EAGAIN never comes out;
// - has a non-throwing twin in spindle::nothrow returning Result<T>;
// - throws std::logic_error outside a fiber (the nothrow twins: EINVAL).
//
// Descriptors spindle creates are O_CLOEXEC (and sockets O_NONBLOCK).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "spindle/io/result.hpp"

namespace spindle {

// --- byte streams --------------------------------------------------------

// Reads up to buffer.size() bytes; returns the count (0 at end of file).
std::size_t read(int fd, std::span<std::byte> buffer, Deadline deadline = {});
// Writes all of `data` (several writes if the kernel takes less). On EPIPE
// nothing is retried (SIGPIPE is ignored by spindle::run).
void write(int fd, std::span<const std::byte> data, Deadline deadline = {});
// One read / one write: the byte count, or -errno (-ECANCELED when
// cancelled, -ETIMEDOUT at the deadline). The raw forms for hot loops.
ssize_t read_some(int fd, std::span<std::byte> buffer, Deadline deadline = {}) noexcept;
ssize_t write_some(int fd, std::span<const std::byte> data, Deadline deadline = {}) noexcept;

// Reading into a growable buffer: appending as a stream arrives in pieces.
struct ReadInto {
  static constexpr std::size_t kAppend = ~std::size_t{0};
  // Where the data goes: the buffer is cut (or zero-padded) to this size
  // first; kAppend: at its end.
  std::size_t offset = kAppend;
  // Most bytes one read asks for.
  std::size_t max = 64 * 1024;
  // The buffer never grows beyond this many bytes. Reaching it with more
  // to read throws std::system_error(EMSGSIZE) (what fit is kept).
  std::size_t limit = 16 * 1024 * 1024;
  // Keep reading until end of file instead of returning after one read.
  bool until_eof = false;
};
// Reads into a growable buffer (not an overload of read: a vector passed
// to read() is a fixed span). Returns the bytes added (0 at end of file).
std::size_t read_into(int fd, std::string& buffer, ReadInto how = {}, Deadline deadline = {});
std::size_t read_into(int fd, std::vector<std::byte>& buffer, ReadInto how = {},
                      Deadline deadline = {});

// At a file offset (the file position is not used or moved). pwrite writes
// everything; pread returns less than asked only at end of file or when the
// kernel returns less (a short read is not retried).
std::size_t pread(int fd, std::span<std::byte> buffer, std::uint64_t offset,
                  Deadline deadline = {});
std::size_t pwrite(int fd, std::span<const std::byte> data, std::uint64_t offset,
                   Deadline deadline = {});

// Scatter / gather. writev and pwritev complete partial writes (the iovecs
// are not modified: a copy is advanced); writev_some makes one call.
std::size_t readv(int fd, std::span<const iovec> buffers, Deadline deadline = {});
std::size_t preadv(int fd, std::span<const iovec> buffers, std::uint64_t offset,
                   Deadline deadline = {});
std::size_t writev(int fd, std::span<const iovec> buffers, Deadline deadline = {});
std::size_t writev_some(int fd, std::span<const iovec> buffers, Deadline deadline = {});
std::size_t pwritev(int fd, std::span<const iovec> buffers, std::uint64_t offset,
                    Deadline deadline = {});

// --- sockets -------------------------------------------------------------

// A socket, always SOCK_CLOEXEC | SOCK_NONBLOCK (added to `type`).
int socket(int domain, int type, int protocol = 0, Deadline deadline = {});
void bind(int fd, const sockaddr* address, socklen_t length, Deadline deadline = {});
void listen(int fd, int backlog = SOMAXCONN, Deadline deadline = {});
// The connection's fd, SOCK_CLOEXEC | SOCK_NONBLOCK. On epoll the
// listening socket must be non-blocking (spindle::socket makes it so).
int accept(int fd, Deadline deadline = {});
int accept(int fd, sockaddr* address, socklen_t* length, Deadline deadline = {});
// On epoll the socket must be non-blocking (spindle::socket makes it so).
void connect(int fd, const sockaddr* address, socklen_t length, Deadline deadline = {});
void shutdown(int fd, int how, Deadline deadline = {});

// MSG_NOSIGNAL is always added to sends; recv returns 0 at end of stream.
std::size_t recv(int fd, std::span<std::byte> buffer, int flags = 0, Deadline deadline = {});
// Sends all of `data`; send_some makes one call.
std::size_t send(int fd, std::span<const std::byte> data, int flags = 0, Deadline deadline = {});
std::size_t send_some(int fd, std::span<const std::byte> data, int flags = 0,
                      Deadline deadline = {});
// Sends several buffers in one call (sendmsg), completing a partial send.
std::size_t sendv(int fd, std::span<const iovec> buffers, Deadline deadline = {});
// One recvmsg / sendmsg (MSG_CMSG_CLOEXEC is added to recvmsg). The msghdr
// and everything it points to must stay valid until the call returns.
std::size_t recvmsg(int fd, msghdr& message, int flags = 0, Deadline deadline = {});
std::size_t sendmsg(int fd, const msghdr& message, int flags = 0, Deadline deadline = {});

// Descriptor passing over a Unix socket (SCM_RIGHTS). `data` must not be
// empty (a stream socket carries descriptors only with data). At most
// kMaxPassedFds descriptors per call.
inline constexpr std::size_t kMaxPassedFds = 64;
void send_fds(int socket, std::span<const std::byte> data, std::span<const int> fds,
              Deadline deadline = {});
struct ReceivedFds {
  std::size_t bytes = 0;  // data bytes received (0: end of stream)
  std::size_t fds = 0;    // descriptors stored at the front of `fds` (O_CLOEXEC)
};
// Receives data and up to fds.size() descriptors. If more descriptors came
// than fit, every one received is closed and EMSGSIZE is thrown.
ReceivedFds recv_fds(int socket, std::span<std::byte> buffer, std::span<int> fds,
                     Deadline deadline = {});

// Never block: plain system calls on both backends.
void setsockopt(int fd, int level, int name, const void* value, socklen_t length);
socklen_t getsockopt(int fd, int level, int name, void* value, socklen_t length);
template <class T>
void setsockopt(int fd, int level, int name, const T& value) {
  spindle::setsockopt(fd, level, name, static_cast<const void*>(&value),
                      static_cast<socklen_t>(sizeof(T)));
}
template <class T>
T getsockopt(int fd, int level, int name) {
  T value{};
  spindle::getsockopt(fd, level, name, static_cast<void*>(&value),
                      static_cast<socklen_t>(sizeof(T)));
  return value;
}

// --- pipes and zero-copy -------------------------------------------------

// One splice(2) of up to `length` bytes (an offset of -1: use and move the
// file position, as for pipes and sockets); 0 at end of input.
std::size_t splice(int fd_in, std::int64_t offset_in, int fd_out, std::int64_t offset_out,
                   std::size_t length, unsigned flags = 0, Deadline deadline = {});
// One tee(2) between two pipes.
std::size_t tee(int fd_in, int fd_out, std::size_t length, unsigned flags = 0,
                Deadline deadline = {});
// Sends `count` bytes of file `in_fd` from `offset` to `out_fd` (the file
// position is not used); fewer only at end of file. io_uring has no
// sendfile: there it is a splice into a pipe linked to a splice out of it.
std::size_t sendfile(int out_fd, int in_fd, std::uint64_t offset, std::size_t count,
                     Deadline deadline = {});

// --- files -----------------------------------------------------------------

// O_CLOEXEC is always added.
int openat(int dirfd, const char* path, int flags, mode_t mode = 0, Deadline deadline = {});
int open(const char* path, int flags, mode_t mode = 0, Deadline deadline = {});
struct ::statx statx(int dirfd, const char* path, int flags = 0, unsigned mask = STATX_BASIC_STATS,
                     Deadline deadline = {});
struct ::statx fstatx(int fd, unsigned mask = STATX_BASIC_STATS, Deadline deadline = {});
void fsync(int fd, Deadline deadline = {});
void fdatasync(int fd, Deadline deadline = {});
void fallocate(int fd, int mode, std::uint64_t offset, std::uint64_t length,
               Deadline deadline = {});
void unlinkat(int dirfd, const char* path, int flags = 0, Deadline deadline = {});
void unlink(const char* path, Deadline deadline = {});
void renameat(int old_dirfd, const char* old_path, int new_dirfd, const char* new_path,
              unsigned flags = 0, Deadline deadline = {});
void rename(const char* old_path, const char* new_path, Deadline deadline = {});
void mkdirat(int dirfd, const char* path, mode_t mode = 0777, Deadline deadline = {});
void mkdir(const char* path, mode_t mode = 0777, Deadline deadline = {});
// Closes `fd` (and drops its registered-file slot). The fd is closed even
// when the deadline or a cancellation interrupts the wait for the result.
void close(int fd, Deadline deadline = {});

// --- processes -------------------------------------------------------------

// Waits for a state change of child `pid` (options: WEXITED, WSTOPPED,
// WCONTINUED, WNOWAIT) and returns its siginfo. IORING_OP_WAITID where the
// kernel has it (6.7), otherwise a wait on a pidfd of the child.
siginfo_t waitid(pid_t pid, int options = WEXITED, Deadline deadline = {});
// The same for a pidfd (pidfd_open, clone3).
siginfo_t waitid_pidfd(int pidfd, int options = WEXITED, Deadline deadline = {});

// --- readiness, futexes, nothing -----------------------------------------------

// Waits until `fd` reports one of `events` (EPOLLIN, EPOLLOUT ...) and
// returns the events that are ready (EPOLLHUP / EPOLLERR always count).
std::uint32_t poll(int fd, std::uint32_t events, Deadline deadline = {});
// fiber/wait.hpp's wait_readable / wait_writable, with a deadline.
std::uint32_t wait_readable(int fd, Deadline deadline);
std::uint32_t wait_writable(int fd, Deadline deadline);

// Futexes shared with OS threads (process-private): waits while `word`
// holds `expected`; returns false if it did not (at the call), true when
// woken (possibly spuriously: re-check the word). IORING_OP_FUTEX_WAIT where
// the kernel has it (6.7), otherwise a pool thread waits (a cancellation
// wakes it with a FUTEX_WAKE on the word: other waiters then see a
// spurious wake-up).
bool futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, Deadline deadline = {});
// Wakes up to `count` waiters (fibers or threads); returns how many.
int futex_wake(std::atomic<std::uint32_t>& word, int count = 1);

// One round trip through the kernel (a NOP SQE); a yield on epoll.
void nop(Deadline deadline = {});

// --- registered files (io_uring) -------------------------------------------

// Puts `fd` in the runtime's registered-file table (Options::
// uring_registered_files slots) so that later operations on it skip the
// kernel's descriptor lookup. Returns false when there is no table or no
// free slot, and on epoll. close() unregisters; so does unregister_fd.
bool register_fd(int fd);
void unregister_fd(int fd) noexcept;

// --- pipes -------------------------------------------------------------------

// A pipe whose ends are O_NONBLOCK and O_CLOEXEC: [0] reads, [1] writes.
// Throws std::system_error("pipe2").
struct Pipe {
  int read_end = -1;
  int write_end = -1;
};
Pipe make_pipe();

// --- the non-throwing forms -------------------------------------------------

// The same operations returning Result<T>: the value, or the errno
// (ECANCELED: the fiber was cancelled; ETIMEDOUT: the deadline passed).
namespace nothrow {
Result<std::size_t> read(int fd, std::span<std::byte> buffer, Deadline deadline = {}) noexcept;
Result<void> write(int fd, std::span<const std::byte> data, Deadline deadline = {}) noexcept;
Result<std::size_t> pread(int fd, std::span<std::byte> buffer, std::uint64_t offset,
                          Deadline deadline = {}) noexcept;
Result<std::size_t> pwrite(int fd, std::span<const std::byte> data, std::uint64_t offset,
                           Deadline deadline = {}) noexcept;
Result<std::size_t> readv(int fd, std::span<const iovec> buffers, Deadline deadline = {}) noexcept;
Result<std::size_t> preadv(int fd, std::span<const iovec> buffers, std::uint64_t offset,
                           Deadline deadline = {}) noexcept;
Result<std::size_t> writev(int fd, std::span<const iovec> buffers, Deadline deadline = {}) noexcept;
Result<std::size_t> writev_some(int fd, std::span<const iovec> buffers,
                                Deadline deadline = {}) noexcept;
Result<std::size_t> pwritev(int fd, std::span<const iovec> buffers, std::uint64_t offset,
                            Deadline deadline = {}) noexcept;
Result<int> socket(int domain, int type, int protocol = 0, Deadline deadline = {}) noexcept;
Result<void> bind(int fd, const sockaddr* address, socklen_t length,
                  Deadline deadline = {}) noexcept;
Result<void> listen(int fd, int backlog = SOMAXCONN, Deadline deadline = {}) noexcept;
Result<int> accept(int fd, Deadline deadline = {}) noexcept;
Result<int> accept(int fd, sockaddr* address, socklen_t* length, Deadline deadline = {}) noexcept;
Result<void> connect(int fd, const sockaddr* address, socklen_t length,
                     Deadline deadline = {}) noexcept;
Result<void> shutdown(int fd, int how, Deadline deadline = {}) noexcept;
Result<std::size_t> recv(int fd, std::span<std::byte> buffer, int flags = 0,
                         Deadline deadline = {}) noexcept;
Result<std::size_t> send(int fd, std::span<const std::byte> data, int flags = 0,
                         Deadline deadline = {}) noexcept;
Result<std::size_t> send_some(int fd, std::span<const std::byte> data, int flags = 0,
                              Deadline deadline = {}) noexcept;
Result<std::size_t> sendv(int fd, std::span<const iovec> buffers, Deadline deadline = {}) noexcept;
Result<std::size_t> recvmsg(int fd, msghdr& message, int flags = 0,
                            Deadline deadline = {}) noexcept;
Result<std::size_t> sendmsg(int fd, const msghdr& message, int flags = 0,
                            Deadline deadline = {}) noexcept;
Result<void> send_fds(int socket, std::span<const std::byte> data, std::span<const int> fds,
                      Deadline deadline = {}) noexcept;
Result<ReceivedFds> recv_fds(int socket, std::span<std::byte> buffer, std::span<int> fds,
                             Deadline deadline = {}) noexcept;
Result<std::size_t> splice(int fd_in, std::int64_t offset_in, int fd_out, std::int64_t offset_out,
                           std::size_t length, unsigned flags = 0, Deadline deadline = {}) noexcept;
Result<std::size_t> tee(int fd_in, int fd_out, std::size_t length, unsigned flags = 0,
                        Deadline deadline = {}) noexcept;
Result<std::size_t> sendfile(int out_fd, int in_fd, std::uint64_t offset, std::size_t count,
                             Deadline deadline = {}) noexcept;
Result<int> openat(int dirfd, const char* path, int flags, mode_t mode = 0,
                   Deadline deadline = {}) noexcept;
Result<int> open(const char* path, int flags, mode_t mode = 0, Deadline deadline = {}) noexcept;
Result<struct ::statx> statx(int dirfd, const char* path, int flags = 0,
                             unsigned mask = STATX_BASIC_STATS, Deadline deadline = {}) noexcept;
Result<void> fsync(int fd, Deadline deadline = {}) noexcept;
Result<void> fdatasync(int fd, Deadline deadline = {}) noexcept;
Result<void> fallocate(int fd, int mode, std::uint64_t offset, std::uint64_t length,
                       Deadline deadline = {}) noexcept;
Result<void> unlinkat(int dirfd, const char* path, int flags = 0, Deadline deadline = {}) noexcept;
Result<void> renameat(int old_dirfd, const char* old_path, int new_dirfd, const char* new_path,
                      unsigned flags = 0, Deadline deadline = {}) noexcept;
Result<void> mkdirat(int dirfd, const char* path, mode_t mode = 0777,
                     Deadline deadline = {}) noexcept;
Result<void> close(int fd, Deadline deadline = {}) noexcept;
Result<siginfo_t> waitid(pid_t pid, int options = WEXITED, Deadline deadline = {}) noexcept;
Result<siginfo_t> waitid_pidfd(int pidfd, int options = WEXITED, Deadline deadline = {}) noexcept;
Result<std::uint32_t> poll(int fd, std::uint32_t events, Deadline deadline = {}) noexcept;
Result<bool> futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                        Deadline deadline = {}) noexcept;
Result<void> nop(Deadline deadline = {}) noexcept;
}  // namespace nothrow

}  // namespace spindle
