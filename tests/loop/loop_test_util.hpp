// Helpers shared by the loop layer's tests.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <utility>

#include "spindle/loop/loop.hpp"

namespace spindle_test {

using namespace std::chrono_literals;

// Two descriptors, closed on destruction. Move-only.
struct Fds {
  int a = -1, b = -1;
  Fds() = default;
  Fds(int x, int y) : a(x), b(y) {}
  Fds(Fds&& o) noexcept : a(std::exchange(o.a, -1)), b(std::exchange(o.b, -1)) {}
  Fds& operator=(Fds&& o) noexcept {
    std::swap(a, o.a);
    std::swap(b, o.b);
    return *this;
  }
  ~Fds() {
    close_a();
    close_b();
  }
  void close_a() {
    if (a >= 0) ::close(a);
    a = -1;
  }
  void close_b() {
    if (b >= 0) ::close(b);
    b = -1;
  }
};

inline Fds make_pipe() {
  int p[2];
  EXPECT_EQ(::pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
  return Fds{p[0], p[1]};
}

inline Fds make_socketpair() {
  int s[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s), 0);
  return Fds{s[0], s[1]};
}

inline void put(int fd, const char* text = "x") {
  ASSERT_GT(::write(fd, text, std::strlen(text)), 0);
}

inline int drain(int fd) {
  char buf[4096];
  int total = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return total;
    total += static_cast<int>(n);
  }
}

// Runs turns until `done` or the time runs out.
template <class Pred>
void turn_until(spindle::Loop& loop, Pred done, std::chrono::milliseconds limit = 3000ms) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < end) loop.run_once(10ms);
}

// The descriptors this process has open.
inline int open_fds() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;  // the directory's own
}

}  // namespace spindle_test
