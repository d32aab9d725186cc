// Fibers: spin, join, exceptions, suspend/resume, names, limits.
#include <gtest/gtest.h>

#include <cfenv>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "spindle/spindle.hpp"
#include "test_config.hpp"

namespace {

using namespace std::chrono_literals;

struct CustomError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

TEST(Fiber, RunReturnsTheMainFibersValue) {
  EXPECT_EQ(spindle::run([] { return 42; }), 42);
  EXPECT_EQ(spindle::run([] { return std::string("spindle"); }), "spindle");
}

TEST(Fiber, RunRethrowsTheMainFibersException) {
  EXPECT_THROW(spindle::run([] { throw CustomError("boom"); }), CustomError);
}

TEST(Fiber, JoinReturnsValueAndRethrowsWithTypeAndMessage) {
  spindle::run([] {
    auto f = spindle::spin([] { return 7; });
    EXPECT_EQ(f.join(), 7);
    auto g = spindle::spin([]() -> int { throw CustomError("child failed"); });
    try {
      g.join();
      ADD_FAILURE() << "join did not rethrow";
    } catch (const CustomError& e) {
      EXPECT_STREQ(e.what(), "child failed");
    }
  });
}

TEST(Fiber, ExceptionsThrownAndCaughtInsideFibers) {
  spindle::run([] {
    std::vector<spindle::Fiber<int>> fibers;
    for (int i = 0; i < 50; ++i) {
      fibers.push_back(spindle::spin([i] {
        int caught = 0;
        for (int k = 0; k < 10; ++k) {
          try {
            spindle::yield();
            throw std::out_of_range("k=" + std::to_string(k));
          } catch (const std::out_of_range&) {
            ++caught;
          }
        }
        return caught + i;
      }));
    }
    for (int i = 0; i < 50; ++i) EXPECT_EQ(fibers[i].join(), 10 + i);
  });
}

// A fiber may suspend inside a catch block while another fiber handles its
// own exception: each must keep seeing its own current exception, and
// rethrowing must rethrow its own.
TEST(Fiber, SuspendingInsideCatchBlocksKeepsEachFibersException) {
  spindle::run([] {
    auto handler = [](int id) {
      return spindle::spin([id] {
        try {
          throw std::runtime_error("fiber " + std::to_string(id));
        } catch (const std::exception&) {
          for (int k = 0; k < 3; ++k) {
            spindle::yield();  // interleaves with the other fibers' handlers
            EXPECT_EQ(std::uncaught_exceptions(), 0);
            try {
              std::rethrow_exception(std::current_exception());
            } catch (const std::runtime_error& e) {
              EXPECT_EQ(std::string(e.what()), "fiber " + std::to_string(id));
            }
          }
          try {
            throw;  // rethrows this fiber's exception
          } catch (const std::runtime_error& e) {
            return std::string(e.what());
          }
        }
        return std::string("not reached");
      });
    };
    auto a = handler(1);
    auto b = handler(2);
    auto c = handler(3);
    EXPECT_EQ(a.join(), "fiber 1");
    EXPECT_EQ(b.join(), "fiber 2");
    EXPECT_EQ(c.join(), "fiber 3");
    EXPECT_FALSE(std::current_exception());
  });
}

TEST(Fiber, ADestructorThatSuspendsDuringUnwindingSeesItsOwnUncaughtCount) {
  spindle::run([] {
    struct SuspendsOnUnwind {
      int* seen;
      ~SuspendsOnUnwind() {
        spindle::yield();
        *seen = std::uncaught_exceptions();
      }
    };
    int unwinding = -1, calm = -1;
    auto a = spindle::spin([&] {
      try {
        SuspendsOnUnwind guard{&unwinding};
        throw 1;
      } catch (int) {
      }
    });
    auto b = spindle::spin([&] { SuspendsOnUnwind guard{&calm}; });
    a.join();
    b.join();
    EXPECT_EQ(unwinding, 1);
    EXPECT_EQ(calm, 0);
  });
}

TEST(Fiber, JoinMisuseIsALogicError) {
  spindle::run([] {
    spindle::Fiber<void> empty;
    EXPECT_THROW(empty.join(), std::logic_error);
    spindle::Fiber<void> self;
    auto probe = spindle::spin([&] {
      spindle::suspend();
      EXPECT_THROW(self.join(), std::logic_error);
    });
    self = std::move(probe);
    self.resume();
    spindle::yield();
    spindle::yield();
    self.join();
  });
}

TEST(Fiber, JoinOfAFinishedFiberDoesNotSuspend) {
  spindle::run([] {
    auto f = spindle::spin([] { return 3; });
    spindle::yield();
    EXPECT_TRUE(f.done());
    EXPECT_EQ(f.join(), 3);
  });
}

TEST(Fiber, RunWaitsForDetachedChildren) {
  int finished = 0;
  spindle::run([&] {
    for (int i = 0; i < 100; ++i) {
      spindle::spin([&] {
        spindle::sleep(1ms);
        spindle::spin([&] { ++finished; });  // grandchildren too
        ++finished;
      });
    }
  });
  EXPECT_EQ(finished, 200);
}

TEST(Fiber, UnjoinedExceptionIsRethrownByRun) {
  EXPECT_THROW(spindle::run([] { spindle::spin([] { throw CustomError("lost?"); }); }),
               CustomError);
}

TEST(Fiber, SuspendAndResumeFromAnotherFiber) {
  spindle::run([] {
    auto sleeper = spindle::spin([] { return std::any_cast<int>(spindle::suspend()); });
    spindle::yield();
    sleeper.resume(41);
    EXPECT_EQ(sleeper.join(), 41);
  });
}

TEST(Fiber, ResumeBeforeSuspendIsNotLost) {
  spindle::run([] {
    auto f = spindle::spin([] { return std::any_cast<std::string>(spindle::suspend()); });
    f.resume(std::string("early"));  // f has not run yet
    EXPECT_EQ(f.join(), "early");
  });
}

TEST(Fiber, ResumeMisuseIsALogicError) {
  spindle::run([] {
    auto f = spindle::spin([] { spindle::suspend(); });
    f.resume();
    EXPECT_THROW(f.resume(), std::logic_error);  // one already pending
    auto s = spindle::spin([] { spindle::sleep(20ms); });
    spindle::yield();
    EXPECT_THROW(s.resume(), std::logic_error);  // sleeping, not suspended
    f.join();
    s.join();
    spindle::FiberRef done = spindle::spin([] {});
    spindle::yield();
    EXPECT_THROW(done.resume(), std::logic_error);
  });
}

TEST(Fiber, IdsAndNames) {
  spindle::run([] {
    auto me = spindle::current();
    EXPECT_EQ(me.name(), "main");
    auto a = spindle::spin([] { return spindle::current().id(); }, {.name = "alpha"});
    auto b = spindle::spin([] { return std::string(spindle::current().name()); },
                           {.name = "a-name-that-is-much-longer-than-thirty-one-bytes"});
    EXPECT_EQ(a.name(), "alpha");
    std::uint64_t aid = a.id();
    EXPECT_EQ(a.join(), aid);
    EXPECT_NE(aid, me.id());
    EXPECT_EQ(b.join(),
              std::string("a-name-that-is-much-longer-than-thirty-one-bytes").substr(0, 31));
    me.set_name("renamed");
    EXPECT_EQ(spindle::current().name(), "renamed");
  });
}

TEST(Fiber, CallsOutsideARuntime) {
  EXPECT_FALSE(spindle::in_fiber());
  EXPECT_THROW(spindle::spin([] {}), std::logic_error);
  EXPECT_THROW(spindle::suspend(), std::logic_error);
  EXPECT_THROW(spindle::sleep(1ms), std::logic_error);
  EXPECT_THROW(spindle::current(), std::logic_error);
  EXPECT_THROW(spindle::metrics(), std::logic_error);
  spindle::yield();  // a no-op outside fibers
}

TEST(Fiber, NestedRunIsALogicError) {
  spindle::run([] {
    EXPECT_TRUE(spindle::in_fiber());
    EXPECT_THROW(spindle::run([] {}), std::logic_error);
  });
}

TEST(Fiber, MetricsNameTheBackendInUse) {
  spindle::run([] {
    spindle::Metrics m = spindle::metrics();
    const char* env = std::getenv("SPINDLE_BACKEND");
    if (env != nullptr && std::string(env) == "epoll") {
      EXPECT_EQ(m.backend, spindle::BackendKind::epoll);
    } else if (env != nullptr && std::string(env) == "io_uring") {
      EXPECT_EQ(m.backend, spindle::BackendKind::io_uring);
    }
    EXPECT_NE(m.backend, spindle::BackendKind::automatic);
    EXPECT_FALSE(m.backend_reason.empty());
    EXPECT_EQ(m.fibers_alive, 1u);
  });
}

TEST(Fiber, BadBackendVariableIsAClearError) {
  const char* old = std::getenv("SPINDLE_BACKEND");
  std::string saved = old != nullptr ? old : "";
  ::setenv("SPINDLE_BACKEND", "kqueue", 1);
  try {
    spindle::run([] {});
    ADD_FAILURE() << "no error for SPINDLE_BACKEND=kqueue";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("kqueue"), std::string::npos);
  }
  if (old != nullptr)
    ::setenv("SPINDLE_BACKEND", saved.c_str(), 1);
  else
    ::unsetenv("SPINDLE_BACKEND");
}

TEST(Fiber, DeadlockIsReportedNotHung) {
  try {
    spindle::run([] { spindle::suspend(); });
    ADD_FAILURE() << "no deadlock reported";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("deadlock"), std::string::npos) << e.what();
  }
}

TEST(Fiber, FloatingPointControlStateIsPerFiber) {
  spindle::run([] {
    auto a = spindle::spin([] {
      std::fesetround(FE_TOWARDZERO);
      spindle::yield();
      spindle::yield();
      return std::fegetround();
    });
    auto b = spindle::spin([] {
      int seen = std::fegetround();
      std::fesetround(FE_UPWARD);
      spindle::yield();
      return seen;
    });
    EXPECT_EQ(a.join(), FE_TOWARDZERO);
    EXPECT_EQ(b.join(), FE_TONEAREST);  // a fresh fiber starts at the ABI default
    EXPECT_EQ(std::fegetround(), FE_TONEAREST);
  });
}

// Recurses with ~1 KiB frames.
int recurse(int depth) {
  volatile char frame[1000];
  frame[0] = static_cast<char>(depth);
  if (depth == 0) return frame[0];
  return recurse(depth - 1) + frame[0] * 0 + 1;
}

TEST(Fiber, DeepRecursionNearTheStackSize) {
  spindle::run([] {
    // 256 KiB stack: ~220 frames of ~1 KiB use most of it.
    auto f = spindle::spin([] { return recurse(220); }, {.stack_size = 256 * 1024});
    EXPECT_EQ(f.join(), 220);
  });
}

volatile bool g_stop_recursing = false;  // never set: the compiler cannot know

int recurse_forever(int depth) {
  volatile char frame[512];
  frame[0] = static_cast<char>(depth);
  if (g_stop_recursing) return frame[0];
  return recurse_forever(depth + 1) + frame[0];
}

TEST(FiberDeathTest, StackOverflowNamesTheFiber) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "ASan reports stack overflows itself (its own SIGSEGV handler runs first)";
#endif
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      spindle::run([] { spindle::spin([] { recurse_forever(0); }, {.name = "deep"}).join(); }),
      "spindle: fiber [0-9]+ \"deep\" overflowed its stack of 128 KiB");
}

std::size_t max_map_count() {
  std::size_t n = 65530;
  std::ifstream("/proc/sys/vm/max_map_count") >> n;
  return n;
}

TEST(Fiber, HundredThousandFibersAliveAtOnce) {
  constexpr int kFibers = spindle_test::fibers_alive(100'000);
  spindle::Options options;
  // Guarded stacks take two kernel mappings each (scripts/install-deps.sh
  // raises vm.max_map_count); where the limit is low, test without guards.
  if (max_map_count() < 2 * kFibers + 10'000) {
    std::printf("vm.max_map_count=%zu is too low for %d guarded stacks: running unguarded\n",
                max_map_count(), kFibers);
    options.stack_guard = false;
  }
  options.stack_cache = kFibers;
  long sum = spindle::run(
      [] {
        std::vector<spindle::Fiber<int>> fibers;
        fibers.reserve(kFibers);
        for (int i = 0; i < kFibers; ++i) {
          fibers.push_back(
              spindle::spin([i] { return std::any_cast<int>(spindle::suspend()) + i; }));
        }
        spindle::yield();  // all of them are now suspended
        EXPECT_EQ(spindle::metrics().fibers_alive, static_cast<std::uint64_t>(kFibers) + 1);
        for (auto& f : fibers) f.resume(1);
        long total = 0;
        for (auto& f : fibers) total += f.join();
        return total;
      },
      options);
  EXPECT_EQ(sum, static_cast<long>(kFibers) * (kFibers - 1) / 2 + kFibers);
}

}  // namespace
