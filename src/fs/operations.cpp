// stat, directories and rename on the io layer's operations; directory
// reads (getdents64, which io_uring lacks) on the blocking pool.
#include "spindle/fs/operations.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

#include "fs/fs_error.hpp"
#include "spindle/fs/file.hpp"
#include "spindle/io/blocking.hpp"
#include "spindle/io/ops.hpp"

namespace spindle {

using fs_detail::naming;
using fs_detail::throw_for;
namespace sfs = std::filesystem;

namespace {

// The errno of a throwing io call, 0 when it succeeded. Control flow
// (Cancelled, TimedOut) passes through.
template <class F>
int error_of(F&& fn) {
  try {
    std::forward<F>(fn)();
    return 0;
  } catch (const std::system_error& e) {
    return e.code().value();
  }
}

sfs::file_type type_of_mode(mode_t mode) noexcept {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return sfs::file_type::regular;
    case S_IFDIR:
      return sfs::file_type::directory;
    case S_IFLNK:
      return sfs::file_type::symlink;
    case S_IFBLK:
      return sfs::file_type::block;
    case S_IFCHR:
      return sfs::file_type::character;
    case S_IFIFO:
      return sfs::file_type::fifo;
    case S_IFSOCK:
      return sfs::file_type::socket;
    default:
      return sfs::file_type::unknown;
  }
}

// A directory entry's d_type is the mode's type bits shifted (DTTOIF).
sfs::file_type type_of_dirent(unsigned char t) noexcept {
  return type_of_mode(static_cast<mode_t>(DTTOIF(t)));
}

FileInfo info_of(const struct ::statx& st) noexcept {
  FileInfo info;
  info.type = type_of_mode(st.stx_mode);
  info.size = st.stx_size;
  info.mode = st.stx_mode & 07777;
  info.modified = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(st.stx_mtime.tv_sec) +
          std::chrono::nanoseconds(st.stx_mtime.tv_nsec)));
  info.inode = st.stx_ino;
  info.links = st.stx_nlink;
  info.uid = st.stx_uid;
  info.gid = st.stx_gid;
  return info;
}

FileInfo stat_with(const sfs::path& path, int flags, Deadline deadline) {
  return info_of(naming("stat", path, [&] {
    return spindle::statx(AT_FDCWD, path.c_str(), flags, STATX_BASIC_STATS, deadline);
  }));
}

bool is_directory_at(const sfs::path& path) {
  struct ::statx st {};
  int err = error_of([&] { st = spindle::statx(AT_FDCWD, path.c_str(), 0, STATX_TYPE); });
  return err == 0 && S_ISDIR(st.stx_mode);
}

// mkdir of one directory: 0, or the errno (EEXIST only if `path` exists
// and is not a directory).
int make_directory(const sfs::path& path, mode_t mode) {
  int err = error_of([&] { spindle::mkdirat(AT_FDCWD, path.c_str(), mode); });
  if (err == EEXIST && is_directory_at(path)) return -1;  // there already
  return err;
}

}  // namespace

FileInfo stat(const sfs::path& path, Deadline deadline) {
  return stat_with(path, 0, deadline);
}

FileInfo symlink_status(const sfs::path& path, Deadline deadline) {
  return stat_with(path, AT_SYMLINK_NOFOLLOW, deadline);
}

bool exists(const sfs::path& path, Deadline deadline) {
  int err = error_of([&] { (void)spindle::statx(AT_FDCWD, path.c_str(), 0, 0, deadline); });
  if (err == 0) return true;
  if (err == ENOENT || err == ENOTDIR) return false;
  throw_for(err, "stat", path);
}

namespace detail {

std::size_t for_each_entry(const sfs::path& dir, LoopFn<const DirEntry&> fn) {
  File d = naming("list_directory", dir, [&] { return File::open(dir, O_RDONLY | O_DIRECTORY); });
  constexpr std::size_t kBatch = 32 * 1024;
  auto buffer = std::make_unique_for_overwrite<char[]>(kBatch);
  std::size_t delivered = 0;
  DirEntry entry;
  try {
    for (;;) {
      ssize_t n = blocking([&] {
        ssize_t got = ::getdents64(d.fd(), buffer.get(), kBatch);
        return got < 0 ? -static_cast<ssize_t>(errno) : got;
      });
      if (n < 0) throw_for(static_cast<int>(-n), "list_directory", dir);
      if (n == 0) return delivered;
      for (ssize_t at = 0; at < n;) {
        const auto* e = reinterpret_cast<const struct dirent64*>(buffer.get() + at);
        at += e->d_reclen;
        if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
        entry.name.assign(e->d_name);
        entry.type = type_of_dirent(e->d_type);
        ++delivered;
        if (!fn.call(fn.object, entry)) return delivered;
      }
    }
  } catch (const BreakLoop&) {
    return delivered;
  }
}

}  // namespace detail

std::vector<DirEntry> list_directory(const sfs::path& dir, std::size_t limit) {
  std::vector<DirEntry> out;
  for_each_entry(dir, [&](const DirEntry& e) {
    if (out.size() == limit) {
      throw_for(EMSGSIZE, "list_directory", dir);
    }
    out.push_back(e);
  });
  return out;
}

bool create_directory(const sfs::path& path, mode_t mode) {
  int err = make_directory(path, mode);
  if (err > 0) throw_for(err, "create_directory", path);
  return err == 0;
}

bool create_directories(const sfs::path& path, mode_t mode) {
  // Walk up to the first ancestor that exists, then create downwards.
  sfs::path target = path.lexically_normal();
  if (target.has_filename() == false && target.has_parent_path()) target = target.parent_path();
  std::vector<sfs::path> missing;
  sfs::path at = target;
  for (;;) {
    int err = make_directory(at, mode);
    if (err <= 0) {
      if (missing.empty()) return err == 0;
      break;
    }
    if (err != ENOENT || !at.has_relative_path() || at.parent_path() == at) {
      throw_for(err, "create_directories", at);
    }
    missing.push_back(at);
    at = at.parent_path();
    if (at.empty()) throw_for(ENOENT, "create_directories", path);
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    int err = make_directory(*it, mode);
    if (err > 0) throw_for(err, "create_directories", *it);
  }
  return true;
}

bool remove(const sfs::path& path) {
  int err = error_of([&] { spindle::unlinkat(AT_FDCWD, path.c_str(), 0); });
  if (err == EISDIR || err == EPERM) {
    // unlink refuses directories (EISDIR on Linux, EPERM per POSIX).
    int again = error_of([&] { spindle::unlinkat(AT_FDCWD, path.c_str(), AT_REMOVEDIR); });
    if (again != ENOTDIR) err = again;
  }
  if (err == 0) return true;
  if (err == ENOENT) return false;
  throw_for(err, "remove", path);
}

std::uintmax_t remove_all(const sfs::path& path) {
  struct ::statx st {};
  int err = error_of(
      [&] { st = spindle::statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_TYPE); });
  if (err == ENOENT) return 0;
  if (err != 0) throw_for(err, "remove_all", path);
  if (!S_ISDIR(st.stx_mode)) return spindle::remove(path) ? 1 : 0;

  // Depth-first with an explicit stack: a directory is removed once its
  // entries are (second visit).
  std::uintmax_t removed = 0;
  std::vector<std::pair<sfs::path, bool>> stack;
  stack.emplace_back(path, false);
  while (!stack.empty()) {
    auto& top = stack.back();
    if (top.second) {
      const sfs::path& dir = top.first;
      int e = error_of([&] { spindle::unlinkat(AT_FDCWD, dir.c_str(), AT_REMOVEDIR); });
      if (e != 0 && e != ENOENT) throw_for(e, "remove_all", dir);
      if (e == 0) ++removed;
      stack.pop_back();
      continue;
    }
    top.second = true;
    sfs::path current = top.first;  // the stack may reallocate below
    std::vector<sfs::path> subdirs;
    for_each_entry(current, [&](const DirEntry& entry) {
      sfs::path child = current / entry.name;
      bool is_dir = entry.type == sfs::file_type::directory;
      if (entry.type == sfs::file_type::unknown)
        is_dir = spindle::symlink_status(child).is_directory();
      if (is_dir) {
        subdirs.push_back(std::move(child));
        return;
      }
      int e = error_of([&] { spindle::unlinkat(AT_FDCWD, child.c_str(), 0); });
      if (e != 0 && e != ENOENT) throw_for(e, "remove_all", child);
      if (e == 0) ++removed;
    });
    for (sfs::path& sub : subdirs) stack.emplace_back(std::move(sub), false);
  }
  return removed;
}

void rename(const sfs::path& from, const sfs::path& to, Deadline deadline) {
  int err = error_of([&] { spindle::rename(from.c_str(), to.c_str(), deadline); });
  if (err != 0) {
    throw std::system_error(err, std::system_category(),
                            "rename " + from.string() + " to " + to.string());
  }
}

}  // namespace spindle
