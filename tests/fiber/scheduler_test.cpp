// Scheduling: yield fairness, sleep ordering and precision, I/O polling
// while fibers are busy.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "alloc_counter.hpp"
#include "spindle/spindle.hpp"
#include "test_config.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(Scheduler, YieldIsFifoFair) {
  std::vector<int> order;
  spindle::run([&] {
    std::vector<spindle::Fiber<void>> fibers;
    for (int id = 0; id < 4; ++id) {
      fibers.push_back(spindle::spin([&order, id] {
        for (int round = 0; round < 5; ++round) {
          order.push_back(id);
          spindle::yield();
        }
      }));
    }
    for (auto& f : fibers) f.join();
  });
  std::vector<int> expected;
  for (int round = 0; round < 5; ++round) {
    for (int id = 0; id < 4; ++id) expected.push_back(id);
  }
  EXPECT_EQ(order, expected);
}

TEST(Scheduler, SpinQueuesBehindRunnableFibersAndDoesNotSwitch) {
  std::vector<int> order;
  spindle::run([&] {
    auto a = spindle::spin([&] { order.push_back(1); });
    auto b = spindle::spin([&] { order.push_back(2); });
    order.push_back(0);  // spin did not switch
    a.join();
    b.join();
  });
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
}

TEST(Scheduler, SleepersWakeInDeadlineOrder) {
  std::vector<int> woke;
  spindle::run([&] {
    std::vector<spindle::Fiber<void>> fibers;
    for (int ms : {30, 10, 20, 0, 25, 5}) {
      fibers.push_back(spindle::spin([&woke, ms] {
        spindle::sleep(std::chrono::milliseconds(ms));
        woke.push_back(ms);
      }));
    }
    for (auto& f : fibers) f.join();
  });
  EXPECT_EQ(woke, (std::vector<int>{0, 5, 10, 20, 25, 30}));
}

TEST(Scheduler, SleepIsNeverEarly) {
  spindle::run([] {
    std::mt19937 rng(12345);
    std::uniform_int_distribution<int> micros(1, 3000);
    std::vector<spindle::Fiber<void>> fibers;
    for (int i = 0; i < 200; ++i) {
      auto d = std::chrono::microseconds(micros(rng));
      fibers.push_back(spindle::spin([d] {
        auto start = Clock::now();
        spindle::sleep(d);
        auto slept = Clock::now() - start;
        EXPECT_GE(slept, d);
        EXPECT_LT(slept, d + 200ms) << "woke far too late";
      }));
    }
    for (auto& f : fibers) f.join();
  });
}

TEST(Scheduler, SleepUntilAnAbsoluteDeadline) {
  spindle::run([] {
    auto deadline = Clock::now() + 15ms;
    spindle::sleep_until(deadline);
    EXPECT_GE(Clock::now(), deadline);
    auto before = Clock::now();
    spindle::sleep_until(before - 1s);  // in the past: a yield
    spindle::sleep(-5ms);
    EXPECT_LT(Clock::now() - before, 50ms);
  });
}

TEST(Scheduler, TimersFireWhileOtherFibersBusyYield) {
  spindle::run([] {
    bool stop = false;
    auto busy = spindle::spin([&] {
      long spins = 0;
      while (!stop) {
        spindle::yield();
        ++spins;
      }
      return spins;
    });
    auto start = Clock::now();
    spindle::sleep(10ms);  // must fire although `busy` is always runnable
    EXPECT_GE(Clock::now() - start, 10ms);
    stop = true;
    EXPECT_GT(busy.join(), 0);
  });
}

// Two fibers that only yield to each other stay on yield's fast path; a
// high-priority fiber that becomes runnable must still run at the next yield,
// before the other busy fiber gets its turn.
TEST(Scheduler, HighPriorityFiberRunsAtTheNextYieldOfABusyPair) {
  spindle::run([] {
    int b_turns = 0;
    int b_turns_at_spawn = -1;
    int b_turns_when_high_ran = -1;
    bool stop = false;
    auto b = spindle::spin([&] {
      while (!stop) {
        ++b_turns;
        spindle::yield();
      }
    });
    auto a = spindle::spin([&] {
      for (int i = 0; i < 1000; ++i) spindle::yield();  // many fast-path yields
      b_turns_at_spawn = b_turns;
      auto high = spindle::spin([&] { b_turns_when_high_ran = b_turns; },
                                spindle::SpinOptions{.priority = spindle::Priority::high});
      spindle::yield();
      high.join();
      stop = true;
    });
    a.join();
    b.join();
    EXPECT_GT(b_turns_at_spawn, 900);
    EXPECT_EQ(b_turns_when_high_ran, b_turns_at_spawn);
  });
}

TEST(Scheduler, ManySleepersShareTheTimerHeap) {
  spindle::run([] {
    std::vector<spindle::Fiber<void>> fibers;
    int done = 0;
    constexpr int kSleepers = spindle_test::fibers_alive(10'000);
    for (int i = 0; i < kSleepers; ++i) {
      fibers.push_back(spindle::spin([&done, i] {
        spindle::sleep(std::chrono::microseconds(i % 500));
        ++done;
      }));
    }
    for (auto& f : fibers) f.join();
    EXPECT_EQ(done, kSleepers);
  });
}

TEST(Scheduler, SpawnJoinYieldAndSleepAllocateNothingOnceWarm) {
  spindle::run([] {
    std::vector<spindle::Fiber<int>> fibers;
    fibers.reserve(100);
    auto round = [&] {
      for (int i = 0; i < 100; ++i) {
        fibers.push_back(spindle::spin([i] {
          spindle::yield();
          spindle::sleep(std::chrono::microseconds(i));
          return i;
        }));
      }
      int sum = 0;
      for (auto& f : fibers) sum += f.join();
      fibers.clear();
      return sum;
    };
    round();  // warms the stack pool and the timer heap
    long before = spindle_test::allocations();
    int sum = round();
    long after = spindle_test::allocations();
    EXPECT_EQ(sum, 4950);
    EXPECT_EQ(after - before, 0) << "heap allocations in spawn/yield/sleep/join";
    EXPECT_GE(spindle::metrics().stacks_cached, 100u);
  });
}

}  // namespace
