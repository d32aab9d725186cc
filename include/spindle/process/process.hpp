// Child processes as fiber calls: spawn with stdio streams, wait, kill,
// terminate (SIGTERM, then SIGKILL after a grace period).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "spindle/io/result.hpp"
#include "spindle/loop/spawn.hpp"
#include "spindle/stream/fd_stream.hpp"

namespace spindle {

// How spawn() starts a program. in / out / err are the child's stdin,
// stdout and stderr (those names are macros in C): Stdio::pipe() gives the
// Process a stream for it (Process::in(), out(), err()); Stdio::inherit()
// (also the default), null(), file(path), fd(n) and merge() (stderr to
// wherever stdout goes) are the loop layer's Stdio.
struct ProcessOptions {
  std::string program;                          // the file to execute; empty: argv[0]
  bool search_path = true;                      // a program without '/' is looked up in PATH
  std::optional<std::vector<std::string>> env;  // "NAME=value" each; nullopt: ours
  std::string cwd;                              // empty: ours
  Stdio in, out, err;
  // Put the child in its own process group: kill() and terminate() then
  // signal the whole group.
  bool new_process_group = false;
  // Close every descriptor above 2 in the child (spindle's are all
  // O_CLOEXEC anyway).
  bool close_other_fds = false;
  // When a Process is destroyed while its child runs (the fiber owning it
  // was cancelled, an exception unwound it, nobody waited), the child gets
  // SIGTERM, then SIGKILL after this long, and is reaped.
  std::chrono::nanoseconds kill_grace = std::chrono::seconds(5);
};

// A running (or finished) child process, owned by the fiber that holds the
// object. Built on the loop layer's spawn (posix_spawn, a pidfd for the
// exit, no SIGCHLD), so the same rules hold: the child is reaped by the
// runtime, never by a SIGCHLD handler of the program. Use it in fibers of
// the runtime that spawned it. Move-only.
//
// Destroying a Process whose child still runs terminates it: SIGTERM,
// SIGKILL after kill_grace, and waits for the exit (inside a shield, so it
// also works while the owning fiber unwinds from a cancellation). detach()
// lets the child run on instead.
class Process {
 public:
  Process() noexcept = default;
  Process(Process&&) noexcept = default;
  Process& operator=(Process&& other) noexcept;
  ~Process();

  // The child's pid (-1 for an empty Process).
  pid_t pid() const noexcept;
  // The parent's end of each Stdio::pipe(): in() writes the child's stdin,
  // out() and err() read its stdout and stderr. An empty FdStream (every
  // call EBADF) for a descriptor that is not a pipe. Close in() to send
  // EOF. Writing in() after the child exited: EPIPE ("write fd N: Broken
  // pipe"). Read out() and err() while the child runs: a child whose pipe is
  // full waits for its reader, so wait() alone would never return.
  FdStream& in() noexcept { return in_; }
  FdStream& out() noexcept { return out_; }
  FdStream& err() noexcept { return err_; }

  // Waits for the child to exit and returns how it ended (the same status
  // again on later calls). A cancellation point. With a deadline that
  // passes first: spindle::TimedOut (the child runs on).
  ExitStatus wait(Deadline deadline = {});
  // The status if the child has exited, without waiting.
  std::optional<ExitStatus> try_wait() const;
  bool running() const noexcept;
  // Sends `signo` (through the pidfd: never to a reused pid; to the group
  // with new_process_group). False if the child has exited.
  bool kill(int signo = SIGTERM) noexcept;
  // SIGTERM, then SIGKILL if it has not exited after `grace`; waits for the
  // exit and returns the status. Not interrupted by a cancellation of the
  // calling fiber (it runs shielded), so the child is always reaped.
  ExitStatus terminate(std::chrono::nanoseconds grace);
  ExitStatus terminate() { return terminate(kill_grace_); }
  // The timeout helper: waits up to `timeout` for the child to exit; if it
  // has not, terminate(grace) and the status has timed_out set.
  ExitStatus wait_or_terminate(std::chrono::nanoseconds timeout, std::chrono::nanoseconds grace);
  ExitStatus wait_or_terminate(std::chrono::nanoseconds timeout) {
    return wait_or_terminate(timeout, kill_grace_);
  }
  // Lets the child outlive this object (the runtime still reaps it).
  void detach() noexcept;

 private:
  friend Process spawn(std::vector<std::string> argv, ProcessOptions options);
  struct State;
  std::shared_ptr<State> state_;
  Child child_;
  FdStream in_, out_, err_;
  std::chrono::nanoseconds kill_grace_ = std::chrono::seconds(5);
};

// Starts argv[0] (or options.program) with arguments argv on the calling
// fiber's runtime. Throws std::system_error naming the step: "spawn:
// execve nosuch: No such file or directory" (the program cannot run),
// "spawn: cwd /x: ...", "spawn: argv is empty" (EINVAL). Outside a fiber:
// std::logic_error.
Process spawn(std::vector<std::string> argv, ProcessOptions options = {});

}  // namespace spindle
