// File on the io layer's operations, errors named after the path.
#include "spindle/fs/file.hpp"

#include "fs/fs_error.hpp"
#include "spindle/io/ops.hpp"

namespace spindle {

using fs_detail::naming;

File File::open(const std::filesystem::path& path, int flags, mode_t mode, Deadline deadline) {
  int fd = naming("open", path, [&] { return spindle::open(path.c_str(), flags, mode, deadline); });
  return File(fd, path);
}

File File::create(const std::filesystem::path& path, mode_t mode, Deadline deadline) {
  return open(path, O_WRONLY | O_CREAT | O_TRUNC, mode, deadline);
}

std::size_t File::read_some(std::span<std::byte> buffer, Deadline deadline) {
  return naming("read", path_, [&] { return stream_.read_some(buffer, deadline); });
}

std::size_t File::write_some(std::span<const std::byte> data, Deadline deadline) {
  iovec v{const_cast<std::byte*>(data.data()), data.size()};
  return writev_some({&v, 1}, deadline);
}

std::size_t File::writev_some(std::span<const iovec> buffers, Deadline deadline) {
  return naming("write", path_, [&] { return stream_.writev_some(buffers, deadline); });
}

void File::write_all(std::span<const std::byte> data, Deadline deadline) {
  naming("write", path_, [&] { stream_.write_all(data, deadline); });
}

std::size_t File::pread(std::span<std::byte> buffer, std::uint64_t offset, Deadline deadline) {
  return naming("pread", path_, [&] {
    // The kernel may return less than asked before the end of the file
    // (a read crossing a signal, some file systems): finish the job.
    std::size_t got = 0;
    while (got < buffer.size()) {
      std::size_t n = spindle::pread(fd(), buffer.subspan(got), offset + got, deadline);
      if (n == 0) break;
      got += n;
    }
    return got;
  });
}

void File::pwrite(std::span<const std::byte> data, std::uint64_t offset, Deadline deadline) {
  naming("pwrite", path_, [&] { spindle::pwrite(fd(), data, offset, deadline); });
}

std::uint64_t File::size(Deadline deadline) {
  return naming("stat", path_,
                [&] { return spindle::fstatx(fd(), STATX_SIZE, deadline).stx_size; });
}

void File::sync(Deadline deadline) {
  naming("fsync", path_, [&] { spindle::fsync(fd(), deadline); });
}

void File::sync_data(Deadline deadline) {
  naming("fdatasync", path_, [&] { spindle::fdatasync(fd(), deadline); });
}

void File::close() {
  naming("close", path_, [&] { stream_.close(); });
}

}  // namespace spindle
