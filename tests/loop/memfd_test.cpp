// MemFd: sealed shared memory handed to another process; on the backend
// SPINDLE_BACKEND names (the parent waits for the child through the loop).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>
#include <system_error>

#include "loop_test_util.hpp"
#include "spindle/loop/child.hpp"
#include "spindle/loop/memfd.hpp"

namespace {

using namespace spindle_test;
using spindle::MemFd;

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7) % 253);
  return s;
}

bool cloexec(int fd) {
  return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
}

// What the receiving child checks; its exit code says which check failed.
int child_checks(int sock, std::size_t size) {
  try {
    MemFd m = MemFd::open(spindle::receive_fd(sock));
    if (!cloexec(m.fd())) return 10;
    if (m.size() != size) return 11;
    if (m.view() != pattern(size)) return 12;
    // The seals hold here too: no writing, growing, shrinking, writable map.
    if (::pwrite(m.fd(), "x", 1, 0) != -1 || errno != EPERM) return 13;
    if (::ftruncate(m.fd(), 1) != -1 || errno != EPERM) return 14;
    if (::mmap(nullptr, size, PROT_WRITE, MAP_SHARED, m.fd(), 0) != MAP_FAILED) return 15;
    return 0;
  } catch (...) {
    return 20;
  }
}

TEST(MemFd, ALargeMessageAcrossAFork) {
  constexpr std::size_t kSize = 8 * 1024 * 1024 + 3;
  Fds s;
  {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    s = Fds{sv[0], sv[1]};
  }
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) ::_exit(child_checks(s.b, kSize));
  // Made after the fork: the child can only have it through the socket.
  MemFd m = MemFd::from("spindle-test-message", pattern(kSize));
  EXPECT_TRUE(m.sealed());
  EXPECT_TRUE(cloexec(m.fd()));
  spindle::send_fd(s.a, m.fd());
  spindle::Loop loop;
  std::optional<spindle::ExitStatus> status;
  loop.child_exit(pid, [&](const spindle::ExitStatus& st) { status = st; });
  loop.run();
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->success()) << "child check " << status->code << " failed";
}

TEST(MemFd, InheritedByFork) {
  MemFd m = MemFd::from("inherited", std::string_view("hello, child"));
  pid_t pid = ::fork();
  if (pid == 0) {
    try {
      MemFd mine = MemFd::open(::dup(m.fd()));
      ::_exit(mine.view() == "hello, child" ? 0 : 1);
    } catch (...) {
      ::_exit(2);
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(MemFd, WriteThenSeal) {
  MemFd m = MemFd::create("writable", 4096);
  EXPECT_FALSE(m.sealed());
  std::memcpy(m.writable().data(), "abc", 3);
  m.seal();
  EXPECT_TRUE(m.sealed());
  EXPECT_EQ(m.view().substr(0, 3), "abc");
  EXPECT_EQ(m.size(), 4096u);
  EXPECT_THROW(m.writable(), std::system_error);
  EXPECT_EQ(::pwrite(m.fd(), "x", 1, 0), -1);
  m.seal();  // idempotent
  MemFd moved = std::move(m);
  EXPECT_FALSE(m.valid());
  EXPECT_EQ(moved.view().substr(0, 3), "abc");
}

TEST(MemFd, EmptyMessage) {
  MemFd m = MemFd::from("empty", std::string_view());
  EXPECT_EQ(m.size(), 0u);
  MemFd r = MemFd::open(::dup(m.fd()));
  EXPECT_TRUE(r.view().empty());
}

TEST(MemFd, UnsealedOrForeignDescriptorsAreRefused) {
  int before = open_fds();
  MemFd unsealed = MemFd::create("unsealed", 16);
  try {
    MemFd::open(::dup(unsealed.fd()));
    FAIL() << "an unsealed memfd was accepted";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EPERM);
    EXPECT_NE(std::string(e.what()).find("not sealed"), std::string::npos) << e.what();
  }
  Fds p = make_pipe();
  EXPECT_THROW(MemFd::open(::dup(p.a)), std::system_error);  // not a memfd
  EXPECT_THROW(MemFd::open(-1), std::system_error);
  unsealed = MemFd();
  p = Fds();
  EXPECT_EQ(open_fds(), before);  // the refused descriptors were closed
}

TEST(MemFd, DescriptorPassingErrors) {
  EXPECT_THROW(spindle::send_fd(-1, 0), std::system_error);
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ::close(sv[1]);
  try {
    spindle::receive_fd(sv[0]);
    FAIL() << "no error";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ECONNRESET);
    EXPECT_NE(std::string(e.what()).find("receive_fd"), std::string::npos);
  }
  ::close(sv[0]);
}

}  // namespace
