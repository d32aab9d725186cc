// Socket: an owned socket descriptor with the calls every kind shares, and
// StreamSocket: the byte-stream calls of TCP and Unix stream sockets.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <span>

#include "spindle/io/ops.hpp"
#include "spindle/io/result.hpp"
#include "spindle/net/address.hpp"
#include "spindle/stream/fd_stream.hpp"

namespace spindle {

// Owns one socket descriptor (SOCK_CLOEXEC | SOCK_NONBLOCK, as every
// spindle socket is) and closes it when destroyed (as FdStream does: never
// throws). Movable, not copyable. One object is used by
// one fiber at a time; two fibers may read and write the same socket
// concurrently (one each), as the kernel allows.
class Socket {
 public:
  Socket() noexcept = default;
  // Takes ownership of `fd`.
  explicit Socket(int fd) noexcept : fd_(fd) {}

  int fd() const noexcept { return fd_.fd(); }
  bool is_open() const noexcept { return fd_.is_open(); }
  explicit operator bool() const noexcept { return is_open(); }
  // Gives the descriptor up without closing it.
  int release() noexcept { return fd_.release(); }

  // Closes through the io layer (not a cancellation point; throws
  // std::system_error naming the fd, though the fd is closed regardless).
  // Closing a closed socket does nothing.
  void close() { fd_.close(); }

  // The address the socket is bound to (getsockname) and the connected
  // peer's (getpeername). Throw std::system_error ("getpeername fd 5:
  // Transport endpoint is not connected"). Never suspend.
  SocketAddress local_address() const;
  SocketAddress peer_address() const;

  // SO_ERROR, cleared by reading it: the pending error of the socket, or 0.
  int take_error() const;

 private:
  FdStream fd_;  // owns the descriptor (moves, closes)
};

// The byte-stream calls of a connected TCP or Unix stream socket: a
// Stream, VectoredStream and FdBackedStream (stream/stream.hpp), so
// BufferedReader, BufferedWriter, copy() and splice_loop work on it. Each
// read or write suspends the fiber until the kernel is done and takes a
// Deadline (spindle::TimedOut when it passes); each is a cancellation
// point; errors throw std::system_error naming the call and the fd ("send
// fd 7: Connection reset by peer", "send fd 7: Broken pipe": sends use
// MSG_NOSIGNAL, so a closed peer never raises SIGPIPE).
class StreamSocket : public Socket {
 public:
  using Socket::Socket;

  // One read: up to buffer.size() bytes; 0 at end of stream.
  std::size_t read_some(std::span<std::byte> buffer, Deadline deadline = {}) {
    return spindle::recv(fd(), buffer, 0, deadline);
  }
  // Reads exactly buffer.size() bytes; returns fewer only at end of stream.
  std::size_t read_exact(std::span<std::byte> buffer, Deadline deadline = {});
  // One send: returns how much the kernel took (at least 1 byte).
  std::size_t write_some(std::span<const std::byte> data, Deadline deadline = {}) {
    return spindle::send_some(fd(), data, 0, deadline);
  }
  // One gather send (sendmsg), possibly short.
  std::size_t writev_some(std::span<const iovec> buffers, Deadline deadline = {});
  // Sends all of `data`.
  void write_all(std::span<const std::byte> data, Deadline deadline = {}) {
    spindle::send(fd(), data, 0, deadline);
  }
  // Sends all of several buffers (one sendmsg when the kernel takes all).
  std::size_t writev_all(std::span<const iovec> buffers, Deadline deadline = {}) {
    return spindle::sendv(fd(), buffers, deadline);
  }
  // SHUT_WR (the default: the peer reads end of stream), SHUT_RD or SHUT_RDWR.
  void shutdown(int how = SHUT_WR) { spindle::shutdown(fd(), how); }
};

}  // namespace spindle
