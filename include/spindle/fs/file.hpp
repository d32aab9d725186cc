// Files as RAII objects and streams, on the io layer's operations.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <utility>

#include "spindle/io/result.hpp"
#include "spindle/stream/fd_stream.hpp"

namespace spindle {

// An open file. Every call suspends the calling fiber, not its thread: on
// io_uring each is one SQE, on epoll reads and writes try RWF_NOWAIT (a
// page-cache hit is served at once) and otherwise go to the blocking pool,
// as do open, stat and sync. Each is a cancellation point and takes an
// optional Deadline (io/ops.hpp), except close. Errors are
// std::system_error naming the call and the path ("read /var/log/x: Input/
// output error"). Satisfies Stream, VectoredStream and FdBackedStream (the
// file position moves with read_some / write_some). Move-only; the
// destructor closes the file and never throws (a close error there is
// lost: call close() to see it). One File may be used by several fibers
// with pread / pwrite; read_some / write_some share the file position.
class File {
 public:
  File() noexcept = default;
  // Opens `path` with open(2) `flags` (O_RDONLY, O_WRONLY | O_CREAT |
  // O_TRUNC, O_APPEND, ...; O_CLOEXEC is always added) and, for a file it
  // creates, `mode` (less the umask). Throws std::system_error("open
  // <path>") (ENOENT, EACCES, EISDIR ...).
  static File open(const std::filesystem::path& path, int flags = O_RDONLY, mode_t mode = 0666,
                   Deadline deadline = {});
  // open(path, O_WRONLY | O_CREAT | O_TRUNC, mode).
  static File create(const std::filesystem::path& path, mode_t mode = 0666, Deadline deadline = {});
  // Takes ownership of an open descriptor (`path` is only for messages).
  File(int fd, std::filesystem::path path) noexcept : stream_(fd), path_(std::move(path)) {}

  int fd() const noexcept { return stream_.fd(); }
  const std::filesystem::path& path() const noexcept { return path_; }
  bool is_open() const noexcept { return stream_.is_open(); }
  explicit operator bool() const noexcept { return is_open(); }

  // At the file position (which they move): up to buffer.size() bytes, 0
  // at end of file; one write, possibly short; all of `data`.
  std::size_t read_some(std::span<std::byte> buffer, Deadline deadline = {});
  std::size_t write_some(std::span<const std::byte> data, Deadline deadline = {});
  std::size_t writev_some(std::span<const iovec> buffers, Deadline deadline = {});
  void write_all(std::span<const std::byte> data, Deadline deadline = {});
  // At `offset` (the file position is neither used nor moved). pread
  // returns fewer bytes only at end of file; pwrite writes all of `data`.
  std::size_t pread(std::span<std::byte> buffer, std::uint64_t offset, Deadline deadline = {});
  void pwrite(std::span<const std::byte> data, std::uint64_t offset, Deadline deadline = {});

  // The size in bytes (statx).
  std::uint64_t size(Deadline deadline = {});
  // fsync / fdatasync.
  void sync(Deadline deadline = {});
  void sync_data(Deadline deadline = {});
  // Closes now; idempotent; not a cancellation point. Throws the close
  // error (EIO: data written earlier did not reach the disk).
  void close();

 private:
  FdStream stream_;  // owns the descriptor
  std::filesystem::path path_;
};

}  // namespace spindle
