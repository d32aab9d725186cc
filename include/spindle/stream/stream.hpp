// The byte-stream concept that sockets, pipes, files and TLS satisfy, a
// type-erased reference to one, and copy(from, to).
#pragma once

#include <sys/uio.h>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <memory>
#include <span>
#include <type_traits>

#include "spindle/io/loops.hpp"

namespace spindle {

// Something bytes can be read from, a few at a time: s.read_some(buffer)
// reads at least one byte and at most buffer.size() (suspending the fiber
// until some are there), and returns 0 only at end of stream. Errors are
// std::system_error naming the operation; cancellation and deadlines are
// the fiber layer's (Cancelled, TimedOut), not errors.
template <class S>
concept ReadableStream = requires(S& s, std::span<std::byte> buffer) {
  { s.read_some(buffer) } -> std::same_as<std::size_t>;
};

// Something bytes can be written to: s.write_some(data) writes at least one
// byte of a non-empty `data` and returns how many (possibly fewer than
// data.size(): write_all finishes the job).
template <class S>
concept WritableStream = requires(S& s, std::span<const std::byte> data) {
  { s.write_some(data) } -> std::same_as<std::size_t>;
};

// A two-way byte stream with an end: read_some, write_some and close(). A
// closed stream's read_some and write_some throw std::system_error (EBADF).
template <class S>
concept Stream = ReadableStream<S> && WritableStream<S> && requires(S& s) {
  s.close();
};

// A writable stream that can also write several buffers in one call
// (s.writev_some(iovecs) -> bytes written, possibly short). BufferedWriter
// uses it to flush queued chunks with one system call.
template <class S>
concept VectoredStream = WritableStream<S> && requires(S& s, std::span<const iovec> buffers) {
  { s.writev_some(buffers) } -> std::same_as<std::size_t>;
};

// A stream whose bytes are exactly those of a descriptor: s.fd() returns
// it. Only such streams may be spliced (copy() and splice_loop move their
// bytes in the kernel). A stream that transforms or buffers its bytes (TLS,
// BufferedReader) must not offer fd().
template <class S>
concept FdBackedStream = requires(const S& s) {
  { s.fd() } -> std::same_as<int>;
};

// Writes all of `data`, calling write_some until it is taken.
template <WritableStream S>
void write_all(S& stream, std::span<const std::byte> data) {
  while (!data.empty()) data = data.subspan(stream.write_some(data));
}

// A non-owning, type-erased reference to a stream: two function pointers
// and the object's address, so BufferedReader and BufferedWriter are plain
// classes (compiled once) that work over any stream. A call through it is
// one indirect call per read or write system call, nothing per byte. The
// stream must outlive the reference. Either side may be absent (a
// reference made from a ReadableStream cannot write: EBADF).
class StreamRef {
 public:
  StreamRef() noexcept = default;
  template <class S>
  requires((ReadableStream<S> ||
            WritableStream<S>)&&!std::is_same_v<std::remove_cv_t<S>, StreamRef>)
      StreamRef(S& stream)
  noexcept  // NOLINT: implicit, like a reference
      : object_(static_cast<void*>(std::addressof(stream))) {
    if constexpr (ReadableStream<S>) {
      read_ = [](void* o, std::span<std::byte> buffer) -> std::size_t {
        return static_cast<S*>(o)->read_some(buffer);
      };
    }
    if constexpr (VectoredStream<S>) {
      writev_ = [](void* o, std::span<const iovec> buffers) -> std::size_t {
        return static_cast<S*>(o)->writev_some(buffers);
      };
    } else if constexpr (WritableStream<S>) {
      // One buffer per call: the first non-empty one.
      writev_ = [](void* o, std::span<const iovec> buffers) -> std::size_t {
        for (const iovec& v : buffers) {
          if (v.iov_len == 0) continue;
          return static_cast<S*>(o)->write_some(
              {static_cast<const std::byte*>(v.iov_base), v.iov_len});
        }
        return 0;
      };
    }
  }

  bool readable() const noexcept { return read_ != nullptr; }
  bool writable() const noexcept { return writev_ != nullptr; }

  // The stream's read_some. Throws std::system_error (EBADF) if it cannot read.
  std::size_t read_some(std::span<std::byte> buffer) const;
  // The stream's writev_some (or write_some of the first non-empty buffer).
  // Throws std::system_error (EBADF) if it cannot write.
  std::size_t writev_some(std::span<const iovec> buffers) const;
  std::size_t write_some(std::span<const std::byte> data) const {
    iovec v{const_cast<std::byte*>(data.data()), data.size()};
    return writev_some({&v, 1});
  }

 private:
  void* object_ = nullptr;
  std::size_t (*read_)(void*, std::span<std::byte>) = nullptr;
  std::size_t (*writev_)(void*, std::span<const iovec>) = nullptr;
};

namespace detail {
// copy() through a user-space buffer of 64 KiB (allocated per call).
std::size_t copy_buffered(StreamRef from, StreamRef to);
}  // namespace detail

// Copies everything from `from` to `to` until `from` ends; returns the bytes
// copied. When both are FdBackedStreams the bytes move in the kernel
// (splice_loop: the descriptors must be ones splice(2) accepts: pipes,
// sockets, regular files); otherwise through a 64 KiB buffer. Suspends the
// fiber; throws what the streams' calls throw. Copying from a
// BufferedReader delivers what it has buffered first.
template <ReadableStream From, WritableStream To>
std::size_t copy(From& from, To& to) {
  if constexpr (FdBackedStream<From> && FdBackedStream<To>) {
    return splice_loop(from.fd(), to.fd());
  } else {
    return detail::copy_buffered(StreamRef(from), StreamRef(to));
  }
}

}  // namespace spindle
