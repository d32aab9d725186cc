// BufferedReader: memchr / memmem scans over one buffer that grows only
// for long lines, up to its limit.
#include "spindle/stream/buffered_reader.hpp"

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

namespace spindle {

namespace {

constexpr std::size_t kNone = ~std::size_t{0};

[[noreturn]] void throw_too_long(const char* what, std::size_t max) {
  throw std::system_error(
      EMSGSIZE, std::system_category(),
      std::string(what) + ": line longer than " + std::to_string(max) + " bytes");
}

}  // namespace

BufferedReader::BufferedReader(StreamRef stream, ReaderOptions options)
    : stream_(stream), options_(options) {
  options_.buffer_size = std::max<std::size_t>(options_.buffer_size, 16);
  capacity_ = options_.buffer_size;
  buffer_ = std::make_unique_for_overwrite<char[]>(capacity_);
}

BufferedReader::~BufferedReader() = default;

bool BufferedReader::refill(std::size_t limit) {
  if (begin_ > 0) {
    // What is unread (a partial line, usually short) moves to the front.
    if (end_ > begin_) std::memmove(buffer_.get(), buffer_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == capacity_ && capacity_ < limit) {
    std::size_t grown = std::min(std::max(capacity_ * 2, capacity_ + 1), limit);
    auto bigger = std::make_unique_for_overwrite<char[]>(grown);
    std::memcpy(bigger.get(), buffer_.get(), end_);
    buffer_ = std::move(bigger);
    capacity_ = grown;
  }
  std::size_t n =
      stream_.read_some({reinterpret_cast<std::byte*>(buffer_.get()) + end_, capacity_ - end_});
  if (n == 0) {
    at_eof_ = true;
    return false;
  }
  at_eof_ = false;
  end_ += n;
  return true;
}

std::size_t BufferedReader::scan(std::string_view delim, const char* what) {
  const std::size_t dlen = delim.size();
  // Unread bytes that hold no delimiter and prove the piece too long.
  const std::size_t too_many = options_.max_line + dlen;
  for (;;) {
    std::size_t from = begin_ + scanned_;
    if (end_ > from) {
      const char* base = buffer_.get();
      const void* hit = dlen == 1 ? std::memchr(base + from, delim[0], end_ - from)
                                  : ::memmem(base + from, end_ - from, delim.data(), dlen);
      if (hit != nullptr) {
        auto at = static_cast<std::size_t>(static_cast<const char*>(hit) - base);
        // A buffer larger than the limit may hold a whole line that is too long.
        if (at - begin_ > options_.max_line) throw_too_long(what, options_.max_line);
        scanned_ = 0;
        return at + dlen;
      }
      // A delimiter may straddle this read and the next one.
      std::size_t unread = end_ - begin_;
      scanned_ = unread >= dlen - 1 ? unread - (dlen - 1) : 0;
    }
    if (end_ - begin_ >= too_many) throw_too_long(what, options_.max_line);
    if (!refill(std::max(too_many, options_.buffer_size))) {
      scanned_ = 0;
      return end_ > begin_ ? end_ : kNone;
    }
  }
}

std::optional<std::string_view> BufferedReader::read_line_slow() {
  std::size_t to = scan("\n", "read_line");
  if (to == kNone) return std::nullopt;
  std::string_view line = take(to);
  if (!line.empty() && line.back() == '\n') {
    line.remove_suffix(1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  }
  return line;
}

std::optional<std::string_view> BufferedReader::read_until(char delimiter) {
  std::size_t to = scan(std::string_view(&delimiter, 1), "read_until");
  if (to == kNone) return std::nullopt;
  return take(to);
}

std::optional<std::string_view> BufferedReader::read_until(std::string_view delimiter) {
  if (delimiter.empty()) {
    throw std::system_error(EINVAL, std::system_category(), "read_until: empty delimiter");
  }
  std::size_t to = scan(delimiter, "read_until");
  if (to == kNone) return std::nullopt;
  return take(to);
}

void BufferedReader::consume(std::size_t n) noexcept {
  begin_ += std::min(n, end_ - begin_);
  scanned_ = 0;
}

std::span<const std::byte> BufferedReader::fill() {
  if (begin_ == end_) refill(capacity_);
  return buffered();
}

bool BufferedReader::eof() {
  if (begin_ < end_) return false;
  if (at_eof_) return true;
  return !refill(capacity_);
}

std::size_t BufferedReader::read_some(std::span<std::byte> buffer) {
  if (buffer.empty()) return 0;
  if (begin_ == end_) {
    // A large read bypasses the buffer (one copy fewer).
    if (buffer.size() >= capacity_) {
      std::size_t n = stream_.read_some(buffer);
      at_eof_ = n == 0;
      return n;
    }
    if (!refill(capacity_)) return 0;
  }
  std::size_t n = std::min(buffer.size(), end_ - begin_);
  std::memcpy(buffer.data(), buffer_.get() + begin_, n);
  consume(n);
  return n;
}

void BufferedReader::read_exact(std::span<std::byte> buffer) {
  std::size_t got = 0;
  while (got < buffer.size()) {
    std::size_t n = read_some(buffer.subspan(got));
    if (n == 0) {
      throw std::system_error(ENODATA, std::system_category(),
                              "read_exact: end of stream after " + std::to_string(got) + " of " +
                                  std::to_string(buffer.size()) + " bytes");
    }
    got += n;
  }
}

std::string BufferedReader::read_exact(std::size_t n) {
  std::string out(n, '\0');
  read_exact(std::as_writable_bytes(std::span(out.data(), out.size())));
  return out;
}

std::size_t BufferedReader::read_to_end(std::string& out, std::size_t limit) {
  std::size_t added = 0;
  for (;;) {
    if (begin_ < end_) {
      std::size_t n = std::min(end_ - begin_, limit - added);
      out.append(buffer_.get() + begin_, n);
      consume(n);
      added += n;
    }
    if (added == limit) {
      // Full: only the end of the stream may come now. A byte that comes
      // instead stays buffered.
      if (begin_ < end_ || refill(capacity_)) {
        throw std::system_error(EMSGSIZE, std::system_category(),
                                "read_to_end: more than " + std::to_string(limit) + " bytes");
      }
      return added;
    }
    // Straight into `out`, growing it as a vector would.
    std::size_t size = out.size();
    std::size_t want = std::min(limit - added, std::max(capacity_, size));
    out.resize(size + want);
    std::size_t n;
    try {
      n = stream_.read_some(std::as_writable_bytes(std::span(out.data() + size, want)));
    } catch (...) {
      out.resize(size);
      throw;
    }
    out.resize(size + n);
    if (n == 0) {
      at_eof_ = true;
      return added;
    }
    added += n;
  }
}

std::string BufferedReader::read_to_end(std::size_t limit) {
  std::string out;
  read_to_end(out, limit);
  return out;
}

}  // namespace spindle
