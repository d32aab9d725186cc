// Loop::child_exit: pidfd + waitid(P_PIDFD); on the backend SPINDLE_BACKEND names.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>

#include "loop_test_util.hpp"
#include "spindle/loop/child.hpp"

namespace {

using namespace spindle_test;
using spindle::ExitStatus;
using spindle::Loop;

pid_t fork_exit(int code) {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(code);
  return pid;
}

pid_t fork_pause() {
  pid_t pid = ::fork();
  if (pid == 0) {
    for (;;) ::pause();
  }
  return pid;
}

TEST(ChildExit, NormalExitWithItsCode) {
  Loop loop;
  pid_t pid = fork_exit(7);
  ASSERT_GT(pid, 0);
  std::optional<ExitStatus> got;
  spindle::ChildWatch w = loop.child_exit(pid, [&](const ExitStatus& s) {
    got = s;
    EXPECT_FALSE(w.active());  // over before the callback
  });
  EXPECT_EQ(w.pid(), pid);
  EXPECT_TRUE(w.active());
  loop.run();  // returns once the exit was reported
  ASSERT_TRUE(got);
  EXPECT_EQ(got->pid, pid);
  EXPECT_TRUE(got->known);
  EXPECT_TRUE(got->exited);
  EXPECT_EQ(got->code, 7);
  EXPECT_EQ(got->term_signal, 0);
  EXPECT_FALSE(got->success());
  EXPECT_EQ(got->describe(), "exited with code 7");
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);  // reaped
}

TEST(ChildExit, KilledBySignal) {
  Loop loop;
  pid_t pid = fork_pause();
  std::optional<ExitStatus> got;
  loop.child_exit(pid, [&](const ExitStatus& s) { got = s; });
  loop.after(std::chrono::milliseconds(5), [&] { ::kill(pid, SIGKILL); });
  loop.run();
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->exited);
  EXPECT_EQ(got->term_signal, SIGKILL);
  EXPECT_FALSE(got->core_dumped);
  EXPECT_EQ(got->describe(), "killed by signal 9 (SIGKILL)");
}

TEST(ChildExit, CoreDumped) {
  std::string pattern;
  std::getline(std::ifstream("/proc/sys/kernel/core_pattern"), pattern);
  rlimit lim{};
  ::getrlimit(RLIMIT_CORE, &lim);
  if (pattern.empty() || pattern[0] == '|' || lim.rlim_max == 0) {
    GTEST_SKIP() << "this machine does not write core files (core_pattern '" << pattern << "')";
  }
  char dir[] = "/tmp/spindle-core-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    rlimit big{lim.rlim_max, lim.rlim_max};
    ::setrlimit(RLIMIT_CORE, &big);
    if (::chdir(dir) != 0) ::_exit(1);
    ::signal(SIGQUIT, SIG_DFL);
    ::raise(SIGQUIT);
    ::_exit(2);
  }
  Loop loop;
  std::optional<ExitStatus> got;
  loop.child_exit(pid, [&](const ExitStatus& s) { got = s; });
  loop.run();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->term_signal, SIGQUIT);
  EXPECT_TRUE(got->core_dumped);
  std::filesystem::remove_all(dir);
}

TEST(ChildExit, WithoutReapingTheZombieStays) {
  Loop loop;
  pid_t pid = fork_exit(3);
  std::optional<ExitStatus> got;
  loop.child_exit(
      pid, [&](const ExitStatus& s) { got = s; }, spindle::ChildExitOptions{.reap = false});
  loop.run();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->code, 3);
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, WNOHANG), pid);  // still there for us to reap
  EXPECT_EQ(WEXITSTATUS(status), 3);
}

TEST(ChildExit, AChildThatExitedBeforeTheWatch) {
  Loop loop;
  pid_t pid = fork_exit(4);
  siginfo_t info{};
  ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT);  // a zombie now
  std::optional<ExitStatus> got;
  loop.child_exit(pid, [&](const ExitStatus& s) { got = s; });
  loop.run();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->code, 4);
}

TEST(ChildExit, AProcessThatIsNotOurChild) {
  // A grandchild: reparented away from us when its parent exits, so its
  // exit is seen through the pidfd but its status is not ours to read.
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  int go[2];
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  pid_t middle = ::fork();
  if (middle == 0) {
    pid_t grandchild = ::fork();
    if (grandchild == 0) {
      char c;
      ::close(go[1]);
      [[maybe_unused]] ssize_t n = ::read(go[0], &c, 1);  // until the test says go
      ::_exit(0);
    }
    [[maybe_unused]] ssize_t n = ::write(p[1], &grandchild, sizeof(grandchild));
    ::_exit(0);
  }
  ::close(p[1]);
  ::close(go[0]);
  pid_t grandchild = -1;
  ASSERT_EQ(::read(p[0], &grandchild, sizeof(grandchild)), static_cast<ssize_t>(sizeof(pid_t)));
  ::close(p[0]);
  ::waitpid(middle, nullptr, 0);
  Loop loop;
  std::optional<ExitStatus> got;
  loop.child_exit(grandchild, [&](const ExitStatus& s) { got = s; });
  ::close(go[1]);  // let it exit
  loop.run();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->pid, grandchild);
  EXPECT_FALSE(got->known);
}

TEST(ChildExit, CancelMeansNoCall) {
  Loop loop;
  pid_t pid = fork_pause();
  int calls = 0;
  spindle::ChildWatch w = loop.child_exit(pid, [&](const ExitStatus&) { ++calls; });
  w.cancel();
  w.cancel();
  EXPECT_FALSE(w.active());
  EXPECT_FALSE(loop.has_work());
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  loop.run_once(std::chrono::milliseconds(10));
  EXPECT_EQ(calls, 0);
}

TEST(ChildExit, SeveralChildren) {
  Loop loop;
  int done = 0, sum = 0;
  for (int i = 1; i <= 5; ++i) {
    loop.child_exit(fork_exit(i), [&](const ExitStatus& s) {
      ++done;
      sum += s.code;
    });
  }
  loop.run();
  EXPECT_EQ(done, 5);
  EXPECT_EQ(sum, 15);
}

TEST(ChildExit, BadPidsAreClearErrors) {
  Loop loop;
  int before = open_fds();
  for (pid_t bad : {pid_t{-1}, pid_t{0}, pid_t{0x3fffffff}}) {
    try {
      loop.child_exit(bad, [](const ExitStatus&) {});
      FAIL() << "pid " << bad << " did not throw";
    } catch (const std::system_error& e) {
      EXPECT_NE(std::string(e.what()).find("pidfd_open pid " + std::to_string(bad)),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_EQ(open_fds(), before);
  EXPECT_FALSE(loop.has_work());
}

}  // namespace
