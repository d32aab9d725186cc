// What the workers of one multi-worker runtime share.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <vector>

#include "context/sanitizers.hpp"

namespace spindle::detail {

class Scheduler;

// The workers of a runtime with Options::workers > 1: their schedulers,
// the count of live fibers (the runtime ends when it reaches zero), and
// which workers are parked, so that new stealable work wakes one of them.
// A runtime with one worker has none of this (and pays for none of it).
class Workers {
 public:
  static constexpr unsigned kMaxWorkers = 64;  // one bit each in `idle_`

  explicit Workers(unsigned count) : schedulers_(count, nullptr) {}

  unsigned count() const noexcept { return static_cast<unsigned>(schedulers_.size()); }
  Scheduler* at(unsigned i) const noexcept { return schedulers_[i]; }
  void set(unsigned i, Scheduler* s) noexcept { schedulers_[i] = s; }

  void fiber_started() noexcept { alive_.fetch_add(1, std::memory_order_relaxed); }
  // The last fiber of the runtime is done: every worker stops.
  void fiber_done() noexcept;
  std::uint64_t alive() const noexcept { return alive_.load(std::memory_order_relaxed); }
  bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }
  // A worker failed outside any fiber (its loop threw): stop everyone and
  // let run() rethrow it.
  void fail(std::exception_ptr error) noexcept;
  std::exception_ptr failure() const noexcept { return failure_; }

  // Parking. A worker sets its bit before its last look for work; whoever
  // then makes stealable work clears one bit and wakes that worker (at
  // most one wake-up per parked worker, however much work arrives).
  void set_idle(unsigned i) noexcept { idle_.fetch_or(std::uint64_t{1} << i); }
  void clear_idle(unsigned i) noexcept {
    idle_.fetch_and(~(std::uint64_t{1} << i), std::memory_order_relaxed);
  }
  bool any_idle() const noexcept { return idle_.load(std::memory_order_relaxed) != 0; }
  // After publishing stealable work: whether some worker may be parked.
  // Ordered after the publication (a parking worker's read-modify-write
  // of the idle bits comes before its last look, or after this).
  bool idle_after_publish() noexcept {
#ifdef SPINDLE_TSAN
    return idle_.fetch_or(0) != 0;  // TSan does not model fences
#else
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return idle_.load(std::memory_order_relaxed) != 0;
#endif
  }
  // After publishing stealable work (a full fence orders it before the
  // look at the idle bits): wakes one parked worker, if any.
  void wake_one_idle() noexcept;
  // Claims a parked worker (other than `except`) for a hand-off: clears its
  // bit and returns its index, or -1.
  int claim_idle(unsigned except) noexcept;

 private:
  void wake_all() noexcept;

  std::vector<Scheduler*> schedulers_;
  alignas(64) std::atomic<std::uint64_t> alive_{0};
  alignas(64) std::atomic<std::uint64_t> idle_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> failed_{false};
  std::exception_ptr failure_;  // written once, before stopping_
};

}  // namespace spindle::detail
