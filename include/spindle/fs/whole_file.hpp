// Reading and writing a whole file in one call.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "spindle/io/result.hpp"

namespace spindle {

// The whole content of `path`, at most `limit` bytes: a longer file throws
// std::system_error(EMSGSIZE, "read_file <path>"). Other errors: "open
// <path>" / "read <path>" (ENOENT, EACCES, EISDIR ...). Suspends the
// calling fiber (io operations; the blocking pool on epoll). The deadline
// covers the whole call.
std::string read_file(const std::filesystem::path& path, std::size_t limit = 16 * 1024 * 1024,
                      Deadline deadline = {});

struct WriteFileOptions {
  // Permissions of a created file (less the umask). With `atomic` the file
  // is always a new one, so these replace the old file's.
  mode_t mode = 0666;
  // Write a temporary file in the same directory and rename it over
  // `path`: a reader (or a crash) sees the old content or the new one,
  // never a mix. false: truncate and write `path` in place.
  bool atomic = true;
  // fsync the data before the rename (and the directory after it), so the
  // new content survives a power loss once write_file returns.
  bool sync = true;
};

// Replaces the content of `path` with `data`. With `atomic` (the default)
// the temporary file (".<name>.tmp-<pid>-<n>" beside it) is removed again
// if anything fails, cancellation included. Throws std::system_error
// naming the step and path ("write_file /etc/x: No space left on device",
// "rename /etc/.x.tmp-..."). A deadline covers the whole call.
void write_file(const std::filesystem::path& path, std::span<const std::byte> data,
                WriteFileOptions options = {}, Deadline deadline = {});
void write_file(const std::filesystem::path& path, std::string_view text,
                WriteFileOptions options = {}, Deadline deadline = {});

}  // namespace spindle
