// Unix stream sockets: UnixStream (with descriptor passing), UnixListener,
// socketpair().
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <utility>

#include "spindle/net/address.hpp"
#include "spindle/net/listener.hpp"
#include "spindle/net/socket.hpp"

namespace spindle {

// A connected Unix stream socket. Reads, writes and shutdown are
// StreamSocket's; it can also carry descriptors (SCM_RIGHTS).
class UnixStream : public StreamSocket {
 public:
  using StreamSocket::StreamSocket;

  // Connects to a listening socket at a path or abstract name. Throws
  // std::system_error ("connect /run/x.sock: No such file or directory").
  static UnixStream connect(const SocketAddress& address, Deadline deadline = {});

  // Sends `data` (not empty) with `fds` attached (at most kMaxPassedFds);
  // the descriptors stay open here. All of `data` is sent; the
  // descriptors go with its first byte.
  void send_fds(std::span<const std::byte> data, std::span<const int> fds, Deadline deadline = {}) {
    spindle::send_fds(fd(), data, fds, deadline);
  }
  // Receives data and up to fds.size() descriptors (O_CLOEXEC), owned by
  // the caller. More descriptors than fit: all are closed, EMSGSIZE.
  ReceivedFds recv_fds(std::span<std::byte> buffer, std::span<int> fds, Deadline deadline = {}) {
    return spindle::recv_fds(fd(), buffer, fds, deadline);
  }
};

// A connected pair of Unix stream sockets (socketpair(2)): for talking to
// another fiber, thread or a child process. Throws std::system_error.
std::pair<UnixStream, UnixStream> socketpair();

// A listening Unix stream socket. A path's socket file is created by
// bind() and removed when the listener is closed or destroyed.
class UnixListener : public Socket {
 public:
  UnixListener() noexcept = default;
  UnixListener(UnixListener&& other) noexcept;
  UnixListener& operator=(UnixListener&& other) noexcept;
  ~UnixListener();

  // Binds to a path or abstract name and listens. An existing file at the
  // path makes it fail with EADDRINUSE (remove stale sockets first).
  // ListenOptions' reuse flags do not apply to Unix sockets.
  static UnixListener bind(const SocketAddress& address, ListenOptions options = {});

  UnixStream accept(Deadline deadline = {});

  // As TcpListener::accept_loop: fn(UnixStream), backoff on EMFILE/ENFILE.
  template <class F>
  std::size_t accept_loop(F&& fn, Deadline deadline = {}) {
    auto adapt = [&fn](int connection) -> decltype(auto) { return fn(UnixStream(connection)); };
    return detail::resilient_accept_loop(fd(), options_, detail::LoopFn<int>::of(adapt), deadline);
  }

  // Closes the socket and removes its file.
  void close();

 private:
  UnixListener(int fd, SocketAddress address, ListenOptions options) noexcept
      : Socket(fd), address_(std::move(address)), options_(std::move(options)) {}
  void remove_file() noexcept;
  SocketAddress address_;
  ListenOptions options_;
};

}  // namespace spindle
