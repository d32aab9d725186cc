// What the io layer's sources share: the per-runtime state, the kernel
// features it probes, and the one way every operation runs (an SQE on
// io_uring; a non-blocking attempt plus a readiness wait, or the blocking
// pool, on epoll), wrapped for deadlines and for the two error styles.
#pragma once

#include <exception>

#include <liburing.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "fiber/scheduler.hpp"
#include "loop/uring_backend.hpp"
#include "spindle/fiber/cancel.hpp"
#include "spindle/fiber/wait.hpp"
#include "spindle/io/blocking.hpp"
#include "spindle/io/result.hpp"

namespace spindle::io_detail {

using detail::FiberControl;
using detail::Scheduler;

// Opcodes and flags newer than Debian's liburing 2.3 headers (the kernel's
// numbering, include/uapi/linux/io_uring.h). The SQEs are filled by hand.
inline constexpr std::uint8_t kOpReadMultishot = 49;  // 6.7
inline constexpr std::uint8_t kOpWaitid = 50;         // 6.7
inline constexpr std::uint8_t kOpFutexWait = 51;      // 6.7
inline constexpr std::uint8_t kOpFutexWake = 52;      // 6.7
inline constexpr std::uint8_t kOpBind = 56;           // 6.11
inline constexpr std::uint8_t kOpListen = 57;         // 6.11
inline constexpr unsigned kRecvSendBundle = 1u << 4;  // IORING_RECVSEND_BUNDLE, 6.10
inline constexpr unsigned kFeatRecvSendBundle = 1u << 14;
inline constexpr unsigned kFutex2SizeU32 = 0x02;
inline constexpr unsigned kFutex2Private = 128;

// Kernel features with a fallback. Probed once per process from the first
// io_uring ring; SPINDLE_IO_FALLBACK (a comma list of these names, or
// "all") forces the fallbacks, which is how the tests cover them.
enum class Feature : unsigned {
  socket,            // IORING_OP_SOCKET (5.19)      else socket(2)
  bind,              // IORING_OP_BIND (6.11)         else bind(2)
  listen,            // IORING_OP_LISTEN (6.11)       else listen(2)
  waitid,            // IORING_OP_WAITID (6.7)        else a pidfd wait
  futex,             // IORING_OP_FUTEX_* (6.7)       else the blocking pool
  multishot_accept,  // (5.19)                         else one accept per connection
  multishot_recv,    // (6.0)                          else one recv per buffer
  read_multishot,    // IORING_OP_READ_MULTISHOT (6.7) else one read per buffer
  buffer_ring,       // provided-buffer rings (5.19)   else buffers picked in user space
  send_bundle,       // IORING_RECVSEND_BUNDLE (6.10)  else sendmsg of the queued buffers
  count,
};
const char* feature_name(Feature f) noexcept;
// Whether `f` is used natively on io_uring backend `u`.
bool native(Feature f, UringBackend& u) noexcept;
// The features currently on their fallback, as "a b c" (for metrics).
std::string fallbacks_in_use(UringBackend* u);
// Tests: replaces the forced set (names as in SPINDLE_IO_FALLBACK).
void force_fallbacks(const std::string& names);

// Per-runtime state, hung on the Scheduler (destroyed with it).
struct State {
  Scheduler* sched = nullptr;
  UringBackend* uring = nullptr;  // null on epoll
  std::uint64_t ops_started = 0;
  std::uint64_t ops_completed = 0;
  std::uint64_t in_flight = 0;
  std::uint64_t offloaded = 0;
  std::uint64_t async_errors = 0;
  // Registered files: fd -> slot (-1: none).
  std::vector<int> fixed_slot;
  std::vector<int> free_slots;
  unsigned fixed_used = 0;
  bool slots_ready = false;
  // Pipes kept for splice-based operations (sendfile, splice_chunks, proxies).
  std::vector<std::pair<int, int>> pipes;
  // Buffer group ids of buffer rings.
  std::uint16_t next_group = 1;
  std::vector<std::uint16_t> free_groups;
  // Fire-and-forget operations, per fd (async.cpp owns them).
  void* async = nullptr;
  void (*async_destroy)(void*) noexcept = nullptr;
  // io_uring: what the stream operations learnt about each fd (kHint*
  // bits), for trying the system call before the SQE. Only a guess: a
  // stale bit (an fd closed behind spindle's back and reused) costs a
  // system call or an SQE, never a wrong result.
  std::vector<std::uint8_t> hints;

  ~State();
  std::uint8_t hint(int fd) const noexcept {
    return static_cast<std::size_t>(fd) < hints.size() ? hints[static_cast<std::size_t>(fd)] : 0;
  }
  // Clears the bits `clear`, then sets the bits `set`, of fd's hints.
  void update_hints(int fd, std::uint8_t clear, std::uint8_t set) noexcept;
  int fixed(int fd) const noexcept {
    return fixed_used != 0 && fd >= 0 && static_cast<std::size_t>(fd) < fixed_slot.size()
               ? fixed_slot[static_cast<std::size_t>(fd)]
               : -1;
  }
};
State& state_of(Scheduler& s);

// A pipe from the runtime's cache (O_CLOEXEC | O_NONBLOCK, as large as the
// system allows up to 1 MiB); give it back empty with put_pipe, or close it.
std::pair<int, int> take_pipe(State& st);
void put_pipe(State& st, std::pair<int, int> p) noexcept;
std::size_t pipe_capacity(int write_end) noexcept;

// The running fiber and its runtime, for one operation (counted in the
// metrics from begin() to the end of its scope).
struct Op {
  FiberControl* fiber;
  Scheduler* sched;
  State* st;
  UringBackend* uring;  // null on epoll

  Op(FiberControl* f, Scheduler* s, State* state, UringBackend* u) noexcept
      : fiber(f), sched(s), st(state), uring(u) {
    ++st->ops_started;
    ++st->in_flight;
  }
  ~Op() {
    --st->in_flight;
    ++st->ops_completed;
    // An operation that was ready at once spends the cooperative budget
    // (one that suspended started a new turn); not while unwinding.
    if (std::uncaught_exceptions() == 0) sched->consume_budget();
  }
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;
};
// Throws std::logic_error outside a fiber, Cancelled if one is pending
// (unless `checkpoint` is false: for calls that only queue work).
Op begin(const char* what, bool checkpoint = true);

// -ECANCELED with a cancellation pending becomes Cancelled; any other
// result (one that won the race with the cancellation) is returned.
inline ssize_t settle(FiberControl* f, ssize_t rc) {
  if (rc == -ECANCELED) Scheduler::checkpoint(f);
  return rc;
}

// Uses the registered-file slot of `fd` for this SQE if it has one.
inline void use_fixed(Op& op, io_uring_sqe* sqe, int fd) noexcept {
  if (fd < 0 || sqe->fd != fd) return;
  if (int slot = op.st->fixed(fd); slot >= 0) {
    sqe->fd = slot;
    sqe->flags |= IOSQE_FIXED_FILE;
  }
}

// io_uring fast path hints (State::hints).
inline constexpr std::uint8_t kHintReadReady = 1;  // the last read filled its buffer
inline constexpr std::uint8_t kHintNoNowait = 2;   // RWF_NOWAIT is refused (a regular file)
inline constexpr std::uint8_t kHintWriting = 4;    // the last stream op on the fd was a write

// io_uring: a stream read or write that can complete at once is done by a
// non-blocking system call (`attempt`, returning the result or -errno)
// without an SQE, so the fiber does not wait a scheduler round for it.
// Returns the result, or kGoToRing when the call would block (EAGAIN), was
// interrupted or is not possible: the caller then submits the SQE. The
// attempt is made only when `likely`.
inline constexpr ssize_t kGoToRing = -100001;
template <class Attempt>
ssize_t attempt_first(Op& op, bool likely, Attempt&& attempt) {
  if (op.uring == nullptr || !likely) return kGoToRing;
  ssize_t n = attempt();
  return n == -EAGAIN || n == -EINTR || n == -EOPNOTSUPP ? kGoToRing : n;
}

// io_uring: one SQE filled by `prep`, waited for (interruptibly: a
// cancellation sends ASYNC_CANCEL and still waits for the CQE). `fd` (or
// -1) may be replaced by its registered slot. Returns res or -errno.
template <class Prep>
ssize_t submit(Op& op, int fd, Prep&& prep, std::uint32_t* cqe_flags = nullptr) {
  detail::FiberCompletion c;
  io_uring_sqe* sqe = op.uring->prepare(&c);
  prep(sqe);
  use_fixed(op, sqe, fd);
  ssize_t rc = c.wait();
  if (cqe_flags != nullptr) *cqe_flags = c.flags;
  return settle(op.fiber, rc);
}

// epoll: waits until `fd` reports one of `events`. Returns the events,
// -errno, or kUnpollable if the fd cannot be polled (a regular file or a
// directory: epoll refuses them, so they would block a syscall instead).
inline constexpr ssize_t kUnpollable = -100000;
ssize_t wait_ready(Op& op, int fd, std::uint32_t events);

// Runs `fn` (returning ssize_t, -errno on failure) on the blocking pool.
// A job dropped before it started (cancellation) throws Cancelled.
template <class Fn>
ssize_t offload(Op& op, Fn&& fn) {
  struct Job : detail::BlockingJob {
    std::remove_reference_t<Fn>* fn;
    ssize_t result = 0;
  } job;
  job.fn = &fn;
  job.run = [](detail::BlockingJob* j) noexcept {
    auto* self = static_cast<Job*>(j);
    self->result = (*self->fn)();
  };
  ++op.st->offloaded;
  if (!detail::run_blocking(job)) detail::blocking_checkpoint();
  return job.result;
}

inline ssize_t errno_result(ssize_t rc) noexcept {
  return rc >= 0 ? rc : -errno;
}

// epoll: retries the non-blocking `attempt` after each readiness wait for
// `events`; an fd that cannot be polled goes to `blocking` on the pool.
template <class Attempt, class Blocking>
ssize_t retry_ready(Op& op, int fd, std::uint32_t events, Attempt&& attempt, Blocking&& blocking) {
  for (;;) {
    ssize_t n = attempt();
    if (n == -EINTR) continue;
    if (n != -EAGAIN) return n;
    ssize_t ready = wait_ready(op, fd, events);
    if (ready == kUnpollable) return offload(op, blocking);
    if (ready < 0) return ready;
  }
}

// Both backends: the SQE, or the attempt / readiness / pool path.
template <class Prep, class Attempt, class Blocking>
ssize_t perform(Op& op, int fd, std::uint32_t events, Prep&& prep, Attempt&& attempt,
                Blocking&& blocking) {
  if (op.uring != nullptr) {
    for (;;) {
      ssize_t n = submit(op, fd, prep);
      // io_uring waits for readiness itself, but an O_NONBLOCK descriptor
      // some operations (splice) report EAGAIN: wait here, then retry.
      if (n != -EAGAIN) return n;
      ssize_t ready = wait_ready(op, fd, events);
      if (ready < 0 && ready != kUnpollable) return ready;
    }
  }
  return retry_ready(op, fd, events, attempt, blocking);
}

// A file operation: the SQE on io_uring, `blocking` on the pool on epoll.
template <class Prep, class Blocking>
ssize_t file_op(Op& op, int fd, Prep&& prep, Blocking&& blocking) {
  if (op.uring != nullptr) return submit(op, fd, prep);
  return offload(op, blocking);
}

// The operations themselves (ops.cpp), for the loops and chains: each
// returns the result or -errno and throws Cancelled.
inline constexpr std::uint64_t kNoOffset = ~std::uint64_t{0};
ssize_t read_core(Op& op, int fd, std::span<std::byte> buffer, std::uint64_t offset);
ssize_t write_core(Op& op, int fd, std::span<const std::byte> data, std::uint64_t offset);
ssize_t write_all(Op& op, int fd, std::span<const std::byte> data, std::uint64_t offset);
ssize_t recv_core(Op& op, int fd, std::span<std::byte> buffer, int flags);
ssize_t send_core(Op& op, int fd, std::span<const std::byte> data, int flags);
ssize_t send_all(Op& op, int fd, std::span<const std::byte> data, int flags);
ssize_t sendv_core(Op& op, int fd, std::span<const iovec> buffers);
ssize_t accept_core(Op& op, int fd, sockaddr* address, socklen_t* length);
ssize_t shutdown_core(Op& op, int fd, int how);
ssize_t close_core(Op& op, int fd);
ssize_t splice_core(Op& op, int in, std::int64_t offset_in, int out, std::int64_t offset_out,
                    std::size_t length, unsigned flags);
// Moves exactly `length` bytes (fewer only at end of input).
ssize_t splice_exactly(Op& op, int in, int out, std::size_t length, std::int64_t offset_in);
unsigned len32(std::size_t n) noexcept;

// A pipe from the runtime's cache for the length of one operation; one
// that may still hold data is closed instead of returned.
class PipeLease {
 public:
  explicit PipeLease(State& st) : st_(st), pipe_(take_pipe(st)) {}
  ~PipeLease() {
    if (dirty) {
      ::close(pipe_.first);
      ::close(pipe_.second);
    } else {
      put_pipe(st_, pipe_);
    }
  }
  PipeLease(const PipeLease&) = delete;
  PipeLease& operator=(const PipeLease&) = delete;
  int read_end() const noexcept { return pipe_.first; }
  int write_end() const noexcept { return pipe_.second; }
  bool dirty = false;

 private:
  State& st_;
  std::pair<int, int> pipe_;
};

// Runs `body` within the deadline: throws TimedOut when it expires (the
// operation in flight is cancelled and waited for first, exactly as for a
// fiber cancellation), Cancelled when the fiber is cancelled.
template <class Body>
auto timed(Deadline d, Body&& body) -> decltype(body()) {
  if (!d) return body();
  detail::CancelScope scope(false, d.ns());
  try {
    return body();
  } catch (const Cancelled& c) {
    if (!scope.owns(c)) throw;
  }
  throw TimedOut();
}

// What an error names: "read fd 5", "openat /tmp/x".
inline constexpr int kNoFd = INT_MIN;
struct Subject {
  const char* op;
  int fd = kNoFd;
  const char* path = nullptr;
};
[[noreturn]] void throw_errno(int err, const Subject& what);

// The throwing form: `body` returns ssize_t (-errno on failure) and runs
// within the deadline.
template <class Body>
std::size_t checked(const Subject& what, Deadline d, Body&& body) {
  ssize_t n = timed(d, body);
  if (n < 0) throw_errno(static_cast<int>(-n), what);
  return static_cast<std::size_t>(n);
}

// The non-throwing form of the same body.
template <class T, class Body>
Result<T> quiet(Deadline d, Body&& body) noexcept {
  try {
    ssize_t n = timed(d, body);
    if (n < 0) return Result<T>::failure(static_cast<int>(-n));
    if constexpr (std::is_void_v<T>) {
      return Result<T>();
    } else {
      return Result<T>(static_cast<T>(n));
    }
  } catch (const Cancelled&) {
    return Result<T>::failure(ECANCELED);
  } catch (const TimedOut&) {
    return Result<T>::failure(ETIMEDOUT);
  } catch (const std::system_error& e) {
    return Result<T>::failure(e.code().value());
  } catch (const std::bad_alloc&) {
    return Result<T>::failure(ENOMEM);
  } catch (...) {
    return Result<T>::failure(EINVAL);
  }
}

}  // namespace spindle::io_detail
