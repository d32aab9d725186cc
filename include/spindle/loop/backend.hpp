// The interface between the event loop and the kernel: io_uring or epoll.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "spindle/loop/backend_kind.hpp"

namespace spindle {

namespace detail {
struct FdRecord;
template <class Entry>
class FdTable;
using FdRecords = FdTable<FdRecord>;
}  // namespace detail

// One pending kernel operation or readiness wait, embedded in whoever waits
// for it (usually a fiber's stack frame): backends allocate nothing per
// operation. The callback runs on the loop's thread, from Backend::wait().
struct Completion {
  // result: the operation's result (>= 0) or -errno; flags: IORING_CQE_F_*.
  using Callback = void (*)(Completion* self, std::int32_t result, std::uint32_t flags) noexcept;
  Callback callback = nullptr;
};

// A one-shot readiness wait (Backend::poll_once). Completes with the ready
// events (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, ...) or -errno.
struct PollWait : Completion {
  std::uint32_t events = 0;
  PollWait* next = nullptr;  // backend bookkeeping
  PollWait* prev = nullptr;
};

// How a watched descriptor reports readiness (see docs/loop.md).
enum class WatchMode : std::uint8_t {
  level,    // reported while ready
  edge,     // reported when it becomes ready: the user must drain
  oneshot,  // reported once, then disarmed until Backend::rearm
};

// Receives the readiness events of watched descriptors from Backend::wait():
// `record` is the descriptor's entry in Backend::records(), whose watch is
// current (the backend drops stale events).
class ReadinessSink {
 public:
  virtual void on_ready(detail::FdRecord& record, int fd, std::uint32_t events) noexcept = 0;

 protected:
  ~ReadinessSink() = default;
};

// A kernel event interface. One per loop, used from the loop's thread only,
// except wake(). Event masks use the EPOLL* bit values (which equal POLL*).
class Backend {
 public:
  virtual ~Backend() = default;
  virtual BackendKind kind() const noexcept = 0;

  // Starts or replaces persistent readiness interest in `fd`; its events go
  // to the sink with the fd's record. Throws std::system_error (EBUSY if
  // fibers are waiting on the same fd through poll_once).
  virtual void watch(int fd, std::uint32_t events, WatchMode mode) = 0;
  // Ends interest in `fd`. Idempotent. No event of the old watch is
  // delivered after this returns.
  virtual void unwatch(int fd) noexcept = 0;
  // Re-arms a oneshot watch after it fired.
  virtual void rearm(int fd) = 0;

  // Waits once for any of `events` on `fd`; completes `wait` from a later
  // Backend::wait(). Several waits may be pending on one fd. Throws
  // std::system_error (EBUSY if the fd has a watcher).
  virtual void poll_once(int fd, PollWait* wait) = 0;
  // Ends a pending poll_once early: its completion arrives with -ECANCELED
  // (or with the events, if they won the race), at once on epoll, from a
  // later wait() on io_uring. A wait that already completed is left alone.
  virtual void cancel_poll(int fd, PollWait* wait) noexcept = 0;

  // Submits what is queued and waits at most `timeout_ns` (< 0: no limit,
  // 0: do not block) for events, then delivers them: completions through
  // their callbacks, watcher events to `sink`. Returns how many it delivered.
  virtual int wait(std::int64_t timeout_ns, ReadinessSink& sink) = 0;

  // Makes a wait() in progress, or the next one, return. Thread-safe and
  // async-signal-safe; wakes coalesce (at most one write until consumed).
  virtual void wake() noexcept = 0;

  // Whether anything is in flight that only wait() can complete.
  virtual bool busy() const noexcept = 0;

  // Kernel calls made by the sidecar thread so far (0 without one).
  virtual std::uint64_t sidecar_calls() const noexcept { return 0; }
  // Whether this backend runs with a sidecar thread (BackendOptions::sidecar).
  virtual bool has_sidecar() const noexcept { return false; }

  // The per-descriptor records (src/loop/fd_record.hpp): the backend keeps
  // its registration state in them and the Loop its watcher, side by side,
  // so that an event costs one lookup. Internal to the loop layer.
  virtual detail::FdRecords& records() noexcept = 0;
};

// Whether this process may use io_uring, and if not, why.
struct UringProbe {
  bool available = false;
  std::string reason;  // a readable explanation either way
};

// Probes once per process by setting up a tiny ring (kernel.io_uring_disabled
// or a seccomp filter can forbid it). Thread-safe.
const UringProbe& probe_io_uring();

// Setup of the io_uring backend.
struct BackendOptions {
  unsigned uring_entries = 256;
  // A kernel thread polls the submission queue (IORING_SETUP_SQPOLL), so
  // submitting needs no system call while it is awake; it sleeps after
  // `uring_sqpoll_idle_ms` without work. Falls back to a normal ring (see
  // UringBackend::sqpoll()) where the kernel refuses it.
  bool uring_sqpoll = false;
  unsigned uring_sqpoll_idle_ms = 1000;
  // Size of the sparse registered-file table (0: none); see
  // spindle::register_fd in the io layer.
  unsigned uring_registered_files = 0;
  // A helper thread makes the blocking kernel calls (the io_uring submit and
  // wait, or the wait for epoll readiness) while the loop's thread sleeps on
  // a futex; see docs/loop.md, "Sidecar". Excludes uring_sqpoll.
  bool sidecar = false;
};

// The backend to use for `requested` after the SPINDLE_BACKEND override
// (io_uring | epoll | auto); never BackendKind::automatic. `reason` receives
// why. Throws std::invalid_argument for a bad SPINDLE_BACKEND value.
BackendKind choose_backend(BackendKind requested, std::string* reason = nullptr);

// Creates a backend of kind io_uring or epoll; SPINDLE_SIDECAR=1 / 0
// overrides options.sidecar (=1 not for options that ask for SQPOLL). Throws std::system_error naming the failing call
// (io_uring_queue_init, epoll_create1, eventfd), std::invalid_argument for a
// bad SPINDLE_SIDECAR or for sidecar with uring_sqpoll.
std::unique_ptr<Backend> make_backend(BackendKind kind, const BackendOptions& options = {});

}  // namespace spindle
