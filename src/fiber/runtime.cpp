#include "spindle/fiber/runtime.hpp"

#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fiber/scheduler.hpp"
#include "fiber/workers.hpp"
#include "spindle/loop/signal.hpp"

namespace spindle {

namespace detail {

namespace {

unsigned resolve_worker_count(unsigned requested) {
  unsigned n = requested;
  if (n == 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    n = ::sched_getaffinity(0, sizeof(set), &set) == 0 ? static_cast<unsigned>(CPU_COUNT(&set))
                                                       : std::thread::hardware_concurrency();
    if (n == 0) n = 1;
    if (n > Workers::kMaxWorkers) n = Workers::kMaxWorkers;
  }
  if (n > Workers::kMaxWorkers) {
    throw std::invalid_argument("spindle::run: Options::workers = " + std::to_string(requested) +
                                " (at most " + std::to_string(Workers::kMaxWorkers) + ")");
  }
  return n;
}

// Worker threads leave asynchronous signals to the thread that called
// run() (signalfd subscriptions live on its loop, and a signal delivered to
// a worker would take its default action).
void block_async_signals() noexcept {
  sigset_t set;
  ::sigfillset(&set);
  for (int keep : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT}) {
    ::sigdelset(&set, keep);
  }
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

}  // namespace

// Workers 1 .. N-1: each constructs, runs and destroys its scheduler on its
// own thread (the scheduler is that thread's tls_scheduler).
struct Runtime::Threads {
  std::unique_ptr<Workers> workers;
  std::vector<std::thread> threads;
  std::mutex mutex;
  std::condition_variable changed;
  unsigned constructed = 0;  // workers whose scheduler exists (or failed to)
  std::exception_ptr construct_error;
  bool go = false;          // all constructed: run
  bool abort = false;       // construction failed: leave
  unsigned loops_done = 0;  // workers whose run loop returned
  bool release = false;     // schedulers may be destroyed

  void worker_main(const Options& options, unsigned index) {
    block_async_signals();
    Scheduler* s = nullptr;
    try {
      s = new Scheduler(options, workers.get(), index);
    } catch (...) {
      std::lock_guard lock(mutex);
      if (!construct_error) construct_error = std::current_exception();
      ++constructed;
      changed.notify_all();
      return;
    }
    {
      std::unique_lock lock(mutex);
      workers->set(index, s);
      ++constructed;
      changed.notify_all();
      changed.wait(lock, [&] { return go || abort; });
      if (abort) {
        lock.unlock();
        delete s;
        return;
      }
    }
    try {
      s->run_until_done();
    } catch (...) {
      workers->fail(std::current_exception());
    }
    {
      std::unique_lock lock(mutex);
      ++loops_done;
      changed.notify_all();
      changed.wait(lock, [&] { return release; });
    }
    delete s;
  }

  // Stops the other workers' loops and waits for them.
  void wait_loops() {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return loops_done == threads.size(); });
  }

  void join_all() {
    {
      std::lock_guard lock(mutex);
      release = true;
      abort = !go;
      changed.notify_all();
    }
    for (auto& t : threads) t.join();
  }
};

Runtime::Runtime(const Options& options) {
  unsigned n = resolve_worker_count(options.workers);
  if (n == 1) {
    scheduler_ = new Scheduler(options);
    return;
  }
  auto threads = std::make_unique<Threads>();
  threads->workers = std::make_unique<Workers>(n);
  auto* s0 = new Scheduler(options, threads->workers.get(), 0);
  threads->workers->set(0, s0);
  try {
    for (unsigned i = 1; i < n; ++i) {
      threads->threads.emplace_back(
          [t = threads.get(), options, i] { t->worker_main(options, i); });
    }
  } catch (...) {
    threads->join_all();
    delete s0;
    throw;
  }
  {
    std::unique_lock lock(threads->mutex);
    threads->changed.wait(lock, [&] { return threads->constructed == n - 1; });
  }
  if (threads->construct_error) {
    std::exception_ptr error = threads->construct_error;
    threads->join_all();
    delete s0;
    std::rethrow_exception(error);
  }
  {
    std::lock_guard lock(threads->mutex);
    threads->go = true;
    threads->changed.notify_all();
  }
  scheduler_ = s0;
  threads_ = threads.release();
}

Runtime::~Runtime() {
  if (threads_ != nullptr) {
    // run() may have failed before the fibers were done: stop the others.
    threads_->workers->fail(nullptr);
    threads_->wait_loops();
    threads_->join_all();
  }
  delete static_cast<Scheduler*>(scheduler_);
  delete threads_;
}

void Runtime::run_until_done() {
  auto* s = static_cast<Scheduler*>(scheduler_);
  if (threads_ == nullptr) {
    s->run_until_done();
    return;
  }
  try {
    s->run_until_done();
  } catch (...) {
    threads_->workers->fail(std::current_exception());
  }
  threads_->wait_loops();
  if (std::exception_ptr e = threads_->workers->failure()) std::rethrow_exception(e);
}

void Runtime::rethrow_unhandled() {
  static_cast<Scheduler*>(scheduler_)->rethrow_unhandled();
  if (threads_ == nullptr) return;
  // The other workers' loops are done (run_until_done waited for them).
  for (unsigned i = 1; i < threads_->workers->count(); ++i) {
    if (std::exception_ptr e = threads_->workers->at(i)->take_unhandled()) {
      std::rethrow_exception(e);
    }
  }
}

void Runtime::handle_shutdown_signals(const FiberRef& main, std::chrono::nanoseconds grace) {
  auto* s = static_cast<Scheduler*>(scheduler_);
  FiberControl* f = control_of(main);
  unsigned* received = &shutdown_signals_;  // shared by both subscriptions
  auto on_signal = [s, f, grace, received](const SignalEvent& event) {
    *received += event.count;
    if (f->state.load(std::memory_order_relaxed) == FiberState::done) return;
    if (*received == 1) {
      s->shutdown(f, grace);
    } else {
      s->cancel_local(f);
    }
  };
  // The subscriptions end with the loop, after the main fiber.
  s->loop().signal(SIGINT, on_signal);
  s->loop().signal(SIGTERM, on_signal);
}

}  // namespace detail

Metrics metrics() {
  return detail::Scheduler::require("metrics").metrics();
}

Loop& current_loop() {
  return detail::Scheduler::require("current_loop").loop();
}

unsigned current_worker() {
  return detail::Scheduler::require("current_worker").index();
}

unsigned worker_count() {
  return detail::Scheduler::require("worker_count").worker_count();
}

void migrate_to(unsigned worker) {
  detail::Scheduler::require("migrate_to").migrate_running(worker);
}

}  // namespace spindle
