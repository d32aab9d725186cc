// File system events (inotify) as fiber calls.
#pragma once

#include <sys/inotify.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>

#include "spindle/io/loops.hpp"
#include "spindle/io/result.hpp"
#include "spindle/stream/fd_stream.hpp"

namespace spindle {

// One inotify event. `mask` holds IN_CREATE, IN_MODIFY, IN_DELETE,
// IN_MOVED_FROM / IN_MOVED_TO (paired by `cookie`), IN_ISDIR,
// IN_IGNORED (the watch ended), IN_Q_OVERFLOW (events were lost; wd -1)...
struct InotifyEvent {
  int wd = -1;  // the watch it belongs to
  std::uint32_t mask = 0;
  std::uint32_t cookie = 0;
  std::string name;            // the entry inside a watched directory ("" for the watch itself)
  std::filesystem::path path;  // the watched path, joined with `name`
};

// An inotify instance (IN_NONBLOCK | IN_CLOEXEC): watch paths, then take
// their events one at a time (next) or in a loop (each). Reading suspends
// the calling fiber (the io layer's read of the inotify descriptor: one SQE
// on io_uring, a readiness wait on epoll), is a cancellation point, and
// takes an optional Deadline. Events are read in batches into a 64 KiB
// buffer and handed out one by one; the kernel's own queue is bounded
// (fs.inotify.max_queued_events), and overflowing it is an IN_Q_OVERFLOW
// event, not an error. Errors are std::system_error ("inotify_add_watch
// /x: No such file or directory"). Move-only (the
// destructor closes it); one fiber at a time.
class Inotify {
 public:
  // Throws std::system_error("inotify_init1") (EMFILE: too many instances).
  Inotify();

  // Watches `path` for the events in `mask` (IN_CREATE | IN_MODIFY |
  // IN_DELETE ..., or IN_ALL_EVENTS); returns the watch descriptor (the
  // same one again for a path already watched: the mask replaces the old
  // one unless it has IN_MASK_ADD).
  int watch(const std::filesystem::path& path, std::uint32_t mask);
  // Ends a watch (an IN_IGNORED event follows). Unknown wds are ignored.
  void unwatch(int wd) noexcept;

  // The next event; waits for one. nullopt only if the deadline passed
  // (never otherwise).
  std::optional<InotifyEvent> next(Deadline deadline = {});
  // Calls fn(const InotifyEvent&) for every event as it comes, until fn
  // returns false or calls break_loop() (fn returning void: forever, or
  // until the fiber is cancelled). Returns the number of events given.
  template <class F>
  std::size_t each(F&& fn);

  int fd() const noexcept { return fd_.fd(); }

 private:
  // Parses the next event out of the buffer into `event`, reading more
  // when it is empty. False if the deadline passed.
  bool take(InotifyEvent& event, Deadline deadline);

  FdStream fd_;
  std::unique_ptr<char[]> buffer_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::unordered_map<int, std::filesystem::path> paths_;  // wd -> watched path
};

template <class F>
std::size_t Inotify::each(F&& fn) {
  std::size_t count = 0;
  InotifyEvent event;
  try {
    while (take(event, {})) {
      ++count;
      if constexpr (std::is_void_v<std::invoke_result_t<F&, const InotifyEvent&>>) {
        fn(static_cast<const InotifyEvent&>(event));
      } else {
        if (!static_cast<bool>(fn(static_cast<const InotifyEvent&>(event)))) break;
      }
    }
  } catch (const BreakLoop&) {
  }
  return count;
}

}  // namespace spindle
