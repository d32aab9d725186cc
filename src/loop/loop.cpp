#include "spindle/loop/loop.hpp"

#include <fcntl.h>
#include <sys/epoll.h>

#include <ctime>
#include <system_error>

#include "loop/fd_table.hpp"

namespace spindle {

namespace {

// Tokens carry the fd and a 30-bit generation (the io_uring backend keeps two
// tag bits of the 64).
constexpr std::uint32_t kGenerationMask = (1u << 30) - 1;

std::uint64_t make_token(int fd, std::uint32_t generation) noexcept {
  return static_cast<std::uint32_t>(fd) | (std::uint64_t{generation & kGenerationMask} << 32);
}

}  // namespace

struct Loop::WatcherSlot {
  std::uint32_t generation = 0;
  std::unique_ptr<WatchOptions> options;  // null: not watched
};

struct Loop::TimerRecord {
  TimerNode node;  // first: fire_record casts back
  Loop* loop = nullptr;
  std::uint32_t slot = 0;
  std::uint32_t generation = 0;
  std::function<void()> fn;
  // every(): > 0 makes the timer repeat; firing n is due at origin + n * interval.
  std::int64_t interval_ns = 0;
  std::function<void(std::uint64_t)> tick;
};

Loop::Loop(BackendKind kind, const BackendOptions& options)
    : watchers_(std::make_unique<detail::FdTable<WatcherSlot>>()) {
  BackendKind chosen = choose_backend(kind, &backend_reason_);
  backend_ = make_backend(chosen, options);
  // Room for the timers of a busy program up front (8 KiB), so the heap's
  // array rarely grows while fibers sleep and time out.
  timers_.reserve(1024);
}

Loop::~Loop() = default;

std::int64_t Loop::now_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// --- watchers ---------------------------------------------------------------

void* Watcher::data() const noexcept {
  if (loop_ == nullptr) return nullptr;
  Loop::WatcherSlot* slot = loop_->live_slot(fd_, generation_);
  return slot != nullptr ? slot->options->data : nullptr;
}

bool Watcher::active() const noexcept {
  return loop_ != nullptr && loop_->live_slot(fd_, generation_) != nullptr;
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

Loop::WatcherSlot* Loop::live_slot(int fd, std::uint32_t generation) const noexcept {
  WatcherSlot* slot = watchers_->find(fd);
  if (slot == nullptr || !slot->options || slot->generation != generation) return nullptr;
  return slot;
}

void Loop::retire(WatcherSlot& slot) noexcept {
  if (slot.options.get() == dispatching_) {
    // Its callback is running: free it once the dispatch returns.
    dispatching_retired_ = true;
    (void)slot.options.release();
  } else {
    slot.options.reset();
  }
  slot.generation = (slot.generation + 1) & kGenerationMask;
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
  WatcherSlot& slot = watchers_->at(fd);
  auto fresh = std::make_unique<WatchOptions>(std::move(options));
  if (slot.options) retire(slot);
  std::uint32_t generation = slot.generation;
  backend_->watch(fd, events, mode, make_token(fd, generation));  // throws: nothing changed yet
  slot.options = std::move(fresh);
  return Watcher(this, fd, generation);
}

Watcher Loop::modify(int fd, WatchOptions options) {
  WatcherSlot* slot = watchers_->find(fd);
  if (slot == nullptr || !slot->options) {
    throw std::system_error(ENOENT, std::system_category(),
                            "modify fd " + std::to_string(fd) + ": not watched");
  }
  // watch() replaces with a fresh generation: the contract of a replacement.
  return watch(fd, std::move(options));
}

void Loop::unwatch(int fd) noexcept {
  WatcherSlot* slot = watchers_->find(fd);
  if (slot == nullptr || !slot->options) return;
  backend_->unwatch(fd);
  retire(*slot);
}

void Loop::rearm(int fd) {
  WatcherSlot* slot = watchers_->find(fd);
  if (slot == nullptr || !slot->options) return;
  backend_->rearm(fd);
}

void Loop::on_ready(std::uint64_t token, std::uint32_t events) noexcept {
  int fd = static_cast<int>(static_cast<std::uint32_t>(token));
  auto generation = static_cast<std::uint32_t>(token >> 32);
  WatcherSlot* slot = live_slot(fd, generation);
  if (slot == nullptr) return;  // stale: unwatched or replaced since it was fetched
  const WatchOptions* options = slot->options.get();
  dispatching_ = options;
  dispatching_retired_ = false;
  Watcher handle(this, fd, generation);
  ++stats_.events_dispatched;

  // Each callback may unwatch (or replace) this very watcher: then stop.
  auto call = [&](const std::function<void(Watcher&)>& cb) {
    if (!cb || dispatching_retired_ || live_slot(fd, generation) == nullptr) return;
    cb(handle);
  };
  bool read = (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) != 0;
  bool write = (events & EPOLLOUT) != 0;
  if ((events & EPOLLERR) != 0) {
    if (options->error) {
      call(options->error);
      read = write = false;
    } else {
      read = write = true;
    }
  }
  if (read) call(options->read);
  if (write) call(options->write);

  dispatching_ = nullptr;
  if (dispatching_retired_) {
    delete options;
    dispatching_retired_ = false;
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

Loop::TimerRecord& Loop::acquire_timer_record() {
  if (free_timer_records_.empty()) {
    auto record = std::make_unique<TimerRecord>();
    record->loop = this;
    record->slot = static_cast<std::uint32_t>(timer_records_.size());
    record->node.fire = &Loop::fire_record;
    timer_records_.push_back(std::move(record));
    free_timer_records_.reserve(timer_records_.size());
    free_timer_records_.push_back(timer_records_.back()->slot);
  }
  return *timer_records_[free_timer_records_.back()];
}

Timer Loop::at(std::chrono::steady_clock::time_point deadline, std::function<void()> fn) {
  TimerRecord& record = acquire_timer_record();
  record.node.deadline_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
  record.interval_ns = 0;
  timers_.push(&record.node);  // may throw (allocation): the record stays free
  free_timer_records_.pop_back();
  record.fn = std::move(fn);
  return Timer(record.slot, record.generation);
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
  if (timer.slot_ >= timer_records_.size()) return false;
  TimerRecord& record = *timer_records_[timer.slot_];
  if (record.generation != timer.generation_ || !record.node.queued()) return false;
  timers_.remove(&record.node);
  record.node.deadline_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
  timers_.push(&record.node);  // the node just left the heap: no allocation, no throw
  return true;
}

std::optional<std::chrono::steady_clock::time_point> Loop::due(Timer timer) const noexcept {
  if (timer.slot_ >= timer_records_.size()) return std::nullopt;
  const TimerRecord& record = *timer_records_[timer.slot_];
  if (record.generation != timer.generation_ || !record.node.queued()) return std::nullopt;
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(record.node.deadline_ns));
}

bool Loop::reschedule(Timer timer, std::chrono::nanoseconds delay) noexcept {
  if (delay.count() < 0) delay = std::chrono::nanoseconds(0);
  return reschedule(
      timer, std::chrono::steady_clock::time_point(std::chrono::nanoseconds(now_ns()) + delay));
}

Timer Loop::after(std::chrono::nanoseconds delay, std::function<void()> fn) {
  if (delay.count() < 0) delay = std::chrono::nanoseconds(0);
  return at(std::chrono::steady_clock::time_point(std::chrono::nanoseconds(now_ns()) + delay),
            std::move(fn));
}

bool Loop::cancel(Timer timer) noexcept {
  if (timer.slot_ >= timer_records_.size()) return false;
  TimerRecord& record = *timer_records_[timer.slot_];
  if (record.generation != timer.generation_ || !record.node.queued()) return false;
  timers_.remove(&record.node);
  record.fn = nullptr;
  record.tick = nullptr;  // empty while its own callback runs (fire_repeating)
  record.interval_ns = 0;
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
  int ran;
  if (timeout != 0) {
    std::int64_t before = now != 0 ? now : now_ns();
    ran = backend_->wait(timeout, *this);
    stats_.time_in_wait += std::chrono::nanoseconds(now_ns() - before);
  } else {
    ran = backend_->wait(0, *this);
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
