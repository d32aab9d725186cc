// The readiness-based backend: epoll, with an eventfd for wakeups.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include "loop/fd_record.hpp"
#include "loop/fd_table.hpp"
#include "loop/sidecar.hpp"
#include "spindle/loop/backend.hpp"

namespace spindle {

// Backend over epoll. Each descriptor has one epoll registration, used either
// by a watcher (persistent, level / edge / oneshot) or by the fibers' one-shot
// readiness waits (EPOLLONESHOT with the union of their interests, re-armed
// while waits remain). The registration's data carries the fd and an epoch
// bumped on every change, so an event fetched before an unwatch (or a
// close and reuse of the fd number) in the same round is dropped.
//
// With a sidecar, a wait that may block is a poll(2) on the epoll descriptor
// made by the sidecar thread; the events are then fetched without blocking.
class EpollBackend final : public Backend {
 public:
  explicit EpollBackend(const BackendOptions& options = {});
  ~EpollBackend() override;

  BackendKind kind() const noexcept override { return BackendKind::epoll; }
  void watch(int fd, std::uint32_t events, WatchMode mode) override;
  void unwatch(int fd) noexcept override;
  void rearm(int fd) override;
  void poll_once(int fd, PollWait* wait) override;
  void cancel_poll(int fd, PollWait* wait) noexcept override;
  int wait(std::int64_t timeout_ns, ReadinessSink& sink) override;
  void wake() noexcept override;
  bool busy() const noexcept override { return watched_ + waiting_ != 0; }
  detail::FdRecords& records() noexcept override { return fds_; }
  // For metrics: epoll_pwait2 calls that could block, and pending waits.
  std::uint64_t blocking_waits() const noexcept { return blocking_waits_; }
  std::size_t waiting() const noexcept { return waiting_; }
  std::uint64_t sidecar_calls() const noexcept override { return sidecar_ ? sidecar_->calls() : 0; }
  bool has_sidecar() const noexcept override { return sidecar_ != nullptr; }

 private:
  using FdState = detail::FdRecord;

  // Sets the registration of fd to `events` (ADD or MOD, recovering from a
  // closed-and-reused fd number). Returns 0 or -errno.
  int set_registration(int fd, FdState& st, std::uint32_t events) noexcept;
  void complete_waits(int fd, FdState& st, std::uint32_t events) noexcept;
  void drain_waker() noexcept;
  // The sidecar's call: waits for the epoll descriptor to become readable.
  static int sidecar_poll(void* self, std::int64_t timeout_ns) noexcept;

  int epfd_ = -1;
  int eventfd_ = -1;
  std::atomic<bool> wake_pending_{false};
  std::size_t watched_ = 0;
  std::size_t waiting_ = 0;
  std::uint64_t blocking_waits_ = 0;
  detail::FdRecords fds_;
  epoll_event events_[256];
  std::unique_ptr<detail::Sidecar> sidecar_;  // stopped first by the destructor
};

}  // namespace spindle
