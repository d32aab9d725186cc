#include "spindle/context/overflow.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace spindle::context {

namespace {

std::atomic<OverflowLookup> g_lookup{nullptr};
struct sigaction g_previous_segv;
struct sigaction g_previous_bus;

// Async-signal-safe text assembly: no stdio, no allocation.
class SignalSafeText {
 public:
  void add(const char* s) noexcept {
    while (*s != '\0' && len_ < sizeof(buf_)) buf_[len_++] = *s++;
  }
  void add_decimal(std::uint64_t v) noexcept {
    char digits[24];
    int n = 0;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (n > 0 && len_ < sizeof(buf_)) buf_[len_++] = digits[--n];
  }
  void add_hex(std::uintptr_t v) noexcept {
    add("0x");
    char digits[20];
    int n = 0;
    do {
      digits[n++] = "0123456789abcdef"[v & 0xF];
      v >>= 4;
    } while (v != 0);
    while (n > 0 && len_ < sizeof(buf_)) buf_[len_++] = digits[--n];
  }
  void write_to(int fd) const noexcept {
    std::size_t off = 0;
    while (off < len_) {
      ssize_t w = ::write(fd, buf_ + off, len_ - off);
      if (w <= 0) return;
      off += static_cast<std::size_t>(w);
    }
  }

 private:
  char buf_[512];
  std::size_t len_ = 0;
};

void forward_to_previous(int signo, siginfo_t* info, void* uctx) {
  const struct sigaction& prev = signo == SIGBUS ? g_previous_bus : g_previous_segv;
  if ((prev.sa_flags & SA_SIGINFO) != 0 && prev.sa_sigaction != nullptr) {
    prev.sa_sigaction(signo, info, uctx);
    return;
  }
  if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN && prev.sa_handler != nullptr) {
    prev.sa_handler(signo);
    return;
  }
  // Default action: restore it and return; the faulting instruction runs
  // again and the kernel delivers the signal with its default meaning.
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  ::sigaction(signo, &dfl, nullptr);
}

void on_fault(int signo, siginfo_t* info, void* uctx) {
  OverflowLookup lookup = g_lookup.load(std::memory_order_acquire);
  OverflowReport report;
  if (lookup != nullptr && lookup(info->si_addr, report)) {
    SignalSafeText text;
    text.add("spindle: fiber ");
    text.add_decimal(report.fiber_id);
    text.add(" \"");
    text.add(report.fiber_name != nullptr ? report.fiber_name : "");
    text.add("\" overflowed its stack of ");
    text.add_decimal(report.stack_size / 1024);
    text.add(" KiB (fault at ");
    text.add_hex(reinterpret_cast<std::uintptr_t>(info->si_addr));
    text.add(")\n");
    text.write_to(STDERR_FILENO);
    std::abort();
  }
  forward_to_previous(signo, info, uctx);
}

}  // namespace

void install_overflow_handler(OverflowLookup lookup) {
  static std::once_flag once;
  g_lookup.store(lookup, std::memory_order_release);
  std::call_once(once, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGSEGV, &sa, &g_previous_segv);
    ::sigaction(SIGBUS, &sa, &g_previous_bus);
  });
}

void ensure_alternate_signal_stack() {
  // One per thread, kept until the thread ends (the kernel may still be
  // using it while the thread lives).
  struct AltStack {
    void* memory = nullptr;
    std::size_t size = 0;
    ~AltStack() {
      if (memory == nullptr) return;
      stack_t disable;
      std::memset(&disable, 0, sizeof(disable));
      disable.ss_flags = SS_DISABLE;
      ::sigaltstack(&disable, nullptr);
      ::munmap(memory, size);
    }
  };
  thread_local AltStack alt;
  if (alt.memory != nullptr) return;
  stack_t current;
  if (::sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE) == 0) return;
  long min = ::sysconf(_SC_SIGSTKSZ);
  std::size_t size = 64 * 1024;
  if (min > 0 && static_cast<std::size_t>(min) > size) size = static_cast<std::size_t>(min);
  void* mem = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return;  // no report on overflow, but nothing else breaks
  stack_t ss;
  std::memset(&ss, 0, sizeof(ss));
  ss.ss_sp = mem;
  ss.ss_size = size;
  if (::sigaltstack(&ss, nullptr) != 0) {
    ::munmap(mem, size);
    return;
  }
  alt.memory = mem;
  alt.size = size;
}

}  // namespace spindle::context
