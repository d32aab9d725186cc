// Process: the loop layer's spawn with fiber-facing pipes, and its exit
// (reported by the loop through a pidfd) turned into an Event.
#include "spindle/process/process.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

#include "spindle/fiber/cancel.hpp"
#include "spindle/fiber/fiber.hpp"
#include "spindle/fiber/runtime.hpp"
#include "spindle/loop/loop.hpp"
#include "spindle/sync/event.hpp"

namespace spindle {

struct Process::State {
  Event exited{Event::Mode::manual_reset};
  ExitStatus status;
  bool done = false;
  pid_t pid = -1;
};

namespace {

// The child's end of a Stdio::pipe() becomes Stdio::fd(child end); the
// parent's end (O_NONBLOCK; the child's stays blocking, as programs expect)
// goes to `mine`. The child's end is closed by `keep` after the spawn.
Stdio pipe_for(const Stdio& requested, bool child_reads, FdStream& mine, FdStream& keep) {
  if (requested.kind() != Stdio::Kind::pipe) return requested;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::system_category(), "spawn: pipe2");
  }
  mine = FdStream(child_reads ? fds[1] : fds[0]);
  keep = FdStream(child_reads ? fds[0] : fds[1]);
  if (::fcntl(mine.fd(), F_SETFL, O_NONBLOCK) != 0) {
    throw std::system_error(errno, std::system_category(), "spawn: fcntl O_NONBLOCK");
  }
  return Stdio::fd(keep.fd());
}

}  // namespace

Process spawn(std::vector<std::string> argv, ProcessOptions options) {
  Loop& loop = current_loop();
  Process p;
  p.kill_grace_ = options.kill_grace;
  FdStream child_in, child_out, child_err;  // closed when spawn returns
  SpawnOptions so;
  so.argv = std::move(argv);
  so.program = std::move(options.program);
  so.search_path = options.search_path;
  so.env = std::move(options.env);
  so.cwd = std::move(options.cwd);
  so.in = pipe_for(options.in, true, p.in_, child_in);
  so.out = pipe_for(options.out, false, p.out_, child_out);
  so.err = pipe_for(options.err, false, p.err_, child_err);
  so.new_process_group = options.new_process_group;
  so.close_other_fds = options.close_other_fds;
  auto state = std::make_shared<Process::State>();
  so.on_exit = [state](const ExitStatus& status) {
    state->status = status;
    state->done = true;
    state->exited.set();
  };
  p.child_ = loop.spawn(std::move(so));
  state->pid = p.child_.pid();
  p.state_ = std::move(state);
  return p;
}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    // `taken` ends up with our old child, and its destructor terminates it.
    Process taken(std::move(other));
    std::swap(state_, taken.state_);
    std::swap(child_, taken.child_);
    std::swap(in_, taken.in_);
    std::swap(out_, taken.out_);
    std::swap(err_, taken.err_);
    std::swap(kill_grace_, taken.kill_grace_);
  }
  return *this;
}

Process::~Process() {
  // The pipes first: a child blocked writing to its stdout sees EPIPE.
  in_ = FdStream();
  out_ = FdStream();
  err_ = FdStream();
  if (state_ && !state_->done && in_fiber()) {
    try {
      terminate(kill_grace_);
    } catch (...) {
      // terminate runs shielded; nothing else can fail that we could report.
    }
  }
}

pid_t Process::pid() const noexcept {
  if (!state_) return -1;
  pid_t now = child_.pid();
  return now >= 0 ? now : state_->pid;
}

ExitStatus Process::wait(Deadline deadline) {
  if (!state_) throw std::system_error(ECHILD, std::system_category(), "wait: no process");
  if (!state_->done) {
    if (deadline) {
      if (!state_->exited.wait_until(deadline.time_point())) throw TimedOut();
    } else {
      state_->exited.wait();
    }
  }
  return state_->status;
}

std::optional<ExitStatus> Process::try_wait() const {
  if (!state_ || !state_->done) return std::nullopt;
  return state_->status;
}

bool Process::running() const noexcept {
  return state_ && !state_->done;
}

bool Process::kill(int signo) noexcept {
  if (!running()) return false;
  return child_.kill(signo);
}

ExitStatus Process::terminate(std::chrono::nanoseconds grace) {
  if (!state_) throw std::system_error(ECHILD, std::system_category(), "terminate: no process");
  return shield([&] {
    if (!state_->done) {
      child_.kill(SIGTERM);
      if (!state_->exited.wait_for(grace)) {
        child_.kill(SIGKILL);
        state_->exited.wait();
      }
    }
    return state_->status;
  });
}

ExitStatus Process::wait_or_terminate(std::chrono::nanoseconds timeout,
                                      std::chrono::nanoseconds grace) {
  try {
    return wait(timeout);
  } catch (const TimedOut&) {
    ExitStatus status = terminate(grace);
    status.timed_out = true;
    return status;
  }
}

void Process::detach() noexcept {
  state_.reset();
  child_ = Child();
}

}  // namespace spindle
