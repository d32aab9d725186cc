// BufferedWriter: a copy buffer plus owned chunks, flushed by gather writes.
#include "spindle/stream/buffered_writer.hpp"

#include <climits>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>

namespace spindle {

namespace {

// Owned chunks up to this size are copied into the buffer instead: a copy
// of a few KiB costs less than a Piece and an iovec.
constexpr std::size_t kCopyBelow = 4096;

}  // namespace

BufferedWriter::BufferedWriter(StreamRef stream, WriterOptions options)
    : stream_(stream), options_(std::move(options)) {
  options_.buffer_size = std::max<std::size_t>(options_.buffer_size, 16);
  buffer_ = std::make_unique_for_overwrite<std::byte[]>(options_.buffer_size);
}

BufferedWriter::~BufferedWriter() {
  if (!buffer_ || pending() == 0) return;  // moved from, or nothing to do
  try {
    flush();
  } catch (const std::system_error& e) {
    report_drop(e);
  } catch (const std::exception& e) {
    // No fiber to write from (std::logic_error), or the stream's own error.
    report_drop(std::system_error(EINVAL, std::system_category(), e.what()));
  } catch (...) {
    // Cancelled / TimedOut: the fiber was cancelled while it flushed.
    report_drop(std::system_error(ECANCELED, std::system_category(), "flush"));
  }
}

void BufferedWriter::report_drop(const std::system_error& error) const noexcept {
  try {
    if (options_.on_drop_error) {
      options_.on_drop_error(error);
      return;
    }
  } catch (...) {
    // The handler must not throw; nobody is left to tell.
    return;
  }
  std::fprintf(stderr, "spindle: BufferedWriter dropped %zu bytes: %s\n", pending(), error.what());
}

void BufferedWriter::write(std::span<const std::byte> data) {
  if (data.size() >= options_.buffer_size) {
    flush_with(data);
    return;
  }
  if (options_.buffer_size - used_ < data.size()) flush();
  std::memcpy(buffer_.get() + used_, data.data(), data.size());
  used_ += data.size();
}

void BufferedWriter::write(std::string&& chunk) {
  if (chunk.size() < kCopyBelow) {
    write(std::string_view(chunk));
    return;
  }
  if (chunk.size() > options_.max_queued) {
    flush_with(std::as_bytes(std::span(chunk.data(), chunk.size())));
    return;
  }
  if (chunk_bytes_ + chunk.size() > options_.max_queued) flush();
  if (used_ > stretched_) {
    pieces_.push_back({std::string(), stretched_, used_ - stretched_, false});
    stretched_ = used_;
  }
  chunk_bytes_ += chunk.size();
  std::size_t length = chunk.size();
  pieces_.push_back({std::move(chunk), 0, length, true});
}

void BufferedWriter::flush() {
  flush_with({});
}

void BufferedWriter::flush_with(std::span<const std::byte> extra) {
  std::size_t extra_done = 0;
  for (;;) {
    iov_.clear();
    for (std::size_t i = first_; i < pieces_.size() && iov_.size() < IOV_MAX; ++i) {
      const Piece& p = pieces_[i];
      const std::byte* base =
          p.owned ? reinterpret_cast<const std::byte*>(p.chunk.data()) : buffer_.get();
      iov_.push_back({const_cast<std::byte*>(base + p.offset), p.length});
    }
    bool all_pieces = first_ + iov_.size() == pieces_.size();
    if (all_pieces && used_ > stretched_ && iov_.size() < IOV_MAX) {
      iov_.push_back({buffer_.get() + stretched_, used_ - stretched_});
    }
    if (all_pieces && extra_done < extra.size() && iov_.size() < IOV_MAX) {
      iov_.push_back(
          {const_cast<std::byte*>(extra.data() + extra_done), extra.size() - extra_done});
    }
    if (iov_.empty()) break;
    std::size_t n = stream_.writev_some(iov_);
    extra_done += advance(n);
  }
  // Everything is out: start the buffer over.
  used_ = head_ = stretched_ = 0;
  pieces_.clear();
  first_ = 0;
}

std::size_t BufferedWriter::advance(std::size_t n) noexcept {
  while (n > 0 && first_ < pieces_.size()) {
    Piece& p = pieces_[first_];
    std::size_t k = std::min(n, p.length);
    p.offset += k;
    p.length -= k;
    n -= k;
    if (p.owned) {
      chunk_bytes_ -= k;
    } else {
      head_ += k;
    }
    if (p.length > 0) return 0;
    p.chunk = std::string();  // give the chunk's memory back now
    ++first_;
  }
  std::size_t tail = used_ - stretched_;
  std::size_t k = std::min(n, tail);
  stretched_ += k;
  head_ += k;
  return n - k;
}

}  // namespace spindle
