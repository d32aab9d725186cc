// Cancellation, cancel scopes and shields: every suspension point, on both
// backends, including kernel operations in flight.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "spindle/spindle.hpp"
#include "test_config.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using spindle_test::ended_cancelled;

TEST(Cancel, ASleepingFiberWakesAtOnce) {
  spindle::run([] {
    auto sleeper = spindle::spin([] { spindle::sleep(10s); });
    spindle::sleep(1ms);
    auto start = Clock::now();
    sleeper.cancel();
    EXPECT_TRUE(sleeper.cancelled());
    EXPECT_TRUE(ended_cancelled(sleeper));
    EXPECT_LT(Clock::now() - start, 1s);
  });
}

TEST(Cancel, ASuspendedFiber) {
  spindle::run([] {
    auto f = spindle::spin([] { spindle::suspend(); });
    spindle::yield();
    f.cancel();
    EXPECT_TRUE(ended_cancelled(f));
  });
}

TEST(Cancel, AFiberBlockedInJoinLeavesTheTargetRunning) {
  spindle::run([] {
    auto target = spindle::spin([] {
      spindle::sleep(20ms);
      return 5;
    });
    auto joiner = spindle::spin([&] { return target.join(); });
    spindle::yield();
    joiner.cancel();
    EXPECT_TRUE(ended_cancelled(joiner));
    EXPECT_EQ(target.join(), 5);  // still valid, still joinable
  });
}

TEST(Cancel, BeforeTheFiberStartsItsFirstSuspensionThrows) {
  spindle::run([] {
    bool reached = false, after = false;
    auto f = spindle::spin([&] {
      reached = true;  // runs: cancellation waits for a suspension point
      spindle::yield();
      after = true;
    });
    f.cancel();
    EXPECT_TRUE(ended_cancelled(f));
    EXPECT_TRUE(reached);
    EXPECT_FALSE(after);
  });
}

TEST(Cancel, ABusyYieldingFiber) {
  spindle::run([] {
    auto busy = spindle::spin([] {
      for (;;) spindle::yield();
    });
    spindle::yield();
    busy.cancel();
    EXPECT_TRUE(ended_cancelled(busy));
  });
}

TEST(Cancel, StdExceptionHandlersDoNotSwallowIt) {
  spindle::run([] {
    bool swallowed = false;
    auto f = spindle::spin([&] {
      try {
        spindle::sleep(10s);
      } catch (const std::exception&) {
        swallowed = true;
      }
    });
    spindle::yield();
    f.cancel();
    EXPECT_TRUE(ended_cancelled(f));
    EXPECT_FALSE(swallowed);
  });
}

TEST(Cancel, OnceCancelledEverySuspensionPointThrows) {
  spindle::run([] {
    int caught = 0;
    auto f = spindle::spin([&] {
      for (int i = 0; i < 3; ++i) {
        try {
          spindle::sleep(10s);
        } catch (const spindle::Cancelled&) {
          ++caught;
        }
      }
    });
    spindle::yield();
    f.cancel();
    f.join();
    EXPECT_EQ(caught, 3);
  });
}

TEST(Cancel, ABlockedReadIsCancelledInTheKernelAndLosesNoData) {
  spindle::run([] {
    spindle::Pipe p = spindle::make_pipe();
    std::size_t got = 0;
    auto reader = spindle::spin([&] {
      std::byte buf[64];
      got = spindle::read(p.read_end, buf);
      spindle::sleep(10s);  // reached only if the data won the race
    });
    spindle::yield();  // the reader is now blocked in read
    ASSERT_EQ(::write(p.write_end, "abc", 3), 3);
    reader.cancel();
    EXPECT_TRUE(ended_cancelled(reader));
    // Either the read completed first (its data is reported) or it was
    // cancelled and the data is still in the pipe: never lost.
    char rest[8];
    ssize_t left = ::read(p.read_end, rest, sizeof(rest));
    std::size_t remaining = left > 0 ? static_cast<std::size_t>(left) : 0;
    EXPECT_EQ(got + remaining, 3u);
    ::close(p.read_end);
    ::close(p.write_end);
  });
}

constexpr int kManyReaders = spindle_test::fibers_alive(2000);

TEST(Cancel, ManyFibersBlockedInReadsWithBuffersOnTheirStacks) {
  spindle::run([] {
    std::vector<spindle::Pipe> pipes;
    std::vector<spindle::Fiber<void>> readers;
    for (int i = 0; i < kManyReaders / 4; ++i) pipes.push_back(spindle::make_pipe());
    for (int i = 0; i < kManyReaders; ++i) {
      readers.push_back(spindle::spin([&pipes, i] {
        std::byte buf[256];  // the kernel must never write here after the fiber left
        spindle::read(pipes[i / 4].read_end, buf);
      }));
    }
    spindle::yield();
    for (auto& r : readers) r.cancel();
    int cancelled = 0;
    for (auto& r : readers) cancelled += ended_cancelled(r) ? 1 : 0;
    EXPECT_EQ(cancelled, kManyReaders);
    // Data written now goes nowhere near the dead frames.
    for (auto& p : pipes) ASSERT_EQ(::write(p.write_end, "z", 1), 1);
    spindle::sleep(5ms);
    EXPECT_EQ(spindle::metrics().fibers_alive, 1u);
    for (auto& p : pipes) {
      ::close(p.read_end);
      ::close(p.write_end);
    }
  });
}

TEST(Cancel, WaitReadableIsCancelled) {
  spindle::run([] {
    spindle::Pipe p = spindle::make_pipe();
    auto waiter = spindle::spin([&] { spindle::wait_readable(p.read_end); });
    spindle::yield();
    waiter.cancel();
    EXPECT_TRUE(ended_cancelled(waiter));
    ::close(p.read_end);
    ::close(p.write_end);
  });
}

TEST(Cancel, FromAnotherThread) {
  spindle::run([] {
    auto sleeper = spindle::spin([] { spindle::sleep(30s); });
    spindle::FiberRef ref = sleeper;  // a copy for the other thread
    std::thread canceller([ref] {
      std::this_thread::sleep_for(20ms);
      ref.cancel();
    });
    auto start = Clock::now();
    EXPECT_TRUE(ended_cancelled(sleeper));
    EXPECT_LT(Clock::now() - start, 5s);
    canceller.join();
  });
}

TEST(CancelAfter, ExpiresWithTimedOut) {
  spindle::run([] {
    auto start = Clock::now();
    EXPECT_THROW(spindle::cancel_after(10ms, [] { spindle::sleep(10s); }), spindle::TimedOut);
    EXPECT_GE(Clock::now() - start, 10ms);
    EXPECT_LT(Clock::now() - start, 2s);
    // The fiber itself is not cancelled afterwards.
    spindle::sleep(1ms);
  });
}

TEST(CancelAfter, ReturnsTheValueWhenInTime) {
  spindle::run([] {
    int v = spindle::cancel_after(1s, [] {
      spindle::sleep(1ms);
      return 9;
    });
    EXPECT_EQ(v, 9);
  });
}

TEST(MoveOnAfter, EmptyAtTheDeadline) {
  spindle::run([] {
    std::optional<int> none = spindle::move_on_after(5ms, [] {
      spindle::sleep(10s);
      return 1;
    });
    EXPECT_FALSE(none.has_value());
    std::optional<int> some = spindle::move_on_after(1s, [] { return 2; });
    EXPECT_EQ(some, 2);
    EXPECT_FALSE(spindle::move_on_after(5ms, [] { spindle::suspend(); }));
    EXPECT_TRUE(spindle::move_on_after(1s, [] {}));
  });
}

TEST(CancelScopes, AnOuterDeadlineIsNotSwallowedByAnInnerScope) {
  spindle::run([] {
    bool inner_timed_out = false;
    try {
      spindle::cancel_after(10ms, [&] {
        try {
          spindle::cancel_after(10s, [] { spindle::sleep(30s); });
        } catch (const spindle::TimedOut&) {
          inner_timed_out = true;  // wrong scope
        }
      });
      ADD_FAILURE() << "outer deadline swallowed";
    } catch (const spindle::TimedOut&) {
    }
    EXPECT_FALSE(inner_timed_out);
  });
}

TEST(CancelScopes, TheInnermostExpiringDeadlineWins) {
  spindle::run([] {
    int result = spindle::cancel_after(10s, [] {
      auto inner = spindle::move_on_after(5ms, [] {
        spindle::sleep(30s);
        return 1;
      });
      EXPECT_FALSE(inner.has_value());
      spindle::sleep(1ms);  // the outer scope is still fine
      return 2;
    });
    EXPECT_EQ(result, 2);
  });
}

TEST(Shield, DefersCancellationUntilItEnds) {
  spindle::run([] {
    bool cleanup_done = false, cancelled_after = false;
    auto f = spindle::spin([&] {
      try {
        spindle::sleep(10s);
      } catch (const spindle::Cancelled&) {
        spindle::shield([&] {
          spindle::sleep(5ms);  // would throw again without the shield
          cleanup_done = true;
        });
        try {
          spindle::yield();
        } catch (const spindle::Cancelled&) {
          cancelled_after = true;
        }
        throw;
      }
    });
    spindle::yield();
    f.cancel();
    EXPECT_TRUE(ended_cancelled(f));
    EXPECT_TRUE(cleanup_done);
    EXPECT_TRUE(cancelled_after);
  });
}

TEST(Shield, WithATimeoutOfItsOwn) {
  spindle::run(
      [] { EXPECT_THROW(spindle::shield(5ms, [] { spindle::sleep(10s); }), spindle::TimedOut); });
}

TEST(Shield, ShieldsAnOuterScopeDeadlineToo) {
  spindle::run([] {
    bool finished = false;
    EXPECT_THROW(spindle::cancel_after(5ms,
                                       [&] {
                                         spindle::shield([&] {
                                           spindle::sleep(20ms);
                                           finished = true;
                                         });
                                         spindle::yield();  // the outer deadline applies here
                                       }),
                 spindle::TimedOut);
    EXPECT_TRUE(finished);
  });
}

TEST(Checkpoint, MakesCpuBoundLoopsCancellable) {
  spindle::run([] {
    auto f = spindle::spin([] {
      volatile long x = 0;
      for (;;) {
        x = x + 1;
        if ((x & 1023) == 0) spindle::checkpoint();
      }
    });
    // f never yields: it is cancelled before it first runs, and throws at
    // its first checkpoint.
    f.cancel();
    EXPECT_TRUE(ended_cancelled(f));
    EXPECT_FALSE(spindle::cancellation_pending());
  });
}

}  // namespace
