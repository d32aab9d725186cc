// Tight loops over one descriptor (multishot on io_uring), zero-copy
// proxies, linked chains of operations, and sends from a buffer ring.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include "spindle/io/buffer_ring.hpp"
#include "spindle/io/result.hpp"

namespace spindle {

// Ends the innermost accept_loop / recv_loop / read_loop from inside its
// callback (or anything the callback calls): the loop returns normally.
// Not a std::exception; outside a loop it propagates like any exception.
class BreakLoop {
 public:
  const char* what() const noexcept { return "spindle::BreakLoop"; }
};
[[noreturn]] inline void break_loop() {
  throw BreakLoop();
}

namespace detail {

// A callback without its type: returns false to stop the loop.
template <class Arg>
struct LoopFn {
  void* object;
  bool (*call)(void* object, Arg arg);

  template <class F>
  static LoopFn of(F& f) {
    return {static_cast<void*>(&f), [](void* o, Arg arg) -> bool {
              F& fn = *static_cast<F*>(o);
              if constexpr (std::is_void_v<std::invoke_result_t<F&, Arg>>) {
                fn(arg);
                return true;
              } else {
                return static_cast<bool>(fn(arg));
              }
            }};
  }
};

std::size_t accept_loop(int fd, LoopFn<int> fn, Deadline deadline);
std::size_t receive_loop(int fd, BufferRing* ring, LoopFn<std::span<const std::byte>> fn,
                         bool socket, Deadline deadline);

}  // namespace detail

// Accepts connections on listening socket `fd` until the callback stops
// the loop: fn(int connection) may return void (go on) or bool (false:
// stop), or call break_loop(). The callback owns each connection fd
// (SOCK_CLOEXEC | SOCK_NONBLOCK); it usually spins a fiber for it. On
// io_uring one multishot accept feeds the loop (Linux 5.19); connections
// the kernel accepted but the loop did not deliver when it ends are
// closed. At most 64 wait in the loop: beyond that the multishot accept is
// paused and connections wait in the kernel's listen backlog. Returns the
// number of connections delivered. Errors (EBADF, EINVAL for a socket that
// does not listen ...) throw std::system_error("accept fd N").
template <class F>
std::size_t accept_loop(int fd, F&& fn, Deadline deadline = {}) {
  return detail::accept_loop(fd, detail::LoopFn<int>::of(fn), deadline);
}

// Receives from socket `fd` until end of stream (or the callback stops
// the loop) and calls fn(std::span<const std::byte> chunk) for each piece:
// the chunk is a buffer of `ring`, given back when fn returns (copy what
// must outlive the call). fn returns void or bool (false: stop), or calls
// break_loop(). On io_uring with a kernel-managed ring this is one
// multishot recv (Linux 6.0) whose completions queue in the loop, at most
// one per ring buffer; when every buffer is out, the kernel pauses and the
// loop re-arms it as buffers come back. Returns the bytes delivered.
// When the loop stops early, data the kernel had already received into
// other ring buffers is discarded with them: stop a recv_loop only when the
// rest of the stream does not matter (or use recv for the last part).
template <class F>
std::size_t recv_loop(int fd, BufferRing& ring, F&& fn, Deadline deadline = {}) {
  return detail::receive_loop(fd, &ring, detail::LoopFn<std::span<const std::byte>>::of(fn), true,
                              deadline);
}
// The same with reads, for pipes, FIFOs, character devices and files
// (IORING_OP_READ_MULTISHOT on Linux 6.7 for pollable descriptors; one
// read per buffer otherwise).
template <class F>
std::size_t read_loop(int fd, BufferRing& ring, F&& fn, Deadline deadline = {}) {
  return detail::receive_loop(fd, &ring, detail::LoopFn<std::span<const std::byte>>::of(fn), false,
                              deadline);
}
// Without a ring: one of 8 buffers of 16 KiB made for the call.
template <class F>
std::size_t recv_loop(int fd, F&& fn, Deadline deadline = {}) {
  return detail::receive_loop(fd, nullptr, detail::LoopFn<std::span<const std::byte>>::of(fn), true,
                              deadline);
}
template <class F>
std::size_t read_loop(int fd, F&& fn, Deadline deadline = {}) {
  return detail::receive_loop(fd, nullptr, detail::LoopFn<std::span<const std::byte>>::of(fn),
                              false, deadline);
}

// Moves everything from `from` to `to` until end of input, without copying
// through user space: splices through a pipe (directly when either side is
// a pipe). Returns the bytes moved.
std::size_t splice_loop(int from, int to, Deadline deadline = {});

// Two fibers splice each way between `a` and `b`; when one direction ends,
// the write side of its destination is shut down. Returns the bytes moved
// a -> b and b -> a. A failure or cancellation of either direction cancels
// the other (and is rethrown once both have stopped).
std::pair<std::size_t, std::size_t> two_way_proxy(int a, int b, Deadline deadline = {});

// Sends the data queued in send ring `ring` (BufferRing::push), in order,
// and returns the bytes sent. On kernels with send bundles (Linux 6.10) one
// SEND SQE takes as many queued buffers as the socket accepts; elsewhere
// (epoll, older kernels) it is one sendmsg of all queued buffers. Partial
// sends are completed. Buffers become free for push as they are sent.
std::size_t send_bundle(int fd, BufferRing& ring, Deadline deadline = {});

// One step of chain().
struct ChainOp {
  enum class Kind : std::uint8_t { write, send, splice };
  Kind kind = Kind::write;
  int fd = -1;      // write / send target; splice source
  int fd_out = -1;  // splice target
  std::span<const std::byte> data;
  std::size_t length = 0;       // splice: bytes to move
  std::int64_t offset_in = -1;  // splice: offset in the source (-1: its position)
  int flags = 0;                // send: MSG_* flags

  static ChainOp write(int fd, std::span<const std::byte> data) {
    return {Kind::write, fd, -1, data, data.size(), -1, 0};
  }
  static ChainOp send(int fd, std::span<const std::byte> data, int flags = 0) {
    return {Kind::send, fd, -1, data, data.size(), -1, flags};
  }
  static ChainOp splice(int fd_in, int fd_out, std::size_t length, std::int64_t offset_in = -1) {
    return {Kind::splice, fd_in, fd_out, {}, length, offset_in, 0};
  }
};

// Runs the steps in order as one call, each carried out completely (all of
// a write or send; all `length` bytes of a splice): on io_uring they are
// linked SQEs submitted together (up to 32; a longer chain runs in
// pieces), and a step the kernel leaves short is finished by hand before
// the rest continues; on epoll they run one after the other. Returns the
// bytes moved by all steps. Throws std::system_error naming the failing
// step ("chain step 2: splice fd 7"); ENODATA if a splice's input ended
// before `length` bytes.
std::size_t chain(std::span<const ChainOp> steps, Deadline deadline = {});
std::size_t chain(std::initializer_list<ChainOp> steps, Deadline deadline = {});

// Polyphony's splice_chunks: copies `src` to `dest` until end of input in
// chunks of up to `chunk_size` bytes, each framed by chunk_prefix(n) and
// chunk_postfix(n) (when set), the whole framed by `prefix` and `postfix`
// (HTTP chunked encoding: chunk_prefix = hex size + CRLF, chunk_postfix =
// CRLF, postfix = "0\r\n\r\n"). Each chunk is one chain (prefix write,
// splice, postfix write). Returns the data bytes moved (framing excluded).
struct SpliceChunks {
  std::string prefix;
  std::string postfix;
  std::function<std::string(std::size_t)> chunk_prefix;
  std::function<std::string(std::size_t)> chunk_postfix;
  std::size_t chunk_size = 64 * 1024;
};
std::size_t splice_chunks(int src, int dest, const SpliceChunks& framing, Deadline deadline = {});

}  // namespace spindle
