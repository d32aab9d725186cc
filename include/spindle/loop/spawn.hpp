// Child processes with watched pipes and pidfd exits (Loop::spawn).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "spindle/loop/child.hpp"
#include "spindle/loop/loop.hpp"

namespace spindle {

// Where one of a child's standard descriptors comes from or goes to.
class Stdio {
 public:
  enum class Kind : std::uint8_t {
    automatic,  // pipe if the matching callback (on_stdout, on_stderr) is set, else inherit
    inherit,    // the parent's own descriptor
    pipe,       // a pipe to the loop: on_stdout / on_stderr, or Child::write for stdin
    null,       // /dev/null
    file,       // a file opened by path (in the parent, so errors name it)
    fd,         // a descriptor of the caller's, duplicated (the caller keeps it)
    merge,      // stderr only: the same as the child's stdout
  };

  Stdio() noexcept = default;
  static Stdio inherit() noexcept { return Stdio(Kind::inherit); }
  static Stdio pipe() noexcept { return Stdio(Kind::pipe); }
  static Stdio null() noexcept { return Stdio(Kind::null); }
  // flags < 0: O_RDONLY for stdin, O_WRONLY | O_CREAT | O_TRUNC for output.
  // O_CLOEXEC is always added.
  static Stdio file(std::string path, int flags = -1, mode_t mode = 0644) {
    Stdio s(Kind::file);
    s.path_ = std::move(path);
    s.flags_ = flags;
    s.mode_ = mode;
    return s;
  }
  static Stdio fd(int fd) noexcept {
    Stdio s(Kind::fd);
    s.fd_ = fd;
    return s;
  }
  static Stdio merge() noexcept { return Stdio(Kind::merge); }

  Kind kind() const noexcept { return kind_; }
  const std::string& path() const noexcept { return path_; }
  int flags() const noexcept { return flags_; }
  mode_t mode() const noexcept { return mode_; }
  int descriptor() const noexcept { return fd_; }

 private:
  explicit Stdio(Kind kind) noexcept : kind_(kind) {}
  Kind kind_ = Kind::automatic;
  std::string path_;
  int flags_ = -1;
  mode_t mode_ = 0644;
  int fd_ = -1;
};

// What Loop::spawn runs, and what it calls back. (in / out / err name the
// child's stdin, stdout and stderr: those three names are macros in C.)
struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is the program unless `program` is set
  std::string program;            // the file to execute; empty: argv[0]
  // A program name without '/' is looked up in the PATH of the parent.
  bool search_path = true;
  // The child's environment, "NAME=value" each; nullopt: the parent's.
  std::optional<std::vector<std::string>> env;
  std::string cwd;  // empty: the parent's
  Stdio in, out, err;
  // Output of a piped stdout / stderr, as it arrives, in chunks of up to
  // 64 KiB (the view is valid during the call only).
  std::function<void(std::string_view)> on_stdout;
  std::function<void(std::string_view)> on_stderr;
  // Called exactly once for every spawn() that returned (did not throw),
  // never from inside spawn(): after the process exited and what it wrote to
  // its pipes has been delivered (the pipes are read to their end, or, if a
  // descendant keeps them open, to what they hold), then closed.
  std::function<void(const ExitStatus&)> on_exit;
  // stdin pipe: called when the write queue has drained (ec empty), or when
  // the child stopped reading (ec = EPIPE; the queue is discarded).
  std::function<void(std::error_code)> on_stdin_drained;
  // Bytes Child::write may queue for a slow reader; beyond, write throws.
  std::size_t stdin_limit = std::size_t{1} << 20;
  // > 0: SIGTERM after this long, then SIGKILL after kill_grace more.
  std::chrono::nanoseconds timeout{0};
  std::chrono::nanoseconds kill_grace = std::chrono::seconds(5);
  // Put the child in a new process group (its pid): the timeout and
  // Child::kill then signal the whole group.
  bool new_process_group = false;
  // Close every descriptor above 2 in the child, even those the program
  // inherited without O_CLOEXEC from whoever started it. Off by default:
  // spindle's own descriptors are all O_CLOEXEC, and a descriptor left
  // inheritable on purpose reaches the child, as POSIX has it.
  bool close_other_fds = false;
};

// A handle to a spawned (or queued) child. Cheap to copy; it goes stale
// (every call a no-op or an error) once on_exit has returned. Loop thread
// only, and not beyond the loop's life.
class Child {
 public:
  Child() noexcept = default;
  // -1 while queued and once it is gone.
  pid_t pid() const noexcept;
  bool queued() const noexcept;
  bool running() const noexcept;  // started and not yet reported

  // Queues `data` for the child's stdin (which must be Stdio::pipe()); it is
  // written as the pipe accepts it (also while the child waits in the
  // queue). Throws std::system_error: ENOBUFS if the queue would exceed
  // stdin_limit (nothing of `data` is taken then), EPIPE if the child stopped
  // reading, EBADF if stdin is not a pipe or was closed.
  void write(std::string_view data);
  // Closes stdin once the queue has drained (at once if it is empty).
  void close_stdin() noexcept;
  // Bytes waiting in the stdin queue.
  std::size_t stdin_queued() const noexcept;

  // Sends `signo` (through the pidfd, so never to a reused pid; to the group
  // if new_process_group). A queued child is taken off the queue instead,
  // and reported with error ECANCELED. Returns false if there was nothing to
  // signal.
  bool kill(int signo = SIGTERM) noexcept;

 private:
  friend class detail::ProcessTable;
  Child(detail::ProcessTable* table, std::uint32_t slot, std::uint32_t generation) noexcept
      : table_(table), slot_(slot), generation_(generation) {}
  detail::ProcessTable* table_ = nullptr;
  std::uint32_t slot_ = 0;
  std::uint32_t generation_ = 0;
};

}  // namespace spindle
