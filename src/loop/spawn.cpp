// Loop::spawn: posix_spawn, pipes watched as ordinary watchers, the exit
// through a pidfd, and a FIFO of spawns waiting for a max_children slot.
#include "spindle/loop/spawn.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "loop/exit_status.hpp"
#include "loop/pidfd.hpp"
#include "loop/unique_fd.hpp"

extern char** environ;

namespace spindle {

namespace detail {

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;

[[noreturn]] void fail(int err, const std::string& what) {
  throw std::system_error(err, std::system_category(), "spawn: " + what);
}

const char* stream_name(int target) {
  return target == 0 ? "stdin" : target == 1 ? "stdout" : "stderr";
}

// Moves `fd` to a number above 2, so that no dup2 onto 0, 1 or 2 in the
// child can clobber another source. The result is O_CLOEXEC.
void above_stdio(UniqueFd& fd, int target) {
  if (fd.get() > 2) return;
  int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) fail(errno, std::string("dup for ") + stream_name(target));
  fd.reset(moved);
}

// A write(2) that cannot raise SIGPIPE: unless SIGPIPE is ignored, it is
// blocked around the write, and one the write raised is consumed (only if
// none was pending before, which would be someone else's).
ssize_t write_no_sigpipe(int fd, const char* data, std::size_t size, bool sigpipe_ignored) {
  if (sigpipe_ignored) return ::write(fd, data, size);
  sigset_t pipe_set, pending, old;
  ::sigemptyset(&pipe_set);
  ::sigaddset(&pipe_set, SIGPIPE);
  ::sigpending(&pending);
  bool was_pending = ::sigismember(&pending, SIGPIPE) == 1;
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  ssize_t n = ::write(fd, data, size);
  int err = errno;
  if (n < 0 && err == EPIPE && !was_pending) {
    timespec zero{};
    ::sigtimedwait(&pipe_set, nullptr, &zero);
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = err;
  return n;
}

bool sigpipe_is_ignored() {
  struct sigaction current {};
  return ::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_IGN;
}

bool is_executable_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  if (!S_ISREG(st.st_mode)) {
    errno = EACCES;
    return false;
  }
  return ::access(path.c_str(), X_OK) == 0;
}

// RAII for the posix_spawn structures.
struct FileActions {
  posix_spawn_file_actions_t fa;
  FileActions() {
    if (int rc = ::posix_spawn_file_actions_init(&fa); rc != 0)
      fail(rc, "posix_spawn_file_actions_init");
  }
  ~FileActions() { ::posix_spawn_file_actions_destroy(&fa); }
};
struct Attributes {
  posix_spawnattr_t attr;
  Attributes() {
    if (int rc = ::posix_spawnattr_init(&attr); rc != 0) fail(rc, "posix_spawnattr_init");
  }
  ~Attributes() { ::posix_spawnattr_destroy(&attr); }
};

}  // namespace

class ProcessTable {
 public:
  explicit ProcessTable(Loop& loop) : loop_(loop), buffer_(new char[kReadChunk]) {}
  ~ProcessTable();
  ProcessTable(const ProcessTable&) = delete;
  ProcessTable& operator=(const ProcessTable&) = delete;

  Child spawn(SpawnOptions options);
  void set_max(std::size_t n) {
    max_ = n;
    pump();
  }
  std::size_t max() const noexcept { return max_; }
  std::size_t running() const noexcept { return running_; }
  std::size_t queued() const noexcept { return queue_.size(); }

  // Child's operations.
  pid_t pid(std::uint32_t slot, std::uint32_t generation) const noexcept;
  bool is_queued(std::uint32_t slot, std::uint32_t generation) const noexcept;
  bool is_running(std::uint32_t slot, std::uint32_t generation) const noexcept;
  void write(std::uint32_t slot, std::uint32_t generation, std::string_view data);
  void close_stdin(std::uint32_t slot, std::uint32_t generation) noexcept;
  std::size_t stdin_queued(std::uint32_t slot, std::uint32_t generation) const noexcept;
  bool kill(std::uint32_t slot, std::uint32_t generation, int signo) noexcept;

 private:
  enum class State : std::uint8_t { free, queued, running, reporting };

  struct Record {
    std::uint32_t slot = 0;
    std::uint32_t generation = 0;
    State state = State::free;
    SpawnOptions options;
    pid_t pid = -1;
    UniqueFd pidfd;
    UniqueFd in, out, err;  // the parent's ends of the pipes
    Watcher pid_watch, in_watch, out_watch, err_watch;
    bool stdin_pipe = false;
    std::string in_queue;  // bytes from in_offset on wait for the pipe
    std::size_t in_offset = 0;
    bool in_close_requested = false;
    bool in_broken = false;
    bool sigpipe_ignored = false;
    bool timed_out = false;
    Timer term_timer, kill_timer, report_timer;
    ExitStatus status;  // of a report made from a timer
    std::size_t in_queued() const noexcept { return in_queue.size() - in_offset; }
  };

  Record* find(std::uint32_t slot, std::uint32_t generation) const noexcept {
    if (slot >= records_.size()) return nullptr;
    Record* r = records_[slot].get();
    return r->state != State::free && r->generation == generation ? r : nullptr;
  }
  Record& acquire();
  void release(Record& r) noexcept;
  static void validate(SpawnOptions& o);
  static void precheck(const SpawnOptions& o);
  void start(Record& r);
  void pump() noexcept;
  void report_later(Record& r, ExitStatus status);
  void report_failure(Record& r, const ExitStatus& status) noexcept;
  void on_output(std::uint32_t slot, std::uint32_t generation, int which) noexcept;
  void read_pipe(Record& r, int which, bool to_end) noexcept;
  void close_output(Record& r, int which) noexcept;
  void flush_stdin(std::uint32_t slot, std::uint32_t generation, bool error) noexcept;
  void watch_stdin(Record& r);
  void close_stdin_now(Record& r) noexcept;
  void on_exit_ready(std::uint32_t slot, std::uint32_t generation) noexcept;
  void finish(Record& r, ExitStatus status) noexcept;
  void on_timeout(std::uint32_t slot, std::uint32_t generation, bool final) noexcept;
  bool send(Record& r, int signo) noexcept;
  void stop_watching(Record& r) noexcept;

  Loop& loop_;
  std::unique_ptr<char[]> buffer_;  // one read buffer: callbacks run one at a time
  std::vector<std::unique_ptr<Record>> records_;
  std::vector<std::uint32_t> free_;
  std::deque<std::uint32_t> queue_;
  std::size_t max_ = 0;
  std::size_t running_ = 0;
};

ProcessTable::~ProcessTable() {
  // The loop is going away: stop watching; children keep running (nobody is
  // left to report them to), queued spawns never start.
  for (auto& r : records_) {
    if (r->state == State::free) continue;
    stop_watching(*r);
    loop_.cancel(r->term_timer);
    loop_.cancel(r->kill_timer);
    loop_.cancel(r->report_timer);
  }
}

ProcessTable::Record& ProcessTable::acquire() {
  if (free_.empty()) {
    auto r = std::make_unique<Record>();
    r->slot = static_cast<std::uint32_t>(records_.size());
    records_.push_back(std::move(r));
    free_.reserve(records_.size());  // release() never allocates
    free_.push_back(records_.back()->slot);
  }
  Record& r = *records_[free_.back()];
  free_.pop_back();
  return r;
}

void ProcessTable::release(Record& r) noexcept {
  stop_watching(r);
  r.options = SpawnOptions{};
  r.pid = -1;
  std::string().swap(r.in_queue);
  r.in_offset = 0;
  r.stdin_pipe = r.in_close_requested = r.in_broken = r.timed_out = false;
  r.status = ExitStatus{};
  r.term_timer = r.kill_timer = r.report_timer = Timer{};
  r.state = State::free;
  r.generation++;
  free_.push_back(r.slot);
}

void ProcessTable::stop_watching(Record& r) noexcept {
  r.pid_watch.unwatch();
  r.in_watch.unwatch();
  r.out_watch.unwatch();
  r.err_watch.unwatch();
  r.pidfd.reset();
  r.in.reset();
  r.out.reset();
  r.err.reset();
}

void ProcessTable::validate(SpawnOptions& o) {
  if (o.argv.empty()) fail(EINVAL, "argv is empty");
  if (o.program.empty() && o.argv[0].empty()) fail(EINVAL, "argv[0] is empty");
  using K = Stdio::Kind;
  if (o.in.kind() == K::merge || o.out.kind() == K::merge) {
    fail(EINVAL, "Stdio::merge() is for stderr only");
  }
  if (o.in.kind() == K::automatic) o.in = Stdio::inherit();
  if (o.out.kind() == K::automatic) o.out = o.on_stdout ? Stdio::pipe() : Stdio::inherit();
  if (o.err.kind() == K::automatic) o.err = o.on_stderr ? Stdio::pipe() : Stdio::inherit();
  if (o.on_stdout && o.out.kind() != K::pipe) fail(EINVAL, "on_stdout needs stdout to be a pipe");
  if (o.on_stderr && o.err.kind() != K::pipe) {
    fail(EINVAL, o.err.kind() == K::merge ? "on_stderr is never called when stderr is merged"
                                          : "on_stderr needs stderr to be a pipe");
  }
  if (o.timeout.count() < 0 || o.kill_grace.count() < 0) fail(EINVAL, "negative timeout");
  for (const Stdio* s : {&o.in, &o.out, &o.err}) {
    if (s->kind() == K::fd && s->descriptor() < 0) {
      fail(EBADF, "Stdio::fd(" + std::to_string(s->descriptor()) + ")");
    }
    if (s->kind() == K::file && s->path().empty()) fail(EINVAL, "Stdio::file with an empty path");
  }
}

// For a spawn that must wait in the queue: the errors that can be found now
// are reported now, by spawn(), as an immediate spawn would report them.
void ProcessTable::precheck(const SpawnOptions& o) {
  const std::string& program = o.program.empty() ? o.argv[0] : o.program;
  if (!o.cwd.empty()) {
    struct stat st {};
    if (::stat(o.cwd.c_str(), &st) != 0) fail(errno, "cwd " + o.cwd);
    if (!S_ISDIR(st.st_mode)) fail(ENOTDIR, "cwd " + o.cwd);
  }
  if (program.find('/') == std::string::npos && o.search_path) {
    const char* path = std::getenv("PATH");
    std::string_view dirs = path != nullptr ? path : "/bin:/usr/bin";
    int err = ENOENT;
    while (true) {
      std::size_t colon = dirs.find(':');
      // (Built piecewise: GCC 12 warns falsely (-Wrestrict) about operator+ here.)
      std::string candidate(dirs.substr(0, colon));
      if (candidate.empty()) candidate.push_back('.');
      candidate += '/';
      candidate.append(program);
      if (is_executable_file(candidate)) return;
      if (errno == EACCES) err = EACCES;
      if (colon == std::string_view::npos) break;
      dirs.remove_prefix(colon + 1);
    }
    fail(err, "execve " + program);
  }
  std::string full = program;
  if (program[0] != '/' && !o.cwd.empty()) full = o.cwd + "/" + program;
  if (!is_executable_file(full)) fail(errno, "execve " + program);
}

Child ProcessTable::spawn(SpawnOptions options) {
  validate(options);
  bool now = (max_ == 0 || running_ < max_) && queue_.empty();
  if (!now) precheck(options);
  Record& r = acquire();
  r.options = std::move(options);
  r.stdin_pipe = r.options.in.kind() == Stdio::Kind::pipe;
  if (now) {
    try {
      start(r);
    } catch (...) {
      release(r);
      throw;
    }
  } else {
    try {
      queue_.push_back(r.slot);
    } catch (...) {
      release(r);
      throw;
    }
    r.state = State::queued;
  }
  return Child(this, r.slot, r.generation);
}

void ProcessTable::start(Record& r) {
  SpawnOptions& o = r.options;
  const std::string& program = o.program.empty() ? o.argv[0] : o.program;

  // The child's ends: opened here (O_CLOEXEC, above 2), dup2'ed into place
  // by posix_spawn, closed here afterwards.
  UniqueFd child_end[3];
  UniqueFd parent_end[3];
  const Stdio* modes[3] = {&o.in, &o.out, &o.err};
  for (int target = 0; target < 3; ++target) {
    const Stdio& s = *modes[target];
    std::string name = stream_name(target);
    switch (s.kind()) {
      case Stdio::Kind::pipe: {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) fail(errno, "pipe2 for " + name);
        UniqueFd read_end(p[0]), write_end(p[1]);
        UniqueFd& mine = target == 0 ? write_end : read_end;
        if (::fcntl(mine.get(), F_SETFL, O_NONBLOCK) != 0) fail(errno, "fcntl O_NONBLOCK");
        parent_end[target] = std::move(mine);
        child_end[target] = std::move(target == 0 ? read_end : write_end);
        break;
      }
      case Stdio::Kind::null:
      case Stdio::Kind::file: {
        bool null = s.kind() == Stdio::Kind::null;
        std::string path = null ? "/dev/null" : s.path();
        int flags = target == 0 ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC;
        if (null) flags = target == 0 ? O_RDONLY : O_WRONLY;
        if (!null && s.flags() >= 0) flags = s.flags();
        int fd = ::open(path.c_str(), flags | O_CLOEXEC, s.mode());
        if (fd < 0) fail(errno, "open " + path + " for " + name);
        child_end[target].reset(fd);
        break;
      }
      case Stdio::Kind::fd: {
        int fd = ::fcntl(s.descriptor(), F_DUPFD_CLOEXEC, 3);
        if (fd < 0) fail(errno, "dup fd " + std::to_string(s.descriptor()) + " for " + name);
        child_end[target].reset(fd);
        break;
      }
      default:  // inherit, merge
        break;
    }
    if (child_end[target]) above_stdio(child_end[target], target);
  }

  FileActions actions;
  for (int target = 0; target < 3; ++target) {
    if (!child_end[target]) continue;
    if (int rc = ::posix_spawn_file_actions_adddup2(&actions.fa, child_end[target].get(), target);
        rc != 0) {
      fail(rc, "posix_spawn_file_actions_adddup2");
    }
  }
  if (o.err.kind() == Stdio::Kind::merge) {
    if (int rc = ::posix_spawn_file_actions_adddup2(&actions.fa, 1, 2); rc != 0) {
      fail(rc, "posix_spawn_file_actions_adddup2");
    }
  }
  UniqueFd cwd;
  if (!o.cwd.empty()) {
    // Opened here, so that a bad cwd is told apart from a bad program.
    int fd = ::open(o.cwd.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) fail(errno, "cwd " + o.cwd);
    cwd.reset(fd);
    if (int rc = ::posix_spawn_file_actions_addfchdir_np(&actions.fa, cwd.get()); rc != 0) {
      fail(rc, "posix_spawn_file_actions_addfchdir_np");
    }
  }
  if (o.close_other_fds) {
    // Last: the actions above still use descriptors above 2 (the cwd's).
    if (int rc = ::posix_spawn_file_actions_addclosefrom_np(&actions.fa, 3); rc != 0) {
      fail(rc, "posix_spawn_file_actions_addclosefrom_np");
    }
  }

  // The child starts with no signal blocked (the loop blocks the signals it
  // reads through signalfd; that is not the child's business) and with
  // SIGPIPE and SIGXFSZ at their defaults (a runtime that ignores SIGPIPE for
  // itself should not pass that on, as Python and Rust do not).
  Attributes attributes;
  sigset_t none, defaults;
  ::sigemptyset(&none);
  ::sigemptyset(&defaults);
  ::sigaddset(&defaults, SIGPIPE);
  ::sigaddset(&defaults, SIGXFSZ);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (o.new_process_group) flags |= POSIX_SPAWN_SETPGROUP;
  ::posix_spawnattr_setsigmask(&attributes.attr, &none);
  ::posix_spawnattr_setsigdefault(&attributes.attr, &defaults);
  ::posix_spawnattr_setpgroup(&attributes.attr, 0);
  ::posix_spawnattr_setflags(&attributes.attr, flags);

  std::vector<char*> argv;
  argv.reserve(o.argv.size() + 1);
  for (std::string& a : o.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  char** env = environ;
  if (o.env) {
    envp.reserve(o.env->size() + 1);
    for (std::string& e : *o.env) envp.push_back(e.data());
    envp.push_back(nullptr);
    env = envp.data();
  }

  // glibc's posix_spawn runs the child on its own stack with CLONE_VM |
  // CLONE_VFORK: no page tables are copied, the parent waits only until
  // exec, and an exec failure comes back as the return value.
  pid_t pid = -1;
  bool search = o.search_path && program.find('/') == std::string::npos;
  int rc =
      search
          ? ::posix_spawnp(&pid, program.c_str(), &actions.fa, &attributes.attr, argv.data(), env)
          : ::posix_spawn(&pid, program.c_str(), &actions.fa, &attributes.attr, argv.data(), env);
  if (rc != 0) fail(rc, "execve " + program);

  // It runs. Nothing below may lose it: on failure it is killed and reaped.
  try {
    int pidfd = detail::pidfd_open(pid);
    if (pidfd < 0) fail(errno, "pidfd_open pid " + std::to_string(pid));
    r.pidfd.reset(pidfd);
    r.pid = pid;
    r.sigpipe_ignored = sigpipe_is_ignored();
    std::uint32_t slot = r.slot, generation = r.generation;
    r.pid_watch = loop_.watch(
        pidfd, {.read = [this, slot, generation](Watcher&) { on_exit_ready(slot, generation); }});
    r.in = std::move(parent_end[0]);
    r.out = std::move(parent_end[1]);
    r.err = std::move(parent_end[2]);
    if (r.out) {
      r.out_watch = loop_.watch(r.out.get(), {.read = [this, slot, generation](Watcher&) {
                                  on_output(slot, generation, 1);
                                }});
    }
    if (r.err) {
      r.err_watch = loop_.watch(r.err.get(), {.read = [this, slot, generation](Watcher&) {
                                  on_output(slot, generation, 2);
                                }});
    }
    if (r.in) {
      if (r.in_queued() > 0) {
        watch_stdin(r);
      } else if (r.in_close_requested) {
        r.in.reset();
      }
    }
    if (o.timeout.count() > 0) {
      r.term_timer =
          loop_.after(o.timeout, [this, slot, generation] { on_timeout(slot, generation, false); });
    }
  } catch (...) {
    if (r.pidfd) {
      pidfd_send_signal(r.pidfd.get(), SIGKILL);
    } else {
      ::kill(pid, SIGKILL);  // not reaped yet, so the pid is still its own
    }
    ::waitpid(pid, nullptr, 0);
    stop_watching(r);
    loop_.cancel(r.term_timer);
    throw;
  }
  // What only the exec needed.
  o.argv = {};
  o.env.reset();
  o.cwd = {};
  o.program = {};
  r.state = State::running;
  ++running_;
}

void ProcessTable::pump() noexcept {
  while (!queue_.empty() && (max_ == 0 || running_ < max_)) {
    Record& r = *records_[queue_.front()];
    queue_.pop_front();
    try {
      start(r);
    } catch (const std::system_error& e) {
      ExitStatus status;
      status.error = e.code();
      report_failure(r, status);
    } catch (...) {  // bad_alloc, or anything else a start could throw
      ExitStatus status;
      status.error = std::make_error_code(std::errc::not_enough_memory);
      report_failure(r, status);
    }
  }
}

void ProcessTable::report_failure(Record& r, const ExitStatus& status) noexcept {
  try {
    report_later(r, status);
  } catch (...) {
    release(r);  // no memory even for a timer: dropped
  }
}

void ProcessTable::report_later(Record& r, ExitStatus status) {
  // From a timer, so that on_exit never runs inside the call (spawn,
  // set_max_children, Child::kill) that caused it.
  r.state = State::reporting;
  r.status = status;
  std::uint32_t slot = r.slot, generation = r.generation;
  r.report_timer = loop_.after(std::chrono::nanoseconds(0), [this, slot, generation] {
    Record* rec = find(slot, generation);
    if (rec == nullptr) return;
    std::function<void(const ExitStatus&)> on_exit = std::move(rec->options.on_exit);
    if (on_exit) on_exit(rec->status);
    release(*rec);
  });
}

// --- pipes ------------------------------------------------------------------

void ProcessTable::on_output(std::uint32_t slot, std::uint32_t generation, int which) noexcept {
  Record* r = find(slot, generation);
  if (r == nullptr || r->state != State::running) return;
  read_pipe(*r, which, false);
}

void ProcessTable::read_pipe(Record& r, int which, bool to_end) noexcept {
  UniqueFd& fd = which == 1 ? r.out : r.err;
  // A few chunks per event (level-triggered: the rest comes next turn);
  // at the exit, what the pipe holds, bounded in case a descendant keeps
  // writing.
  int limit = to_end ? 64 : 4;
  for (int i = 0; i < limit && fd; ++i) {
    ssize_t n = ::read(fd.get(), buffer_.get(), kReadChunk);
    if (n > 0) {
      auto& cb = which == 1 ? r.options.on_stdout : r.options.on_stderr;
      if (cb) cb(std::string_view(buffer_.get(), static_cast<std::size_t>(n)));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN && !to_end) return;
    close_output(r, which);  // EOF, an error, or what is left after the exit
    return;
  }
  if (to_end) close_output(r, which);
}

void ProcessTable::close_output(Record& r, int which) noexcept {
  (which == 1 ? r.out_watch : r.err_watch).unwatch();
  (which == 1 ? r.out : r.err).reset();
}

void ProcessTable::watch_stdin(Record& r) {
  if (r.in_watch.active()) return;
  std::uint32_t slot = r.slot, generation = r.generation;
  r.in_watch = loop_.watch(
      r.in.get(),
      {.write = [this, slot, generation](Watcher&) { flush_stdin(slot, generation, false); },
       .error = [this, slot, generation](Watcher&) { flush_stdin(slot, generation, true); }});
}

void ProcessTable::close_stdin_now(Record& r) noexcept {
  r.in_watch.unwatch();
  r.in.reset();
  r.in_queue.clear();
  r.in_offset = 0;
}

void ProcessTable::flush_stdin(std::uint32_t slot, std::uint32_t generation, bool error) noexcept {
  Record* r = find(slot, generation);
  if (r == nullptr || r->state != State::running || !r->in) return;
  int err = error ? EPIPE : 0;
  while (err == 0 && r->in_queued() > 0) {
    ssize_t n = write_no_sigpipe(r->in.get(), r->in_queue.data() + r->in_offset, r->in_queued(),
                                 r->sigpipe_ignored);
    if (n > 0) {
      r->in_offset += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return;  // the watcher calls again when there is room
    } else {
      err = n < 0 ? errno : EPIPE;
    }
  }
  if (err != 0) {
    r->in_broken = true;
    close_stdin_now(*r);
  } else {
    r->in_queue.clear();  // keeps its capacity: no allocation next time
    r->in_offset = 0;
    r->in_watch.unwatch();
    if (r->in_close_requested) r->in.reset();
  }
  if (r->options.on_stdin_drained) {
    r->options.on_stdin_drained(err != 0 ? std::error_code(err, std::system_category())
                                         : std::error_code());
  }
}

// --- exit ---------------------------------------------------------------------

void ProcessTable::on_exit_ready(std::uint32_t slot, std::uint32_t generation) noexcept {
  Record* r = find(slot, generation);
  if (r == nullptr || r->state != State::running) return;
  ExitStatus status;
  if (!read_exit_status(r->pidfd.get(), r->pid, true, status)) return;
  status.timed_out = r->timed_out;
  finish(*r, status);
}

void ProcessTable::finish(Record& r, ExitStatus status) noexcept {
  // Everything the child wrote before it exited is in the pipes now.
  if (r.out) read_pipe(r, 1, true);
  if (r.err) read_pipe(r, 2, true);
  loop_.cancel(r.term_timer);
  loop_.cancel(r.kill_timer);
  stop_watching(r);
  r.state = State::reporting;
  --running_;
  pump();  // the freed slot goes to the oldest waiting spawn
  std::function<void(const ExitStatus&)> on_exit = std::move(r.options.on_exit);
  if (on_exit) on_exit(status);
  release(r);
}

bool ProcessTable::send(Record& r, int signo) noexcept {
  if (r.options.new_process_group) return ::kill(-r.pid, signo) == 0;
  return pidfd_send_signal(r.pidfd.get(), signo) == 0;
}

void ProcessTable::on_timeout(std::uint32_t slot, std::uint32_t generation, bool final) noexcept {
  Record* r = find(slot, generation);
  if (r == nullptr || r->state != State::running) return;
  if (final) {
    send(*r, SIGKILL);
    return;
  }
  r->timed_out = true;
  send(*r, SIGTERM);
  try {
    r->kill_timer = loop_.after(r->options.kill_grace,
                                [this, slot, generation] { on_timeout(slot, generation, true); });
  } catch (...) {
    send(*r, SIGKILL);  // no memory for a timer: no grace either
  }
}

// --- the handle's operations -------------------------------------------------

pid_t ProcessTable::pid(std::uint32_t slot, std::uint32_t generation) const noexcept {
  Record* r = find(slot, generation);
  return r != nullptr && r->state == State::running ? r->pid : -1;
}

bool ProcessTable::is_queued(std::uint32_t slot, std::uint32_t generation) const noexcept {
  Record* r = find(slot, generation);
  return r != nullptr && r->state == State::queued;
}

bool ProcessTable::is_running(std::uint32_t slot, std::uint32_t generation) const noexcept {
  Record* r = find(slot, generation);
  return r != nullptr && r->state == State::running;
}

std::size_t ProcessTable::stdin_queued(std::uint32_t slot,
                                       std::uint32_t generation) const noexcept {
  Record* r = find(slot, generation);
  return r != nullptr ? r->in_queued() : 0;
}

void ProcessTable::write(std::uint32_t slot, std::uint32_t generation, std::string_view data) {
  Record* r = find(slot, generation);
  const std::string what = "spawn stdin write";
  if (r == nullptr || r->state == State::reporting) {
    throw std::system_error(EPIPE, std::system_category(), what + ": the child has exited");
  }
  if (!r->stdin_pipe) {
    throw std::system_error(EBADF, std::system_category(), what + ": stdin is not Stdio::pipe()");
  }
  if (r->in_broken) {
    throw std::system_error(EPIPE, std::system_category(), what + ": the child stopped reading");
  }
  if (r->in_close_requested) {
    throw std::system_error(EBADF, std::system_category(), what + ": stdin was closed");
  }
  std::size_t queued = r->in_queued();
  if (data.size() > r->options.stdin_limit || queued > r->options.stdin_limit - data.size()) {
    throw std::system_error(ENOBUFS, std::system_category(),
                            what + ": " + std::to_string(data.size()) + " more bytes would pass " +
                                "the stdin_limit of " + std::to_string(r->options.stdin_limit) +
                                " (" + std::to_string(queued) + " queued)");
  }
  if (data.empty()) return;
  if (r->state == State::running && queued == 0) {
    ssize_t n = write_no_sigpipe(r->in.get(), data.data(), data.size(), r->sigpipe_ignored);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      int err = errno;
      r->in_broken = true;
      close_stdin_now(*r);
      throw std::system_error(err, std::system_category(), what);
    }
    if (n > 0) data.remove_prefix(static_cast<std::size_t>(n));
    if (data.empty()) return;
  }
  if (r->in_offset > 0 && r->in_offset >= r->in_queue.size() / 2) {
    r->in_queue.erase(0, r->in_offset);
    r->in_offset = 0;
  }
  r->in_queue.append(data);
  if (r->state == State::running) watch_stdin(*r);
}

void ProcessTable::close_stdin(std::uint32_t slot, std::uint32_t generation) noexcept {
  Record* r = find(slot, generation);
  if (r == nullptr || !r->stdin_pipe || r->in_close_requested) return;
  r->in_close_requested = true;
  if (r->state == State::running && r->in_queued() == 0) close_stdin_now(*r);
}

bool ProcessTable::kill(std::uint32_t slot, std::uint32_t generation, int signo) noexcept {
  Record* r = find(slot, generation);
  if (r == nullptr) return false;
  if (r->state == State::queued) {
    queue_.erase(std::find(queue_.begin(), queue_.end(), slot));
    ExitStatus status;
    status.error = std::make_error_code(std::errc::operation_canceled);
    report_failure(*r, status);
    return true;
  }
  if (r->state != State::running) return false;
  return send(*r, signo);
}

void ProcessTableDeleter::operator()(ProcessTable* table) const noexcept {
  delete table;
}

}  // namespace detail

// --- Child and Loop -------------------------------------------------------------

pid_t Child::pid() const noexcept {
  return table_ != nullptr ? table_->pid(slot_, generation_) : -1;
}
bool Child::queued() const noexcept {
  return table_ != nullptr && table_->is_queued(slot_, generation_);
}
bool Child::running() const noexcept {
  return table_ != nullptr && table_->is_running(slot_, generation_);
}
void Child::write(std::string_view data) {
  if (table_ == nullptr) {
    throw std::system_error(EBADF, std::system_category(), "spawn stdin write: no child");
  }
  table_->write(slot_, generation_, data);
}
void Child::close_stdin() noexcept {
  if (table_ != nullptr) table_->close_stdin(slot_, generation_);
}
std::size_t Child::stdin_queued() const noexcept {
  return table_ != nullptr ? table_->stdin_queued(slot_, generation_) : 0;
}
bool Child::kill(int signo) noexcept {
  return table_ != nullptr && table_->kill(slot_, generation_, signo);
}

Child Loop::spawn(SpawnOptions options) {
  if (!processes_) processes_.reset(new detail::ProcessTable(*this));
  return processes_->spawn(std::move(options));
}

void Loop::set_max_children(std::size_t n) {
  if (!processes_) processes_.reset(new detail::ProcessTable(*this));
  processes_->set_max(n);
}

std::size_t Loop::max_children() const noexcept {
  return processes_ ? processes_->max() : 0;
}
std::size_t Loop::children_running() const noexcept {
  return processes_ ? processes_->running() : 0;
}
std::size_t Loop::children_queued() const noexcept {
  return processes_ ? processes_->queued() : 0;
}

}  // namespace spindle
