// A loop whose blocking kernel calls a sidecar thread makes
// (BackendOptions::sidecar), on the backend SPINDLE_BACKEND names.
// Multithreaded: run under TSan too.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "cpu_time.hpp"
#include "loop/uring_backend.hpp"
#include "loop_test_util.hpp"
#include "spindle/loop/signal.hpp"

namespace {

using namespace spindle_test;
using spindle::BackendKind;
using spindle::BackendOptions;
using spindle::Loop;
using Clock = std::chrono::steady_clock;

Loop sidecar_loop() {
  return Loop(BackendKind::automatic, BackendOptions{.sidecar = true});
}

std::size_t threads_of_this_process() {
  std::size_t n = 0;
  DIR* d = ::opendir("/proc/self/task");
  while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
  ::closedir(d);
  return n;
}

// The "SigBlk:" mask of the thread named `name` in this process, or "".
std::string blocked_signals_of(const std::string& name) {
  DIR* d = ::opendir("/proc/self/task");
  std::string mask;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string dir = std::string("/proc/self/task/") + e->d_name;
    std::string comm;
    std::getline(std::ifstream(dir + "/comm"), comm);
    if (comm != name) continue;
    std::ifstream status(dir + "/status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("SigBlk:", 0) == 0) mask = line.substr(7);
    }
  }
  ::closedir(d);
  return mask;
}

TEST(Sidecar, EventsArriveThroughTheSidecar) {
  Loop loop = sidecar_loop();
  ASSERT_TRUE(loop.backend().has_sidecar());
  Fds p = make_pipe();
  int reads = 0;
  loop.watch(p.a, {.read = [&](spindle::Watcher& w) {
               char buf[16];
               while (::read(w.fd(), buf, sizeof(buf)) > 0) {
               }
               if (++reads == 3) loop.unwatch(w.fd());
             }});
  std::thread writer([&] {
    for (int i = 0; i < 3; ++i) {
      std::this_thread::sleep_for(20ms);
      put(p.b);
    }
  });
  loop.run();  // returns once the watcher is gone
  writer.join();
  EXPECT_EQ(reads, 3);
  EXPECT_GE(loop.backend().sidecar_calls(), 3u);
  if (loop.backend_kind() == BackendKind::io_uring) {
    // The loop's own thread never entered the ring: the sidecar did.
    auto& uring = static_cast<spindle::UringBackend&>(loop.backend());
    EXPECT_EQ(uring.counters().enters, 0u);
    EXPECT_GT(uring.counters().cqe_waits, 0u);
  }
}

TEST(Sidecar, TimersAreNeverEarly) {
  Loop loop = sidecar_loop();
  for (auto delay : {1ms, 15ms, 40ms}) {
    Clock::time_point start = Clock::now();
    Clock::time_point fired{};
    loop.after(delay, [&] { fired = Clock::now(); });
    loop.run();
    EXPECT_GE(fired - start, delay);
  }
}

TEST(Sidecar, StopFromAnotherThreadEndsABlockedWait) {
  Loop loop = sidecar_loop();
  Fds p = make_pipe();
  loop.watch(p.a, {.read = [](spindle::Watcher&) {}});  // keeps run() waiting
  std::thread stopper([&] {
    std::this_thread::sleep_for(30ms);
    loop.stop();
  });
  Clock::time_point start = Clock::now();
  loop.run();
  stopper.join();
  EXPECT_GE(Clock::now() - start, 30ms);
  EXPECT_LT(Clock::now() - start, 20s);
}

TEST(Sidecar, ASignalRaisedOnTheLoopThreadIsNotMissed) {
  // Sent to this thread alone: the sidecar's view of the signalfd lacks
  // it, so the loop must take it itself before handing a wait over.
  Loop loop = sidecar_loop();
  int calls = 0;
  spindle::SignalSubscription sub =
      loop.signal(SIGUSR1, [&](const spindle::SignalEvent&) { ++calls; });
  ::raise(SIGUSR1);
  Clock::time_point start = Clock::now();
  while (calls == 0 && Clock::now() - start < 3s) loop.run_once(std::chrono::seconds(1));
  EXPECT_EQ(calls, 1);
  EXPECT_LT(Clock::now() - start, 1s) << "the signal waited for an unrelated wake-up";
  sub.remove();
}

TEST(Sidecar, ASignalToTheProcessReachesALoopBlockedInTheSidecar) {
  Loop loop = sidecar_loop();
  int calls = 0;
  spindle::SignalSubscription sub;
  sub = loop.signal(SIGUSR2, [&](const spindle::SignalEvent&) {
    ++calls;
    sub.remove();
  });
  // The thread inherits the mask the subscription set: the signal stays
  // pending for the process instead of killing it through this thread.
  std::thread sender([] {
    std::this_thread::sleep_for(30ms);
    ::kill(::getpid(), SIGUSR2);
  });
  loop.run();  // until the subscription is gone
  sender.join();
  EXPECT_EQ(calls, 1);
}

TEST(Sidecar, ThreadBlocksEverySignalAndEndsWithTheLoop) {
  std::size_t before = threads_of_this_process();
  {
    Loop loop = sidecar_loop();
    EXPECT_EQ(threads_of_this_process(), before + 1);
    std::string mask = blocked_signals_of("spindle-sidecar");
    ASSERT_FALSE(mask.empty());
    unsigned long long bits = std::stoull(mask, nullptr, 16);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGPIPE, SIGUSR1, SIGALRM, SIGRTMIN + 1}) {
      EXPECT_TRUE(bits & (1ULL << (sig - 1))) << "signal " << sig << " not blocked: " << mask;
    }
  }
  EXPECT_EQ(threads_of_this_process(), before);
}

TEST(Sidecar, ALongWaitSleepsInsteadOfSpinning) {
  // Both sides spin a few microseconds before they sleep; a wait of 200 ms
  // must cost about that, not 200 ms of CPU on either thread.
  Loop loop = sidecar_loop();
  loop.after(0ms, [] {});
  loop.run();  // the helper exists and has made a call
  std::chrono::microseconds cpu = spindle_test::process_cpu_time();
  Clock::time_point start = Clock::now();
  for (int i = 0; i < 4; ++i) {  // four hand-offs, each with both sides idle
    loop.after(50ms, [] {});
    loop.run();
  }
  std::chrono::microseconds used = spindle_test::process_cpu_time() - cpu;
  Clock::duration waited = Clock::now() - start;
  EXPECT_GE(waited, 200ms);
  // Generous (sanitizers, a loaded machine): a spinning side alone would
  // use about as much CPU as the wall-clock time waited.
  EXPECT_LT(used, 60ms) << "the loop or its sidecar spun while waiting "
                        << std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()
                        << " ms";
}

TEST(Sidecar, ManyLoopsComeAndGo) {
  for (int i = 0; i < 50; ++i) {
    Loop loop = sidecar_loop();
    loop.after(0ms, [] {});
    loop.run();
  }
}

TEST(Sidecar, BadSettingsAreRefusedClearly) {
  ::setenv("SPINDLE_SIDECAR", "yes", 1);
  try {
    Loop loop;
    ADD_FAILURE() << "SPINDLE_SIDECAR=yes was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("SPINDLE_SIDECAR"), std::string::npos) << e.what();
  }
  ::setenv("SPINDLE_SIDECAR", "1", 1);
  EXPECT_TRUE(Loop().backend().has_sidecar());
  ::setenv("SPINDLE_SIDECAR", "0", 1);
  EXPECT_FALSE(Loop(BackendKind::automatic, {.sidecar = true}).backend().has_sidecar());
  ::unsetenv("SPINDLE_SIDECAR");

  if (Loop().backend_kind() == BackendKind::io_uring) {
    try {
      Loop loop(BackendKind::automatic, {.uring_sqpoll = true, .sidecar = true});
      ADD_FAILURE() << "sidecar with SQPOLL was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("sqpoll"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
