// Event, WaitGroup, Latch and Barrier: semantics, cancellation and
// deadlines while waiting, fibers of two runtimes and plain threads.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "spindle/spindle.hpp"
#include "sync_test_util.hpp"

namespace {

using namespace sync_test;

// --- Event ---------------------------------------------------------------------

TEST(Event, AutoResetWakesOneWaiterPerSet) {
  spindle::run([] {
    spindle::Event ev;
    int woken = 0;
    std::vector<spindle::Fiber<void>> fs;
    for (int i = 0; i < 3; ++i) {
      fs.push_back(spindle::spin([&] {
        ev.wait();
        ++woken;
      }));
    }
    spindle::yield();
    ev.set();
    settle();
    EXPECT_EQ(woken, 1);
    EXPECT_FALSE(ev.is_set());  // consumed by the waiter
    ev.set();
    ev.set();
    for (auto& f : fs) f.join();
    EXPECT_EQ(woken, 3);
  });
}

TEST(Event, AutoResetStaysSetUntilOneWaitConsumesIt) {
  spindle::run([] {
    spindle::Event ev;
    ev.set();
    ev.set();  // a flag, not a counter
    EXPECT_TRUE(ev.is_set());
    ev.wait();
    EXPECT_FALSE(ev.is_set());
    EXPECT_FALSE(ev.try_wait());
    EXPECT_FALSE(ev.wait_for(5ms));
  });
}

TEST(Event, ManualResetWakesEveryoneAndStaysSet) {
  spindle::run([] {
    spindle::Event ev(spindle::Event::Mode::manual_reset);
    int woken = 0;
    std::vector<spindle::Fiber<void>> fs;
    for (int i = 0; i < 5; ++i) {
      fs.push_back(spindle::spin([&] {
        ev.wait();
        ++woken;
      }));
    }
    spindle::yield();
    ev.set();
    for (auto& f : fs) f.join();
    EXPECT_EQ(woken, 5);
    EXPECT_TRUE(ev.is_set());
    ev.wait();  // returns at once
    ev.reset();
    EXPECT_FALSE(ev.wait_for(5ms));
  });
}

TEST(Event, WaitForExpires) {
  spindle::run([] {
    spindle::Event ev;
    auto start = Clock::now();
    EXPECT_FALSE(ev.wait_for(15ms));
    EXPECT_GE(Clock::now() - start, 15ms);
    EXPECT_FALSE(ev.wait_until(Clock::now() - 1s));  // already past: no wait
  });
}

TEST(Event, ACancelledWaiterDoesNotTakeTheSignal) {
  spindle::run([] {
    spindle::Event ev;
    bool b_woke = false;
    auto a = spindle::spin([&] { ev.wait(); });
    auto b = spindle::spin([&] {
      ev.wait();
      b_woke = true;
    });
    spindle::yield();
    a.cancel();
    ev.set();  // a is gone (its cancellation came first): b gets it
    EXPECT_TRUE(ended_cancelled(a));
    b.join();
    EXPECT_TRUE(b_woke);
    // The other order: the signal was given to c first; c keeps it.
    auto c = spindle::spin([&] { ev.wait(); });
    spindle::yield();
    ev.set();
    c.cancel();
    EXPECT_NO_THROW(c.join());
    EXPECT_FALSE(ev.is_set());
    // With nobody left waiting, the signal stays.
    auto d = spindle::spin([&] { ev.wait(); });
    spindle::yield();
    d.cancel();
    EXPECT_TRUE(ended_cancelled(d));
    ev.set();
    EXPECT_TRUE(ev.is_set());
  });
}

TEST(Event, AScopeDeadline) {
  spindle::run([] {
    spindle::Event ev;
    EXPECT_FALSE(spindle::move_on_after(5ms, [&] { ev.wait(); }));
  });
}

TEST(Event, SetFromAThreadAndAnotherRuntime) {
  spindle::Event to_fiber, to_thread(spindle::Event::Mode::manual_reset);
  std::thread t([&] {
    to_thread.wait();  // a plain thread blocks
    to_fiber.set();
  });
  on_runtimes({[&] { to_fiber.wait(); },
               [&] {
                 spindle::sleep(5ms);
                 to_thread.set();
               }});
  t.join();
  EXPECT_TRUE(to_thread.is_set());
}

// --- WaitGroup -----------------------------------------------------------------

TEST(WaitGroup, WaitsForEveryTask) {
  spindle::run([] {
    spindle::WaitGroup wg;
    int done = 0;
    for (int i = 0; i < 10; ++i) {
      wg.add();
      spindle::spin([&, i] {
        spindle::sleep(std::chrono::milliseconds(i));
        ++done;
        wg.done();
      });
    }
    wg.wait();
    EXPECT_EQ(done, 10);
    EXPECT_EQ(wg.count(), 0);
    wg.wait();  // zero: returns at once
    EXPECT_THROW(wg.done(), std::logic_error);
  });
}

TEST(WaitGroup, DeadlineAndCancellation) {
  spindle::run([] {
    spindle::WaitGroup wg;
    wg.add(1);
    EXPECT_FALSE(wg.wait_for(5ms));
    auto waiter = spindle::spin([&] { wg.wait(); });
    spindle::yield();
    waiter.cancel();
    EXPECT_TRUE(ended_cancelled(waiter));
    EXPECT_EQ(wg.count(), 1);  // untouched by the waiter that left
    wg.done();
    EXPECT_TRUE(wg.wait_for(5ms));
  });
}

TEST(WaitGroup, ThreadsAndFibersOfTwoRuntimes) {
  spindle::WaitGroup wg;
  std::atomic<int> done{0};
  wg.add(6);
  std::vector<std::thread> ts;
  for (int i = 0; i < 2; ++i) {
    ts.emplace_back([&] {
      ++done;
      wg.done();
    });
  }
  std::thread waiter([&] { wg.wait(); });
  on_runtimes({[&] {
                 for (int i = 0; i < 4; ++i) {
                   spindle::spin([&] {
                     spindle::yield();
                     ++done;
                     wg.done();
                   });
                 }
               },
               [&] {
                 wg.wait();
                 EXPECT_EQ(done.load(), 6);
               }});
  waiter.join();
  for (auto& t : ts) t.join();
}

// --- Latch ---------------------------------------------------------------------

TEST(Latch, OpensAtZeroAndStaysOpen) {
  spindle::run([] {
    spindle::Latch latch(3);
    int passed = 0;
    std::vector<spindle::Fiber<void>> fs;
    for (int i = 0; i < 3; ++i) {
      fs.push_back(spindle::spin([&] {
        latch.arrive_and_wait();
        ++passed;
      }));
    }
    for (auto& f : fs) f.join();
    EXPECT_EQ(passed, 3);
    EXPECT_TRUE(latch.try_wait());
    latch.wait();
    EXPECT_THROW(latch.count_down(), std::logic_error);
  });
}

TEST(Latch, DeadlineAndCancellation) {
  spindle::run([] {
    spindle::Latch latch(1);
    EXPECT_FALSE(latch.wait_for(5ms));
    auto waiter = spindle::spin([&] { latch.wait(); });
    spindle::yield();
    waiter.cancel();
    EXPECT_TRUE(ended_cancelled(waiter));
    latch.count_down();
    EXPECT_TRUE(latch.wait_for(1ms));
  });
}

TEST(Latch, AThreadCountsDownForFibers) {
  spindle::Latch latch(2);
  std::thread t([&] { latch.count_down(2); });
  spindle::run([&] { latch.wait(); });
  t.join();
}

// --- Barrier -------------------------------------------------------------------

TEST(Barrier, PhasesAndOneLeaderPerPhase) {
  spindle::run([] {
    constexpr int kParties = 4, kPhases = 5;
    spindle::Barrier barrier(kParties);
    std::vector<int> arrived(kPhases, 0);
    int leaders = 0;
    std::vector<spindle::Fiber<void>> fs;
    for (int p = 0; p < kParties; ++p) {
      fs.push_back(spindle::spin([&] {
        for (int ph = 0; ph < kPhases; ++ph) {
          ++arrived[ph];
          if (barrier.arrive_and_wait()) ++leaders;
          EXPECT_EQ(arrived[ph], kParties);  // nobody passes before all arrived
        }
      }));
    }
    for (auto& f : fs) f.join();
    EXPECT_EQ(leaders, kPhases);
    EXPECT_EQ(barrier.phase(), static_cast<std::uint64_t>(kPhases));
  });
}

TEST(Barrier, APartyThatLeavesWithdrawsItsArrival) {
  spindle::run([] {
    spindle::Barrier barrier(2);
    // Timed out: the phase still needs two.
    EXPECT_FALSE(barrier.arrive_and_wait_for(5ms));
    auto a = spindle::spin([&] { barrier.arrive_and_wait(); });
    spindle::yield();
    a.cancel();
    EXPECT_TRUE(ended_cancelled(a));
    EXPECT_EQ(barrier.phase(), 0u);
    bool b_passed = false;
    auto b = spindle::spin([&] {
      barrier.arrive_and_wait();
      b_passed = true;
    });
    spindle::yield();
    EXPECT_FALSE(b_passed);  // one arrival only
    barrier.arrive_and_wait();
    b.join();
    EXPECT_TRUE(b_passed);
  });
}

TEST(Barrier, ArriveAndDrop) {
  spindle::run([] {
    spindle::Barrier barrier(3);
    auto a = spindle::spin([&] { barrier.arrive_and_wait(); });
    spindle::yield();
    barrier.arrive_and_drop();  // 2 parties now; a alone is not enough...
    auto b = spindle::spin([&] { barrier.arrive_and_wait(); });
    a.join();
    b.join();
    EXPECT_EQ(barrier.parties(), 2);
  });
}

TEST(Barrier, ThreadsAndFibersOfTwoRuntimesInLockstep) {
  constexpr int kPhases = 200;
  spindle::Barrier barrier(4);
  std::atomic<int> step{0};
  auto party = [&] {
    for (int ph = 0; ph < kPhases; ++ph) {
      step.fetch_add(1);
      barrier.arrive_and_wait();
      EXPECT_GE(step.load(), 4 * (ph + 1));
      barrier.arrive_and_wait();
    }
  };
  std::thread t1(party), t2(party);
  on_runtimes({party, party});
  t1.join();
  t2.join();
  EXPECT_EQ(step.load(), 4 * kPhases);
}

}  // namespace
