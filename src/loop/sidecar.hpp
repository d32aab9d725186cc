// A helper thread that makes a backend's kernel calls for the loop's thread
// (BackendOptions::sidecar; docs/loop.md, "Sidecar").
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

namespace spindle::detail {

// The loop's thread hands the helper one call at a time: `run` waits until
// the call returns (the loop then never blocks in the kernel itself), `post`
// asks for a non-blocking call and goes on. Only the loop's thread may call
// run and post; calls() may be read from any thread.
//
// Each side that waits for the other (the loop in `run`, the helper for its
// next request) first spins, then marks the handshake word "sleeping" and
// sleeps on it as a futex; the side that changes the word makes the
// FUTEX_WAKE system call only if that mark is there. A call that returns
// within the spin (a NOP, a submission) and a request that comes soon after
// the previous one thus cost no futex call and no thread wake-up. The spin
// is bounded in time (kMaxSpinNs) and adapts: each spin in vain halves that
// side's next one (down to kMinSpinNs), and one that sees the change
// restores it. So a side that keeps sleeping (long waits, or the other
// side waiting for this very CPU on a busy machine) stops burning CPU first.
//
// The helper thread blocks every signal, so that process-directed signals
// (and those a signalfd expects to stay pending) never land on it.
class Sidecar {
 public:
  // What the helper runs: submit what is queued and, unless `timeout_ns` is
  // 0, wait at most that long (< 0: no limit) for something to happen.
  // Returns 0 or -errno; the caller decides which errors are benign (as it
  // does for the same call made on its own thread).
  using Call = int (*)(void* target, std::int64_t timeout_ns) noexcept;

  // Starts the helper thread. Throws std::system_error if it cannot.
  Sidecar(Call call, void* target);
  // Stops and joins the helper. Must not race with run or post.
  ~Sidecar();
  Sidecar(const Sidecar&) = delete;
  Sidecar& operator=(const Sidecar&) = delete;

  // Makes the call with `timeout_ns` on the helper thread and returns its
  // result; the caller spins, then sleeps on a futex meanwhile.
  int run(std::int64_t timeout_ns) noexcept;
  // Asks the helper for a call with timeout 0 soon, without waiting for it.
  // Does nothing if a call is pending or running already: the caller checks
  // again later whether everything it needed was taken.
  void post() noexcept;
  // Calls the helper made so far.
  std::uint64_t calls() const noexcept { return calls_.load(std::memory_order_relaxed); }

 private:
  // The state of the handshake word, and kSleeping: its waiter sleeps on
  // the futex and needs a wake (else it still spins, or is busy).
  enum : std::uint32_t { kIdle, kPosted, kRun, kStop, kSleeping = 4 };
  // The longest spin before a sleep: a few times what a hand-off takes,
  // under what a futex sleep and wake-up of an idle CPU take (tens of
  // microseconds on a VM).
  static constexpr std::int64_t kMaxSpinNs = 20'000;
  // The shortest: enough to see a running other side's change.
  static constexpr std::int64_t kMinSpinNs = 1'000;

  void main() noexcept;
  // Waits while the word's state is `state`, spinning for at most
  // `spin_ns` first (which it adapts); returns the new word (which may
  // carry the other side's kSleeping mark).
  std::uint32_t await_change(std::uint32_t state, std::int64_t& spin_ns) noexcept;
  // Sets the word to `state` and wakes the other side if it sleeps.
  void hand_over(std::uint32_t state) noexcept;

  Call call_;
  void* target_;
  // The handshake word both threads wait on (never at the same time: the
  // one that changes it wakes the other if it sleeps).
  std::atomic<std::uint32_t> request_{kIdle};
  std::int64_t timeout_ns_ = 0;  // of a kRun request; published by request_
  int result_ = 0;               // of a kRun request; published by request_
  std::atomic<std::uint64_t> calls_{0};
  std::int64_t run_spin_ns_ = kMaxSpinNs;   // the loop's thread's, in run
  std::int64_t idle_spin_ns_ = kMaxSpinNs;  // the helper's, between requests
  std::thread thread_;
};

}  // namespace spindle::detail
