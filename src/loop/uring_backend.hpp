// The completion-based backend: io_uring.
#pragma once

#include <liburing.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include "loop/fd_record.hpp"
#include "loop/fd_table.hpp"
#include "loop/sidecar.hpp"
#include "spindle/loop/backend.hpp"

namespace spindle {

// Backend over one io_uring. Operations are SQEs whose user_data is the
// address of their Completion; watchers are POLL_ADD requests (multishot for
// edge-triggered, single-shot re-armed after each dispatch for level, single
// shot for oneshot) whose user_data is the fd and the epoch of its watch,
// tagged. SQEs are
// queued and submitted in one system call by the next wait().
//
// The ring is set up with SINGLE_ISSUER | DEFER_TASKRUN where the kernel has
// them (completions are posted only when this thread enters the kernel, which
// avoids interrupting it), and with a completion queue four times the
// submission queue. A full submission queue is submitted on the spot; a
// completion queue that overflowed (the kernel keeps the overflow, NODROP) is
// flushed and drained before wait() returns.
//
// With a sidecar (BackendOptions::sidecar), the sidecar thread makes every
// io_uring_enter: this thread publishes its SQEs, reads completions from the
// shared ring, and sleeps on a futex while the sidecar waits. The ring then
// runs without SINGLE_ISSUER, DEFER_TASKRUN and COOP_TASKRUN: completions
// are posted as they happen (task work of the sidecar, which submitted), so
// the loop sees them in memory without entering the kernel.
class UringBackend final : public Backend {
 public:
  explicit UringBackend(const BackendOptions& options);
  ~UringBackend() override;

  BackendKind kind() const noexcept override { return BackendKind::io_uring; }
  void watch(int fd, std::uint32_t events, WatchMode mode) override;
  void unwatch(int fd) noexcept override;
  void rearm(int fd) override;
  void poll_once(int fd, PollWait* wait) override;
  void cancel_poll(int fd, PollWait* wait) noexcept override;
  // Asks the kernel to cancel the operation whose completion is `c`
  // (IORING_OP_ASYNC_CANCEL). Its completion still arrives, with -ECANCELED
  // or, if it finished first, its result: the caller must wait for it.
  void cancel(Completion* c) noexcept;
  int wait(std::int64_t timeout_ns, ReadinessSink& sink) override;
  void wake() noexcept override;
  bool busy() const noexcept override { return in_flight_ != 0 || watched_ != 0; }
  std::uint64_t sidecar_calls() const noexcept override { return sidecar_ ? sidecar_->calls() : 0; }
  bool has_sidecar() const noexcept override { return sidecar_ != nullptr; }
  detail::FdRecords& records() noexcept override { return fds_; }

  // An SQE whose completion will be delivered to `c`; never null (submits
  // when the queue is full). Throws std::system_error if submitting fails.
  io_uring_sqe* prepare(Completion* c);
  // An SQE whose completion is ignored (cancel requests, poll removals).
  io_uring_sqe* prepare_untracked();
  // Makes room for `n` SQEs in a row (submitting what is queued if needed),
  // so that a linked chain is never split by a submission. False if the
  // queue is smaller than `n`.
  bool reserve(unsigned n);
  io_uring& ring() noexcept { return ring_; }
  unsigned setup_flags() const noexcept { return setup_flags_; }
  // IORING_FEAT_* bits the kernel reported at setup.
  unsigned features() const noexcept { return ring_.features; }
  // Whether the ring runs with a submission-queue polling thread, and if
  // one was asked for but refused, why (empty otherwise).
  bool sqpoll() const noexcept { return (setup_flags_ & IORING_SETUP_SQPOLL) != 0; }
  const char* sqpoll_refused() const noexcept { return sqpoll_refused_; }
  // Slots of the sparse registered-file table (0: none was set up).
  unsigned registered_files() const noexcept { return registered_files_; }

  // Counters for metrics: SQEs prepared, CQEs reaped, system calls that
  // submitted or waited, and of those the ones that blocked for CQEs.
  struct Counters {
    std::uint64_t sqes = 0;
    std::uint64_t cqes = 0;
    std::uint64_t enters = 0;
    std::uint64_t cqe_waits = 0;
  };
  const Counters& counters() const noexcept { return counters_; }
  // Tracked operations whose completion has not been delivered yet.
  std::size_t in_flight() const noexcept { return in_flight_; }

 private:
  using FdState = detail::FdRecord;

  io_uring_sqe* get_sqe();
  // Submits what is queued now (a full queue): here, or by the sidecar.
  void submit_now();
  // Makes the SQEs prepared so far visible to the kernel (the sidecar's
  // io_uring_enter submits up to the published tail).
  void publish_submissions() noexcept;
  // The sidecar's call: one io_uring_enter that submits what is published
  // and, unless timeout_ns is 0, waits for a completion.
  static int sidecar_enter(void* self, std::int64_t timeout_ns) noexcept;
  void arm_waker();
  // Queues the poll request of the watch on `fd` (single or multishot).
  void arm(int fd, FdState& st, bool multishot);
  void dispatch(std::uint64_t user_data, std::int32_t res, std::uint32_t flags,
                ReadinessSink& sink);
  int drain(ReadinessSink& sink);
  void prefetch_records() noexcept;

  io_uring ring_{};
  unsigned setup_flags_ = 0;
  const char* sqpoll_refused_ = "";
  unsigned registered_files_ = 0;
  Counters counters_;
  int eventfd_ = -1;
  std::atomic<bool> wake_pending_{false};
  std::size_t in_flight_ = 0;  // tracked completions not yet delivered
  std::size_t watched_ = 0;
  detail::FdRecords fds_;
  std::unique_ptr<detail::Sidecar> sidecar_;  // stopped first by the destructor
};

}  // namespace spindle
