// Buffered reading over any stream: lines, delimiters, exact counts, the
// whole rest.
#pragma once

#include <cstddef>
#include <cstring>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "spindle/io/loops.hpp"
#include "spindle/stream/stream.hpp"

namespace spindle {

struct ReaderOptions {
  // The buffer's first size: each refill asks the stream for up to this
  // many bytes.
  std::size_t buffer_size = 64 * 1024;
  // Longest line (or read_until piece) accepted, its delimiter not
  // counted. The buffer grows up to this (plus the delimiter) for a long
  // line and no further: memory stays bounded by
  // max(buffer_size, max_line + delimiter).
  std::size_t max_line = 1024 * 1024;
};

// Reads a stream through a buffer. Type-erased (it holds a StreamRef, so it
// is one class compiled once): the stream is reached through one indirect
// call per refill, and everything per byte (the memchr / memmem scans, the
// copies) runs on the buffer. The stream must outlive the reader; the
// reader does not close it.
//
// Every call that needs more bytes suspends the calling fiber in the
// stream's read_some (so it is a cancellation point, and cancel_after /
// move_on_after put a deadline on any sequence of calls). Errors of the
// stream propagate; a cancelled or failed read loses nothing that was
// already buffered. The string_views returned point into the buffer and
// stay valid until the next call on the reader. Not for two fibers at once.
class BufferedReader {
 public:
  // Reading `stream`, which must outlive the reader. (Temporaries are
  // refused: a reader never owns its stream.)
  template <ReadableStream S>
  explicit BufferedReader(S& stream, ReaderOptions options = {})
      : BufferedReader(StreamRef(stream), options) {}
  template <ReadableStream S>
  requires(!std::is_lvalue_reference_v<S>) BufferedReader(S&& stream, ReaderOptions options = {})
  = delete;
  BufferedReader(StreamRef stream, ReaderOptions options);
  BufferedReader(BufferedReader&&) noexcept = default;
  BufferedReader& operator=(BufferedReader&&) noexcept = default;
  ~BufferedReader();

  // The next line, without its "\n" and without a "\r" just before it
  // ("\r\n" line ends are stripped too). The last line of a stream that
  // does not end with "\n" is returned as it is. nullopt at end of stream.
  // A line longer than max_line throws std::system_error(EMSGSIZE,
  // "read_line: line longer than N bytes"); nothing is consumed, so the
  // bytes can still be had with read_some / read_exact.
  std::optional<std::string_view> read_line() {
    // The common case inline: the whole line is in the buffer.
    const char* from = buffer_.get() + begin_;
    const void* hit = scanned_ == 0 ? std::memchr(from, '\n', end_ - begin_) : nullptr;
    if (hit == nullptr) return read_line_slow();
    std::size_t length = static_cast<std::size_t>(static_cast<const char*>(hit) - from);
    if (length > options_.max_line) return read_line_slow();  // which throws
    begin_ += length + 1;
    if (length > 0 && from[length - 1] == '\r') --length;
    return std::string_view(from, length);
  }
  // The bytes up to and including the next `delimiter` (a byte or a
  // non-empty string); at end of stream what is left without it (so a
  // result that does not end with the delimiter is the last one); nullopt
  // when nothing is left. More than max_line bytes before the delimiter:
  // EMSGSIZE, as read_line.
  std::optional<std::string_view> read_until(char delimiter);
  std::optional<std::string_view> read_until(std::string_view delimiter);

  // Fills all of `buffer` (buffered bytes first, then straight from the
  // stream for a large rest). End of stream first: std::system_error
  // (ENODATA, "read_exact: end of stream after K of N bytes"); the K bytes
  // are at the front of `buffer`.
  void read_exact(std::span<std::byte> buffer);
  std::string read_exact(std::size_t n);
  // Up to buffer.size() bytes: what is buffered, or else one read of the
  // stream; 0 at end of stream. (A BufferedReader is a ReadableStream.)
  std::size_t read_some(std::span<std::byte> buffer);

  // Everything until end of stream, at most `limit` bytes: more throws
  // std::system_error(EMSGSIZE, "read_to_end: more than N bytes"). The
  // appending form keeps the first `limit` bytes in `out` then, and the
  // rest stays unread (in the reader or the stream).
  std::string read_to_end(std::size_t limit = 16 * 1024 * 1024);
  std::size_t read_to_end(std::string& out, std::size_t limit = 16 * 1024 * 1024);

  // Calls fn(std::string_view line) for each line (as read_line) until end
  // of stream; fn returns void (go on) or bool (false: stop), or calls
  // break_loop(). Returns the number of lines given to fn.
  template <class F>
  std::size_t each_line(F&& fn);

  // True when nothing is buffered and the stream has ended. May read (and
  // suspend) to find out; what it reads stays buffered.
  bool eof();
  // The bytes buffered now (no read), and dropping `n` of them.
  std::span<const std::byte> buffered() const noexcept {
    return {reinterpret_cast<const std::byte*>(buffer_.get()) + begin_, end_ - begin_};
  }
  void consume(std::size_t n) noexcept;
  // Reads once more into the buffer if it is empty; returns buffered().
  std::span<const std::byte> fill();

  const ReaderOptions& options() const noexcept { return options_; }
  std::size_t capacity() const noexcept { return capacity_; }

  class LineRange;
  // The lines as a range: for (std::string_view line : reader.lines()).
  // Leaving the loop early is fine; the rest stays in the reader.
  LineRange lines();

 private:
  // Scans for `delim` (length 1: memchr) from begin_, refilling as
  // needed; returns the offset past the delimiter, end_ at end of stream
  // (0 bytes: none left -> npos).
  std::size_t scan(std::string_view delim, const char* what);
  std::optional<std::string_view> read_line_slow();
  // Reads more into the buffer, first moving what is unread to its front
  // and growing it up to `limit` bytes if it is full. False at end of
  // stream.
  bool refill(std::size_t limit);
  std::string_view take(std::size_t to) noexcept {
    std::string_view s(buffer_.get() + begin_, to - begin_);
    begin_ = to;
    return s;
  }

  StreamRef stream_;
  ReaderOptions options_;
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;    // first unread byte
  std::size_t end_ = 0;      // past the last buffered byte
  std::size_t scanned_ = 0;  // bytes after begin_ known to hold no delimiter
  bool at_eof_ = false;      // the stream's read_some returned 0
};

class BufferedReader::LineRange {
 public:
  class iterator {
   public:
    using value_type = std::string_view;
    using difference_type = std::ptrdiff_t;
    iterator() noexcept = default;
    explicit iterator(BufferedReader* reader) : reader_(reader) { ++*this; }
    std::string_view operator*() const noexcept { return *line_; }
    iterator& operator++() {
      line_ = reader_->read_line();
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const noexcept { return !line_; }

   private:
    BufferedReader* reader_ = nullptr;
    std::optional<std::string_view> line_;
  };
  explicit LineRange(BufferedReader* reader) noexcept : reader_(reader) {}
  iterator begin() { return iterator(reader_); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  BufferedReader* reader_;
};

inline BufferedReader::LineRange BufferedReader::lines() {
  return LineRange(this);
}

template <class F>
std::size_t BufferedReader::each_line(F&& fn) {
  std::size_t count = 0;
  try {
    while (std::optional<std::string_view> line = read_line()) {
      ++count;
      if constexpr (std::is_void_v<std::invoke_result_t<F&, std::string_view>>) {
        fn(*line);
      } else {
        if (!static_cast<bool>(fn(*line))) break;
      }
    }
  } catch (const BreakLoop&) {
  }
  return count;
}

}  // namespace spindle
