// Loop::child_exit: a pidfd watched for readability, then waitid(P_PIDFD).
#include "spindle/loop/child.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

#include "loop/exit_status.hpp"
#include "loop/pidfd.hpp"
#include "loop/unique_fd.hpp"

namespace spindle {

namespace detail {

bool read_exit_status(int pidfd, pid_t pid, bool reap, ExitStatus& status) noexcept {
  siginfo_t info{};
  int options = WEXITED | WNOHANG | (reap ? 0 : WNOWAIT);
  int rc;
  do {
    rc = ::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, options);
  } while (rc < 0 && errno == EINTR);
  status = ExitStatus{};
  status.pid = pid;
  if (rc < 0) {
    // ECHILD: not our child, or someone reaped it first. The pidfd said it
    // exited; how is not ours to know.
    status.known = false;
    return true;
  }
  if (info.si_pid == 0) return false;  // still running
  switch (info.si_code) {
    case CLD_EXITED:
      status.exited = true;
      status.code = info.si_status;
      break;
    case CLD_DUMPED:
      status.core_dumped = true;
      status.term_signal = info.si_status;
      break;
    default:  // CLD_KILLED
      status.term_signal = info.si_status;
      break;
  }
  return true;
}

}  // namespace detail

std::string ExitStatus::describe() const {
  if (error) return "did not start: " + error.message();
  std::string s;
  if (!known) {
    s = "exited (status unknown: not a child of this process, or reaped elsewhere)";
  } else if (exited) {
    s = "exited with code " + std::to_string(code);
  } else {
    s = "killed by signal " + std::to_string(term_signal);
    if (const char* abbrev = ::sigabbrev_np(term_signal)) s += std::string(" (SIG") + abbrev + ")";
    if (core_dumped) s += ", core dumped";
  }
  if (timed_out) s += " after its timeout";
  return s;
}

ChildWatch Loop::child_exit(pid_t pid, std::function<void(const ExitStatus&)> fn) {
  return child_exit(pid, std::move(fn), ChildExitOptions{});
}

ChildWatch Loop::child_exit(pid_t pid, std::function<void(const ExitStatus&)> fn,
                            const ChildExitOptions& options) {
  std::string what = "pidfd_open pid " + std::to_string(pid);
  if (pid <= 0) throw std::system_error(EINVAL, std::system_category(), what);
  if (!fn)
    throw std::system_error(EINVAL, std::system_category(), what + ": the callback is empty");
  int raw = detail::pidfd_open(pid);  // always O_CLOEXEC
  if (raw < 0) throw std::system_error(errno, std::system_category(), what);
  detail::UniqueFd pidfd(raw);
  // The watcher owns the pidfd: it is closed when the watch ends, whether
  // by the exit, cancel(), or the loop's end.
  struct State {
    detail::UniqueFd pidfd;
    pid_t pid;
    bool reap;
    std::function<void(const ExitStatus&)> fn;
  };
  auto state = std::make_shared<State>(State{std::move(pidfd), pid, options.reap, std::move(fn)});
  Watcher w =
      watch(raw, {.read = [state](Watcher& self) {
              ExitStatus status;
              if (!detail::read_exit_status(state->pidfd.get(), state->pid, state->reap, status)) {
                return;  // not yet (cannot happen once the pidfd is readable)
              }
              // Over before the callback runs: active() is false
              // in it, and cancel() does nothing.
              self.unwatch();
              state->fn(status);
            }});
  return ChildWatch(w, pid);
}

}  // namespace spindle
