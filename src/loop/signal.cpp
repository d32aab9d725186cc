// Loop::signal: a signalfd per loop, fanned out to its subscribers.
#include "spindle/loop/signal.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "loop/signal_set.hpp"
#include "loop/unique_fd.hpp"

namespace spindle {

namespace detail {

namespace {

// Per thread (the signal mask is per thread): how many loops of this thread
// subscribe to each signal, and whether it was blocked before the first did,
// so that the last one restores exactly what it found.
struct ThreadSignals {
  int users[_NSIG] = {};
  bool was_blocked[_NSIG] = {};
};
thread_local ThreadSignals t_signals;

std::string describe(int signo) {
  std::string s = "signal " + std::to_string(signo);
  if (signo > 0 && signo < _NSIG) {
    if (const char* abbrev = ::sigabbrev_np(signo)) s += std::string(" (SIG") + abbrev + ")";
  }
  return s;
}

void check_signo(int signo) {
  const char* why = nullptr;
  if (signo <= 0 || signo >= _NSIG) {
    why = ": no such signal";
  } else if (signo == SIGKILL || signo == SIGSTOP) {
    why = ": cannot be caught or blocked";
  } else if (signo > SIGSYS && signo < SIGRTMIN) {
    why = ": reserved by the C library";
  }
  if (why != nullptr)
    throw std::system_error(EINVAL, std::system_category(), describe(signo) + why);
}

void acquire_block(int signo) noexcept {
  ThreadSignals& t = t_signals;
  if (t.users[signo]++ > 0) return;
  sigset_t set, old;
  ::sigemptyset(&set);
  ::sigaddset(&set, signo);
  ::pthread_sigmask(SIG_BLOCK, &set, &old);
  t.was_blocked[signo] = ::sigismember(&old, signo) == 1;
}

void release_block(int signo) noexcept {
  ThreadSignals& t = t_signals;
  if (t.users[signo] == 0 || --t.users[signo] > 0 || t.was_blocked[signo]) return;
  sigset_t set;
  ::sigemptyset(&set);
  ::sigaddset(&set, signo);
  // Deliveries still pending were meant for the subscribers that are gone:
  // discard them rather than let the unblocking deliver them the old way
  // (by default, for most signals, killing the process).
  timespec zero{};
  while (::sigtimedwait(&set, nullptr, &zero) > 0) {
  }
  ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

}  // namespace

class SignalSet {
 public:
  explicit SignalSet(Loop& loop) : loop_(loop) { ::sigemptyset(&mask_); }
  ~SignalSet();
  SignalSet(const SignalSet&) = delete;
  SignalSet& operator=(const SignalSet&) = delete;

  SignalSubscription add(int signo, std::function<void(const SignalEvent&)> fn);
  void remove(std::uint32_t slot, std::uint32_t generation) noexcept;
  bool active(std::uint32_t slot, std::uint32_t generation) const noexcept {
    return slot < subs_.size() && subs_[slot]->live && subs_[slot]->generation == generation;
  }
  // Reads the signalfd now and delivers what it holds; true if anything.
  bool deliver_pending() noexcept;

 private:
  struct Subscriber {
    int signo = 0;
    std::uint32_t generation = 0;
    bool live = false;
    bool zombie = false;  // removed during a delivery: freed by compact()
    std::function<void(const SignalEvent&)> fn;
  };

  void on_readable() noexcept;
  void deliver(const SignalEvent& event) noexcept;
  void set_fd_mask() noexcept;
  void compact() noexcept;

  Loop& loop_;
  UniqueFd fd_;
  sigset_t mask_;  // the signals that have subscribers
  std::vector<std::unique_ptr<Subscriber>> subs_;
  std::vector<std::uint32_t> free_;
  std::vector<std::uint32_t> by_signal_[_NSIG];  // subscription order
  int count_[_NSIG] = {};
  int signals_in_use_ = 0;
  int delivering_ = 0;
  bool dirty_ = false;
  Watcher watcher_;
};

SignalSet::~SignalSet() {
  for (int signo = 1; signo < _NSIG; ++signo) {
    if (count_[signo] > 0) release_block(signo);
  }
  watcher_.unwatch();
}

void SignalSet::set_fd_mask() noexcept {
  // Changing the mask of a signalfd we own cannot fail.
  ::signalfd(fd_.get(), &mask_, 0);
}

SignalSubscription SignalSet::add(int signo, std::function<void(const SignalEvent&)> fn) {
  check_signo(signo);
  if (!fn) {
    throw std::system_error(EINVAL, std::system_category(),
                            describe(signo) + ": the callback is empty");
  }
  // Everything that can fail comes before anything that changes state.
  if (!fd_) {
    sigset_t none;
    ::sigemptyset(&none);
    int fd = ::signalfd(-1, &none, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0) throw std::system_error(errno, std::system_category(), "signalfd");
    fd_.reset(fd);
  }
  by_signal_[signo].reserve(by_signal_[signo].size() + 1);
  free_.reserve(subs_.size() + 1);
  std::uint32_t slot;
  if (free_.empty()) {
    subs_.push_back(std::make_unique<Subscriber>());
    slot = static_cast<std::uint32_t>(subs_.size() - 1);
  } else {
    slot = free_.back();
    free_.pop_back();
  }
  if (!watcher_.active()) {
    try {
      watcher_ = loop_.watch(fd_.get(), {.read = [this](Watcher&) { on_readable(); }});
    } catch (...) {
      free_.push_back(slot);
      throw;
    }
  }
  if (count_[signo]++ == 0) {
    ++signals_in_use_;
    acquire_block(signo);
    ::sigaddset(&mask_, signo);
    set_fd_mask();
  }
  Subscriber& sub = *subs_[slot];
  sub.signo = signo;
  sub.live = true;
  sub.zombie = false;
  sub.fn = std::move(fn);
  by_signal_[signo].push_back(slot);
  return SignalSubscription(this, signo, slot, sub.generation);
}

void SignalSet::remove(std::uint32_t slot, std::uint32_t generation) noexcept {
  if (!active(slot, generation)) return;
  Subscriber& sub = *subs_[slot];
  int signo = sub.signo;
  sub.live = false;
  sub.generation++;
  if (delivering_ > 0) {
    // Its callback may be the one running: free it after the delivery.
    sub.zombie = true;
    dirty_ = true;
  } else {
    std::erase(by_signal_[signo], slot);
    sub.fn = nullptr;
    free_.push_back(slot);  // reserved by add()
  }
  if (--count_[signo] == 0) {
    ::sigdelset(&mask_, signo);
    set_fd_mask();
    release_block(signo);
    if (--signals_in_use_ == 0) watcher_.unwatch();  // the loop may end; the fd stays open
  }
}

void SignalSet::compact() noexcept {
  dirty_ = false;
  for (std::uint32_t slot = 0; slot < subs_.size(); ++slot) {
    Subscriber& sub = *subs_[slot];
    if (!sub.zombie) continue;
    sub.zombie = false;
    std::erase(by_signal_[sub.signo], slot);
    sub.fn = nullptr;
    free_.push_back(slot);
  }
}

void SignalSet::deliver(const SignalEvent& event) noexcept {
  std::vector<std::uint32_t>& list = by_signal_[event.signo];
  // Subscribers added by a callback wait for the next delivery.
  const std::size_t n = list.size();
  for (std::size_t i = 0; i < n; ++i) {
    Subscriber& sub = *subs_[list[i]];
    if (sub.live) sub.fn(event);
  }
}

void SignalSet::on_readable() noexcept {
  deliver_pending();
}

bool SignalSet::deliver_pending() noexcept {
  if (signals_in_use_ == 0) return false;
  // Read everything pending, then deliver one call per signal and
  // subscriber, in the order the signals first arrived.
  signalfd_siginfo infos[16];
  std::uint32_t counts[_NSIG] = {};
  SignalEvent last[_NSIG];
  int order[_NSIG];
  int signals = 0;
  for (int reads = 0; reads < 64; ++reads) {
    ssize_t n = ::read(fd_.get(), infos, sizeof(infos));
    if (n <= 0) break;
    auto got = static_cast<std::size_t>(n) / sizeof(signalfd_siginfo);
    for (std::size_t i = 0; i < got; ++i) {
      int signo = static_cast<int>(infos[i].ssi_signo);
      if (signo <= 0 || signo >= _NSIG) continue;
      if (counts[signo]++ == 0) order[signals++] = signo;
      last[signo].signo = signo;
      last[signo].pid = static_cast<pid_t>(infos[i].ssi_pid);
      last[signo].uid = static_cast<uid_t>(infos[i].ssi_uid);
      last[signo].code = infos[i].ssi_code;
    }
    if (got < std::size(infos)) break;
  }
  ++delivering_;
  for (int i = 0; i < signals; ++i) {
    SignalEvent& event = last[order[i]];
    event.count = counts[order[i]];
    deliver(event);
  }
  if (--delivering_ == 0 && dirty_) compact();
  return signals > 0;
}

bool deliver_pending_signals(SignalSet& set) noexcept {
  return set.deliver_pending();
}

void SignalSetDeleter::operator()(SignalSet* set) const noexcept {
  delete set;
}

}  // namespace detail

bool SignalSubscription::active() const noexcept {
  return set_ != nullptr && set_->active(slot_, generation_);
}

void SignalSubscription::remove() noexcept {
  if (set_ != nullptr) set_->remove(slot_, generation_);
}

SignalSubscription Loop::signal(int signo, std::function<void(const SignalEvent&)> fn) {
  if (!signals_) signals_.reset(new detail::SignalSet(*this));
  return signals_->add(signo, std::move(fn));
}

void block_signals(std::initializer_list<int> signals) {
  sigset_t set;
  ::sigemptyset(&set);
  for (int signo : signals) {
    detail::check_signo(signo);
    ::sigaddset(&set, signo);
  }
  if (int rc = ::pthread_sigmask(SIG_BLOCK, &set, nullptr); rc != 0) {
    throw std::system_error(rc, std::system_category(), "pthread_sigmask");
  }
}

}  // namespace spindle
