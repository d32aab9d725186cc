#include "loop/uring_backend.hpp"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>

#include "context/sanitizers.hpp"
#include "loop/timespec.hpp"

#ifdef SPINDLE_TSAN
#include <sys/mman.h>
#endif

namespace spindle {

namespace {

// user_data: 0 = ignored; kWakerTag = the waker's poll; odd = a watcher's
// poll: the fd and a 30-bit epoch of its watch (shifted left by two);
// anything else = a Completion*.
constexpr std::uint64_t kIgnored = 0;
constexpr std::uint64_t kWakerTag = 2;
constexpr std::uint64_t kWatchTag = 1;
constexpr std::uint32_t kEpochMask = (1u << 30) - 1;

// Kernel entries per wait() that only fetch more completions (see drain).
constexpr int kMaxRefills = 64;

std::uint64_t watch_data(int fd, std::uint32_t epoch) noexcept {
  std::uint64_t key = static_cast<std::uint32_t>(fd) | (std::uint64_t{epoch & kEpochMask} << 32);
  return (key << 2) | kWatchTag;
}

int watch_fd(std::uint64_t data) noexcept {
  return static_cast<int>(static_cast<std::uint32_t>(data >> 2));
}

std::uint32_t watch_epoch(std::uint64_t data) noexcept {
  return static_cast<std::uint32_t>(data >> 34);
}

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::system_category(), what);
}

// Throws for an io_uring_enter result that is an error: EINTR (a signal),
// EAGAIN and EBUSY (the completion queue is full; the caller drains it and
// goes on) are not, and neither is ETIME from a wait with a timeout
// (`timed`).
void check_enter(int rc, bool timed, const char* what) {
  if (rc < 0 && !(timed && rc == -ETIME) && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
    throw_errno(-rc, what);
  }
}

}  // namespace

UringBackend::UringBackend(const BackendOptions& options) {
  if (options.sidecar && options.uring_sqpoll) {
    throw std::invalid_argument(
        "BackendOptions: sidecar and uring_sqpoll exclude each other (both take submission off "
        "the loop's thread)");
  }
  unsigned entries = options.uring_entries == 0 ? 256 : options.uring_entries;
  // Newest features first; older kernels reject unknown flags with EINVAL.
  // With a sidecar, two threads enter the ring and completions must be
  // posted without waiting for the submitter's next entry: none of the
  // single-issuer or cooperative task-work modes.
  const unsigned attempts[] = {
      IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
          IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
      IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
          IORING_SETUP_TASKRUN_FLAG,
      IORING_SETUP_CQSIZE,
  };
  const unsigned sidecar_attempts[] = {
      IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL,
      IORING_SETUP_CQSIZE,
  };
  std::span<const unsigned> plain = attempts;
  if (options.sidecar) plain = sidecar_attempts;
  int rc = -EINVAL;
  if (options.uring_sqpoll) {
    // SQPOLL excludes DEFER_TASKRUN; unprivileged SQPOLL needs Linux 5.11.
    const unsigned sqpoll_attempts[] = {
        IORING_SETUP_SQPOLL | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL |
            IORING_SETUP_SINGLE_ISSUER,
        IORING_SETUP_SQPOLL | IORING_SETUP_CQSIZE,
    };
    for (unsigned flags : sqpoll_attempts) {
      io_uring_params params{};
      params.flags = flags;
      params.cq_entries = entries * 4;
      params.sq_thread_idle = options.uring_sqpoll_idle_ms;
      rc = io_uring_queue_init_params(entries, &ring_, &params);
      if (rc == 0) {
        setup_flags_ = flags;
        break;
      }
    }
    if (rc != 0) {
      sqpoll_refused_ =
          rc == -EPERM ? "SQPOLL: not permitted (EPERM)" : "SQPOLL: refused by the kernel";
      rc = -EINVAL;
    }
  }
  for (unsigned flags : plain) {
    if (rc == 0) break;
    io_uring_params params{};
    params.flags = flags;
    params.cq_entries = entries * 4;
    rc = io_uring_queue_init_params(entries, &ring_, &params);
    if (rc != -EINVAL) {
      setup_flags_ = flags;
      break;
    }
  }
  if (rc < 0) throw_errno(-rc, "io_uring_queue_init");
  if (options.uring_registered_files != 0 &&
      io_uring_register_files_sparse(&ring_, options.uring_registered_files) == 0) {
    registered_files_ = options.uring_registered_files;
  }
  io_uring_register_ring_fd(&ring_);  // saves an fd lookup per enter where supported
  eventfd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (eventfd_ < 0) {
    int err = errno;
    io_uring_queue_exit(&ring_);
    throw_errno(err, "eventfd");
  }
  arm_waker();
  if (options.sidecar) {
    try {
      if ((ring_.features & IORING_FEAT_EXT_ARG) == 0) {
        throw std::system_error(
            ENOSYS, std::system_category(),
            "io_uring sidecar: the kernel lacks IORING_FEAT_EXT_ARG (Linux 5.11)");
      }
      sidecar_ = std::make_unique<detail::Sidecar>(&UringBackend::sidecar_enter, this);
    } catch (...) {
      io_uring_queue_exit(&ring_);
      ::close(eventfd_);
      throw;
    }
  }
}

int UringBackend::sidecar_enter(void* self, std::int64_t timeout_ns) noexcept {
  auto* b = static_cast<UringBackend*>(self);
  // Exactly what is published and not yet taken: the kernel skips the
  // wait when it submits fewer than to_submit, so asking for more (the
  // ring's size) made every wait return at once and the loop spin through
  // hand-offs. The loop's thread publishes the tail (release); the kernel
  // advances the head.
  const io_uring_sq& sq = b->ring_.sq;
  unsigned to_submit = io_uring_smp_load_acquire(sq.ktail) - io_uring_smp_load_acquire(sq.khead);
  int rc;
  if (timeout_ns == 0) {
    if (to_submit == 0) return 0;  // nothing to do: no system call
    rc = io_uring_enter(b->ring_.ring_fd, to_submit, 0, 0, nullptr);
  } else {
    __kernel_timespec ts{};
    io_uring_getevents_arg arg{};
    arg.sigmask_sz = _NSIG / 8;
    arg.ts = reinterpret_cast<std::uint64_t>(detail::timespec_or_null(timeout_ns, ts));
    rc = io_uring_enter2(b->ring_.ring_fd, to_submit, 1,
                         IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
                         reinterpret_cast<sigset_t*>(&arg), sizeof(arg));  // liburing types it so
  }
  return rc >= 0 ? 0 : rc;  // each caller judges the error as its non-sidecar twin does
}

void UringBackend::publish_submissions() noexcept {
  // What io_uring_submit does before entering; liburing has no call for
  // only this. The release store pairs with the kernel's acquire load of
  // the tail on the sidecar thread.
  io_uring_sq& sq = ring_.sq;
  if (sq.sqe_tail != sq.sqe_head) {
    io_uring_smp_store_release(sq.ktail, sq.sqe_tail);
    sq.sqe_head = sq.sqe_tail;
  }
}

void UringBackend::submit_now() {
  int rc;
  if (sidecar_) {
    publish_submissions();
    rc = sidecar_->run(0);
  } else {
    ++counters_.enters;
    rc = io_uring_submit(&ring_);
  }
  check_enter(rc, false, "io_uring_submit");
  if (rc < 0) io_uring_get_events(&ring_);  // flush overflowed completions, then retry
}

UringBackend::~UringBackend() {
  sidecar_.reset();  // a submission it was asked for may still be running
#ifdef SPINDLE_TSAN
  // liburing maps and unmaps the rings with its own system calls, which
  // TSan does not see: a ring mapped later where this one was, by another
  // thread, would inherit this ring's access history (a false race). Unmap
  // through libc first, which TSan intercepts; liburing's unmapping of the
  // same ranges then does nothing.
  ::munmap(ring_.sq.sqes, ring_.sq.ring_entries * sizeof(io_uring_sqe));
  ::munmap(ring_.sq.ring_ptr, ring_.sq.ring_sz);
  if (ring_.cq.ring_ptr != ring_.sq.ring_ptr) ::munmap(ring_.cq.ring_ptr, ring_.cq.ring_sz);
#endif
  io_uring_queue_exit(&ring_);
  ::close(eventfd_);
}

io_uring_sqe* UringBackend::get_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  ++counters_.sqes;
  while (sqe == nullptr) {
    submit_now();
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

io_uring_sqe* UringBackend::prepare(Completion* c) {
  io_uring_sqe* sqe = get_sqe();
  io_uring_sqe_set_data(sqe, c);
  ++in_flight_;
  return sqe;
}

bool UringBackend::reserve(unsigned n) {
  if (n > ring_.sq.ring_entries) return false;
  while (io_uring_sq_space_left(&ring_) < n) submit_now();
  return true;
}

io_uring_sqe* UringBackend::prepare_untracked() {
  io_uring_sqe* sqe = get_sqe();
  io_uring_sqe_set_data64(sqe, kIgnored);
  return sqe;
}

void UringBackend::arm_waker() {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_poll_multishot(sqe, eventfd_, POLLIN);
  io_uring_sqe_set_data64(sqe, kWakerTag);
}

void UringBackend::arm(int fd, FdState& st, bool multishot) {
  io_uring_sqe* sqe = get_sqe();
  if (multishot) {
    io_uring_prep_poll_multishot(sqe, fd, st.watch_events);
  } else {
    io_uring_prep_poll_add(sqe, fd, st.watch_events);
  }
  io_uring_sqe_set_data64(sqe, watch_data(fd, st.epoch));
  st.armed = true;
}

void UringBackend::watch(int fd, std::uint32_t events, WatchMode mode) {
  if (fd < 0) throw_errno(EBADF, "watch fd " + std::to_string(fd));
  FdState& st = fds_.at(fd);
  if (st.watched && st.armed) {
    io_uring_prep_poll_remove(prepare_untracked(), watch_data(fd, st.epoch));
  }
  if (!st.watched) ++watched_;
  st.watched = true;
  st.armed = false;
  st.epoch = (st.epoch + 1) & kEpochMask;
  st.watch_events = events;
  st.mode = mode;
  arm(fd, st, mode == WatchMode::edge);
}

void UringBackend::unwatch(int fd) noexcept {
  FdState* st = fds_.find(fd);
  if (st == nullptr || !st->watched) return;
  st->watched = false;
  --watched_;
  std::uint64_t old = watch_data(fd, st->epoch);
  st->epoch = (st->epoch + 1) & kEpochMask;
  if (st->armed) {
    st->armed = false;
    try {
      io_uring_prep_poll_remove(prepare_untracked(), old);
    } catch (...) {
      // The poll stays armed in the kernel; its completion carries an epoch
      // that no longer matches and is dropped.
    }
  }
}

void UringBackend::rearm(int fd) {
  FdState* st = fds_.find(fd);
  if (st == nullptr || !st->watched || st->armed) return;
  arm(fd, *st, false);
}

void UringBackend::poll_once(int fd, PollWait* w) {
  if (fd < 0) throw_errno(EBADF, "poll fd " + std::to_string(fd));
  if (FdState* st = fds_.find(fd); st != nullptr && st->watched) {
    throw_errno(EBUSY, "poll fd " + std::to_string(fd) + ": the fd has a loop watcher");
  }
  io_uring_prep_poll_add(prepare(w), fd, w->events);
}

void UringBackend::cancel_poll(int, PollWait* w) noexcept {
  try {
    io_uring_prep_poll_remove(prepare_untracked(), reinterpret_cast<std::uint64_t>(w));
  } catch (...) {
    // Submission failed: the poll completes on its own when the fd is ready.
  }
}

void UringBackend::cancel(Completion* c) noexcept {
  try {
    io_uring_prep_cancel64(prepare_untracked(), reinterpret_cast<std::uint64_t>(c), 0);
  } catch (...) {
    // As above: the operation still completes, later.
  }
}

void UringBackend::dispatch(std::uint64_t data, std::int32_t res, std::uint32_t flags,
                            ReadinessSink& sink) {
  if (data == kIgnored || data == LIBURING_UDATA_TIMEOUT) return;
  if (data == kWakerTag) {
    std::uint64_t value;
    while (::read(eventfd_, &value, sizeof(value)) > 0) {
    }
    wake_pending_.store(false);
    if ((flags & IORING_CQE_F_MORE) == 0) arm_waker();
    return;
  }
  if ((data & kWatchTag) != 0) {
    int fd = watch_fd(data);
    std::uint32_t epoch = watch_epoch(data);
    FdState* st = fds_.find(fd);
    if (st == nullptr || !st->watched || st->epoch != epoch) return;  // stale
    bool more = (flags & IORING_CQE_F_MORE) != 0;
    if (!more) st->armed = false;
    if (res == -ECANCELED) {
      if (st->mode == WatchMode::edge) arm(fd, *st, true);  // multishot ended by the kernel
      return;
    }
    std::uint32_t events = res < 0 ? EPOLLERR : static_cast<std::uint32_t>(res);
    sink.on_ready(*st, fd, events);
    // Level-triggered: poll again; if still ready it completes at once.
    // Edge-triggered: the multishot poll ended (overflow, error): restart it.
    // The record never moves, but the callback may have unwatched or
    // replaced the watch (a new epoch, armed by watch()).
    if (st->watched && st->epoch == epoch && !st->armed && st->mode != WatchMode::oneshot) {
      arm(fd, *st, st->mode == WatchMode::edge);
    }
    return;
  }
  auto* c = reinterpret_cast<Completion*>(data);
  if ((flags & IORING_CQE_F_MORE) == 0) --in_flight_;
  c->callback(c, res, flags);
}

void UringBackend::prefetch_records() noexcept {
  // Start loading the record of every ready watcher event before
  // dispatching the first, so the cache misses of a batch overlap.
  unsigned head;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    if ((cqe->user_data & kWatchTag) != 0) fds_.prefetch(watch_fd(cqe->user_data));
  }
}

int UringBackend::drain(ReadinessSink& sink) {
  int delivered = 0;
  int refills = 0;
  prefetch_records();
  for (;;) {
    io_uring_cqe* cqe = nullptr;
    if (io_uring_peek_cqe(&ring_, &cqe) != 0 || cqe == nullptr) {
      // An overflow is flushed and drained before returning. And the kernel
      // posts deferred completions only a few dozen per entry (since Linux
      // 6.13): when it flags more task work (TASKRUN_FLAG), fetch them now
      // rather than a turn later; bounded, so that a stream of completions
      // cannot hold the turn forever.
      unsigned kflags = IO_URING_READ_ONCE(*ring_.sq.kflags);
      bool more = (kflags & IORING_SQ_TASKRUN) != 0 && refills < kMaxRefills;
      if (io_uring_cq_has_overflow(&ring_) || more) {
        ++refills;
        ++counters_.enters;
        io_uring_get_events(&ring_);
        prefetch_records();
        continue;
      }
      break;
    }
    std::uint64_t data = cqe->user_data;
    std::int32_t res = cqe->res;
    std::uint32_t flags = cqe->flags;
    io_uring_cqe_seen(&ring_, cqe);
    ++counters_.cqes;
    dispatch(data, res, flags, sink);
    ++delivered;
  }
  return delivered;
}

int UringBackend::wait(std::int64_t timeout_ns, ReadinessSink& sink) {
  if (sidecar_) {
    publish_submissions();
    if (timeout_ns == 0 || io_uring_cq_ready(&ring_) != 0) {
      if (io_uring_sq_ready(&ring_) != 0) sidecar_->post();
    } else {
      ++counters_.cqe_waits;
      int rc = sidecar_->run(timeout_ns);
      check_enter(rc, true, "io_uring_enter on the sidecar thread");
    }
    return drain(sink);
  }
  if (timeout_ns == 0 || io_uring_cq_ready(&ring_) != 0) {
    if (io_uring_sq_ready(&ring_) != 0 || in_flight_ != 0 || watched_ != 0) {
      ++counters_.enters;
      int rc = io_uring_submit_and_get_events(&ring_);
      check_enter(rc, false, "io_uring_submit_and_get_events");
    }
  } else {
    __kernel_timespec ts{};
    __kernel_timespec* tsp = detail::timespec_or_null(timeout_ns, ts);
    io_uring_cqe* cqe = nullptr;
    ++counters_.enters;
    ++counters_.cqe_waits;
    int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, tsp, nullptr);
    check_enter(rc, true, "io_uring_submit_and_wait_timeout");
  }
  return drain(sink);
}

void UringBackend::wake() noexcept {
  if (wake_pending_.exchange(true)) return;
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t w = ::write(eventfd_, &one, sizeof(one));
}

}  // namespace spindle
