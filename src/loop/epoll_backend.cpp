#include "loop/epoll_backend.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <string>
#include <system_error>

#include "loop/timespec.hpp"

namespace spindle {

namespace {

constexpr std::uint64_t kWakerData = ~std::uint64_t{0};

std::uint64_t pack(int fd, std::uint32_t epoch) noexcept {
  return static_cast<std::uint32_t>(fd) | (std::uint64_t{epoch} << 32);
}

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::system_category(), what);
}

std::uint32_t mode_flags(WatchMode mode) noexcept {
  switch (mode) {
    case WatchMode::edge:
      return EPOLLET;
    case WatchMode::oneshot:
      return EPOLLONESHOT;
    case WatchMode::level:
      break;
  }
  return 0;
}

}  // namespace

EpollBackend::EpollBackend(const BackendOptions& options) {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw_errno(errno, "epoll_create1");
  eventfd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (eventfd_ < 0) {
    int err = errno;
    ::close(epfd_);
    throw_errno(err, "eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakerData;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, eventfd_, &ev) != 0) {
    int err = errno;
    ::close(eventfd_);
    ::close(epfd_);
    throw_errno(err, "epoll_ctl(ADD eventfd)");
  }
  if (options.sidecar) {
    try {
      sidecar_ = std::make_unique<detail::Sidecar>(&EpollBackend::sidecar_poll, this);
    } catch (...) {
      ::close(eventfd_);
      ::close(epfd_);
      throw;
    }
  }
}

int EpollBackend::sidecar_poll(void* self, std::int64_t timeout_ns) noexcept {
  auto* b = static_cast<EpollBackend*>(self);
  timespec ts;
  timespec* tsp = detail::timespec_or_null(timeout_ns, ts);
  // An epoll descriptor is readable while it has events to fetch.
  pollfd p{.fd = b->epfd_, .events = POLLIN, .revents = 0};
  int n = ::ppoll(&p, 1, tsp, nullptr);
  return n < 0 && errno != EINTR ? -errno : 0;
}

EpollBackend::~EpollBackend() {
  sidecar_.reset();
  ::close(eventfd_);
  ::close(epfd_);
}

int EpollBackend::set_registration(int fd, FdState& st, std::uint32_t events) noexcept {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = pack(fd, st.epoch);
  int op = st.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (::epoll_ctl(epfd_, op, fd, &ev) != 0) {
    // The fd number may have been closed (epoll dropped it) and reused, or
    // registered by a previous owner of the number: try the other operation.
    if (errno != ENOENT && errno != EEXIST) return -errno;
    op = op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (::epoll_ctl(epfd_, op, fd, &ev) != 0) return -errno;
  }
  st.registered = true;
  return 0;
}

void EpollBackend::watch(int fd, std::uint32_t events, WatchMode mode) {
  if (fd < 0) throw_errno(EBADF, "watch fd " + std::to_string(fd));
  FdState& st = fds_.at(fd);
  if (!st.waits.empty()) {
    throw_errno(EBUSY, "watch fd " + std::to_string(fd) + ": fibers are waiting on it");
  }
  ++st.epoch;
  if (int rc = set_registration(fd, st, events | mode_flags(mode)); rc < 0) {
    if (st.watched) {
      st.watched = false;
      --watched_;
    }
    throw_errno(-rc, "epoll_ctl(watch fd " + std::to_string(fd) + ")");
  }
  if (!st.watched) ++watched_;
  st.watched = true;
  st.watch_events = events;
  st.mode = mode;
}

void EpollBackend::unwatch(int fd) noexcept {
  FdState* st = fds_.find(fd);
  if (st == nullptr || !st->watched) return;
  ++st->epoch;
  st->watched = false;
  --watched_;
  if (st->registered) {
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);  // may already be gone if fd was closed
    st->registered = false;
  }
}

void EpollBackend::rearm(int fd) {
  FdState* st = fds_.find(fd);
  if (st == nullptr || !st->watched) return;
  if (int rc = set_registration(fd, *st, st->watch_events | mode_flags(st->mode)); rc < 0) {
    throw_errno(-rc, "epoll_ctl(rearm fd " + std::to_string(fd) + ")");
  }
}

void EpollBackend::poll_once(int fd, PollWait* w) {
  if (fd < 0) throw_errno(EBADF, "poll fd " + std::to_string(fd));
  FdState& st = fds_.at(fd);
  if (st.watched) {
    throw_errno(EBUSY, "poll fd " + std::to_string(fd) + ": the fd has a loop watcher");
  }
  std::uint32_t interest = st.waits.interest() | w->events;
  if (st.waits.empty()) ++st.epoch;  // a fresh registration: nothing stale may match it
  int rc = set_registration(fd, st, interest | EPOLLONESHOT);
  if (rc == -EPERM) {
    // Regular files and directories cannot be polled: like poll(2), report
    // them ready at once.
    w->callback(w, static_cast<std::int32_t>(w->events & (EPOLLIN | EPOLLOUT)), 0);
    return;
  }
  if (rc < 0) throw_errno(-rc, "epoll_ctl(poll fd " + std::to_string(fd) + ")");
  st.waits.push(w);
  ++waiting_;
}

void EpollBackend::cancel_poll(int fd, PollWait* w) noexcept {
  FdState* st = fds_.find(fd);
  if (st == nullptr) return;
  bool queued = false;
  for (PollWait* p = st->waits.head(); p != nullptr; p = p->next) queued |= p == w;
  if (!queued) return;  // completed already
  st->waits.remove(w);
  --waiting_;
  // The one-shot registration may stay armed for the other waits; if none
  // remain, its event finds no waits and is dropped.
  w->callback(w, -ECANCELED, 0);
}

void EpollBackend::complete_waits(int fd, FdState& st, std::uint32_t events) noexcept {
  constexpr std::uint32_t always = EPOLLERR | EPOLLHUP;
  PollWait* w = st.waits.head();
  while (w != nullptr) {
    PollWait* next = w->next;
    std::uint32_t hit = events & (w->events | always);
    if (hit != 0) {
      st.waits.remove(w);
      --waiting_;
      w->callback(w, static_cast<std::int32_t>(hit), 0);
    }
    w = next;
  }
  // The registration was one-shot: re-arm it for the waits that remain.
  if (!st.waits.empty()) {
    if (int rc = set_registration(fd, st, st.waits.interest() | EPOLLONESHOT); rc < 0) {
      // Cannot happen for a live fd; if the fd is gone, fail the waits.
      while (PollWait* left = st.waits.head()) {
        st.waits.remove(left);
        --waiting_;
        left->callback(left, rc, 0);
      }
    }
  }
}

void EpollBackend::drain_waker() noexcept {
  std::uint64_t value;
  while (::read(eventfd_, &value, sizeof(value)) > 0) {
  }
  wake_pending_.store(false);
}

int EpollBackend::wait(std::int64_t timeout_ns, ReadinessSink& sink) {
  if (timeout_ns != 0) ++blocking_waits_;
  if (sidecar_ && timeout_ns != 0) {
    // The sidecar blocks until there are events (or the time is up); this
    // thread then only fetches them.
    int rc = sidecar_->run(timeout_ns);
    if (rc < 0) throw_errno(-rc, "ppoll(epoll fd) on the sidecar thread");
    timeout_ns = 0;
  }
  timespec ts;
  timespec* tsp = detail::timespec_or_null(timeout_ns, ts);
  int n = ::epoll_pwait2(epfd_, events_, static_cast<int>(std::size(events_)), tsp, nullptr);
  if (n < 0 && errno == ENOSYS) {
    // Kernels before 5.11: millisecond timeouts, rounded up so never early.
    int ms = timeout_ns < 0 ? -1 : static_cast<int>((timeout_ns + 999'999) / 1'000'000);
    n = ::epoll_wait(epfd_, events_, static_cast<int>(std::size(events_)), ms);
  }
  if (n < 0) {
    if (errno == EINTR) return 0;
    throw_errno(errno, "epoll_pwait2");
  }
  // Start loading every event's record before dispatching the first, so the
  // cache misses of a batch overlap instead of adding up.
  for (int i = 0; i < n; ++i) fds_.prefetch(static_cast<int>(events_[i].data.u64));
  int delivered = 0;
  for (int i = 0; i < n; ++i) {
    std::uint64_t data = events_[i].data.u64;
    if (data == kWakerData) {
      drain_waker();
      continue;
    }
    int fd = static_cast<int>(static_cast<std::uint32_t>(data));
    auto epoch = static_cast<std::uint32_t>(data >> 32);
    FdState* st = fds_.find(fd);
    if (st == nullptr || st->epoch != epoch) continue;  // stale: unwatched since fetched
    std::uint32_t ev = events_[i].events;
    if (st->watched) {
      sink.on_ready(*st, fd, ev);
    } else {
      complete_waits(fd, *st, ev);
    }
    ++delivered;
  }
  return delivered;
}

void EpollBackend::wake() noexcept {
  if (wake_pending_.exchange(true)) return;
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t w = ::write(eventfd_, &one, sizeof(one));
}

}  // namespace spindle
