// spawn: stdio as streams, exit statuses, kill, terminate, cancellation of
// the owning fiber, and the errors users meet.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <string>

#include "io/io_test_util.hpp"
#include "spindle/spindle.hpp"

namespace {

using namespace std::chrono_literals;
using io_test::bytes;
using io_test::expect_errno;
using spindle::Stdio;

bool reaped(pid_t pid) {
  return ::kill(pid, 0) == -1 && errno == ESRCH;
}

TEST(Spawn, PipesBothWays) {
  spindle::run([] {
    spindle::Process cat = spindle::spawn({"cat"}, {.in = Stdio::pipe(), .out = Stdio::pipe()});
    EXPECT_GT(cat.pid(), 0);
    auto feeder = spindle::spin([&] {
      spindle::BufferedWriter w(cat.in());
      for (int i = 0; i < 20000; ++i) w.write("line " + std::to_string(i) + "\n");
      w.flush();
      cat.in().close();  // EOF for cat
    });
    spindle::BufferedReader r(cat.out());
    int n = 0;
    for (std::string_view line : r.lines()) EXPECT_EQ(line, "line " + std::to_string(n++));
    EXPECT_EQ(n, 20000);
    feeder.join();
    spindle::ExitStatus st = cat.wait();
    EXPECT_TRUE(st.success()) << st.describe();
    EXPECT_FALSE(cat.running());
    EXPECT_TRUE(cat.try_wait());
    EXPECT_EQ(cat.wait().code, 0);  // again: the same status
  });
}

TEST(Spawn, ExitCodesSignalsAndOtherStdio) {
  spindle::run([] {
    io_test::TempDir dir;
    spindle::Process p = spindle::spawn(
        {"sh", "-c", "echo to-file; echo to-err >&2; exit 3"},
        {.in = Stdio::null(), .out = Stdio::file(dir / "out"), .err = Stdio::pipe()});
    spindle::BufferedReader err(p.err());
    EXPECT_EQ(err.read_to_end(), "to-err\n");
    spindle::ExitStatus st = p.wait();
    EXPECT_TRUE(st.exited);
    EXPECT_EQ(st.code, 3);
    EXPECT_EQ(spindle::read_file(dir / "out"), "to-file\n");
    EXPECT_FALSE(p.out().is_open());  // not a pipe: no stream
    expect_errno(EBADF, [&] {
      std::byte b[1];
      (void)p.out().read_some(b);
    });

    spindle::Process sleeper = spindle::spawn({"sleep", "100"});
    EXPECT_TRUE(sleeper.running());
    EXPECT_TRUE(sleeper.kill(SIGKILL));
    st = sleeper.wait();
    EXPECT_FALSE(st.exited);
    EXPECT_EQ(st.term_signal, SIGKILL);
    EXPECT_FALSE(sleeper.kill());  // gone
  });
}

TEST(Spawn, ProgramsThatCannotRun) {
  spindle::run([] {
    expect_errno(
        ENOENT, [] { spindle::spawn({"/nonexistent/program"}); }, "execve /nonexistent/program");
    expect_errno(
        ENOENT, [] { spindle::spawn({"no-such-program-anywhere"}); }, "execve");
    expect_errno(
        EINVAL, [] { spindle::spawn({}); }, "argv is empty");
    expect_errno(
        ENOENT, [] { spindle::spawn({"true"}, {.cwd = "/nonexistent/dir"}); }, "cwd");
  });
}

TEST(Spawn, BrokenPipeWritingToADeadChild) {
  spindle::run([] {
    spindle::Process p = spindle::spawn({"true"}, {.in = Stdio::pipe()});
    EXPECT_TRUE(p.wait().success());
    expect_errno(
        EPIPE, [&] { p.in().write_all(bytes("anyone there?")); }, "Broken pipe");
  });
}

TEST(Spawn, WaitWithADeadlineThenTerminate) {
  spindle::run([] {
    spindle::Process p = spindle::spawn({"sleep", "100"});
    EXPECT_THROW(p.wait(20ms), spindle::TimedOut);
    EXPECT_TRUE(p.running());
    spindle::ExitStatus st = p.terminate(10s);
    EXPECT_EQ(st.term_signal, SIGTERM);
    EXPECT_TRUE(reaped(st.pid));
  });
}

TEST(Spawn, WaitOrTerminate) {
  spindle::run([] {
    spindle::Process quick = spindle::spawn({"sh", "-c", "exit 4"});
    spindle::ExitStatus st = quick.wait_or_terminate(30s, 1s);
    EXPECT_EQ(st.code, 4);
    EXPECT_FALSE(st.timed_out);
    spindle::Process slow = spindle::spawn({"sleep", "100"});
    st = slow.wait_or_terminate(50ms, 10s);
    EXPECT_TRUE(st.timed_out);
    EXPECT_EQ(st.term_signal, SIGTERM);
    EXPECT_TRUE(reaped(st.pid));
  });
}

TEST(Spawn, TerminateEscalatesToKill) {
  spindle::run([] {
    // Ignores SIGTERM (and so do the sleeps it starts): only SIGKILL works.
    spindle::Process p =
        spindle::spawn({"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"},
                       {.out = Stdio::pipe(), .new_process_group = true});
    spindle::BufferedReader r(p.out());
    EXPECT_EQ(r.read_line(), "ready");
    auto started = std::chrono::steady_clock::now();
    spindle::ExitStatus st = p.terminate(100ms);
    EXPECT_EQ(st.term_signal, SIGKILL);
    EXPECT_GE(std::chrono::steady_clock::now() - started, 100ms);
  });
}

TEST(Spawn, CancellingTheOwningFiberKillsAndReapsTheChild) {
  spindle::run([] {
    pid_t pid = -1;
    auto owner = spindle::spin([&] {
      spindle::Process p = spindle::spawn({"sleep", "100"}, {.kill_grace = 10s});
      pid = p.pid();
      p.wait();
    });
    while (pid < 0) spindle::sleep(1ms);
    spindle::sleep(10ms);
    owner.cancel();
    EXPECT_THROW(owner.join(), spindle::Cancelled);
    EXPECT_TRUE(reaped(pid));
  });
}

TEST(Spawn, DroppingARunningProcessTerminatesIt) {
  spindle::run([] {
    pid_t pid;
    {
      spindle::Process p = spindle::spawn({"sleep", "100"});
      pid = p.pid();
    }
    EXPECT_TRUE(reaped(pid));
    // Moving over a running Process terminates the old child too.
    spindle::Process a = spindle::spawn({"sleep", "100"});
    pid_t first = a.pid();
    a = spindle::spawn({"true"});
    EXPECT_TRUE(reaped(first));
    EXPECT_TRUE(a.wait().success());
  });
}

}  // namespace
