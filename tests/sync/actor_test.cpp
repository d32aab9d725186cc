// Actors (spin_actor, cast, call), ResourcePool and Throttler.
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "spindle/spindle.hpp"
#include "sync_test_util.hpp"

namespace {

using namespace sync_test;

// --- Actors --------------------------------------------------------------------

struct Counter {
  long total = 0;
};

TEST(Actor, CastAndCall) {
  spindle::run([] {
    auto actor = spindle::spin_actor(Counter{}, [](Counter& c, int delta) {
      c.total += delta;
      return c.total;
    });
    actor.cast(5);
    actor.cast(10);
    EXPECT_EQ(actor.call(1), 16);  // handled in order
    actor.stop();
    actor.join();
    EXPECT_THROW(actor.cast(1), spindle::ActorStopped);
    EXPECT_THROW(actor.call(1), spindle::ActorStopped);
  });
}

TEST(Actor, VoidRepliesAndExplicitMessageTypes) {
  spindle::run([] {
    std::vector<std::string> log;
    auto actor = spindle::spin_actor<std::string>(
        0, [&](int& n, auto msg) { log.push_back(std::to_string(++n) + msg); });
    actor.cast("a");
    actor.call("b");  // void: returns once handled
    EXPECT_EQ(log, (std::vector<std::string>{"1a", "2b"}));
    EXPECT_TRUE(actor.call_for("c", 1s));
  });
}

TEST(Actor, AHandlerErrorOnACallGoesToTheCallerAndTheActorGoesOn) {
  spindle::run([] {
    auto actor = spindle::spin_actor(0, [](int& n, int msg) {
      if (msg < 0) throw std::invalid_argument("negative");
      return n += msg;
    });
    EXPECT_THROW(actor.call(-1), std::invalid_argument);
    EXPECT_EQ(actor.call(2), 2);
  });
}

TEST(Actor, AHandlerErrorOnACastEndsTheActor) {
  spindle::run([] {
    using A = spindle::Actor<int, int>;
    std::optional<A> outside;
    // The actor's error escapes its fiber like any fiber's: to the fiber
    // that spun it.
    auto owner = spindle::spin([&] {
      auto actor = spindle::spin_actor(0, [](int&, int msg) {
        if (msg < 0) throw std::runtime_error("bad cast");
        return msg;
      });
      outside = actor;
      actor.cast(-1);
      actor.join();
      spindle::sleep(10s);  // the error arrives at a suspension point
    });
    EXPECT_THROW(owner.join(), std::runtime_error);
    outside->join();
    EXPECT_TRUE(outside->ended());
    EXPECT_THROW(std::rethrow_exception(outside->error()), std::runtime_error);
    EXPECT_THROW(outside->call(1), spindle::ActorStopped);
  });
}

TEST(Actor, CallForExpiresWhileTheHandlerIsSlow) {
  spindle::run([] {
    spindle::Event gate;
    auto actor = spindle::spin_actor(0, [&](int&, int msg) {
      if (msg == 0) gate.wait();  // slow until the test opens the gate
      return msg;
    });
    auto start = Clock::now();
    EXPECT_EQ(actor.call_for(0, 10ms), std::nullopt);  // only the deadline can end it
    EXPECT_GE(Clock::now() - start, 10ms);
    gate.set();
    EXPECT_EQ(actor.call_for(1, 5s), 1);  // the late answer was dropped, not delivered here
  });
}

TEST(Actor, ACancelledCallerLeavesTheActorWorking) {
  spindle::run([] {
    auto actor = spindle::spin_actor(0, [](int& n, int ms) {
      spindle::sleep(std::chrono::milliseconds(ms));
      return ++n;
    });
    auto caller = spindle::spin([&] { return actor.call(20); });
    spindle::yield();
    caller.cancel();
    EXPECT_TRUE(ended_cancelled(caller));
    EXPECT_EQ(actor.call(0), 2);
  });
}

TEST(Actor, CallsLeftWhenTheActorIsCancelledGetActorStopped) {
  spindle::run([] {
    auto actor = spindle::spin_actor(0, [](int&, int ms) {
      spindle::sleep(std::chrono::milliseconds(ms));
      return ms;
    });
    auto a = spindle::spin([&] {
      try {
        actor.call(1000);
      } catch (const spindle::ActorStopped&) {
        return true;
      }
      return false;
    });
    auto b = spindle::spin([&] {
      try {
        actor.call(1);
      } catch (const spindle::ActorStopped&) {
        return true;
      }
      return false;
    });
    spindle::yield();
    actor.cancel();
    EXPECT_TRUE(a.join());
    EXPECT_TRUE(b.join());
    actor.join();
    EXPECT_THROW(std::rethrow_exception(actor.error()), spindle::Cancelled);
  });
}

TEST(Actor, TheLastHandleGoneEndsTheActor) {
  spindle::run([] {
    bool ended = false;
    struct Flag {
      bool* ended;
      Flag(bool* e) : ended(e) {}
      Flag(Flag&& o) noexcept : ended(std::exchange(o.ended, nullptr)) {}
      ~Flag() {
        if (ended != nullptr) *ended = true;
      }
    };
    {
      auto actor = spindle::spin_actor(Flag(&ended), [](Flag&, int) {});
      actor.cast(1);
    }
    spindle::sleep(5ms);
    EXPECT_TRUE(ended);
  });
}

TEST(Actor, TheLastHandleMayBeDroppedOnAPlainThread) {
  std::thread t;
  spindle::run([&] {
    auto actor = spindle::spin_actor(0, [](int& n, int d) { return n += d; });
    t = std::thread([h = std::optional(actor)]() mutable {
      h->cast(1);
      EXPECT_EQ(h->call(1), 2);
      h.reset();  // the last handle: the actor's mailbox closes, the actor ends
    });
  });  // the runtime ends once the actor has
  t.join();
}

TEST(Actor, CallersOnOtherRuntimesAndThreads) {
  constexpr int kCalls = 1000;
  std::atomic<spindle::Actor<int, long>*> target{nullptr};
  spindle::Latch callers_done(3);
  std::atomic<long> replies{0};
  auto call_all = [&] {
    spindle::Actor<int, long>* a;
    while ((a = target.load()) == nullptr) std::this_thread::yield();
    for (int i = 0; i < kCalls; ++i) {
      a->cast(1);
      replies += a->call(0) > 0 ? 1 : 0;
    }
    callers_done.count_down();
  };
  std::thread t(call_all);
  on_runtimes({[&] {
                 auto actor = spindle::spin_actor(0L, [](long& n, int d) { return n += d; });
                 target = &actor;
                 call_all();
                 callers_done.wait();
                 EXPECT_EQ(actor.call(0), 3 * kCalls);
               },
               call_all});
  t.join();
  EXPECT_EQ(replies.load(), 3 * kCalls);
}

// --- ResourcePool ----------------------------------------------------------------

struct Conn {
  int id;
  bool* closed = nullptr;
};

TEST(ResourcePool, CreatesLazilyUpToTheMaximumAndReuses) {
  spindle::run([] {
    int made = 0;
    spindle::ResourcePool<Conn> pool(2, [&] { return Conn{++made}; });
    EXPECT_EQ(pool.size(), 0u);
    {
      auto a = pool.acquire();
      EXPECT_EQ(a->id, 1);
      EXPECT_EQ(pool.size(), 1u);
    }
    EXPECT_EQ(pool.available(), 1u);
    auto b = pool.acquire();
    EXPECT_EQ(b->id, 1);  // reused
    EXPECT_EQ(made, 1);
    EXPECT_EQ(pool.with([](Conn& c) { return c.id; }), 1);  // re-entrant: the same one
    auto other = spindle::spin([&] {
      auto c = pool.acquire();  // a second one is made for another fiber
      return c->id;
    });
    EXPECT_EQ(other.join(), 2);
    EXPECT_EQ(made, 2);
  });
}

TEST(ResourcePool, WaitsForARelease) {
  spindle::run([] {
    spindle::ResourcePool<Conn> pool(1, [] { return Conn{7}; });
    auto held = pool.acquire();
    std::vector<int> order;
    auto waiter = spindle::spin([&] {
      auto c = pool.acquire();
      order.push_back(c->id);
    });
    spindle::yield();
    EXPECT_FALSE(pool.try_acquire().has_value() && false);
    order.push_back(0);
    held.reset();
    waiter.join();
    EXPECT_EQ(order, (std::vector<int>{0, 7}));
  });
}

TEST(ResourcePool, ReentrantForTheSameFiber) {
  spindle::run([] {
    int made = 0;
    spindle::ResourcePool<Conn> pool(1, [&] { return Conn{++made}; });
    auto outer = pool.acquire();
    auto inner = pool.acquire();  // would deadlock if not re-entrant
    EXPECT_EQ(&*outer, &*inner);
    inner.reset();
    auto other = spindle::spin([&] { return pool.acquire_for(5ms).has_value(); });
    EXPECT_FALSE(other.join());  // still held by the outer lease
    outer.reset();
    EXPECT_EQ(pool.available(), 1u);
  });
}

TEST(ResourcePool, DiscardReplacesABrokenResource) {
  spindle::run([] {
    int made = 0;
    spindle::ResourcePool<Conn> pool(1, [&] { return Conn{++made}; });
    {
      auto c = pool.acquire();
      c.discard();
    }
    EXPECT_EQ(pool.size(), 0u);
    EXPECT_EQ(pool.acquire()->id, 2);
    // A waiter gets to create the replacement.
    auto c = pool.acquire();
    auto waiter = spindle::spin([&] { return pool.acquire()->id; });
    spindle::yield();
    c.discard();
    c.reset();
    EXPECT_EQ(waiter.join(), 3);
  });
}

TEST(ResourcePool, AFailingFactoryFreesItsSlot) {
  spindle::run([] {
    int calls = 0;
    spindle::ResourcePool<Conn> pool(1, [&] {
      if (++calls == 1) throw std::runtime_error("connect failed");
      return Conn{calls};
    });
    EXPECT_THROW(pool.acquire(), std::runtime_error);
    EXPECT_EQ(pool.size(), 0u);
    EXPECT_EQ(pool.acquire()->id, 2);
  });
}

TEST(ResourcePool, DeadlineAndCancellation) {
  spindle::run([] {
    spindle::ResourcePool<Conn> pool(1, [] { return Conn{1}; });
    auto held = pool.acquire();
    auto w1 = spindle::spin([&] { return pool.acquire_for(5ms).has_value(); });
    EXPECT_FALSE(w1.join());
    auto w2 = spindle::spin([&] { pool.acquire(); });
    spindle::yield();
    w2.cancel();
    EXPECT_TRUE(ended_cancelled(w2));
    held.reset();
    EXPECT_EQ(pool.available(), 1u);  // not handed to the cancelled waiter
  });
}

TEST(ResourcePool, SharedByTwoRuntimesAndAThread) {
  std::atomic<int> made{0}, in_use{0}, max_in_use{0};
  spindle::ResourcePool<Conn> pool(3, [&] { return Conn{++made}; });
  auto use = [&] {
    for (int i = 0; i < 300; ++i) {
      auto c = pool.acquire();
      int now = ++in_use;
      int seen = max_in_use.load();
      while (now > seen && !max_in_use.compare_exchange_weak(seen, now)) {
      }
      spindle::yield();
      --in_use;
    }
  };
  auto fibers = [&] {
    std::vector<spindle::Fiber<void>> fs;
    for (int i = 0; i < 4; ++i) fs.push_back(spindle::spin(use));
    for (auto& f : fs) f.join();
  };
  std::thread t(use);
  on_runtimes({fibers, fibers});
  t.join();
  EXPECT_LE(max_in_use.load(), 3);
  EXPECT_LE(made.load(), 3);
  EXPECT_EQ(pool.available(), pool.size());
}

// --- Throttler -------------------------------------------------------------------

TEST(Throttler, SpacesCallsEvenly) {
  spindle::run([] {
    spindle::Throttler t(200.0);  // every 5 ms
    EXPECT_EQ(t.interval(), 5ms);
    auto start = Clock::now();
    for (int i = 0; i < 5; ++i) t.wait();
    EXPECT_GE(Clock::now() - start, 20ms);  // the first goes at once
    spindle::Throttler slow(std::chrono::seconds(10));
    EXPECT_TRUE(slow.try_acquire());
    EXPECT_FALSE(slow.try_acquire());  // the next slot is 10 s away
    EXPECT_THROW(spindle::Throttler(0.0), std::invalid_argument);
  });
}

TEST(Throttler, ThrottledLoop) {
  spindle::run([] {
    int n = 0;
    auto start = Clock::now();
    spindle::throttled_loop(500.0, [&] { return ++n < 6; });  // 2 ms apart
    EXPECT_EQ(n, 6);
    EXPECT_GE(Clock::now() - start, 10ms);
    n = 0;
    spindle::throttled_loop(1000.0, 3, [&] { ++n; });
    EXPECT_EQ(n, 3);
  });
}

TEST(Throttler, SharedByFibersAndAThread) {
  spindle::Throttler t(std::chrono::milliseconds(2));
  std::atomic<int> calls{0};
  auto start = Clock::now();
  std::thread th([&] {
    for (int i = 0; i < 5; ++i) t.call([&] { ++calls; });
  });
  spindle::run([&] {
    auto f = spindle::spin([&] {
      for (int i = 0; i < 5; ++i) t.call([&] { ++calls; });
    });
    for (int i = 0; i < 5; ++i) t.wait(), ++calls;
    f.join();
  });
  th.join();
  EXPECT_EQ(calls.load(), 15);
  EXPECT_GE(Clock::now() - start, 28ms);  // 15 slots, 2 ms apart
}

TEST(Throttler, CancelledWhileWaiting) {
  spindle::run([] {
    spindle::Throttler t(std::chrono::seconds(10));
    t.wait();
    auto f = spindle::spin([&] { t.wait(); });
    spindle::yield();
    f.cancel();
    EXPECT_TRUE(ended_cancelled(f));
  });
}

}  // namespace
