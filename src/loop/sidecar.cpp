#include "loop/sidecar.hpp"

#include <pthread.h>
#include <signal.h>

#include <system_error>

#include "loop/futex.hpp"

namespace spindle::detail {

Sidecar::Sidecar(Call call, void* target) : call_(call), target_(target) {
  // Block every signal before the thread exists, so that it never has a
  // moment with the creator's mask; the creator's mask is restored after.
  sigset_t all;
  sigset_t old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    thread_ = std::thread([this] { main(); });
  } catch (...) {
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    throw;  // std::system_error from std::thread
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::pthread_setname_np(thread_.native_handle(), "spindle-sidecar");
}

Sidecar::~Sidecar() {
  request_.store(kStop, std::memory_order_release);
  futex_wake(&request_);
  thread_.join();
}

int Sidecar::run(std::int64_t timeout_ns) noexcept {
  timeout_ns_ = timeout_ns;
  // After a post, the helper is busy or about to be: it sees kRun when its
  // posted call ends. Otherwise it sleeps on the word and needs a wake.
  if (request_.exchange(kRun, std::memory_order_acq_rel) == kIdle) futex_wake(&request_);
  while (request_.load(std::memory_order_acquire) == kRun) futex_wait(&request_, kRun);
  return result_;
}

void Sidecar::post() noexcept {
  std::uint32_t expected = kIdle;
  if (request_.load(std::memory_order_relaxed) == kIdle &&
      request_.compare_exchange_strong(expected, kPosted, std::memory_order_acq_rel)) {
    futex_wake(&request_);
  }
}

void Sidecar::main() noexcept {
  for (;;) {
    std::uint32_t req = request_.load(std::memory_order_acquire);
    switch (req) {
      case kIdle:
        futex_wait(&request_, kIdle);
        break;
      case kStop:
        return;
      case kPosted: {
        call_(target_, 0);  // the loop's next run or post sees what it missed
        calls_.fetch_add(1, std::memory_order_relaxed);
        // Back to idle unless the loop upgraded the request meanwhile.
        std::uint32_t expected = kPosted;
        request_.compare_exchange_strong(expected, kIdle, std::memory_order_acq_rel);
        break;
      }
      case kRun:
        result_ = call_(target_, timeout_ns_);
        calls_.fetch_add(1, std::memory_order_relaxed);
        request_.store(kIdle, std::memory_order_release);
        futex_wake(&request_);
        break;
      default:
        return;
    }
  }
}

}  // namespace spindle::detail
