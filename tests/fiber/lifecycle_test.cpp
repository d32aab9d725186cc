// Resettable and coarse timeouts, every(), supervision, graceful shutdown.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "spindle/spindle.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Boom : std::runtime_error {
  using std::runtime_error::runtime_error;
};

TEST(Timeouts, AResettableIdleTimeout) {
  spindle::run([] {
    auto start = Clock::now();
    int requests = 0;
    // The idle window is ten times the gap between requests, so that a
    // loaded machine waking the sleeper late does not end it early.
    bool timed_out = !spindle::move_on_after(200ms, [&](spindle::Timeout& idle) {
      for (int i = 0; i < 5; ++i) {
        spindle::sleep(20ms);  // a request arrives before the idle timeout
        ++requests;
        idle.reset();
      }
      spindle::sleep(10s);  // then silence: the idle timeout ends it
    });
    EXPECT_TRUE(timed_out);
    EXPECT_EQ(requests, 5);
    EXPECT_GE(Clock::now() - start, 5 * 20ms + 200ms);
    EXPECT_LT(Clock::now() - start, 5s);
  });
}

TEST(Timeouts, CancelAfterPassesTheHandleToo) {
  spindle::run([] {
    EXPECT_THROW(spindle::cancel_after(5ms,
                                       [](spindle::Timeout& t) {
                                         EXPECT_FALSE(t.expired());
                                         t.reset(1ms);
                                         spindle::sleep(10s);
                                       }),
                 spindle::TimedOut);
  });
}

TEST(Timeouts, CoarseTimeoutsShareSlotsAndAreNeverEarly) {
  spindle::Options options;
  options.coarse_timeouts = 10ms;
  spindle::run(
      [] {
        std::vector<spindle::Fiber<void>> fibers;
        for (int i = 0; i < 2000; ++i) {
          fibers.push_back(spindle::spin([i] {
            auto start = Clock::now();
            auto d = std::chrono::milliseconds(5 + i % 20);
            bool expired = !spindle::move_on_after(d, [] { spindle::suspend(); });
            EXPECT_TRUE(expired);
            EXPECT_GE(Clock::now() - start, d);
          }));
        }
        spindle::yield();
        // 2,000 deadlines over 25 ms: a handful of slots, not 2,000 timers.
        EXPECT_LT(spindle::current_loop().timers_pending(), 20u);
        for (auto& f : fibers) f.join();
      },
      options);
}

TEST(Every, RunsWithoutDriftAndStopsOnFalse) {
  spindle::run([] {
    auto start = Clock::now();
    int calls = 0;
    spindle::every(2ms, [&] {
      ++calls;
      return calls < 50;
    });
    EXPECT_EQ(calls, 50);
    auto took = Clock::now() - start;
    EXPECT_GE(took, 49 * 2ms);
    EXPECT_LT(took, 49 * 2ms + 60ms);  // drift would accumulate beyond this
  });
}

TEST(Every, SkipsMissedPeriodsInsteadOfBunching) {
  spindle::run([] {
    std::vector<Clock::time_point> at;
    auto start = Clock::now();
    spindle::every(5ms, [&] {
      at.push_back(Clock::now());
      if (at.size() == 2) ::usleep(23'000);  // overrun: periods 2..5 are missed
      return at.size() < 5;
    });
    ASSERT_EQ(at.size(), 5u);
    // Each call falls in a period of its own (no catching up in a burst),
    // and the calls after the overrun skip the periods it covered.
    std::vector<long> period;
    for (auto t : at) period.push_back(static_cast<long>((t - start) / 5ms));
    for (std::size_t i = 1; i < period.size(); ++i) EXPECT_GT(period[i], period[i - 1]);
    EXPECT_GE(period[2], 5);
  });
}

TEST(Every, IsCancellable) {
  spindle::run([] {
    auto f = spindle::spin([] { spindle::every(1ms, [] {}); });
    spindle::sleep(5ms);
    f.cancel();
    EXPECT_THROW(f.join(), spindle::Cancelled);
  });
}

TEST(Supervise, RestartsAFailingChildUntilItSucceeds) {
  spindle::run([] {
    int attempts = 0, exits = 0;
    spindle::supervise({.restart = spindle::Restart::on_error,
                        .on_exit = [&](std::size_t, std::exception_ptr) { ++exits; }},
                       [&] {
                         ++attempts;
                         spindle::sleep(1ms);
                         if (attempts < 3) throw Boom("flaky");
                       });
    EXPECT_EQ(attempts, 3);
    EXPECT_EQ(exits, 3);
  });
}

TEST(Supervise, GivesUpPastTheIntensityLimit) {
  spindle::run([] {
    int attempts = 0;
    try {
      spindle::supervise({.max_restarts = 2, .within = 10s}, [&] {
        ++attempts;
        throw Boom("always");
      });
      ADD_FAILURE() << "supervisor did not give up";
    } catch (const spindle::SupervisorGaveUp& e) {
      EXPECT_EQ(attempts, 3);
      try {
        std::rethrow_if_nested(e);
      } catch (const Boom& cause) {
        EXPECT_STREQ(cause.what(), "always");
      }
    }
  });
}

TEST(Supervise, OneForAllRestartsTheSiblingsToo) {
  spindle::run([] {
    int a_starts = 0, b_starts = 0;
    spindle::supervise(
        {.restart = spindle::Restart::on_error, .strategy = spindle::Strategy::one_for_all},
        [&] {
          ++a_starts;
          spindle::sleep(a_starts == 1 ? 2ms : 1ms);
          if (a_starts == 1) throw Boom("a");
        },
        [&] {
          ++b_starts;
          spindle::sleep(b_starts == 1 ? 10s : 1ms);  // cancelled the first time
        });
    EXPECT_EQ(a_starts, 2);
    EXPECT_EQ(b_starts, 2);
  });
}

TEST(Supervise, NeverAndAlways) {
  spindle::run([] {
    int runs = 0;
    spindle::supervise({.restart = spindle::Restart::never}, [&] { ++runs; });
    EXPECT_EQ(runs, 1);
    runs = 0;
    EXPECT_THROW(spindle::supervise({.restart = spindle::Restart::always, .max_restarts = 4},
                                    [&] { ++runs; }),
                 spindle::SupervisorGaveUp);
    EXPECT_EQ(runs, 5);
  });
}

// Polyphony's examples/core/supervisor_with_cancel_scope.rb: a supervisor
// of three sleepers inside move_on_after(0.5) must end at the deadline,
// with every child stopped.
TEST(Supervise, PolyphonysSupervisorInsideACancelScope) {
  spindle::run([] {
    int done = 0, stopped = 0;
    auto sleeper = [&](int ms) {
      return [&, ms] {
        try {
          spindle::sleep(std::chrono::milliseconds(ms));
          ++done;
        } catch (const spindle::Cancelled&) {
          ++stopped;
          throw;
        }
      };
    };
    auto start = Clock::now();
    bool finished = spindle::move_on_after(50ms, [&] {
      spindle::supervise({.restart = spindle::Restart::never}, sleeper(1000), sleeper(2000),
                         sleeper(3000));
    });
    auto took = Clock::now() - start;
    EXPECT_FALSE(finished);
    EXPECT_GE(took, 50ms);
    EXPECT_LT(took, 700ms);  // long before the first sleeper would have woken
    EXPECT_EQ(done, 0);
    EXPECT_EQ(stopped, 3);
    EXPECT_TRUE(spindle::current().children().empty());
  });
}

// Polyphony's examples/core/supervisor_with_error.rb: children that fail
// after sleeping; the first failure comes out of the supervisor and the
// other children are stopped.
TEST(Supervise, PolyphonysSupervisorWithError) {
  spindle::run([] {
    int stopped = 0;
    auto failing = [&](int ms) {
      return [&, ms] {
        try {
          spindle::sleep(std::chrono::milliseconds(ms));
        } catch (const spindle::Cancelled&) {
          ++stopped;
          throw;
        }
        throw Boom("blah " + std::to_string(ms));
      };
    };
    auto start = Clock::now();
    try {
      spindle::supervise({.restart = spindle::Restart::never}, failing(10), failing(1000),
                         failing(2000));
      ADD_FAILURE() << "no exception from the supervisor";
    } catch (const Boom& e) {
      EXPECT_STREQ(e.what(), "blah 10");
    }
    EXPECT_LT(Clock::now() - start, 700ms);  // the others were stopped, not awaited
    EXPECT_EQ(stopped, 2);
  });
}

TEST(Supervise, CancellingTheSupervisorStopsItsChildren) {
  spindle::run([] {
    bool child_cancelled = false;
    auto sup = spindle::spin([&] {
      spindle::supervise({}, [&] {
        try {
          spindle::sleep(10s);
        } catch (const spindle::Cancelled&) {
          child_cancelled = true;
          throw;
        }
      });
    });
    spindle::sleep(2ms);
    sup.cancel();
    EXPECT_THROW(sup.join(), spindle::Cancelled);
    EXPECT_TRUE(child_cancelled);
  });
}

// A small server tree: an acceptor takes "connections" from a pipe (one byte
// each: the request's duration in ms) and runs a handler fiber per request.
TEST(Shutdown, AServerStopsAcceptingFinishesInFlightAndCancelsTheSlow) {
  spindle::run([] {
    spindle::Pipe incoming = spindle::make_pipe();
    std::vector<int> finished, cancelled;
    bool acceptor_stopped = false;
    auto server = spindle::spin([&] {
      while (!spindle::shutting_down()) {
        std::byte req[1];
        auto got = spindle::until_shutdown([&] { return spindle::read(incoming.read_end, req); });
        if (!got || *got == 0) break;
        int ms = static_cast<int>(req[0]);
        spindle::spin([&, ms] {
          try {
            spindle::sleep(std::chrono::milliseconds(ms));
            finished.push_back(ms);
          } catch (const spindle::Cancelled&) {
            cancelled.push_back(ms);
            throw;
          }
        });
      }
      acceptor_stopped = true;
    });
    for (int ms : {10, 20, 200}) {
      std::byte b[1] = {static_cast<std::byte>(ms)};
      spindle::write(incoming.write_end, b);
    }
    spindle::sleep(2ms);  // all three requests accepted
    server.shutdown(60ms);
    spindle::sleep(5ms);
    EXPECT_TRUE(acceptor_stopped);  // stopped accepting at once
    std::byte late[1] = {std::byte{1}};
    spindle::write(incoming.write_end, late);  // nobody accepts this one
    auto start = Clock::now();
    server.join();  // its own function returned; the slow child was cut off at the grace
    EXPECT_LT(Clock::now() - start, 1s);
    EXPECT_EQ(finished, (std::vector<int>{10, 20}));
    EXPECT_EQ(cancelled, (std::vector<int>{200}));
    ::close(incoming.read_end);
    ::close(incoming.write_end);
  });
}

TEST(Shutdown, AllDoneWithinGraceEndsNormally) {
  spindle::run([] {
    auto f = spindle::spin([] {
      spindle::spin([] { spindle::sleep(5ms); });
      auto r = spindle::until_shutdown([] { spindle::sleep(10s); });
      EXPECT_FALSE(r);
      EXPECT_TRUE(spindle::shutting_down());
      return 7;
    });
    spindle::yield();
    f.shutdown(1s);
    EXPECT_EQ(f.join(), 7);
  });
}

TEST(Shutdown, ErrorsDuringShutdownAreCollectedNotLost) {
  spindle::run([] {
    auto f = spindle::spin([] {
      for (int i = 0; i < 3; ++i) {
        spindle::spin([i] {
          spindle::until_shutdown([] { spindle::sleep(10s); });
          spindle::sleep(std::chrono::milliseconds(1 + i));
          throw Boom("failure " + std::to_string(i));
        });
      }
      spindle::until_shutdown([] { spindle::sleep(10s); });
    });
    spindle::yield();
    f.shutdown(1s);
    try {
      f.join();
      ADD_FAILURE() << "no error";
    } catch (const spindle::ShutdownErrors& e) {
      EXPECT_EQ(e.errors().size(), 3u);  // none cancelled the others
      EXPECT_NE(std::string(e.what()).find("failure 2"), std::string::npos);
    }
  });
}

}  // namespace

namespace {

TEST(Shutdown, TheFirstSignalShutsDownGracefullyTheSecondCancels) {
  spindle::Options options;
  options.graceful_signals = true;
  options.shutdown_grace = 5s;
  bool graceful = false, slow_cancelled = false;
  auto start = Clock::now();
  spindle::run(
      [&] {
        spindle::spin([&] {
          spindle::until_shutdown([] { spindle::sleep(30s); });
          graceful = spindle::shutting_down();
        });
        spindle::spin([&] {
          try {
            spindle::sleep(30s);
          } catch (const spindle::Cancelled&) {
            slow_cancelled = true;
            throw;
          }
        });
        spindle::yield();
        ::raise(SIGTERM);  // to this thread, which the runtime has blocked it in
        spindle::sleep(5ms);
        EXPECT_TRUE(graceful);
        EXPECT_FALSE(slow_cancelled);  // still within its grace
        ::raise(SIGINT);               // the second one: cancel
      },
      options);
  EXPECT_TRUE(slow_cancelled);
  EXPECT_LT(Clock::now() - start, 3s);
}

}  // namespace
