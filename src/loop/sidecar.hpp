// A helper thread that makes a backend's kernel calls for the loop's thread
// (BackendOptions::sidecar; docs/loop.md, "Sidecar").
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

namespace spindle::detail {

// The loop's thread hands the helper one call at a time: `run` sleeps on a
// futex until the call returns (the loop then never blocks in the kernel
// itself), `post` asks for a non-blocking call and goes on. Only the loop's
// thread may call run and post; calls() may be read from any thread.
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
  // result; the caller sleeps on a futex meanwhile.
  int run(std::int64_t timeout_ns) noexcept;
  // Asks the helper for a call with timeout 0 soon, without waiting for it.
  // Does nothing if a call is pending or running already: the caller checks
  // again later whether everything it needed was taken.
  void post() noexcept;
  // Calls the helper made so far.
  std::uint64_t calls() const noexcept { return calls_.load(std::memory_order_relaxed); }

 private:
  enum Request : std::uint32_t { kIdle, kPosted, kRun, kStop };

  void main() noexcept;

  Call call_;
  void* target_;
  // The handshake word both threads sleep on (never at the same time: the
  // one that changes it wakes the other).
  std::atomic<std::uint32_t> request_{kIdle};
  std::int64_t timeout_ns_ = 0;  // of a kRun request; published by request_
  int result_ = 0;               // of a kRun request; published by request_
  std::atomic<std::uint64_t> calls_{0};
  std::thread thread_;
};

}  // namespace spindle::detail
