// Helpers shared by the io tests.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "spindle/spindle.hpp"

namespace io_test {

inline std::span<const std::byte> bytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

inline std::string text(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// A connected AF_UNIX stream pair, non-blocking and close-on-exec.
struct SocketPair {
  int a = -1;
  int b = -1;
};
inline SocketPair socket_pair(int type = SOCK_STREAM) {
  int fds[2];
  if (::socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::system_error(errno, std::system_category(), "socketpair");
  }
  return {fds[0], fds[1]};
}

inline void close_all(std::initializer_list<int> fds) {
  for (int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
}

// A TCP listener on 127.0.0.1 with a kernel-chosen port (spindle ops).
struct Listener {
  int fd = -1;
  sockaddr_in address{};
};
inline Listener tcp_listener(int backlog = 128) {
  Listener l;
  l.fd = spindle::socket(AF_INET, SOCK_STREAM);
  spindle::setsockopt(l.fd, SOL_SOCKET, SO_REUSEADDR, 1);
  l.address.sin_family = AF_INET;
  l.address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  l.address.sin_port = 0;
  spindle::bind(l.fd, reinterpret_cast<const sockaddr*>(&l.address), sizeof(l.address));
  spindle::listen(l.fd, backlog);
  socklen_t len = sizeof(l.address);
  ::getsockname(l.fd, reinterpret_cast<sockaddr*>(&l.address), &len);
  return l;
}

inline int tcp_connect(const sockaddr_in& to) {
  int fd = spindle::socket(AF_INET, SOCK_STREAM);
  spindle::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof(to));
  return fd;
}

// A scratch directory removed with its contents at the end of the scope.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "spindle-io-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      throw std::system_error(errno, std::system_category(), "mkdtemp");
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string operator/(std::string_view name) const { return path_ + "/" + std::string(name); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Raises the soft RLIMIT_NOFILE to at least `wanted` (up to the hard
// limit); returns the new soft limit.
inline rlim_t raise_fd_limit(rlim_t wanted) {
  rlimit r{};
  ::getrlimit(RLIMIT_NOFILE, &r);
  if (r.rlim_cur < wanted) {
    r.rlim_cur = std::min(wanted, r.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
  return r.rlim_cur;
}

// Whether the io_uring backend is in use (for tests that look at metrics).
inline bool on_uring() {
  return spindle::metrics().backend == spindle::BackendKind::io_uring;
}

// Expects `fn` to throw std::system_error with errno `err`.
template <class F>
void expect_errno(int err, F&& fn, std::string_view mentions = {}) {
  try {
    fn();
    ADD_FAILURE() << "no error, expected errno " << err;
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), err) << e.what();
    if (!mentions.empty()) {
      EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos) << e.what();
    }
  }
}

}  // namespace io_test
