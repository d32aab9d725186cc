// Buffered writing over any stream: small writes gathered, owned chunks
// queued without a copy, everything flushed with gather writes.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "spindle/stream/stream.hpp"

namespace spindle {

struct WriterOptions {
  // Small writes are copied into a buffer of this size; a write that does
  // not fit flushes first, and one at least this large goes out at once
  // (in the same gather write as what is queued), uncopied.
  std::size_t buffer_size = 64 * 1024;
  // Bytes of owned chunks (write(std::string&&)) that may wait besides the
  // buffer; beyond it the write flushes first. With buffer_size this bounds
  // the writer's memory: a slow reader makes write() wait, not grow.
  std::size_t max_queued = 1024 * 1024;
  // Where an error of the flush made by the destructor goes (the destructor
  // cannot throw). Empty: one line on stderr ("spindle: BufferedWriter
  // dropped N bytes: <error>").
  std::function<void(const std::system_error&)> on_drop_error;
};

// Writes a stream through a buffer. Type-erased like BufferedReader (a
// StreamRef): the stream must outlive the writer, which never closes it.
// Bytes reach the stream only on flush(), when the buffer is full, for a
// write too large to buffer, or in the destructor. A flush sends everything
// queued (the buffer and owned chunks, in order) with the stream's
// writev_some (one system call for all of it on an fd; as many as it takes
// for a stream without gather writes) and returns when the stream has
// taken all of it.
//
// write() and flush() suspend the calling fiber when they reach the stream
// (cancellation points; a deadline is a cancel_after / move_on_after around
// them). If a flush fails or is cancelled, the bytes the stream took are
// gone from the queue and the rest stays queued: flush() again to retry.
// Not for two fibers at once.
class BufferedWriter {
 public:
  // Writing `stream`, which must outlive the writer. (Temporaries are
  // refused: a writer never owns its stream.)
  template <WritableStream S>
  explicit BufferedWriter(S& stream, WriterOptions options = {})
      : BufferedWriter(StreamRef(stream), std::move(options)) {}
  template <WritableStream S>
  requires(!std::is_lvalue_reference_v<S>) BufferedWriter(S&& stream, WriterOptions options = {})
  = delete;
  BufferedWriter(StreamRef stream, WriterOptions options);
  BufferedWriter(BufferedWriter&&) noexcept = default;
  BufferedWriter& operator=(BufferedWriter&&) = delete;
  // Flushes what is queued; never throws. A failure (or a cancelled fiber,
  // or no fiber at all) goes to WriterOptions::on_drop_error with the
  // bytes that were lost; call flush() first to see errors as exceptions.
  ~BufferedWriter();

  // Copies `data` into the buffer (flushing first if it does not fit; a
  // piece at least buffer_size long is written at once without a copy).
  void write(std::span<const std::byte> data);
  void write(std::string_view text) { write(std::as_bytes(std::span(text.data(), text.size()))); }
  void write(const char* text) { write(std::string_view(text)); }
  // Queues an owned chunk without copying it (for large pieces; a small one
  // is copied into the buffer, which is cheaper than a chunk).
  void write(std::string&& chunk);
  // write_some for the WritableStream concept (a BufferedWriter can be the
  // target of copy()): write(data), returns data.size().
  std::size_t write_some(std::span<const std::byte> data) {
    write(data);
    return data.size();
  }

  // Sends everything queued; returns when the stream has taken it.
  void flush();
  // Bytes queued and not yet written.
  std::size_t pending() const noexcept { return used_ - head_ + chunk_bytes_; }
  const WriterOptions& options() const noexcept { return options_; }

 private:
  // What is queued, in order: owned chunks interleave with stretches of the
  // buffer. The buffer bytes after the last stretch (the tail) come last.
  struct Piece {
    std::string chunk;       // an owned chunk (empty for a stretch)
    std::size_t offset = 0;  // first unwritten byte (in the chunk or the buffer)
    std::size_t length = 0;  // unwritten bytes
    bool owned = false;
  };
  // Writes everything queued and then `extra` (uncopied), completing
  // short writes.
  void flush_with(std::span<const std::byte> extra);
  // Drops the first `n` written bytes from the queue; returns those of them
  // that went beyond the queue (into `extra`).
  std::size_t advance(std::size_t n) noexcept;
  void report_drop(const std::system_error& error) const noexcept;

  StreamRef stream_;
  WriterOptions options_;
  std::unique_ptr<std::byte[]> buffer_;
  std::size_t used_ = 0;         // bytes in buffer_ (written ones included)
  std::size_t head_ = 0;         // buffer bytes already written
  std::size_t stretched_ = 0;    // buffer bytes covered by pieces (or written)
  std::size_t chunk_bytes_ = 0;  // unwritten bytes of owned chunks
  std::vector<Piece> pieces_;
  std::size_t first_ = 0;   // pieces_[first_] is the oldest unwritten piece
  std::vector<iovec> iov_;  // scratch for the gather writes
};

}  // namespace spindle
