// The blocking-work pool: run blocking or CPU-heavy calls on OS threads
// while only the calling fiber waits.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <stop_token>
#include <type_traits>
#include <utility>

#include "spindle/fiber/cancel.hpp"
#include "spindle/io/result.hpp"

namespace spindle {

// How the process-wide blocking pool behaves. The pool is shared by every
// runtime in the process; its threads start on demand and end after
// `idle_timeout` without work.
struct BlockingPoolOptions {
  // Most threads running jobs at once; 0: the CPU count (at least 4, since
  // pool jobs usually block rather than compute).
  unsigned max_threads = 0;
  // Most jobs waiting for a thread. Beyond it, `when_full` applies.
  std::size_t queue_limit = 4096;
  enum class WhenFull : std::uint8_t {
    wait,  // the caller's fiber waits for room (FIFO); nothing fails
    fail,  // blocking() throws std::system_error(EAGAIN, "spindle::blocking: queue full")
  };
  WhenFull when_full = WhenFull::wait;
  std::chrono::milliseconds idle_timeout{5000};
};

// Replaces the pool's options; jobs already admitted are not affected.
// Thread-safe.
void configure_blocking_pool(const BlockingPoolOptions& options);
BlockingPoolOptions blocking_pool_options();

// What the pool is doing (a snapshot; thread-safe).
struct BlockingPoolStats {
  unsigned threads = 0;  // alive (running a job or idle)
  unsigned idle = 0;
  std::size_t queued = 0;            // admitted, waiting for a thread
  std::size_t waiting_for_room = 0;  // not admitted yet (WhenFull::wait)
  std::size_t running = 0;
  std::uint64_t completed = 0;
  std::uint64_t dropped = 0;   // cancelled before they started
  std::uint64_t rejected = 0;  // WhenFull::fail
};
BlockingPoolStats blocking_pool_stats();

namespace detail {

struct FiberControl;

// One job of the pool, embedded in the waiting fiber's frame (no
// allocation). run() executes on a pool thread; stop(), if set, is called on
// the fiber's thread when the fiber is cancelled while run() is executing
// (to make it return early); it must be thread-safe against run().
struct BlockingJob {
  void (*run)(BlockingJob* self) noexcept = nullptr;
  void (*stop)(BlockingJob* self) noexcept = nullptr;
  // Pool bookkeeping.
  BlockingJob* next = nullptr;
  BlockingJob* prev = nullptr;
  FiberControl* fiber = nullptr;
  std::uint8_t state = 0;
};

// Queues `job` and parks the calling fiber until the job has run (true) or,
// cancelled before a thread took it, was dropped (false). A job that started
// always runs to the end before this returns, whatever cancellation
// arrives meanwhile. Throws std::logic_error outside a fiber,
// std::system_error(EAGAIN) when the queue is full under WhenFull::fail.
// Never throws Cancelled: the caller decides.
bool run_blocking(BlockingJob& job);

// Throws Cancelled if the calling fiber has a cancellation pending (the
// job was dropped for it).
void blocking_checkpoint();

template <class T>
struct Outcome {
  std::optional<T> value;
  std::exception_ptr error;
  T get() {
    if (error) std::rethrow_exception(error);
    return std::move(*value);
  }
};
template <>
struct Outcome<void> {
  std::exception_ptr error;
  void get() {
    if (error) std::rethrow_exception(error);
  }
};

template <class F>
struct FnJob : BlockingJob {
  using T = std::conditional_t<std::is_invocable_v<F&, std::stop_token>,
                               std::invoke_result<F&, std::stop_token>, std::invoke_result<F&>>;
  using R = typename T::type;
  static constexpr bool kStoppable = std::is_invocable_v<F&, std::stop_token>;

  F* fn;
  Outcome<R> outcome;
  std::unique_ptr<std::stop_source> source;

  explicit FnJob(F& f) : fn(&f) {
    if constexpr (kStoppable) {
      source = std::make_unique<std::stop_source>();
      stop = [](BlockingJob* j) noexcept { static_cast<FnJob*>(j)->source->request_stop(); };
    }
    run = [](BlockingJob* j) noexcept {
      auto* self = static_cast<FnJob*>(j);
      try {
        if constexpr (kStoppable) {
          if constexpr (std::is_void_v<R>) {
            (*self->fn)(self->source->get_token());
          } else {
            self->outcome.value.emplace((*self->fn)(self->source->get_token()));
          }
        } else {
          if constexpr (std::is_void_v<R>) {
            (*self->fn)();
          } else {
            self->outcome.value.emplace((*self->fn)());
          }
        }
      } catch (...) {
        self->outcome.error = std::current_exception();
      }
    };
  }
};

template <class F>
auto blocking_now(F& fn) {
  FnJob<F> job(fn);
  if (!run_blocking(job)) blocking_checkpoint();
  return job.outcome.get();
}

}  // namespace detail

// Runs fn() on a thread of the blocking pool and suspends only the calling
// fiber until it returns; returns what fn returned or rethrows what it threw.
// For blocking library calls and CPU-heavy work that would otherwise stall
// every fiber of the worker. fn may take a std::stop_token, which is
// stopped when the fiber is cancelled (or the deadline passes) while fn runs.
//
// Cancellation (and the deadline) cannot preempt a running fn:
// - if fn has not started yet, it is dropped and never runs; blocking()
//   throws spindle::Cancelled (spindle::TimedOut at the deadline);
// - if fn is running, its stop_token is stopped, and the fiber waits for fn
//   to return. Then, as for every io operation, the result of work that
//   completed is reported: blocking() returns fn's value (or rethrows its
//   exception), and the cancellation applies at the fiber's next suspension
//   point. So fn never outlives the frame that called blocking(): it may
//   refer to the caller's locals.
// Throws std::logic_error outside a fiber; std::system_error(EAGAIN) if the
// pool's queue is full and its policy is WhenFull::fail.
template <class F>
auto blocking(F&& fn, Deadline deadline = {}) {
  auto& f = fn;
  if (!deadline) return detail::blocking_now(f);
  detail::CancelScope scope(false, deadline.ns());
  try {
    return detail::blocking_now(f);
  } catch (const Cancelled& c) {
    if (!scope.owns(c)) throw;
  }
  throw TimedOut();
}

}  // namespace spindle
