// read_file and write_file (atomic: a temporary file renamed over the
// target).
#include "spindle/fs/whole_file.hpp"

#include <unistd.h>

#include <atomic>
#include <string>

#include "fs/fs_error.hpp"
#include "io/io_internal.hpp"
#include "spindle/fiber/cancel.hpp"
#include "spindle/fs/file.hpp"
#include "spindle/io/ops.hpp"

namespace spindle {

using fs_detail::naming;

namespace {

std::filesystem::path temporary_beside(const std::filesystem::path& path) {
  static std::atomic<std::uint64_t> counter{0};
  std::string name = ".";
  name += path.filename().string();
  name += ".tmp-";
  name += std::to_string(::getpid());
  name += '-';
  name += std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
  return path.parent_path() / name;
}

void sync_directory_of(const std::filesystem::path& path) {
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  File d = File::open(dir, O_RDONLY | O_DIRECTORY);
  d.sync();
  d.close();
}

}  // namespace

std::string read_file(const std::filesystem::path& path, std::size_t limit, Deadline deadline) {
  return io_detail::timed(deadline, [&] {
    File file = File::open(path);
    std::string out;
    // The size is a hint (the file may change): one allocation when it holds.
    std::uint64_t size = file.size();
    out.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(size, limit)) + 1);
    naming("read_file", path, [&] {
      spindle::read_into(file.fd(), out,
                         {.max = std::max<std::size_t>(64 * 1024, out.capacity() - out.size()),
                          .limit = limit,
                          .until_eof = true});
    });
    return out;
  });
}

void write_file(const std::filesystem::path& path, std::span<const std::byte> data,
                WriteFileOptions options, Deadline deadline) {
  io_detail::timed(deadline, [&] {
    if (!options.atomic) {
      File file = File::create(path, options.mode);
      file.write_all(data);
      if (options.sync) file.sync();
      file.close();
      return;
    }
    std::filesystem::path temp = temporary_beside(path);
    File file = File::open(temp, O_WRONLY | O_CREAT | O_EXCL, options.mode);
    try {
      file.write_all(data);
      if (options.sync) file.sync();
      file.close();
      naming("rename", temp, [&] { spindle::rename(temp.c_str(), path.c_str()); });
    } catch (...) {
      // Also when cancelled: the temporary file must not stay behind.
      shield([&] {
        file = File();
        (void)nothrow::unlinkat(AT_FDCWD, temp.c_str());
      });
      throw;
    }
    if (options.sync) sync_directory_of(path);
  });
}

void write_file(const std::filesystem::path& path, std::string_view text, WriteFileOptions options,
                Deadline deadline) {
  write_file(path, std::as_bytes(std::span(text.data(), text.size())), options, deadline);
}

}  // namespace spindle
