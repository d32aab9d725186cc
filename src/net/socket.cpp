#include "spindle/net/socket.hpp"

#include <cerrno>
#include <string>
#include <system_error>

namespace spindle {
namespace {

SocketAddress query_name(int fd, bool peer) {
  SocketAddress a;
  socklen_t length = SocketAddress::capacity();
  int rc = peer ? ::getpeername(fd, a.data(), &length) : ::getsockname(fd, a.data(), &length);
  if (rc != 0) {
    throw std::system_error(
        errno, std::system_category(),
        std::string(peer ? "getpeername" : "getsockname") + " fd " + std::to_string(fd));
  }
  a.resize(length);
  return a;
}

}  // namespace

SocketAddress Socket::local_address() const {
  return query_name(fd(), false);
}
SocketAddress Socket::peer_address() const {
  return query_name(fd(), true);
}

int Socket::take_error() const {
  return spindle::getsockopt<int>(fd(), SOL_SOCKET, SO_ERROR);
}

std::size_t StreamSocket::read_exact(std::span<std::byte> buffer, Deadline deadline) {
  std::size_t done = 0;
  while (done < buffer.size()) {
    std::size_t n = spindle::recv(fd(), buffer.subspan(done), 0, deadline);
    if (n == 0) break;
    done += n;
  }
  return done;
}

std::size_t StreamSocket::writev_some(std::span<const iovec> buffers, Deadline deadline) {
  msghdr m{};
  m.msg_iov = const_cast<iovec*>(buffers.data());
  m.msg_iovlen = buffers.size();
  return spindle::sendmsg(fd(), m, 0, deadline);
}

}  // namespace spindle
