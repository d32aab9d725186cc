// The blocking-work pool: values, exceptions, concurrency, the queue
// policy, cancellation before and during a job, deadlines.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "spindle/spindle.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(Blocking, ReturnsTheValueAndRunsOnAnotherThread) {
  spindle::run([] {
    auto me = std::this_thread::get_id();
    auto [value, where] =
        spindle::blocking([] { return std::pair(42, std::this_thread::get_id()); });
    EXPECT_EQ(value, 42);
    EXPECT_NE(where, me);
    spindle::blocking([] {});  // void works too
  });
}

TEST(Blocking, RethrowsWhatTheFunctionThrew) {
  spindle::run([] {
    EXPECT_THROW(spindle::blocking([]() -> int { throw std::runtime_error("boom"); }),
                 std::runtime_error);
  });
}

TEST(Blocking, OnlyTheCallingFiberWaits) {
  spindle::run([] {
    std::atomic<bool> release{false};
    int ticks = 0;
    auto ticker = spindle::spin([&] {
      while (!release.load()) {
        ++ticks;
        spindle::sleep(1ms);
      }
    });
    spindle::blocking([&] {
      std::this_thread::sleep_for(50ms);
      release = true;
    });
    ticker.join();
    EXPECT_GT(ticks, 5);  // the worker kept running fibers meanwhile
  });
}

TEST(Blocking, ManyFibersShareThePool) {
  spindle::run([] {
    std::atomic<int> running{0}, peak{0};
    std::vector<spindle::Fiber<int>> fibers;
    for (int i = 0; i < 64; ++i) {
      fibers.push_back(spindle::spin([&, i] {
        return spindle::blocking([&, i] {
          int now = ++running;
          int seen = peak.load();
          while (now > seen && !peak.compare_exchange_weak(seen, now)) {
          }
          std::this_thread::sleep_for(2ms);
          --running;
          return i * 2;
        });
      }));
    }
    for (int i = 0; i < 64; ++i) EXPECT_EQ(fibers[static_cast<std::size_t>(i)].join(), i * 2);
    EXPECT_GT(peak.load(), 1);
    EXPECT_LE(static_cast<unsigned>(peak.load()), spindle::blocking_pool_options().max_threads);
    spindle::BlockingPoolStats st = spindle::blocking_pool_stats();
    EXPECT_GE(st.completed, 64u);
    EXPECT_EQ(st.running, 0u);
  });
}

TEST(Blocking, CancelledBeforeItStartsTheJobIsDropped) {
  spindle::BlockingPoolOptions saved = spindle::blocking_pool_options();
  spindle::configure_blocking_pool({.max_threads = 1, .queue_limit = 16});
  spindle::run([] {
    std::atomic<bool> release{false};
    std::atomic<bool> second_ran{false};
    auto first = spindle::spin([&] {
      spindle::blocking([&] {
        while (!release.load()) std::this_thread::sleep_for(1ms);
      });
    });
    spindle::sleep(5ms);  // the only pool thread is busy with `first`
    auto second = spindle::spin([&] { spindle::blocking([&] { second_ran = true; }); });
    spindle::sleep(5ms);
    std::uint64_t dropped = spindle::blocking_pool_stats().dropped;
    second.cancel();
    EXPECT_THROW(second.join(), spindle::Cancelled);
    EXPECT_EQ(spindle::blocking_pool_stats().dropped, dropped + 1);
    release = true;
    first.join();
    spindle::sleep(5ms);
    EXPECT_FALSE(second_ran.load());
  });
  spindle::configure_blocking_pool(saved);
}

TEST(Blocking, CancelledWhileRunningWaitsForTheFunctionAndReportsItsResult) {
  spindle::run([] {
    std::atomic<bool> started{false};
    auto f = spindle::spin([&] {
      int local = 7;  // the job refers to the fiber's frame: it must not outlive it
      int got = spindle::blocking([&] {
        started = true;
        std::this_thread::sleep_for(30ms);
        return local * 6;
      });
      EXPECT_EQ(got, 42);     // the work completed: its result is reported
      spindle::checkpoint();  // and the cancellation applies here
      ADD_FAILURE() << "not cancelled";
    });
    while (!started.load()) spindle::sleep(1ms);
    auto t0 = Clock::now();
    f.cancel();
    EXPECT_THROW(f.join(), spindle::Cancelled);
    EXPECT_GE(Clock::now() - t0, 15ms);  // it waited for the function
  });
}

TEST(Blocking, StopTokenEndsARunningJobEarly) {
  spindle::run([] {
    auto t0 = Clock::now();
    bool stopped = false;
    EXPECT_NO_THROW({
      spindle::move_on_after(20ms, [&] {
        stopped = spindle::blocking([](std::stop_token st) {
          for (int i = 0; i < 5000 && !st.stop_requested(); ++i) std::this_thread::sleep_for(1ms);
          return st.stop_requested();
        });
        spindle::checkpoint();  // the expired scope applies here
      });
    });
    EXPECT_TRUE(stopped);
    EXPECT_LT(Clock::now() - t0, 2s);
  });
}

TEST(Blocking, DeadlineBeforeTheJobStarts) {
  spindle::BlockingPoolOptions saved = spindle::blocking_pool_options();
  spindle::configure_blocking_pool({.max_threads = 1});
  spindle::run([] {
    std::atomic<bool> release{false};
    auto hog = spindle::spin([&] {
      spindle::blocking([&] {
        while (!release.load()) std::this_thread::sleep_for(1ms);
      });
    });
    spindle::sleep(5ms);
    bool ran = false;
    EXPECT_THROW(spindle::blocking([&] { ran = true; }, 10ms), spindle::TimedOut);
    release = true;
    hog.join();
    EXPECT_FALSE(ran);
  });
  spindle::configure_blocking_pool(saved);
}

TEST(Blocking, FullQueueFailsOrWaitsAsConfigured) {
  spindle::BlockingPoolOptions saved = spindle::blocking_pool_options();
  spindle::configure_blocking_pool({.max_threads = 1,
                                    .queue_limit = 2,
                                    .when_full = spindle::BlockingPoolOptions::WhenFull::fail});
  spindle::run([] {
    std::atomic<bool> release{false};
    auto wait_release = [&] {
      while (!release.load()) std::this_thread::sleep_for(1ms);
    };
    std::vector<spindle::Fiber<void>> busy;
    busy.push_back(spindle::spin([&] { spindle::blocking(wait_release); }));  // running
    spindle::sleep(5ms);
    busy.push_back(spindle::spin([&] { spindle::blocking(wait_release); }));  // queued
    busy.push_back(spindle::spin([&] { spindle::blocking(wait_release); }));  // queued
    spindle::yield();
    try {
      spindle::blocking([] {});
      ADD_FAILURE() << "no queue-full error";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EAGAIN);
      EXPECT_NE(std::string(e.what()).find("queue full"), std::string::npos);
    }
    EXPECT_GE(spindle::blocking_pool_stats().rejected, 1u);
    // Under WhenFull::wait the caller waits for room instead.
    spindle::configure_blocking_pool({.max_threads = 1,
                                      .queue_limit = 2,
                                      .when_full = spindle::BlockingPoolOptions::WhenFull::wait});
    auto waiter = spindle::spin([] { return spindle::blocking([] { return 5; }); });
    spindle::sleep(5ms);
    EXPECT_EQ(spindle::blocking_pool_stats().waiting_for_room, 1u);
    release = true;
    EXPECT_EQ(waiter.join(), 5);
    for (auto& f : busy) f.join();
  });
  spindle::configure_blocking_pool(saved);
}

TEST(Blocking, OutsideAFiberIsALogicError) {
  EXPECT_THROW(spindle::blocking([] {}), std::logic_error);
}

}  // namespace
