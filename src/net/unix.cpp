#include "spindle/net/unix.hpp"

#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

namespace spindle {

UnixStream UnixStream::connect(const SocketAddress& address, Deadline deadline) {
  if (!address.is_unix()) {
    throw std::system_error(EAFNOSUPPORT, std::system_category(),
                            "UnixStream::connect " + address.to_string() + ": not a Unix address");
  }
  UnixStream s(spindle::socket(AF_UNIX, SOCK_STREAM));
  try {
    spindle::connect(s.fd(), address.data(), address.size(), deadline);
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), "connect " + address.to_string());
  }
  return s;
}

std::pair<UnixStream, UnixStream> socketpair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::system_error(errno, std::system_category(), "socketpair(AF_UNIX, SOCK_STREAM)");
  }
  return {UnixStream(fds[0]), UnixStream(fds[1])};
}

UnixListener::UnixListener(UnixListener&& other) noexcept
    : Socket(std::move(other)),
      address_(std::exchange(other.address_, SocketAddress())),
      options_(std::move(other.options_)) {}

UnixListener& UnixListener::operator=(UnixListener&& other) noexcept {
  if (this != &other) {
    remove_file();
    Socket::operator=(std::move(other));
    address_ = std::exchange(other.address_, SocketAddress());
    options_ = std::move(other.options_);
  }
  return *this;
}

UnixListener::~UnixListener() {
  remove_file();
}

UnixListener UnixListener::bind(const SocketAddress& address, ListenOptions options) {
  if (!address.is_unix() || address.unix_name().empty()) {
    throw std::system_error(
        EAFNOSUPPORT, std::system_category(),
        "UnixListener::bind " + address.to_string() + ": not a Unix path or abstract name");
  }
  Socket s(spindle::socket(AF_UNIX, SOCK_STREAM));
  try {
    spindle::bind(s.fd(), address.data(), address.size());
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), "UnixListener::bind " + address.to_string());
  }
  // From here on the file is ours: the listener removes it, even if listen fails.
  UnixListener l(s.release(), address, std::move(options));
  try {
    spindle::listen(l.fd(), l.options_.backlog);
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), "UnixListener::listen " + address.to_string());
  }
  return l;
}

UnixStream UnixListener::accept(Deadline deadline) {
  return UnixStream(spindle::accept(fd(), deadline));
}

void UnixListener::close() {
  remove_file();
  Socket::close();
}

void UnixListener::remove_file() noexcept {
  if (address_.is_unix() && !address_.is_abstract() && !address_.unix_name().empty()) {
    char path[sizeof(sockaddr_un::sun_path) + 1] = {};
    std::string_view name = address_.unix_name();
    name.copy(path, sizeof(path) - 1);
    ::unlink(path);
  }
  address_ = SocketAddress();
}

}  // namespace spindle
