// The callback event loop: watchers and timers over a Backend.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "spindle/loop/backend.hpp"
#include "spindle/loop/timer_heap.hpp"

namespace spindle {

class Loop;
struct SignalEvent;
class SignalSubscription;
struct ExitStatus;
struct ChildExitOptions;
class ChildWatch;
class Waker;
struct SpawnOptions;
class Child;
struct WatchOptions;

namespace detail {
class SignalSet;
class ProcessTable;
// Defined with the types they delete (signal.cpp, spawn.cpp), so that
// loop.hpp needs neither.
struct SignalSetDeleter {
  void operator()(SignalSet* set) const noexcept;
};
struct ProcessTableDeleter {
  void operator()(ProcessTable* table) const noexcept;
};
}  // namespace detail

// A handle to the watcher of one descriptor. Cheap to copy; it goes stale
// (active() false, every call a no-op) once the watcher is unwatched or
// replaced, so a handle can never reach a later watcher of the same fd.
class Watcher {
 public:
  Watcher() noexcept = default;
  int fd() const noexcept { return fd_; }
  // The `data` pointer given to Loop::watch.
  void* data() const noexcept;
  bool active() const noexcept;
  // Loop::unwatch for this watcher only.
  void unwatch() noexcept;
  // Re-arms a oneshot watcher after it fired.
  void rearm();
  // Loop::modify for this watcher; returns the new handle (this one goes
  // stale). Throws std::system_error (ENOENT) if this handle is stale.
  Watcher modify(WatchOptions options);

 private:
  friend class Loop;
  Watcher(Loop* loop, int fd, std::uint32_t generation) noexcept
      : loop_(loop), fd_(fd), generation_(generation) {}
  Loop* loop_ = nullptr;
  int fd_ = -1;
  std::uint32_t generation_ = 0;
};

// What to call when a watched descriptor is ready. A callback that is empty
// means no interest in that condition (no read callback: EPOLLIN is not
// asked for).
struct WatchOptions {
  std::function<void(Watcher&)> read;
  std::function<void(Watcher&)> write;
  std::function<void(Watcher&)> error;
  bool edge_triggered = false;  // the callback must drain until EAGAIN
  bool oneshot = false;         // disarmed after one dispatch; Watcher::rearm
  void* data = nullptr;
};

// A handle to a timer set with Loop::after / Loop::at.
class Timer {
 public:
  Timer() noexcept = default;

 private:
  friend class Loop;
  Timer(std::uint32_t slot, std::uint32_t generation) noexcept
      : slot_(slot), generation_(generation) {}
  std::uint32_t slot_ = 0;
  std::uint32_t generation_ = 0;
};

// Counters of a loop, for metrics.
struct LoopStats {
  std::uint64_t turns = 0;
  std::uint64_t events_dispatched = 0;
  std::uint64_t timers_fired = 0;
  std::chrono::nanoseconds time_in_wait{0};
};

// An event loop: readiness watchers and timers over one Backend, driven by
// the thread that calls run()/run_once(). Only stop() and wake-ups through
// the backend may come from other threads.
//
// The watcher contract (docs/loop.md): one watcher per fd (watching again
// replaces it); for each event: ERR -> the error callback if set, and
// nothing else; without one, ERR counts as read + write. HUP -> read.
// IN -> read. OUT -> write. Order: error, read, write. The loop never closes
// a descriptor and never unwatches on its own. unwatch is idempotent; an
// event fetched for a descriptor that was unwatched (or closed and reused)
// in the same round is dropped. Dispatch allocates nothing.
class Loop : private ReadinessSink {
 public:
  explicit Loop(BackendKind kind = BackendKind::automatic, const BackendOptions& options = {});
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Watches `fd`, replacing its previous watcher. Throws std::system_error.
  Watcher watch(int fd, WatchOptions options);
  // Ends the watch of `fd`; unknown fds are ignored. Safe inside callbacks,
  // including the watcher's own (its remaining callbacks for the event are
  // then skipped).
  void unwatch(int fd) noexcept;
  // Re-arms the oneshot watcher of `fd`.
  void rearm(int fd);
  // Changes the callbacks, flags and data of the existing watcher of `fd`.
  // The watcher gets a fresh generation: old handles go stale, and an event
  // fetched for the old watcher in the same round is dropped, never given to
  // the new callbacks. Throws std::system_error (ENOENT if `fd` is not
  // watched). Safe inside callbacks, including the watcher's own (its
  // remaining old callbacks for the event are then skipped).
  Watcher modify(int fd, WatchOptions options);

  // Calls `fn` once, on a later turn, at or after the deadline (never
  // before; CLOCK_MONOTONIC, nanoseconds). Equal deadlines fire in the order
  // they were set. after(0) never runs inline.
  Timer after(std::chrono::nanoseconds delay, std::function<void()> fn);
  Timer at(std::chrono::steady_clock::time_point deadline, std::function<void()> fn);
  // Calls `fn(missed)` every `interval`, without drift: the n-th firing is
  // due at start + n * interval, where start is now. A firing that comes
  // late by whole periods is one call whose `missed` counts the periods it
  // skipped (never a burst of calls); the next one is due on the grid after
  // now. Cancel with cancel(), also from inside `fn`. Throws
  // std::system_error (EINVAL) for an interval <= 0.
  Timer every(std::chrono::nanoseconds interval, std::function<void(std::uint64_t missed)> fn);
  // Cancels a pending timer: true if it had not fired (a repeating timer is
  // pending until cancelled). Idempotent, O(log n), safe inside any callback
  // including the timer's own (then false for a one-shot timer, true for a
  // repeating one, which then stops).
  bool cancel(Timer timer) noexcept;
  // Moves a pending timer to a new deadline (`delay` counts from now); a
  // repeating timer continues on the grid deadline + n * interval. Ties
  // with the new deadline fire after timers already set for it. Returns
  // false, and does nothing, if the timer is not pending. O(log n).
  bool reschedule(Timer timer, std::chrono::steady_clock::time_point deadline) noexcept;
  bool reschedule(Timer timer, std::chrono::nanoseconds delay) noexcept;
  // When a pending timer is due next; nullopt if it is not pending.
  std::optional<std::chrono::steady_clock::time_point> due(Timer timer) const noexcept;

  // Linux descriptors (signal.hpp, child.hpp, waker.hpp, spawn.hpp): all of
  // them are watchers on descriptors the loop owns and closes itself.

  // Calls `fn` on this loop's thread when `signo` arrives, through a
  // signalfd; blocks `signo` in the calling thread (which must run the loop)
  // while any subscription to it lasts. See signal.hpp.
  SignalSubscription signal(int signo, std::function<void(const SignalEvent&)> fn);
  // Calls `fn` once when process `pid` exits (pidfd_open; waitid(P_PIDFD)
  // for the status). See child.hpp.
  ChildWatch child_exit(pid_t pid, std::function<void(const ExitStatus&)> fn);
  ChildWatch child_exit(pid_t pid, std::function<void(const ExitStatus&)> fn,
                        const ChildExitOptions& options);
  // An eventfd that any thread or process may wake(); `fn(wakes)` runs on
  // the loop's thread, once for any number of wakes since the last call.
  // See waker.hpp.
  Waker waker(std::function<void(std::uint64_t wakes)> fn);
  // Starts a child process (or queues it behind max_children). See spawn.hpp.
  Child spawn(SpawnOptions options);
  // At most `n` children started by spawn() run at once (0: no limit); the
  // others wait in a FIFO queue. Raising the limit starts queued ones.
  void set_max_children(std::size_t n);
  std::size_t max_children() const noexcept;
  std::size_t children_running() const noexcept;
  std::size_t children_queued() const noexcept;

  // Intrusive timers for layers above (no allocation): `node.fire` is
  // called from a turn once node.deadline_ns has passed.
  void add_timer(TimerNode& node) { timers_.push(&node); }
  void remove_timer(TimerNode& node) noexcept { timers_.remove(&node); }

  // Runs turns until stop() or until nothing is left to wait for.
  void run();
  // One turn: waits at most `timeout` (none: until something happens) for
  // events or the next timer, then dispatches. Returns false if stopped.
  bool run_once(std::optional<std::chrono::nanoseconds> timeout = std::nullopt);
  // Runs turns for `duration`, or until stop().
  void run_for(std::chrono::nanoseconds duration);
  // Makes run() return after the current turn; a turn that has not started
  // its wait yet does not block. Thread-safe.
  void stop() noexcept;
  bool is_running() const noexcept { return running_; }

  // The turn the fiber scheduler drives: waits at most `max_wait_ns` (< 0: no
  // limit) for events, bounded by the next timer, then dispatches events and
  // fires due timers. Returns how many callbacks it ran.
  int turn(std::int64_t max_wait_ns);
  // Whether anything (a timer, a watcher, an operation in flight) could
  // still make a turn do something.
  bool has_work() const noexcept { return !timers_.empty() || backend_->busy(); }

  Backend& backend() noexcept { return *backend_; }
  BackendKind backend_kind() const noexcept { return backend_->kind(); }
  const std::string& backend_reason() const noexcept { return backend_reason_; }
  const LoopStats& stats() const noexcept { return stats_; }
  std::size_t timers_pending() const noexcept { return timers_.size(); }

  // Now on CLOCK_MONOTONIC, in nanoseconds.
  static std::int64_t now_ns() noexcept;

 private:
  friend class Watcher;
  struct TimerRecord;

  void on_ready(detail::FdRecord& record, int fd, std::uint32_t events) noexcept override;
  detail::FdRecord* live_record(int fd, std::uint32_t generation) const noexcept;
  void retire(detail::FdRecord& record) noexcept;
  void install(detail::FdRecord& record, WatchOptions&& options) noexcept;
  static void fire_record(TimerNode* node) noexcept;

  std::unique_ptr<Backend> backend_;
  std::string backend_reason_;
  TimerHeap timers_;
  detail::FdRecords* records_ = nullptr;  // the backend's, holding the watchers
  // Timer records in chunks that never move (a Timer names one by its slot);
  // freed slots are reused last-in first-out.
  std::vector<std::unique_ptr<TimerRecord[]>> timer_chunks_;
  std::uint32_t timer_records_ = 0;  // slots created
  std::vector<std::uint32_t> free_timer_records_;
  // The record whose callback runs, and whether its watcher was retired
  // meanwhile: its callbacks are destroyed only after they return.
  detail::FdRecord* dispatching_ = nullptr;
  bool dispatching_retired_ = false;
  // A watcher that replaced the dispatching one from inside its callback:
  // installed into the record once the callback returns.
  std::unique_ptr<WatchOptions> replacement_;
  std::atomic<bool> stop_requested_{false};
  bool running_ = false;
  LoopStats stats_;
  // Last, so they go first: their destructors unwatch and close their fds.
  std::unique_ptr<detail::SignalSet, detail::SignalSetDeleter> signals_;
  std::unique_ptr<detail::ProcessTable, detail::ProcessTableDeleter> processes_;

  TimerRecord& acquire_timer_record();
  void add_timer_records();
  Timer set_once(std::int64_t deadline_ns, std::function<void()>&& fn);
  TimerRecord* timer_record(Timer timer) const noexcept;
  static void fire_repeating(TimerRecord& record) noexcept;
};

}  // namespace spindle

// The Linux descriptors' types, so that loop.hpp alone is enough to use them.
#include "spindle/loop/child.hpp"
#include "spindle/loop/signal.hpp"
#include "spindle/loop/spawn.hpp"
#include "spindle/loop/waker.hpp"
