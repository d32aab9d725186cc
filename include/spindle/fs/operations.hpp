// Paths: stat, directories (list, create, remove), rename.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

#include "spindle/io/loops.hpp"
#include "spindle/io/result.hpp"

namespace spindle {

// Every call here suspends the calling fiber, not its thread (statx,
// mkdirat, unlinkat, renameat on io_uring; the blocking pool on epoll and
// for reading directories), is a cancellation point, and throws
// std::system_error naming the call and the path ("stat /x: No such file
// or directory"). Relative paths are relative to the working directory.

// What stat says about a path.
struct FileInfo {
  std::filesystem::file_type type = std::filesystem::file_type::none;
  std::uint64_t size = 0;
  mode_t mode = 0;  // permission bits (and setuid, setgid, sticky)
  std::chrono::system_clock::time_point modified;
  std::uint64_t inode = 0;
  std::uint64_t links = 0;
  uid_t uid = 0;
  gid_t gid = 0;

  bool is_directory() const noexcept { return type == std::filesystem::file_type::directory; }
  bool is_regular() const noexcept { return type == std::filesystem::file_type::regular; }
  bool is_symlink() const noexcept { return type == std::filesystem::file_type::symlink; }
};

// stat follows a final symbolic link; symlink_status describes the link.
FileInfo stat(const std::filesystem::path& path, Deadline deadline = {});
FileInfo symlink_status(const std::filesystem::path& path, Deadline deadline = {});
// Whether `path` names something (a dangling symbolic link does not).
// Errors other than ENOENT / ENOTDIR still throw.
bool exists(const std::filesystem::path& path, Deadline deadline = {});

// One entry of a directory ("." and ".." are never listed). `type` is what
// the file system reports without a stat (file_type::unknown on some).
struct DirEntry {
  std::string name;
  std::filesystem::file_type type = std::filesystem::file_type::unknown;
};

namespace detail {
// fn(const DirEntry&) -> false to stop.
std::size_t for_each_entry(const std::filesystem::path& dir, LoopFn<const DirEntry&> fn);
}  // namespace detail

// Calls fn(const DirEntry&) for each entry of directory `dir`, in the
// order the file system keeps them, reading a batch of entries (32 KiB)
// per blocking-pool job. fn returns void (go on) or bool (false: stop), or
// calls break_loop(). Returns the number of entries given to fn. Memory
// stays bounded whatever the directory's size. Errors: "list_directory
// <dir>" (ENOENT, ENOTDIR, EACCES).
template <class F>
std::size_t for_each_entry(const std::filesystem::path& dir, F&& fn) {
  return detail::for_each_entry(dir, detail::LoopFn<const DirEntry&>::of(fn));
}
// The entries as a vector, at most `limit` of them: more throws
// std::system_error(EMSGSIZE, "list_directory <dir>").
std::vector<DirEntry> list_directory(const std::filesystem::path& dir,
                                     std::size_t limit = 1024 * 1024);

// mkdir -p: creates `path` and its missing parents (mode less the umask).
// True if it created `path`, false if it was a directory already. A
// component that exists and is not a directory: EEXIST / ENOTDIR.
bool create_directories(const std::filesystem::path& path, mode_t mode = 0777);
// Creates one directory; false if it existed (as a directory).
bool create_directory(const std::filesystem::path& path, mode_t mode = 0777);

// Removes a file, a symbolic link (not its target) or an empty directory.
// False if there was nothing to remove.
bool remove(const std::filesystem::path& path);
// Removes `path` and, for a directory, everything in it, without following
// symbolic links; returns the number of names removed (0 if there was
// nothing). Works depth-first with its own stack (no recursion: any depth
// is fine on a fiber's small stack).
std::uintmax_t remove_all(const std::filesystem::path& path);

// rename(2): replaces `to` if it exists (a file by a file, a directory by
// an empty directory). Errors name both paths.
void rename(const std::filesystem::path& from, const std::filesystem::path& to,
            Deadline deadline = {});

}  // namespace spindle
