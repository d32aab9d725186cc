// Helpers shared by the stream tests.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "spindle/spindle.hpp"

namespace stream_test {

inline std::span<const std::byte> bytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// A Stream over memory: reads hand out `chunk` bytes at a time (so every
// scan straddles reads), writes append to `written` up to `write_chunk`
// bytes per call. Not fd-backed: copy() takes its buffered path.
struct MemoryStream {
  std::string data;
  std::size_t chunk = 1;
  std::size_t pos = 0;
  std::string written;
  std::size_t write_chunk = ~std::size_t{0};
  std::size_t reads = 0;
  std::size_t writes = 0;
  bool closed = false;

  std::size_t read_some(std::span<std::byte> buffer) {
    ++reads;
    std::size_t n = std::min({buffer.size(), chunk, data.size() - pos});
    std::memcpy(buffer.data(), data.data() + pos, n);
    pos += n;
    return n;
  }
  std::size_t write_some(std::span<const std::byte> in) {
    ++writes;
    std::size_t n = std::min(in.size(), write_chunk);
    written.append(reinterpret_cast<const char*>(in.data()), n);
    return n;
  }
  void close() { closed = true; }
};
static_assert(spindle::Stream<MemoryStream>);
static_assert(!spindle::VectoredStream<MemoryStream>);
static_assert(!spindle::FdBackedStream<MemoryStream>);
static_assert(spindle::Stream<spindle::FdStream>);
static_assert(spindle::VectoredStream<spindle::FdStream>);
static_assert(spindle::FdBackedStream<spindle::FdStream>);
static_assert(spindle::ReadableStream<spindle::BufferedReader>);
static_assert(!spindle::FdBackedStream<spindle::BufferedReader>);
static_assert(spindle::WritableStream<spindle::BufferedWriter>);

}  // namespace stream_test
