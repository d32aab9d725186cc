// StreamRef's checked calls and copy() through a buffer.
#include "spindle/stream/stream.hpp"

#include <cerrno>
#include <memory>
#include <system_error>

namespace spindle {

std::size_t StreamRef::read_some(std::span<std::byte> buffer) const {
  if (read_ == nullptr) {
    throw std::system_error(EBADF, std::system_category(), "read_some: the stream cannot read");
  }
  return read_(object_, buffer);
}

std::size_t StreamRef::writev_some(std::span<const iovec> buffers) const {
  if (writev_ == nullptr) {
    throw std::system_error(EBADF, std::system_category(), "write_some: the stream cannot write");
  }
  return writev_(object_, buffers);
}

namespace detail {

std::size_t copy_buffered(StreamRef from, StreamRef to) {
  // On the heap: a fiber's stack is 128 KiB by default.
  constexpr std::size_t kChunk = 64 * 1024;
  auto buffer = std::make_unique_for_overwrite<std::byte[]>(kChunk);
  std::size_t total = 0;
  for (;;) {
    std::size_t n = from.read_some({buffer.get(), kChunk});
    if (n == 0) return total;
    std::span<const std::byte> rest(buffer.get(), n);
    while (!rest.empty()) rest = rest.subspan(to.write_some(rest));
    total += n;
  }
}

}  // namespace detail

}  // namespace spindle
