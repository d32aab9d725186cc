// The fiber tree: children, error propagation, raise/interrupt/restart,
// await_all / select / race / after.
#include <gtest/gtest.h>
#include <unistd.h>

#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "spindle/spindle.hpp"
#include "test_config.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Boom : std::runtime_error {
  using std::runtime_error::runtime_error;
};

TEST(Tree, ParentAndChildren) {
  spindle::run([] {
    auto me = spindle::current();
    EXPECT_FALSE(me.parent());
    auto a = spindle::spin([] { spindle::sleep(5ms); });
    auto b = spindle::spin([] { spindle::sleep(50ms); });
    EXPECT_EQ(a.parent(), me);
    EXPECT_EQ(me.children().size(), 2u);
    auto d = spindle::spin_detached([] { spindle::sleep(5ms); });
    EXPECT_FALSE(d.parent());
    EXPECT_EQ(me.children().size(), 2u);
    a.join();
    EXPECT_EQ(me.children().size(), 1u);
  });
}

TEST(Tree, AFiberEndsOnlyAfterItsChildren) {
  spindle::run([] {
    bool grandchild_done = false;
    auto parent = spindle::spin([&] {
      spindle::spin([&] {
        spindle::sleep(20ms);
        grandchild_done = true;
      });
      return 1;  // returns at once, but the fiber waits for its child
    });
    EXPECT_EQ(parent.join(), 1);
    EXPECT_TRUE(grandchild_done);
  });
}

TEST(Tree, AChildsErrorCancelsSiblingsAndReachesTheParent) {
  spindle::run([] {
    bool sibling_cancelled = false;
    auto parent = spindle::spin([&] {
      spindle::spin([&] {
        try {
          spindle::sleep(10s);
        } catch (const spindle::Cancelled&) {
          sibling_cancelled = true;
          throw;
        }
      });
      spindle::spin([] {
        spindle::sleep(1ms);
        throw Boom("child failed");
      });
      spindle::sleep(10s);  // the parent's next suspension point rethrows
    });
    try {
      parent.join();
      ADD_FAILURE() << "no error";
    } catch (const Boom& e) {
      EXPECT_STREQ(e.what(), "child failed");  // type and message kept
    }
    EXPECT_TRUE(sibling_cancelled);
  });
}

TEST(Tree, AChildErrorArrivingAfterTheParentReturnedIsItsResult) {
  spindle::run([] {
    auto parent = spindle::spin([] {
      spindle::spin([] {
        spindle::sleep(2ms);
        throw Boom("late");
      });
      return 3;
    });
    EXPECT_THROW(parent.join(), Boom);
  });
}

TEST(Tree, AJoinedChildsErrorGoesToTheJoinerOnly) {
  spindle::run([] {
    bool sibling_ok = false;
    auto sibling = spindle::spin([&] {
      spindle::sleep(5ms);
      sibling_ok = true;
    });
    auto failing = spindle::spin([]() -> int { throw Boom("joined"); });
    EXPECT_THROW(failing.join(), Boom);
    sibling.join();
    EXPECT_TRUE(sibling_ok);  // not cancelled: the error was received by join
    spindle::sleep(1ms);      // and it is not rethrown again here
  });
}

TEST(Tree, CancellationTravelsDownTheTree) {
  spindle::run([] {
    int cancelled = 0;
    auto top = spindle::spin([&] {
      for (int i = 0; i < 3; ++i) {
        spindle::spin([&] {
          spindle::spin([&] {
            try {
              spindle::sleep(10s);
            } catch (const spindle::Cancelled&) {
              ++cancelled;
              throw;
            }
          });
          try {
            spindle::sleep(10s);
          } catch (const spindle::Cancelled&) {
            ++cancelled;
            throw;
          }
        });
      }
      spindle::sleep(10s);
    });
    spindle::sleep(1ms);
    top.cancel();
    EXPECT_THROW(top.join(), spindle::Cancelled);
    EXPECT_EQ(cancelled, 6);
  });
}

TEST(Tree, AFailingParentCancelsItsChildren) {
  spindle::run([] {
    bool child_cancelled = false;
    auto parent = spindle::spin([&] {
      spindle::spin([&] {
        try {
          spindle::sleep(10s);
        } catch (const spindle::Cancelled&) {
          child_cancelled = true;
          throw;
        }
      });
      spindle::yield();
      throw Boom("parent");
    });
    EXPECT_THROW(parent.join(), Boom);
    EXPECT_TRUE(child_cancelled);
  });
}

TEST(Tree, DetachedFailuresGoToRun) {
  EXPECT_THROW(spindle::run([] {
                 spindle::spin_detached([] {
                   spindle::sleep(1ms);
                   throw Boom("detached");
                 });
               }),
               Boom);
}

TEST(Tree, RaiseMakesTheBlockingCallThrow) {
  spindle::run([] {
    auto f = spindle::spin([] {
      try {
        spindle::sleep(10s);
      } catch (const Boom& e) {
        return std::string(e.what());
      }
      return std::string("slept");
    });
    spindle::yield();
    f.raise(Boom("raised"));
    EXPECT_EQ(f.join(), "raised");
  });
}

TEST(Tree, InterruptEndsTheFiberWithAValue) {
  spindle::run([] {
    auto f = spindle::spin([] {
      spindle::sleep(10s);
      return 1;
    });
    spindle::yield();
    f.interrupt(42);
    EXPECT_EQ(f.join(), 42);
    auto v = spindle::spin([] { spindle::suspend(); });
    spindle::yield();
    v.interrupt();
    v.join();
  });
}

TEST(Tree, ResumeAtTheFrontRunsNext) {
  std::vector<int> order;
  spindle::run([&] {
    auto a = spindle::spin([&] { order.push_back(1); });
    auto b = spindle::spin([&] {
      spindle::suspend();
      order.push_back(2);
    });
    auto c = spindle::spin([&] { order.push_back(3); });
    spindle::yield();  // a, b (suspends), c run
    order.clear();
    auto d = spindle::spin([&] { order.push_back(4); });
    b.resume({}, spindle::FiberRef::ResumeAt::front);
    spindle::yield();
    EXPECT_EQ(order, (std::vector<int>{2, 4}));
    a.join();
    b.join();
    c.join();
    d.join();
  });
}

TEST(Tree, RestartADoneFiberInPlace) {
  spindle::run([] {
    int runs = 0;
    auto f = spindle::spin([&] {
      ++runs;
      return runs * 10;
    });
    spindle::FiberRef ref = spindle::current();
    ref = f;  // a copy that survives join
    std::uint64_t id = f.id();
    EXPECT_EQ(f.join(), 10);
    ref.restart();
    EXPECT_FALSE(ref.done());
    spindle::yield();
    EXPECT_TRUE(ref.done());
    EXPECT_EQ(runs, 2);
    EXPECT_EQ(ref.id(), id);
  });
}

TEST(Tree, RestartARunningFiber) {
  spindle::run([] {
    int starts = 0;
    auto f = spindle::spin([&] {
      ++starts;
      if (starts == 1) spindle::sleep(10s);
      return starts;
    });
    spindle::yield();
    f.restart();
    EXPECT_EQ(f.join(), 2);
  });
}

TEST(Combinators, AwaitAllCollectsEveryResult) {
  spindle::run([] {
    auto a = spindle::spin([] {
      spindle::sleep(3ms);
      return 1;
    });
    auto b = spindle::spin([] { return std::string("two"); });
    auto c = spindle::spin([] { spindle::sleep(1ms); });
    auto [x, y, z] = spindle::await_all(a, b, c);
    EXPECT_EQ(x, 1);
    EXPECT_EQ(y, "two");
    (void)z;
  });
}

TEST(Combinators, AwaitAllCancelsTheRestOnFailure) {
  spindle::run([] {
    bool cancelled = false;
    auto slow = spindle::spin([&] {
      try {
        spindle::sleep(10s);
      } catch (const spindle::Cancelled&) {
        cancelled = true;
        throw;
      }
    });
    auto failing = spindle::spin([] {
      spindle::sleep(1ms);
      throw Boom("await_all");
    });
    auto start = Clock::now();
    EXPECT_THROW(spindle::await_all(slow, failing), Boom);
    EXPECT_TRUE(cancelled);
    EXPECT_LT(Clock::now() - start, 2s);
  });
}

TEST(Combinators, SelectReturnsTheFirstAndCancelsTheRest) {
  spindle::run([] {
    int cancelled = 0;
    auto make = [&](int ms, int v) {
      return spindle::spin([&cancelled, ms, v] {
        try {
          spindle::sleep(std::chrono::milliseconds(ms));
        } catch (const spindle::Cancelled&) {
          ++cancelled;
          throw;
        }
        return v;
      });
    };
    auto a = make(50, 1);
    auto b = make(2, 2);
    auto c = make(80, 3);
    auto won = spindle::select(a, b, c);
    EXPECT_EQ(won.index, 1u);
    EXPECT_EQ(won.value, 2);
    EXPECT_EQ(cancelled, 2);
    EXPECT_TRUE(a.done());
    EXPECT_TRUE(c.done());
  });
}

TEST(Combinators, RaceOnLambdas) {
  spindle::run([] {
    auto won = spindle::race(
        [] {
          spindle::sleep(30ms);
          return std::string("slow");
        },
        [] {
          spindle::sleep(1ms);
          return std::string("fast");
        });
    EXPECT_EQ(won.value, "fast");
    EXPECT_EQ(won.index, 1u);
  });
}

TEST(Combinators, AfterRunsADelayedFiber) {
  spindle::run([] {
    auto start = Clock::now();
    auto f = spindle::after(10ms, [] { return 5; });
    EXPECT_EQ(f.join(), 5);
    EXPECT_GE(Clock::now() - start, 10ms);
  });
}

// Issue 6's check: thousands of fibers blocked in reads, sleeps, channel
// receives, mutex locks and joins, cancelled at once, leave no fiber, timer
// or kernel operation behind.
TEST(Tree, CancellingThousandsOfBlockedFibersLeavesNothingBehind) {
  constexpr int kEach = spindle_test::fibers_alive(10'000) / 5;
  spindle::run([] {
    spindle::Pipe p = spindle::make_pipe();
    spindle::Channel<int> channel;  // nobody sends
    spindle::Mutex mutex;
    mutex.lock();  // held by main throughout
    auto holder = spindle::spin([] { spindle::sleep(10s); });
    std::vector<spindle::Fiber<void>> fibers;
    for (int i = 0; i < kEach; ++i) {
      fibers.push_back(spindle::spin([] { spindle::sleep(10s); }));
      fibers.push_back(spindle::spin([&p] {
        std::byte b[16];
        spindle::read(p.read_end, b);
      }));
      fibers.push_back(spindle::spin([&channel] { channel.receive(); }));
      fibers.push_back(spindle::spin([&mutex] { std::lock_guard lock(mutex); }));
      fibers.push_back(spindle::spin([&holder] {
        spindle::FiberRef target = holder;
        (void)target;
        spindle::sleep(10s);
      }));
    }
    spindle::yield();
    auto& loop = spindle::current_loop();
    EXPECT_GT(loop.timers_pending(), 0u);
    for (auto& f : fibers) f.cancel();
    for (auto& f : fibers) EXPECT_THROW(f.join(), spindle::Cancelled);
    holder.cancel();
    EXPECT_THROW(holder.join(), spindle::Cancelled);
    spindle::sleep(1ms);  // kernel cancellations of the reads complete
    EXPECT_EQ(spindle::metrics().fibers_alive, 1u);
    EXPECT_EQ(loop.timers_pending(), 0u);
    EXPECT_FALSE(loop.backend().busy());
    mutex.unlock();
    EXPECT_TRUE(mutex.try_lock());  // no cancelled waiter kept the lock
    mutex.unlock();
    ::close(p.read_end);
    ::close(p.write_end);
  });
}

}  // namespace
