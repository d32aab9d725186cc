// The exit of a process as a loop event, through a pidfd (Loop::child_exit).
#pragma once

#include <sys/types.h>

#include <string>
#include <system_error>

#include "spindle/loop/loop.hpp"

namespace spindle {

// How a process ended.
struct ExitStatus {
  pid_t pid = -1;
  bool exited = false;       // it called exit() or returned from main: see code
  int code = -1;             // the exit code, if exited
  int term_signal = 0;       // the signal that killed it, if it was killed
  bool core_dumped = false;  // ... and it dumped core
  // False when the status could not be had: the process is not a child of
  // this process, or someone else reaped it first (waitid said ECHILD). Its
  // exit is still reported.
  bool known = true;
  bool timed_out = false;  // spawn(): the timeout sent it SIGTERM (then perhaps SIGKILL)
  // spawn(): set when the program never ran. Only for a spawn that waited in
  // the max_children queue: exec failed when its turn came, or it was
  // cancelled (ECANCELED) while it waited. A spawn that starts at once
  // reports such errors by throwing instead.
  std::error_code error;

  bool success() const noexcept { return known && exited && code == 0 && !error; }
  // "exited with code 3", "killed by signal 9 (SIGKILL)", ...
  std::string describe() const;
};

struct ChildExitOptions {
  // true: waitid() reaps the process. false: WNOWAIT, it stays a zombie for
  // someone else to reap (its status is read all the same).
  bool reap = true;
};

// A pending Loop::child_exit. Cheap to copy; cancel() ends it without a call.
class ChildWatch {
 public:
  ChildWatch() noexcept = default;
  pid_t pid() const noexcept { return pid_; }
  // Until the callback has been called (or cancel()).
  bool active() const noexcept { return watcher_.active(); }
  // Idempotent; safe in any callback.
  void cancel() noexcept { watcher_.unwatch(); }

 private:
  friend class Loop;
  ChildWatch(Watcher watcher, pid_t pid) noexcept : watcher_(watcher), pid_(pid) {}
  Watcher watcher_;
  pid_t pid_ = -1;
};

}  // namespace spindle
