// The blocking-work pool: a process-wide set of OS threads fed by an
// intrusive FIFO of jobs that live in the waiting fibers' frames.
#include "spindle/io/blocking.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "fiber/scheduler.hpp"

namespace spindle {

namespace detail {

namespace {

enum JobState : std::uint8_t { kNew, kWaitingRoom, kQueued, kRunning, kDone, kDropped };

struct JobList {
  BlockingJob* head = nullptr;
  BlockingJob* tail = nullptr;
  std::size_t size = 0;

  void push_back(BlockingJob* j) noexcept {
    j->next = nullptr;
    j->prev = tail;
    if (tail != nullptr) {
      tail->next = j;
    } else {
      head = j;
    }
    tail = j;
    ++size;
  }
  void remove(BlockingJob* j) noexcept {
    if (j->prev != nullptr) {
      j->prev->next = j->next;
    } else {
      head = j->next;
    }
    if (j->next != nullptr) {
      j->next->prev = j->prev;
    } else {
      tail = j->prev;
    }
    j->next = j->prev = nullptr;
    --size;
  }
  BlockingJob* pop_front() noexcept {
    BlockingJob* j = head;
    if (j != nullptr) remove(j);
    return j;
  }
};

unsigned default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return std::max(4u, n);
}

class Pool {
 public:
  // Admits `job` or throws; the caller then parks.
  void submit(BlockingJob* job) {
    std::unique_lock lock(mu_);
    if (queue_.size >= options_.queue_limit) {
      if (options_.when_full == BlockingPoolOptions::WhenFull::fail) {
        ++rejected_;
        throw std::system_error(EAGAIN, std::system_category(),
                                "spindle::blocking: queue full (" +
                                    std::to_string(options_.queue_limit) + " jobs waiting)");
      }
      job->state = kWaitingRoom;
      room_.push_back(job);
      return;
    }
    job->state = kQueued;
    queue_.push_back(job);
    wake_or_spawn(lock);
  }

  // The waiting fiber is being cancelled (on its own thread). Returns true
  // if the job was dropped (the caller schedules the fiber); otherwise the
  // job is running or done, and the pool's post will wake the fiber.
  bool cancel(BlockingJob* job) noexcept {
    std::unique_lock lock(mu_);
    switch (job->state) {
      case kWaitingRoom:
        room_.remove(job);
        break;
      case kQueued:
        queue_.remove(job);
        admit_from_room();
        break;
      case kRunning: {
        auto stop = job->stop;
        lock.unlock();
        if (stop != nullptr) stop(job);
        return false;
      }
      default:
        return false;
    }
    job->state = kDropped;
    ++dropped_;
    return true;
  }

  std::uint8_t state_of(const BlockingJob* job) noexcept {
    std::lock_guard lock(mu_);
    return job->state;
  }

  void configure(const BlockingPoolOptions& options) {
    std::lock_guard lock(mu_);
    options_ = options;
    if (options_.max_threads == 0) options_.max_threads = default_threads();
    if (options_.queue_limit == 0) options_.queue_limit = 1;
    while (room_.size != 0 && queue_.size < options_.queue_limit) admit_from_room();
    cv_.notify_all();  // idle threads beyond a smaller max_threads leave
  }

  BlockingPoolOptions options() {
    std::lock_guard lock(mu_);
    return options_;
  }

  BlockingPoolStats stats() {
    std::lock_guard lock(mu_);
    BlockingPoolStats s;
    s.threads = threads_;
    s.idle = idle_;
    s.queued = queue_.size;
    s.waiting_for_room = room_.size;
    s.running = running_;
    s.completed = completed_;
    s.dropped = dropped_;
    s.rejected = rejected_;
    return s;
  }

 private:
  // A job entered the queue: wake an idle thread, or start one.
  void wake_or_spawn(std::unique_lock<std::mutex>& lock) {
    if (idle_ > wakes_pending_) {
      ++wakes_pending_;
      cv_.notify_one();
      return;
    }
    if (threads_ >= options_.max_threads) return;  // a busy thread takes it next
    ++threads_;
    try {
      std::thread(&Pool::worker, this).detach();
    } catch (...) {
      --threads_;
      if (threads_ == 0) {
        // Nobody would ever run it: take the job back out and fail.
        BlockingJob* job = queue_.tail;
        queue_.remove(job);
        job->state = kNew;
        lock.unlock();
        throw;
      }
    }
  }

  void admit_from_room() noexcept {
    if (room_.size == 0 || queue_.size >= options_.queue_limit) return;
    BlockingJob* j = room_.pop_front();
    j->state = kQueued;
    queue_.push_back(j);
    if (idle_ > wakes_pending_) {
      ++wakes_pending_;
      cv_.notify_one();
    }
  }

  static void block_signals() noexcept {
    // Pool threads take no asynchronous signals: those belong to the
    // runtimes (signalfd) or to the application's own threads.
    sigset_t all;
    sigfillset(&all);
    for (int sync : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS}) {
      sigdelset(&all, sync);
    }
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
  }

  void worker() noexcept {
    block_signals();
    std::unique_lock lock(mu_);
    for (;;) {
      if (threads_ > options_.max_threads) {  // the pool was made smaller
        --threads_;
        return;
      }
      while (queue_.size == 0) {
        ++idle_;
        bool timed_out = cv_.wait_for(lock, options_.idle_timeout) == std::cv_status::timeout;
        --idle_;
        if (wakes_pending_ != 0) --wakes_pending_;
        if ((queue_.size == 0 && timed_out) || threads_ > options_.max_threads) {
          --threads_;
          return;
        }
      }
      BlockingJob* job = queue_.pop_front();
      job->state = kRunning;
      ++running_;
      admit_from_room();
      lock.unlock();
      job->run(job);
      lock.lock();
      job->state = kDone;
      --running_;
      ++completed_;
      // Only this post wakes the fiber (its cancellation leaves a running
      // job alone), so the job's frame stays valid until here.
      FiberControl* fiber = job->fiber;
      lock.unlock();
      Scheduler::post(fiber, Scheduler::kRemoteWake);
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  JobList queue_;
  JobList room_;
  BlockingPoolOptions options_{.max_threads = default_threads()};
  unsigned threads_ = 0;
  unsigned idle_ = 0;
  unsigned wakes_pending_ = 0;  // notified idle threads that have not woken yet
  std::size_t running_ = 0;
  std::uint64_t completed_ = 0;
  std::uint64_t dropped_ = 0;
  std::uint64_t rejected_ = 0;
};

// Never destroyed: detached pool threads may still wait on it at exit.
Pool& pool() {
  static Pool* p = new Pool;
  return *p;
}

}  // namespace

bool run_blocking(BlockingJob& job) {
  Scheduler& s = Scheduler::require("blocking");
  FiberControl* f = s.running();
  if (f == nullptr) throw std::logic_error("spindle::blocking called outside a fiber");
  job.fiber = f;
  job.state = kNew;
  pool().submit(&job);
  struct Hook : WaitHook {
    BlockingJob* job;
    Scheduler* sched;
  } hook;
  hook.job = &job;
  hook.sched = &s;
  hook.interrupt = [](WaitHook* h) noexcept {
    auto* self = static_cast<Hook*>(h);
    if (pool().cancel(self->job)) self->sched->schedule(self->job->fiber);
  };
  s.park_interruptible(WaitKind::sync, &hook);
  return pool().state_of(&job) == kDone;
}

void blocking_checkpoint() {
  Scheduler* s = Scheduler::current();
  FiberControl* f = s != nullptr ? s->running() : nullptr;
  if (f != nullptr) Scheduler::checkpoint(f);
  throw Cancelled();  // dropped, but nothing pending: cannot happen
}

}  // namespace detail

void configure_blocking_pool(const BlockingPoolOptions& options) {
  detail::pool().configure(options);
}

BlockingPoolOptions blocking_pool_options() {
  return detail::pool().options();
}

BlockingPoolStats blocking_pool_stats() {
  return detail::pool().stats();
}

}  // namespace spindle
