#include "spindle/loop/loop.hpp"

#include <fcntl.h>
#include <sys/epoll.h>

#include <ctime>
#include <system_error>

#include "loop/fd_record.hpp"
#include "loop/fd_table.hpp"
#include "loop/signal_set.hpp"

namespace spindle {

struct Loop::TimerRecord {
  TimerNode node;  // first: fire_record casts back
  std::uint32_t generation = 0;
  std::uint32_t slot = 0;
  // every(): > 0 makes the timer repeat; firing n is due at origin + n * interval.
  std::int64_t interval_ns = 0;
  std::function<void()> fn;
  Loop* loop = nullptr;
  std::function<void(std::uint64_t)> tick;
};

Loop::Loop(BackendKind kind, const BackendOptions& options) {
  BackendKind chosen = choose_backend(kind, &backend_reason_);
  backend_ = make_backend(chosen, options);
  records_ = &backend_->records();
  // Room for the timers of a busy program up front (8 KiB), so the heap's
  // array rarely grows while fibers sleep and time out.
  timers_.reserve(1024);
}

Loop::~Loop() {
  // The Linux descriptors unwatch their fds first; then the callbacks go
  // while the loop is whole (they live in the backend's records, which
  // outlive the rest of the loop).
  processes_.reset();
  signals_.reset();
  replacement_.reset();
  records_->for_each([](int, detail::FdRecord& record) {
    record.read = nullptr;
    record.write = nullptr;
    record.error = nullptr;
  });
}

std::int64_t Loop::now_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// --- watchers ---------------------------------------------------------------

void* Watcher::data() const noexcept {
  if (loop_ == nullptr) return nullptr;
  detail::FdRecord* record = loop_->live_record(fd_, generation_);
  return record != nullptr ? record->data : nullptr;
}

bool Watcher::active() const noexcept {
  return loop_ != nullptr && loop_->live_record(fd_, generation_) != nullptr;
}

void Watcher::unwatch() noexcept {
  if (active()) loop_->unwatch(fd_);
}

void Watcher::rearm() {
  if (active()) loop_->rearm(fd_);
}

Watcher Watcher::modify(WatchOptions options) {
  if (!active()) {
    throw std::system_error(ENOENT, std::system_category(),
                            "modify fd " + std::to_string(fd_) + ": the watcher is gone");
  }
  return loop_->modify(fd_, std::move(options));
}

detail::FdRecord* Loop::live_record(int fd, std::uint32_t generation) const noexcept {
  detail::FdRecord* record = records_->find(fd);
  if (record == nullptr || !record->has_watcher || record->generation != generation) return nullptr;
  return record;
}

void Loop::retire(detail::FdRecord& record) noexcept {
  record.has_watcher = false;
  ++record.generation;
  record.data = nullptr;
  if (&record == dispatching_) {
    // Its callback is running: its callbacks go once the dispatch returns.
    dispatching_retired_ = true;
    replacement_.reset();
  } else {
    record.read = nullptr;
    record.write = nullptr;
    record.error = nullptr;
  }
}

void Loop::install(detail::FdRecord& record, WatchOptions&& options) noexcept {
  record.read = std::move(options.read);
  record.write = std::move(options.write);
  record.error = std::move(options.error);
}

Watcher Loop::watch(int fd, WatchOptions options) {
  if (fd < 0) {
    throw std::system_error(EBADF, std::system_category(), "watch fd " + std::to_string(fd));
  }
  if (::fcntl(fd, F_GETFD) < 0) {
    // io_uring would take it and report an error event later: refuse it
    // now, the same on both backends.
    throw std::system_error(errno, std::system_category(), "watch fd " + std::to_string(fd));
  }
  std::uint32_t events = 0;
  if (options.read) events |= EPOLLIN | EPOLLRDHUP;
  if (options.write) events |= EPOLLOUT;
  WatchMode mode = options.oneshot          ? WatchMode::oneshot
                   : options.edge_triggered ? WatchMode::edge
                                            : WatchMode::level;
  detail::FdRecord& record = records_->at(fd);
  // Replacing the watcher whose callback runs: its callbacks stay put until
  // it returns, the new ones wait beside them (allocated before anything
  // changes, so a failure leaves the old watcher as it was).
  std::unique_ptr<WatchOptions> pending;
  if (&record == dispatching_) pending = std::make_unique<WatchOptions>(std::move(options));
  if (record.has_watcher) retire(record);
  backend_->watch(fd, events, mode);  // throws: the old watcher is gone, no new one
  record.has_watcher = true;
  record.data = pending ? pending->data : options.data;
  if (pending) {
    replacement_ = std::move(pending);
  } else {
    install(record, std::move(options));
  }
  return Watcher(this, fd, record.generation);
}

Watcher Loop::modify(int fd, WatchOptions options) {
  detail::FdRecord* record = records_->find(fd);
  if (record == nullptr || !record->has_watcher) {
    throw std::system_error(ENOENT, std::system_category(),
                            "modify fd " + std::to_string(fd) + ": not watched");
  }
  // watch() replaces with a fresh generation: the contract of a replacement.
  return watch(fd, std::move(options));
}

void Loop::unwatch(int fd) noexcept {
  detail::FdRecord* record = records_->find(fd);
  if (record == nullptr || !record->has_watcher) return;
  backend_->unwatch(fd);
  retire(*record);
}

void Loop::rearm(int fd) {
  detail::FdRecord* record = records_->find(fd);
  if (record == nullptr || !record->has_watcher) return;
  backend_->rearm(fd);
}

void Loop::on_ready(detail::FdRecord& record, int fd, std::uint32_t events) noexcept {
  if (!record.has_watcher) return;
  dispatching_ = &record;
  dispatching_retired_ = false;
  Watcher handle(this, fd, record.generation);
  ++stats_.events_dispatched;

  // Each callback may unwatch (or replace) this very watcher: then stop.
  auto call = [&](const std::function<void(Watcher&)>& cb) {
    if (!cb || dispatching_retired_) return;
    cb(handle);
  };
  bool read = (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) != 0;
  bool write = (events & EPOLLOUT) != 0;
  if ((events & EPOLLERR) != 0) {
    if (record.error) {
      call(record.error);
      read = write = false;
    } else {
      read = write = true;
    }
  }
  if (read) call(record.read);
  if (write) call(record.write);

  dispatching_ = nullptr;
  if (dispatching_retired_) {
    dispatching_retired_ = false;
    if (replacement_) {
      install(record, std::move(*replacement_));
      replacement_.reset();
    } else {
      record.read = nullptr;
      record.write = nullptr;
      record.error = nullptr;
    }
  }
}

// --- timers -----------------------------------------------------------------

void Loop::fire_record(TimerNode* node) noexcept {
  auto* record = reinterpret_cast<TimerRecord*>(node);
  if (record->interval_ns > 0) {
    fire_repeating(*record);
    return;
  }
  Loop* loop = record->loop;
  std::function<void()> fn = std::move(record->fn);
  record->fn = nullptr;
  record->generation++;
  loop->free_timer_records_.push_back(record->slot);  // capacity reserved in after()
  fn();
}

void Loop::fire_repeating(TimerRecord& record) noexcept {
  // Put it back on the grid first, at the first due time after now: a late
  // firing is one call that reports the periods it skipped. The heap has room
  // (the node just left it), so this allocates nothing; the node's new
  // sequence keeps it out of this turn.
  Loop* loop = record.loop;
  std::int64_t due = record.node.deadline_ns;
  std::int64_t now = now_ns();
  std::uint64_t missed = 0;
  if (now > due) missed = static_cast<std::uint64_t>((now - due) / record.interval_ns);
  record.node.deadline_ns = due + static_cast<std::int64_t>(missed + 1) * record.interval_ns;
  loop->timers_.push(&record.node);
  // The callback may cancel or reschedule its own timer (the record may even
  // be reused by a timer it sets): it runs from a local copy, given back only
  // if the timer is still this one.
  std::uint32_t generation = record.generation;
  std::function<void(std::uint64_t)> tick = std::move(record.tick);
  record.tick = nullptr;
  tick(missed);
  if (record.generation == generation) record.tick = std::move(tick);
}

namespace {
constexpr std::uint32_t kTimerChunk = 256;
}

void Loop::add_timer_records() {
  // A chunk at a time: records sit side by side, and setting a timer
  // allocates once per kTimerChunk new slots at most.
  auto chunk = std::make_unique<TimerRecord[]>(kTimerChunk);
  free_timer_records_.reserve(timer_records_ + kTimerChunk);  // fire/cancel never allocate
  timer_chunks_.push_back(std::move(chunk));
  TimerRecord* records = timer_chunks_.back().get();
  for (std::uint32_t i = 0; i < kTimerChunk; ++i) {
    records[i].loop = this;
    records[i].slot = timer_records_ + i;
    records[i].node.fire = &Loop::fire_record;
  }
  // Lowest slot on top: used first.
  for (std::uint32_t i = kTimerChunk; i-- > 0;) free_timer_records_.push_back(timer_records_ + i);
  timer_records_ += kTimerChunk;
}

inline Loop::TimerRecord& Loop::acquire_timer_record() {
  if (free_timer_records_.empty()) add_timer_records();
  std::uint32_t slot = free_timer_records_.back();
  return timer_chunks_[slot / kTimerChunk][slot % kTimerChunk];
}

Loop::TimerRecord* Loop::timer_record(Timer timer) const noexcept {
  if (timer.slot_ >= timer_records_) return nullptr;
  TimerRecord& record = timer_chunks_[timer.slot_ / kTimerChunk][timer.slot_ % kTimerChunk];
  if (record.generation != timer.generation_ || !record.node.queued()) return nullptr;
  return &record;
}

Timer Loop::set_once(std::int64_t deadline_ns, std::function<void()>&& fn) {
  TimerRecord& record = acquire_timer_record();
  record.node.deadline_ns = deadline_ns;
  timers_.push(&record.node);  // may throw (allocation): the record stays free
  free_timer_records_.pop_back();
  record.fn = std::move(fn);
  return Timer(record.slot, record.generation);
}

Timer Loop::at(std::chrono::steady_clock::time_point deadline, std::function<void()> fn) {
  return set_once(
      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count(),
      std::move(fn));
}

Timer Loop::every(std::chrono::nanoseconds interval, std::function<void(std::uint64_t)> fn) {
  if (interval.count() <= 0) {
    throw std::system_error(
        EINVAL, std::system_category(),
        "every: the interval must be positive, not " + std::to_string(interval.count()) + " ns");
  }
  TimerRecord& record = acquire_timer_record();
  record.node.deadline_ns = now_ns() + interval.count();
  record.interval_ns = interval.count();
  timers_.push(&record.node);  // may throw (allocation): the record stays free
  free_timer_records_.pop_back();
  record.tick = std::move(fn);
  return Timer(record.slot, record.generation);
}

bool Loop::reschedule(Timer timer, std::chrono::steady_clock::time_point deadline) noexcept {
  TimerRecord* found = timer_record(timer);
  if (found == nullptr) return false;
  TimerRecord& record = *found;
  timers_.remove(&record.node);
  record.node.deadline_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
  timers_.push(&record.node);  // the node just left the heap: no allocation, no throw
  return true;
}

std::optional<std::chrono::steady_clock::time_point> Loop::due(Timer timer) const noexcept {
  const TimerRecord* record = timer_record(timer);
  if (record == nullptr) return std::nullopt;
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(record->node.deadline_ns));
}

bool Loop::reschedule(Timer timer, std::chrono::nanoseconds delay) noexcept {
  if (delay.count() < 0) delay = std::chrono::nanoseconds(0);
  return reschedule(
      timer, std::chrono::steady_clock::time_point(std::chrono::nanoseconds(now_ns()) + delay));
}

Timer Loop::after(std::chrono::nanoseconds delay, std::function<void()> fn) {
  return set_once(now_ns() + (delay.count() < 0 ? 0 : delay.count()), std::move(fn));
}

bool Loop::cancel(Timer timer) noexcept {
  TimerRecord* found = timer_record(timer);
  if (found == nullptr) return false;
  TimerRecord& record = *found;
  timers_.remove(&record.node);
  if (record.interval_ns > 0) {
    record.tick = nullptr;  // empty while its own callback runs (fire_repeating)
    record.interval_ns = 0;
  } else {
    record.fn = nullptr;
  }
  record.generation++;
  free_timer_records_.push_back(record.slot);
  return true;
}

// --- turns ------------------------------------------------------------------

int Loop::turn(std::int64_t max_wait_ns) {
  ++stats_.turns;
  std::int64_t timeout = max_wait_ns;
  if (stop_requested_.load(std::memory_order_relaxed)) timeout = 0;
  std::int64_t now = 0;
  if (TimerNode* next = timers_.top(); next != nullptr && timeout != 0) {
    now = now_ns();
    std::int64_t until = next->deadline_ns - now;
    if (until < 0) until = 0;
    if (timeout < 0 || until < timeout) timeout = until;
  }
  int ran = 0;
  if (timeout != 0 && signals_ != nullptr && backend_->has_sidecar() &&
      detail::deliver_pending_signals(*signals_)) {
    // The sidecar waits on its own thread, whose view of the signalfd has
    // the signals sent to the process but not those sent to this thread
    // (raise, pthread_kill): those are taken here before a wait.
    ++ran;
    timeout = 0;
  }
  if (timeout != 0) {
    std::int64_t before = now != 0 ? now : now_ns();
    ran += backend_->wait(timeout, *this);
    stats_.time_in_wait += std::chrono::nanoseconds(now_ns() - before);
  } else {
    ran += backend_->wait(0, *this);
  }
  if (!timers_.empty()) {
    now = now_ns();
    // Timers set by the callbacks below wait for a later turn.
    std::uint64_t limit = timers_.next_sequence();
    while (TimerNode* next = timers_.top()) {
      if (next->deadline_ns > now || next->sequence >= limit) break;
      timers_.remove(next);
      ++stats_.timers_fired;
      ++ran;
      next->fire(next);
    }
  }
  return ran;
}

bool Loop::run_once(std::optional<std::chrono::nanoseconds> timeout) {
  if (stop_requested_.exchange(false)) return false;
  running_ = true;
  turn(timeout ? timeout->count() : -1);
  running_ = false;
  return !stop_requested_.load();
}

void Loop::run() {
  running_ = true;
  while (!stop_requested_.load() && has_work()) turn(-1);
  stop_requested_.store(false);
  running_ = false;
}

void Loop::run_for(std::chrono::nanoseconds duration) {
  std::int64_t end = now_ns() + duration.count();
  running_ = true;
  for (;;) {
    std::int64_t left = end - now_ns();
    if (left <= 0 || stop_requested_.load()) break;
    turn(left);
  }
  stop_requested_.store(false);
  running_ = false;
}

void Loop::stop() noexcept {
  stop_requested_.store(true);
  backend_->wake();
}

}  // namespace spindle
