// Loop::waker: wakes from other threads and from a forked child; on the
// backend SPINDLE_BACKEND names. Multithreaded: run under TSan too.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <system_error>
#include <thread>
#include <vector>

#include "alloc_counter.hpp"
#include "loop_test_util.hpp"
#include "spindle/loop/waker.hpp"

namespace {

using namespace spindle_test;
using spindle::Loop;
using spindle::Waker;

TEST(Waker, WakesFromAnotherThreadRunOnTheLoopThread) {
  Loop loop;
  constexpr int kWakes = 2000;
  std::vector<int> published(kWakes, 0);  // written by the thread, read by the loop
  std::atomic<int> sent{0};
  std::uint64_t received = 0;
  int calls = 0;
  std::thread::id loop_thread = std::this_thread::get_id();
  Waker w = loop.waker([&](std::uint64_t wakes) {
    EXPECT_EQ(std::this_thread::get_id(), loop_thread);
    ++calls;
    received += wakes;
    // Everything published before a wake we have seen is visible.
    for (std::uint64_t i = 0; i < received; ++i) EXPECT_EQ(published[i], 1);
    if (received == kWakes) w.close();
  });
  std::thread other([&, w] {
    for (int i = 0; i < kWakes; ++i) {
      published[static_cast<std::size_t>(i)] = 1;
      w.wake();
      sent.fetch_add(1, std::memory_order_relaxed);
    }
  });
  loop.run();  // until close()
  other.join();
  EXPECT_EQ(received, static_cast<std::uint64_t>(kWakes));
  EXPECT_LE(calls, kWakes);
  EXPECT_EQ(sent.load(), kWakes);
}

TEST(Waker, WakesCoalesce) {
  Loop loop;
  std::vector<std::uint64_t> calls;
  Waker w = loop.waker([&](std::uint64_t wakes) { calls.push_back(wakes); });
  for (int i = 0; i < 5; ++i) w.wake();
  turn_until(loop, [&] { return !calls.empty(); });
  loop.run_once(std::chrono::milliseconds(10));
  EXPECT_EQ(calls, (std::vector<std::uint64_t>{5}));
}

TEST(Waker, ManyThreadsOneLoop) {
  Loop loop;
  constexpr int kThreads = 4, kEach = 500;
  std::uint64_t received = 0;
  Waker w = loop.waker([&](std::uint64_t wakes) {
    received += wakes;
    if (received == kThreads * kEach) w.close();
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([w] {
      for (int i = 0; i < kEach; ++i) w.wake();
    });
  }
  loop.run();
  for (auto& t : threads) t.join();
  EXPECT_EQ(received, static_cast<std::uint64_t>(kThreads * kEach));
}

TEST(Waker, FromAForkedChild) {
  Loop loop;
  std::uint64_t received = 0;
  Waker w = loop.waker([&](std::uint64_t wakes) {
    received += wakes;
    w.close();
  });
  pid_t pid = ::fork();
  if (pid == 0) {
    w.wake();
    ::_exit(0);
  }
  loop.run();
  ::waitpid(pid, nullptr, 0);
  EXPECT_EQ(received, 1u);
}

TEST(Waker, CloseStopsCallbacksAndHandlesOutliveTheLoop) {
  Waker kept;
  {
    Loop loop;
    int calls = 0;
    Waker w = loop.waker([&](std::uint64_t) { ++calls; });
    EXPECT_TRUE(w.active());
    EXPECT_TRUE(loop.has_work());
    w.close();
    w.close();
    EXPECT_FALSE(w.active());
    EXPECT_FALSE(loop.has_work());  // run() would return
    w.wake();                       // harmless
    loop.run_once(std::chrono::milliseconds(5));
    EXPECT_EQ(calls, 0);
    kept = loop.waker([](std::uint64_t) {});
  }
  // The loop is gone; a thread that still holds a handle may wake it.
  std::thread late([kept] { kept.wake(); });
  late.join();
  EXPECT_GE(kept.fd(), 0);
}

TEST(Waker, EmptyCallbackIsAClearError) {
  Loop loop;
  EXPECT_THROW(loop.waker(nullptr), std::system_error);
  Waker none;
  none.wake();  // a default handle does nothing
  EXPECT_FALSE(none);
}

TEST(Waker, DispatchAllocatesNothing) {
  Loop loop;
  std::uint64_t received = 0;
  Waker w = loop.waker([&](std::uint64_t wakes) { received += wakes; });
  w.wake();
  turn_until(loop, [&] { return received >= 1; });
  long before = spindle_test::allocations();
  for (int i = 0; i < 20; ++i) {
    w.wake();
    std::uint64_t want = received + 1;
    while (received < want) loop.run_once(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(spindle_test::allocations() - before, 0);
  w.close();
}

}  // namespace
