#include "spindle/net/socket.hpp"

#include <unistd.h>

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

void Socket::close() {
  if (fd_ < 0) return;
  spindle::close(std::exchange(fd_, -1));
}

void Socket::reset() noexcept {
  if (fd_ < 0) return;
  unregister_fd(fd_);
  ::close(std::exchange(fd_, -1));
}

SocketAddress Socket::local_address() const {
  return query_name(fd_, false);
}
SocketAddress Socket::peer_address() const {
  return query_name(fd_, true);
}

int Socket::take_error() const {
  return spindle::getsockopt<int>(fd_, SOL_SOCKET, SO_ERROR);
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

}  // namespace spindle
