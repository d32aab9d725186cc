// Loop::spawn: pipes, exit codes, exec failures, stdio modes, stdin
// backpressure, timeouts, max_children, no descriptor leaks; on the backend
// SPINDLE_BACKEND names. The child is spawn_helper (see its modes).
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "alloc_counter.hpp"
#include "loop_test_util.hpp"
#include "spindle/loop/spawn.hpp"

#ifndef SPINDLE_SPAWN_HELPER
#error "SPINDLE_SPAWN_HELPER must name the helper program"
#endif

namespace {

using namespace spindle_test;
using spindle::Child;
using spindle::ExitStatus;
using spindle::Loop;
using spindle::SpawnOptions;
using spindle::Stdio;
using Clock = std::chrono::steady_clock;

const std::string kHelper = SPINDLE_SPAWN_HELPER;

std::vector<std::string> helper(std::vector<std::string> args) {
  args.insert(args.begin(), kHelper);
  return args;
}

// Runs one child to its end: its stdout, stderr and exit.
struct Outcome {
  std::string out, err;
  std::optional<ExitStatus> status;
};

Outcome run(Loop& loop, SpawnOptions o) {
  Outcome r;
  if (o.out.kind() == Stdio::Kind::automatic) {
    o.on_stdout = [&r](std::string_view s) { r.out.append(s); };
  }
  if (o.err.kind() == Stdio::Kind::automatic) {
    o.on_stderr = [&r](std::string_view s) { r.err.append(s); };
  }
  o.on_exit = [&r](const ExitStatus& s) { r.status = s; };
  loop.spawn(std::move(o));
  loop.run();
  return r;
}

std::string expected_pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i % 251);
  return s;
}

template <class F>
std::system_error error_of(F&& f) {
  try {
    f();
  } catch (const std::system_error& e) {
    return e;
  }
  ADD_FAILURE() << "no std::system_error";
  return std::system_error(0, std::system_category());
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

TEST(Spawn, ExitCodeAndOutput) {
  Loop loop;
  Outcome r = run(loop, {.argv = helper({"both"})});
  ASSERT_TRUE(r.status);
  EXPECT_TRUE(r.status->success()) << r.status->describe();
  EXPECT_GT(r.status->pid, 0);
  EXPECT_EQ(r.out, "out");
  EXPECT_EQ(r.err, "err");
  Outcome e = run(loop, {.argv = helper({"exit", "42"})});
  ASSERT_TRUE(e.status);
  EXPECT_TRUE(e.status->exited);
  EXPECT_EQ(e.status->code, 42);
}

TEST(Spawn, LargeStdoutArrivesWholeBeforeTheExit) {
  Loop loop;
  constexpr std::size_t kSize = 3 * 1024 * 1024 + 17;  // far more than a pipe holds
  std::string out;
  int chunks = 0;
  bool exited = false;
  loop.spawn({.argv = helper({"bytes", std::to_string(kSize)}),
              .on_stdout =
                  [&](std::string_view s) {
                    EXPECT_FALSE(exited);
                    out.append(s);
                    ++chunks;
                  },
              .on_exit =
                  [&](const ExitStatus& s) {
                    EXPECT_TRUE(s.success());
                    exited = true;
                  }});
  loop.run();
  EXPECT_TRUE(exited);
  ASSERT_EQ(out.size(), kSize);
  EXPECT_TRUE(out == expected_pattern(kSize));
  EXPECT_GT(chunks, 1);
}

TEST(Spawn, OutputDispatchAllocatesNothing) {
  Loop loop;
  std::size_t bytes = 0;
  long last = -1;
  long most = 0;
  loop.spawn({.argv = helper({"bytes", std::to_string(2 * 1024 * 1024)}),
              .on_stdout =
                  [&](std::string_view s) {
                    bytes += s.size();
                    long now = spindle_test::allocations();
                    if (last >= 0 && now - last > most) most = now - last;
                    last = now;
                  },
              .on_exit = [](const ExitStatus&) {}});
  loop.run();
  EXPECT_EQ(bytes, 2u * 1024 * 1024);
  EXPECT_EQ(most, 0);  // nothing allocated between two chunks
}

TEST(Spawn, FailingExecIsAnErrorNotAnExitCode) {
  Loop loop;
  int before = open_fds();
  auto e = error_of([&] { loop.spawn({.argv = {"/no/such/program"}, .on_exit = [](auto&) {}}); });
  EXPECT_EQ(e.code().value(), ENOENT);
  EXPECT_TRUE(contains(e.what(), "spawn: execve /no/such/program")) << e.what();
  auto p = error_of([&] { loop.spawn({.argv = {"no-such-program-spindle"}}); });
  EXPECT_EQ(p.code().value(), ENOENT);
  EXPECT_TRUE(contains(p.what(), "execve no-such-program-spindle")) << p.what();
  std::string plain_file = "/tmp/spindle-not-executable-" + std::to_string(::getpid());
  ::close(::open(plain_file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
  auto x = error_of([&] { loop.spawn({.argv = {plain_file}}); });
  ::unlink(plain_file.c_str());
  EXPECT_EQ(x.code().value(), EACCES) << x.what();
  auto d = error_of([&] { loop.spawn({.argv = helper({"cwd"}), .cwd = "/no/such/dir"}); });
  EXPECT_TRUE(contains(d.what(), "spawn: cwd /no/such/dir")) << d.what();
  auto f = error_of(
      [&] { loop.spawn({.argv = helper({"both"}), .out = Stdio::file("/no/such/dir/out.txt")}); });
  EXPECT_TRUE(contains(f.what(), "spawn: open /no/such/dir/out.txt for stdout")) << f.what();
  EXPECT_EQ(open_fds(), before);  // nothing leaked
  EXPECT_EQ(loop.children_running(), 0u);
  EXPECT_FALSE(loop.has_work());
}

TEST(Spawn, BadOptionsAreClearErrors) {
  Loop loop;
  auto empty = error_of([&] { loop.spawn({}); });
  EXPECT_EQ(empty.code().value(), EINVAL);
  EXPECT_TRUE(contains(empty.what(), "spawn: argv is empty")) << empty.what();
  auto merged = error_of([&] {
    loop.spawn(
        {.argv = helper({"both"}), .err = Stdio::merge(), .on_stderr = [](std::string_view) {}});
  });
  EXPECT_EQ(merged.code().value(), EINVAL);
  auto no_pipe = error_of([&] {
    loop.spawn({.argv = helper({"both"}), .out = Stdio::null(), .on_stdout = [](auto) {}});
  });
  EXPECT_TRUE(contains(no_pipe.what(), "on_stdout needs stdout to be a pipe")) << no_pipe.what();
  auto bad_fd = error_of([&] { loop.spawn({.argv = helper({"both"}), .out = Stdio::fd(-5)}); });
  EXPECT_EQ(bad_fd.code().value(), EBADF);
  auto closed_fd =
      error_of([&] { loop.spawn({.argv = helper({"both"}), .out = Stdio::fd(100000)}); });
  EXPECT_TRUE(contains(closed_fd.what(), "spawn: dup fd 100000 for stdout")) << closed_fd.what();
  Child none;
  EXPECT_THROW(none.write("x"), std::system_error);
  EXPECT_FALSE(none.kill());
}

// Marks the descriptors this process inherited (from ctest, a shell, ...)
// O_CLOEXEC: they are not spindle's, and would reach the child otherwise.
void cloexec_inherited() {
  DIR* d = ::opendir("/proc/self/fd");
  while (dirent* e = ::readdir(d)) {
    int fd = std::atoi(e->d_name);
    if (e->d_name[0] != '.' && fd > 2 && fd != ::dirfd(d)) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  ::closedir(d);
}

TEST(Spawn, NoDescriptorLeaksIntoTheChild) {
  cloexec_inherited();  // first: every descriptor made after this is under test
  Loop loop;
  // Give the loop every kind of descriptor it owns.
  loop.signal(SIGUSR1, [](const spindle::SignalEvent&) {});
  spindle::Waker w = loop.waker([](std::uint64_t) {});
  Fds p = make_pipe();
  loop.watch(p.a, {.read = [](spindle::Watcher&) {}});
  std::string listed;
  bool done = false;
  loop.spawn({.argv = helper({"list-fds"}),
              .in = Stdio::pipe(),
              .on_stdout = [&](std::string_view s) { listed.append(s); },
              .on_stderr = [](std::string_view) {},
              .on_exit = [&](const ExitStatus&) { done = true; }});
  turn_until(
      loop, [&] { return done; }, 5000ms);
  EXPECT_TRUE(done);
  EXPECT_EQ(listed, "0 1 2");
}

TEST(Spawn, CloseOtherFdsClosesEvenInheritableOnes) {
  Loop loop;
  int leaky = ::dup(1);  // no O_CLOEXEC: would be inherited
  ASSERT_GT(leaky, 2);
  Outcome r = run(loop, {.argv = helper({"list-fds"}), .close_other_fds = true});
  EXPECT_EQ(r.out, "0 1 2");
  Outcome in_dir = run(loop, {.argv = helper({"cwd"}), .cwd = "/tmp", .close_other_fds = true});
  EXPECT_EQ(in_dir.out, "/tmp");  // the cwd's descriptor is closed only after the chdir
  Outcome plain = run(loop, {.argv = helper({"list-fds"})});
  EXPECT_TRUE(contains(" " + plain.out + " ", " " + std::to_string(leaky) + " ")) << plain.out;
  ::close(leaky);
}

TEST(Spawn, ChildGetsAnEmptySignalMaskAndDefaultSigpipe) {
  Loop loop;
  auto sub = loop.signal(SIGUSR2, [](const spindle::SignalEvent&) {});  // blocked here
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &old);
  std::string out;
  bool done = false;
  loop.spawn({.argv = helper({"sigstate"}),
              .on_stdout = [&](std::string_view s) { out.append(s); },
              .on_exit = [&](const ExitStatus&) { done = true; }});
  turn_until(loop, [&] { return done; });
  ::sigaction(SIGPIPE, &old, nullptr);
  sub.remove();
  EXPECT_EQ(out, "0 default");
}

TEST(Spawn, StdioModes) {
  Loop loop;
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("spindle-spawn-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  // stdout to a file; stderr merged into it.
  Outcome a = run(loop, {.argv = helper({"both"}),
                         .out = Stdio::file((dir / "out.txt").string()),
                         .err = Stdio::merge()});
  ASSERT_TRUE(a.status);
  EXPECT_TRUE(a.status->success());
  std::stringstream file;
  file << std::ifstream(dir / "out.txt").rdbuf();
  EXPECT_EQ(file.str(), "outerr");
  // stdin from that file, merged stderr into a pipe.
  Outcome b = run(loop, {.argv = helper({"echo"}),
                         .in = Stdio::file((dir / "out.txt").string()),
                         .err = Stdio::merge()});
  EXPECT_EQ(b.out, "outerr");
  // stderr merged into a piped stdout.
  std::string merged;
  Outcome c = run(loop, {.argv = helper({"both"}),
                         .out = Stdio::pipe(),
                         .err = Stdio::merge(),
                         .on_stdout = [&](std::string_view s) { merged.append(s); }});
  EXPECT_EQ(merged, "outerr");
  // null: nothing arrives, nothing breaks.
  Outcome d = run(loop, {.argv = helper({"both"}), .out = Stdio::null(), .err = Stdio::null()});
  EXPECT_TRUE(d.status->success());
  // fd: the caller's own descriptor.
  Fds p = make_pipe();
  Outcome e = run(loop, {.argv = helper({"both"}), .out = Stdio::fd(p.b), .err = Stdio::null()});
  EXPECT_TRUE(e.status->success());
  char buf[16] = {};
  EXPECT_EQ(::read(p.a, buf, sizeof(buf)), 3);
  EXPECT_EQ(std::string(buf), "out");
  fs::remove_all(dir);
}

TEST(Spawn, EnvironmentAndWorkingDirectory) {
  Loop loop;
  Outcome a = run(loop, {.argv = helper({"env", "SPINDLE_X"}), .env = {{"SPINDLE_X=forty two"}}});
  EXPECT_EQ(a.out, "forty two");
  Outcome b = run(loop, {.argv = helper({"cwd"}), .cwd = "/tmp"});
  EXPECT_EQ(b.out, "/tmp");
  Outcome c = run(loop, {.argv = {"sh", "-c", "echo $0"}});  // found in PATH
  EXPECT_EQ(c.out, "sh\n");
}

TEST(Spawn, StdinPipe) {
  Loop loop;
  std::string out;
  bool done = false;
  Child c = loop.spawn({.argv = helper({"echo"}),
                        .in = Stdio::pipe(),
                        .on_stdout = [&](std::string_view s) { out.append(s); },
                        .on_exit = [&](const ExitStatus&) { done = true; }});
  c.write("hello, ");
  c.write("child");
  c.close_stdin();
  EXPECT_THROW(c.write("late"), std::system_error);
  turn_until(loop, [&] { return done; });
  EXPECT_EQ(out, "hello, child");
}

TEST(Spawn, StdinBackpressure) {
  Loop loop;
  constexpr std::size_t kLimit = 256 * 1024;
  std::string out;
  std::vector<std::error_code> drained;
  bool done = false;
  // The child reads nothing for 300 ms: the pipe fills, then the queue.
  Child c = loop.spawn({.argv = helper({"sleep-echo", "300"}),
                        .in = Stdio::pipe(),
                        .on_stdout = [&](std::string_view s) { out.append(s); },
                        .on_exit = [&](const ExitStatus&) { done = true; },
                        .on_stdin_drained = [&](std::error_code ec) { drained.push_back(ec); },
                        .stdin_limit = kLimit});
  std::string sent;
  std::string chunk(16 * 1024, 'a');
  int i = 0;
  while (c.stdin_queued() == 0) {  // the pipe takes these at once
    chunk.assign(chunk.size(), static_cast<char>('a' + i++ % 26));
    c.write(chunk);
    sent += chunk;
  }
  while (c.stdin_queued() + chunk.size() <= kLimit) {  // these wait in the queue
    chunk.assign(chunk.size(), static_cast<char>('a' + i++ % 26));
    c.write(chunk);
    sent += chunk;
  }
  auto e = error_of([&] { c.write(chunk); });  // over the limit: refused whole
  EXPECT_EQ(e.code().value(), ENOBUFS);
  EXPECT_TRUE(contains(e.what(), "stdin_limit of " + std::to_string(kLimit))) << e.what();
  EXPECT_LE(c.stdin_queued(), kLimit);
  turn_until(
      loop, [&] { return !drained.empty(); }, 5000ms);
  ASSERT_EQ(drained.size(), 1u);
  EXPECT_FALSE(drained[0]);  // drained, no error
  EXPECT_EQ(c.stdin_queued(), 0u);
  c.close_stdin();
  turn_until(
      loop, [&] { return done; }, 5000ms);
  EXPECT_EQ(out.size(), sent.size());
  EXPECT_TRUE(out == sent);
}

TEST(Spawn, AChildThatStopsReadingIsEpipeNotSigpipe) {
  Loop loop;
  struct sigaction dfl {
  }, old{};
  dfl.sa_handler = SIG_DFL;  // a SIGPIPE would kill this test
  ::sigaction(SIGPIPE, &dfl, &old);
  std::vector<std::error_code> drained;
  std::optional<ExitStatus> status;
  Child c = loop.spawn({.argv = helper({"exit", "0"}),  // never reads stdin
                        .in = Stdio::pipe(),
                        .on_exit = [&](const ExitStatus& s) { status = s; },
                        .on_stdin_drained = [&](std::error_code ec) { drained.push_back(ec); }});
  std::string big(512 * 1024, 'z');
  bool threw = false;
  try {
    c.write(big);
    turn_until(loop, [&] { return !drained.empty() || status; });
    c.write("more");
  } catch (const std::system_error& e) {
    threw = true;
    EXPECT_EQ(e.code().value(), EPIPE) << e.what();
  }
  turn_until(loop, [&] { return status.has_value(); });
  ::sigaction(SIGPIPE, &old, nullptr);
  EXPECT_TRUE(status && status->success());
  EXPECT_TRUE(threw || (!drained.empty() && drained[0].value() == EPIPE));
}

TEST(Spawn, TimeoutSendsTermThenKill) {
  Loop loop;
  auto start = Clock::now();
  Outcome r = run(loop, {.argv = helper({"ignore-term", "10000"}),
                         .timeout = std::chrono::milliseconds(100),
                         .kill_grace = std::chrono::milliseconds(150)});
  auto took = Clock::now() - start;
  ASSERT_TRUE(r.status);
  EXPECT_TRUE(r.status->timed_out);
  EXPECT_EQ(r.status->term_signal, SIGKILL);  // TERM was ignored
  EXPECT_GE(took, std::chrono::milliseconds(250));
  EXPECT_LT(took, std::chrono::seconds(5));
  Outcome t = run(loop, {.argv = helper({"sleep", "10000"}),
                         .timeout = std::chrono::milliseconds(50),
                         .kill_grace = std::chrono::seconds(10)});
  EXPECT_TRUE(t.status->timed_out);
  EXPECT_EQ(t.status->term_signal, SIGTERM);  // TERM sufficed
  EXPECT_TRUE(contains(t.status->describe(), "after its timeout"));
}

TEST(Spawn, KillAndProcessGroups) {
  Loop loop;
  std::optional<ExitStatus> status;
  Child c = loop.spawn(
      {.argv = helper({"sleep", "10000"}), .on_exit = [&](const ExitStatus& s) { status = s; }});
  EXPECT_TRUE(c.running());
  EXPECT_GT(c.pid(), 0);
  EXPECT_TRUE(c.kill(SIGKILL));
  loop.run();
  EXPECT_EQ(status->term_signal, SIGKILL);
  EXPECT_FALSE(c.running());
  EXPECT_FALSE(c.kill());  // gone
  // A group: the shell and its sleeping child both get the timeout's TERM.
  auto start = Clock::now();
  Outcome g = run(loop, {.argv = {"sh", "-c", "sleep 10 & wait"},
                         .timeout = std::chrono::milliseconds(50),
                         .new_process_group = true});
  EXPECT_TRUE(g.status->timed_out);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

TEST(Spawn, ADescendantHoldingThePipeDoesNotDelayTheExit) {
  Loop loop;
  auto start = Clock::now();
  Outcome r = run(loop, {.argv = {"sh", "-c", "sleep 3 & echo hi"}});
  EXPECT_EQ(r.out, "hi\n");
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
}

TEST(Spawn, MaxChildrenQueuesInOrder) {
  Loop loop;
  loop.set_max_children(2);
  std::vector<Child> children;
  std::vector<int> exits;
  std::size_t most_running = 0;
  bool checked_fifo = false;
  for (int i = 0; i < 5; ++i) {
    children.push_back(loop.spawn({.argv = helper({"sleep", std::to_string(60 + 20 * i)}),
                                   .on_exit = [&, i](const ExitStatus& s) {
                                     EXPECT_TRUE(s.success());
                                     exits.push_back(i);
                                     most_running = std::max(most_running, loop.children_running());
                                     if (exits.size() == 1) {
                                       // The freed slot went to the oldest waiting spawn.
                                       EXPECT_TRUE(children[2].running());
                                       EXPECT_TRUE(children[3].queued());
                                       EXPECT_TRUE(children[4].queued());
                                       checked_fifo = true;
                                     }
                                   }}));
  }
  EXPECT_EQ(loop.children_running(), 2u);
  EXPECT_EQ(loop.children_queued(), 3u);
  EXPECT_TRUE(children[0].running());
  EXPECT_TRUE(children[2].queued());
  EXPECT_EQ(children[2].pid(), -1);
  loop.run();
  EXPECT_TRUE(checked_fifo);
  EXPECT_EQ(exits.size(), 5u);
  EXPECT_LE(most_running, 2u);
  EXPECT_EQ(loop.children_running(), 0u);
  EXPECT_EQ(loop.children_queued(), 0u);
}

TEST(Spawn, QueuedSpawnsReportTheirOwnFailuresAndCancellation) {
  Loop loop;
  loop.set_max_children(1);
  namespace fs = std::filesystem;
  fs::path copy = fs::temp_directory_path() / ("spindle-helper-" + std::to_string(::getpid()));
  fs::copy_file(kHelper, copy, fs::copy_options::overwrite_existing);
  std::vector<std::string> log;
  auto record = [&](std::string name) {
    return [&, name](const ExitStatus& s) {
      log.push_back(name + ":" + (s.error ? s.error.message() : s.describe()));
    };
  };
  Child first = loop.spawn({.argv = helper({"sleep", "50"}), .on_exit = record("first")});
  EXPECT_TRUE(first.running());
  // Checked now, while queued: a missing program is still an immediate error.
  EXPECT_THROW(loop.spawn({.argv = {"/no/such/program"}}), std::system_error);
  Child vanished =
      loop.spawn({.argv = {copy.string(), "exit", "0"}, .on_exit = record("vanished")});
  EXPECT_TRUE(vanished.queued());
  Child cancelled = loop.spawn({.argv = helper({"exit", "0"}), .on_exit = record("cancelled")});
  fs::remove(copy);  // gone by the time its turn comes: exec fails then
  EXPECT_TRUE(cancelled.kill());
  EXPECT_TRUE(log.empty());  // never reported inside the call
  loop.run();
  std::vector<std::string> want = {
      "cancelled:" + std::make_error_code(std::errc::operation_canceled).message(),
      "first:exited with code 0", "vanished:No such file or directory"};
  std::sort(log.begin(), log.end());
  EXPECT_EQ(log, want);
}

TEST(Spawn, RaisingTheLimitStartsQueuedSpawns) {
  Loop loop;
  loop.set_max_children(1);
  int done = 0;
  for (int i = 0; i < 3; ++i) {
    loop.spawn({.argv = helper({"sleep", "100"}), .on_exit = [&](const ExitStatus&) { ++done; }});
  }
  EXPECT_EQ(loop.children_running(), 1u);
  loop.set_max_children(0);  // no limit
  EXPECT_EQ(loop.children_running(), 3u);
  loop.run();
  EXPECT_EQ(done, 3);
}

TEST(Spawn, NoDescriptorLeaksInTheParent) {
  int before = open_fds();
  {
    Loop loop;
    loop.set_max_children(3);
    int done = 0;
    for (int i = 0; i < 12; ++i) {
      Child c = loop.spawn({.argv = helper({"echo"}),
                            .in = Stdio::pipe(),
                            .on_stdout = [](std::string_view) {},
                            .on_stderr = [](std::string_view) {},
                            .on_exit = [&](const ExitStatus&) { ++done; },
                            .timeout = std::chrono::seconds(5)});
      c.write("data");
      c.close_stdin();
      EXPECT_THROW(loop.spawn({.argv = {"/no/such"}}), std::system_error);
    }
    loop.run();
    EXPECT_EQ(done, 12);
  }
  EXPECT_EQ(open_fds(), before);
}

}  // namespace
