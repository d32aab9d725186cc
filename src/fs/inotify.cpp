// Inotify: the io layer's read of an inotify descriptor, events parsed out
// of a batch buffer.
#include "spindle/fs/inotify.hpp"

#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <system_error>
#include <utility>

#include "fs/fs_error.hpp"
#include "spindle/fiber/cancel.hpp"

namespace spindle {

namespace {
// Room for many events per read; at least one of the largest
// (sizeof(inotify_event) + NAME_MAX + 1), as read(2) requires.
constexpr std::size_t kBufferSize = 64 * 1024;
static_assert(kBufferSize >= sizeof(inotify_event) + NAME_MAX + 1);
}  // namespace

Inotify::Inotify() : buffer_(std::make_unique_for_overwrite<char[]>(kBufferSize)) {
  int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::system_category(), "inotify_init1");
  fd_ = FdStream(fd);
}

int Inotify::watch(const std::filesystem::path& path, std::uint32_t mask) {
  // inotify_add_watch only registers (a few µs, never blocks on I/O beyond
  // the path lookup); it has no io_uring opcode.
  int wd = ::inotify_add_watch(fd(), path.c_str(), mask);
  if (wd < 0) fs_detail::throw_for(errno, "inotify_add_watch", path);
  paths_[wd] = path;
  return wd;
}

void Inotify::unwatch(int wd) noexcept {
  // The path is kept until IN_IGNORED arrives, so events already queued
  // for the watch still name it.
  (void)::inotify_rm_watch(fd(), wd);
}

bool Inotify::take(InotifyEvent& event, Deadline deadline) {
  if (begin_ == end_) {
    std::span<std::byte> room(reinterpret_cast<std::byte*>(buffer_.get()), kBufferSize);
    std::size_t n = 0;
    try {
      n = fd_.read_some(room, deadline);
    } catch (const TimedOut&) {
      return false;
    }
    if (n < sizeof(inotify_event)) {
      throw std::system_error(EIO, std::system_category(), "read inotify: short read");
    }
    begin_ = 0;
    end_ = n;
  }
  inotify_event header;
  std::memcpy(&header, buffer_.get() + begin_, sizeof header);
  const char* name = buffer_.get() + begin_ + sizeof header;
  begin_ += sizeof header + header.len;
  event.wd = header.wd;
  event.mask = header.mask;
  event.cookie = header.cookie;
  event.name.assign(name, header.len == 0 ? 0 : ::strnlen(name, header.len));
  auto it = paths_.find(header.wd);
  if (it != paths_.end()) {
    event.path = event.name.empty() ? it->second : it->second / event.name;
    if (header.mask & IN_IGNORED) paths_.erase(it);
  } else {
    event.path.clear();
  }
  return true;
}

std::optional<InotifyEvent> Inotify::next(Deadline deadline) {
  InotifyEvent event;
  if (!take(event, deadline)) return std::nullopt;
  return event;
}

}  // namespace spindle
