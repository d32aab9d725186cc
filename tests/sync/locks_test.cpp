// Mutex, RecursiveMutex, CondVar, Semaphore and RWLock: semantics,
// cancellation and deadlines while waiting, and use across runtimes and
// plain threads.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "spindle/spindle.hpp"
#include "sync_test_util.hpp"

namespace {

using namespace sync_test;

// --- Mutex -------------------------------------------------------------------

TEST(Mutex, ExcludesFibersThatYieldInsideTheCriticalSection) {
  spindle::run([] {
    spindle::Mutex m;
    int inside = 0, max_inside = 0, count = 0;
    std::vector<spindle::Fiber<void>> fibers;
    for (int i = 0; i < 10; ++i) {
      fibers.push_back(spindle::spin([&] {
        for (int k = 0; k < 200; ++k) {
          std::lock_guard<spindle::Mutex> g(m);
          max_inside = std::max(max_inside, ++inside);
          spindle::yield();
          ++count;
          --inside;
        }
      }));
    }
    for (auto& f : fibers) f.join();
    EXPECT_EQ(max_inside, 1);
    EXPECT_EQ(count, 2000);
    EXPECT_FALSE(m.locked());
  });
}

TEST(Mutex, WorksWithTheStandardLockTypes) {
  spindle::run([] {
    spindle::Mutex a, b;
    {
      std::scoped_lock both(a, b);
      EXPECT_TRUE(a.locked());
      EXPECT_TRUE(b.locked());
    }
    EXPECT_FALSE(a.locked());
    std::unique_lock<spindle::Mutex> lk(a, std::defer_lock);
    EXPECT_TRUE(lk.try_lock_for(10ms));
    lk.unlock();
    EXPECT_TRUE(lk.try_lock_until(Clock::now() + 10ms));
  });
}

TEST(Mutex, TryLockFailsWhileHeld) {
  spindle::run([] {
    spindle::Mutex m;
    EXPECT_TRUE(m.try_lock());
    EXPECT_FALSE(m.try_lock());
    m.unlock();
    EXPECT_TRUE(m.try_lock());
    m.unlock();
  });
}

TEST(Mutex, HandsOffInFifoOrderSoAReleaserCannotBarge) {
  spindle::run([] {
    spindle::Mutex m;
    std::vector<int> order;
    m.lock();
    std::vector<spindle::Fiber<void>> waiters;
    for (int i = 0; i < 5; ++i) {
      waiters.push_back(spindle::spin([&, i] {
        std::lock_guard<spindle::Mutex> g(m);
        order.push_back(i);
      }));
      spindle::yield();  // waiter i queues before i + 1
    }
    m.unlock();
    // Locking again at once queues behind the five waiters.
    m.lock();
    order.push_back(99);
    m.unlock();
    for (auto& w : waiters) w.join();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 99}));
  });
}

TEST(Mutex, TryLockFailsWhileOthersWait) {
  spindle::run([] {
    spindle::Mutex m;
    m.lock();
    auto waiter = spindle::spin([&] {
      m.lock();
      m.unlock();
    });
    spindle::yield();
    m.unlock();  // handed to the waiter, which has not run yet
    EXPECT_FALSE(m.try_lock());
    waiter.join();
    EXPECT_TRUE(m.try_lock());
    m.unlock();
  });
}

TEST(Mutex, LockForExpiresWithFalse) {
  spindle::run([] {
    spindle::Mutex m;
    auto holder = spindle::spin([&] {
      std::lock_guard<spindle::Mutex> g(m);
      spindle::sleep(60ms);
    });
    spindle::yield();
    auto start = Clock::now();
    EXPECT_FALSE(m.lock_for(10ms));
    EXPECT_GE(Clock::now() - start, 10ms);
    EXPECT_TRUE(m.lock_for(5s));  // the holder lets go meanwhile
    m.unlock();
    holder.join();
    EXPECT_FALSE(m.locked());
  });
}

TEST(Mutex, ACancelledWaiterThrowsAndTheLockIsNotLost) {
  spindle::run([] {
    spindle::Mutex m;
    m.lock();
    bool got = false;
    auto waiter = spindle::spin([&] {
      m.lock();
      got = true;
      m.unlock();
    });
    spindle::yield();
    waiter.cancel();
    EXPECT_TRUE(ended_cancelled(waiter));
    EXPECT_FALSE(got);
    m.unlock();
    EXPECT_FALSE(m.locked());
    EXPECT_TRUE(m.try_lock());
    m.unlock();
  });
}

TEST(Mutex, AWaiterHandedTheLockBeforeItsCancellationKeepsIt) {
  spindle::run([] {
    spindle::Mutex m;
    m.lock();
    bool got = false, cancelled_later = false;
    auto waiter = spindle::spin([&] {
      m.lock();  // returns: the lock was handed over first
      got = true;
      m.unlock();
      try {
        spindle::yield();
      } catch (const spindle::Cancelled&) {
        cancelled_later = true;
      }
    });
    spindle::yield();
    m.unlock();       // hands the lock to the waiter...
    waiter.cancel();  // ...which is cancelled before it runs
    waiter.join();
    EXPECT_TRUE(got);
    EXPECT_TRUE(cancelled_later);
    EXPECT_FALSE(m.locked());
  });
}

TEST(Mutex, AScopeDeadlineEndsTheWait) {
  spindle::run([] {
    spindle::Mutex m;
    m.lock();
    EXPECT_THROW(spindle::cancel_after(10ms, [&] { m.lock(); }), spindle::TimedOut);
    EXPECT_FALSE(spindle::move_on_after(10ms, [&] { m.lock(); }));
    m.unlock();
    EXPECT_FALSE(m.locked());
  });
}

TEST(Mutex, AnUncontendedLockIsNoCancellationPoint) {
  spindle::run([] {
    spindle::Mutex m;
    auto f = spindle::spin([&] {
      m.lock();  // free: no throw even though cancelled
      m.unlock();
      spindle::yield();  // throws
    });
    f.cancel();
    EXPECT_TRUE(ended_cancelled(f));
  });
}

TEST(Mutex, ExcludesFibersOfTwoRuntimesAndPlainThreads) {
  constexpr int kFibers = 8, kRounds = 2000, kThreads = 2;
  spindle::Mutex m;
  long counter = 0;  // plain: TSan reports any access the mutex does not order
  auto fibers = [&] {
    std::vector<spindle::Fiber<void>> fs;
    for (int i = 0; i < kFibers; ++i) {
      fs.push_back(spindle::spin([&] {
        for (int k = 0; k < kRounds; ++k) {
          std::lock_guard<spindle::Mutex> g(m);
          ++counter;
          if (k % 64 == 0) spindle::yield();
        }
      }));
    }
    for (auto& f : fs) f.join();
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int k = 0; k < kRounds; ++k) {
        std::lock_guard<spindle::Mutex> g(m);
        ++counter;
      }
    });
  }
  on_runtimes({fibers, fibers});
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, long{2 * kFibers * kRounds + kThreads * kRounds});
  EXPECT_FALSE(m.locked());
}

TEST(Mutex, APlainThreadTimesOut) {
  spindle::Mutex m;
  m.lock();
  std::thread t([&] {
    auto start = Clock::now();
    EXPECT_FALSE(m.lock_for(20ms));
    EXPECT_GE(Clock::now() - start, 20ms);
  });
  t.join();
  m.unlock();
}

TEST(Mutex, AThreadWaitsForAFiber) {
  spindle::Mutex m;
  std::atomic<bool> held{false};
  std::thread t([&] {
    while (!held.load()) std::this_thread::yield();
    std::lock_guard<spindle::Mutex> g(m);  // blocks until the fiber lets go
  });
  spindle::run([&] {
    std::lock_guard<spindle::Mutex> g(m);
    held = true;
    spindle::sleep(20ms);
  });
  t.join();
  EXPECT_FALSE(m.locked());
}

// --- RecursiveMutex ------------------------------------------------------------

TEST(RecursiveMutex, TheOwnerLocksAgainOthersWait) {
  spindle::run([] {
    spindle::RecursiveMutex m;
    std::vector<int> order;
    m.lock();
    m.lock();
    EXPECT_TRUE(m.try_lock());
    EXPECT_EQ(m.depth(), 3u);
    auto other = spindle::spin([&] {
      EXPECT_FALSE(m.try_lock());  // a fiber of the same thread is another owner
      std::lock_guard<spindle::RecursiveMutex> g(m);
      order.push_back(2);
    });
    spindle::yield();
    m.unlock();
    m.unlock();
    spindle::yield();
    order.push_back(1);  // still held once
    m.unlock();
    other.join();
    EXPECT_EQ(order, (std::vector<int>{1, 2}));
  });
}

TEST(RecursiveMutex, UnlockByANonOwnerThrows) {
  spindle::run([] {
    spindle::RecursiveMutex m;
    EXPECT_THROW(m.unlock(), std::logic_error);
    m.lock();
    auto other = spindle::spin([&] { EXPECT_THROW(m.unlock(), std::logic_error); });
    other.join();
    m.unlock();
  });
}

TEST(RecursiveMutex, LockForAndCancellation) {
  spindle::run([] {
    spindle::RecursiveMutex m;
    m.lock();
    auto other = spindle::spin([&] {
      EXPECT_FALSE(m.lock_for(5ms));
      m.lock();  // cancelled here
    });
    spindle::sleep(20ms);
    other.cancel();
    EXPECT_TRUE(ended_cancelled(other));
    m.unlock();
    EXPECT_FALSE(m.held());
  });
}

TEST(RecursiveMutex, ThreadsAndFibers) {
  spindle::RecursiveMutex m;
  long counter = 0;
  auto work = [&] {
    for (int k = 0; k < 1000; ++k) {
      std::lock_guard<spindle::RecursiveMutex> a(m);
      std::lock_guard<spindle::RecursiveMutex> b(m);
      ++counter;
    }
  };
  std::thread t(work);
  on_runtimes({[&] {
                 auto f = spindle::spin(work);
                 work();
                 f.join();
               },
               work});
  t.join();
  EXPECT_EQ(counter, 4000);
}

// --- CondVar -------------------------------------------------------------------

TEST(CondVar, WaitWithAPredicate) {
  spindle::run([] {
    spindle::Mutex m;
    spindle::CondVar cv;
    int stage = 0;
    auto waiter = spindle::spin([&] {
      std::unique_lock<spindle::Mutex> lk(m);
      cv.wait(lk, [&] { return stage == 2; });
      EXPECT_TRUE(lk.owns_lock());
      stage = 3;
    });
    spindle::yield();
    for (int s = 1; s <= 2; ++s) {
      std::lock_guard<spindle::Mutex> g(m);
      stage = s;
      cv.notify_one();
    }
    waiter.join();
    EXPECT_EQ(stage, 3);
  });
}

TEST(CondVar, WaitForTimesOutWithTheLockHeld) {
  spindle::run([] {
    spindle::Mutex m;
    spindle::CondVar cv;
    std::unique_lock<spindle::Mutex> lk(m);
    auto start = Clock::now();
    EXPECT_EQ(cv.wait_for(lk, 10ms), std::cv_status::timeout);
    EXPECT_GE(Clock::now() - start, 10ms);
    EXPECT_TRUE(lk.owns_lock());
    EXPECT_TRUE(m.locked());
    EXPECT_FALSE(cv.wait_for(lk, 5ms, [] { return false; }));
    EXPECT_TRUE(cv.wait_until(lk, Clock::now() + 5ms, [] { return true; }));
  });
}

TEST(CondVar, ACancelledWaiterThrowsWithTheLockHeld) {
  spindle::run([] {
    spindle::Mutex m;
    spindle::CondVar cv;
    bool owned_in_handler = false;
    auto waiter = spindle::spin([&] {
      std::unique_lock<spindle::Mutex> lk(m);
      try {
        cv.wait(lk);
      } catch (const spindle::Cancelled&) {
        owned_in_handler = lk.owns_lock() && m.locked();
        throw;
      }
    });
    spindle::yield();
    m.lock();  // the waiter must wait for it to re-lock
    waiter.cancel();
    spindle::yield();
    m.unlock();
    EXPECT_TRUE(ended_cancelled(waiter));
    EXPECT_TRUE(owned_in_handler);
    EXPECT_FALSE(m.locked());
  });
}

TEST(CondVar, NotifyOneIsNotLostToACancelledWaiter) {
  spindle::run([] {
    spindle::Mutex m;
    spindle::CondVar cv;
    int woken = 0;
    auto wait_once = [&] {
      std::unique_lock<spindle::Mutex> lk(m);
      cv.wait(lk);
      ++woken;
    };
    // Cancelled first, then notified: the notification goes to the other.
    auto a = spindle::spin(wait_once);
    auto b = spindle::spin(wait_once);
    spindle::yield();
    a.cancel();
    cv.notify_one();
    EXPECT_TRUE(ended_cancelled(a));
    b.join();
    EXPECT_EQ(woken, 1);
    // Notified first, then cancelled: the notified waiter returns normally.
    auto c = spindle::spin(wait_once);
    spindle::yield();
    cv.notify_one();
    c.cancel();
    try {
      c.join();
    } catch (const spindle::Cancelled&) {
      ADD_FAILURE() << "a notified waiter must return from wait()";
    }
    EXPECT_EQ(woken, 2);
  });
}

TEST(CondVar, NotifyAllWakesEveryWaiter) {
  spindle::run([] {
    spindle::Mutex m;
    spindle::CondVar cv;
    bool go = false;
    int done = 0;
    std::vector<spindle::Fiber<void>> fs;
    for (int i = 0; i < 20; ++i) {
      fs.push_back(spindle::spin([&] {
        std::unique_lock<spindle::Mutex> lk(m);
        cv.wait(lk, [&] { return go; });
        ++done;
      }));
    }
    spindle::yield();
    {
      std::lock_guard<spindle::Mutex> g(m);
      go = true;
    }
    cv.notify_all();
    for (auto& f : fs) f.join();
    EXPECT_EQ(done, 20);
  });
}

TEST(CondVar, AThreadAndFibersOfTwoRuntimes) {
  spindle::Mutex m;
  spindle::CondVar cv;
  int turn = 0;  // 0, 1, 2 in rotation, 300 times
  constexpr int kRounds = 300;
  auto player = [&](int me) {
    for (int r = 0; r < kRounds; ++r) {
      std::unique_lock<spindle::Mutex> lk(m);
      cv.wait(lk, [&] { return turn % 3 == me; });
      ++turn;
      cv.notify_all();
    }
  };
  std::thread t([&] { player(2); });
  on_runtimes({[&] { player(0); }, [&] { player(1); }});
  t.join();
  EXPECT_EQ(turn, 3 * kRounds);
}

// --- Semaphore -----------------------------------------------------------------

TEST(Semaphore, CountsPermits) {
  spindle::run([] {
    spindle::Semaphore s(2);
    EXPECT_TRUE(s.try_acquire());
    EXPECT_TRUE(s.try_acquire());
    EXPECT_FALSE(s.try_acquire());
    s.release(2);
    EXPECT_EQ(s.available(), 2);
    EXPECT_FALSE(s.try_acquire(3));
    EXPECT_THROW(s.acquire(0), std::invalid_argument);
    EXPECT_THROW(spindle::Semaphore(-1), std::invalid_argument);
  });
}

TEST(Semaphore, WaitersAreServedInFifoOrder) {
  spindle::run([] {
    spindle::Semaphore s(0);
    std::vector<int> order;
    auto big = spindle::spin([&] {
      s.acquire(3);
      order.push_back(3);
    });
    spindle::yield();
    auto small = spindle::spin([&] {
      s.acquire(1);
      order.push_back(1);
    });
    spindle::yield();
    s.release(1);  // not enough for the head: the small one waits behind it
    settle();
    EXPECT_TRUE(order.empty());
    EXPECT_FALSE(s.try_acquire());  // FIFO: no barging either
    s.release(2);
    big.join();
    EXPECT_EQ(order, (std::vector<int>{3}));
    s.release(1);
    small.join();
    EXPECT_EQ(order, (std::vector<int>{3, 1}));
  });
}

TEST(Semaphore, AWaiterThatLeavesLetsTheOnesBehindItIn) {
  spindle::run([] {
    spindle::Semaphore s(1);
    auto big = spindle::spin([&] { s.acquire(5); });
    spindle::yield();
    bool small_got = false;
    auto small = spindle::spin([&] {
      s.acquire(1);
      small_got = true;
    });
    spindle::yield();
    EXPECT_FALSE(small_got);
    big.cancel();
    EXPECT_TRUE(ended_cancelled(big));
    small.join();
    EXPECT_TRUE(small_got);
    EXPECT_EQ(s.available(), 0);
    // Timed out likewise.
    s.release(1);
    auto start = Clock::now();
    EXPECT_FALSE(s.acquire_for(10ms, 2));
    EXPECT_GE(Clock::now() - start, 10ms);
    EXPECT_TRUE(s.acquire_for(10ms, 1));
  });
}

TEST(Semaphore, LimitsConcurrencyAcrossRuntimesAndThreads) {
  spindle::Semaphore s(3);
  std::atomic<int> inside{0}, max_inside{0}, total{0};
  auto enter = [&] {
    int now = ++inside;
    int seen = max_inside.load();
    while (now > seen && !max_inside.compare_exchange_weak(seen, now)) {
    }
    ++total;
    --inside;
  };
  auto fibers = [&] {
    std::vector<spindle::Fiber<void>> fs;
    for (int i = 0; i < 10; ++i) {
      fs.push_back(spindle::spin([&] {
        for (int k = 0; k < 200; ++k) {
          s.acquire();
          enter();
          if (k % 8 == 0) spindle::yield();
          s.release();
        }
      }));
    }
    for (auto& f : fs) f.join();
  };
  std::thread t([&] {
    for (int k = 0; k < 2000; ++k) {
      s.acquire();
      enter();
      s.release();
    }
  });
  on_runtimes({fibers, fibers});
  t.join();
  EXPECT_LE(max_inside.load(), 3);
  EXPECT_EQ(total.load(), 6000);
  EXPECT_EQ(s.available(), 3);
}

// --- RWLock --------------------------------------------------------------------

TEST(RWLock, ReadersShareWritersExclude) {
  spindle::run([] {
    spindle::RWLock rw;
    EXPECT_TRUE(rw.try_lock_shared());
    EXPECT_TRUE(rw.try_lock_shared());
    EXPECT_EQ(rw.readers(), 2u);
    EXPECT_FALSE(rw.try_lock());
    rw.unlock_shared();
    rw.unlock_shared();
    {
      std::unique_lock<spindle::RWLock> w(rw);
      EXPECT_TRUE(rw.writer());
      EXPECT_FALSE(rw.try_lock_shared());
    }
    std::shared_lock<spindle::RWLock> r(rw);
    EXPECT_EQ(rw.readers(), 1u);
  });
}

TEST(RWLock, AWaitingWriterGoesBeforeNewReaders) {
  spindle::run([] {
    spindle::RWLock rw;
    std::vector<const char*> order;
    rw.lock_shared();
    auto writer = spindle::spin([&] {
      std::unique_lock<spindle::RWLock> w(rw);
      order.push_back("writer");
    });
    spindle::yield();
    EXPECT_FALSE(rw.try_lock_shared());  // a writer waits: new readers queue
    auto reader = spindle::spin([&] {
      std::shared_lock<spindle::RWLock> r(rw);
      order.push_back("reader");
    });
    spindle::yield();
    rw.unlock_shared();
    writer.join();
    reader.join();
    EXPECT_EQ(order, (std::vector<const char*>{"writer", "reader"}));
  });
}

TEST(RWLock, AWriterThatGivesUpLetsTheQueuedReadersIn) {
  spindle::run([] {
    spindle::RWLock rw;
    rw.lock_shared();
    auto writer = spindle::spin([&] { return rw.try_lock_for(20ms); });
    spindle::yield();
    bool read = false;
    auto reader = spindle::spin([&] {
      std::shared_lock<spindle::RWLock> r(rw);
      read = true;
    });
    EXPECT_FALSE(writer.join());
    reader.join();
    EXPECT_TRUE(read);
    // Cancelled likewise.
    auto writer2 = spindle::spin([&] { rw.lock(); });
    spindle::yield();
    auto reader2 = spindle::spin([&] { std::shared_lock<spindle::RWLock> r(rw); });
    spindle::yield();
    writer2.cancel();
    EXPECT_TRUE(ended_cancelled(writer2));
    reader2.join();
    rw.unlock_shared();
    EXPECT_TRUE(rw.try_lock());
    rw.unlock();
  });
}

TEST(RWLock, ReadersSeeConsistentStateAcrossRuntimesAndThreads) {
  spindle::RWLock rw;
  long a = 0, b = 0;  // a == b whenever no writer holds the lock
  std::atomic<long> reads{0};
  auto reader = [&] {
    for (int k = 0; k < 2000; ++k) {
      std::shared_lock<spindle::RWLock> r(rw);
      EXPECT_EQ(a, b);
      ++reads;
      if (k % 32 == 0) spindle::yield();
    }
  };
  auto writer = [&] {
    for (int k = 0; k < 500; ++k) {
      std::unique_lock<spindle::RWLock> w(rw);
      ++a;
      spindle::yield();
      ++b;
    }
  };
  auto mixed = [&] {
    auto r1 = spindle::spin(reader);
    auto r2 = spindle::spin(reader);
    auto w = spindle::spin(writer);
    r1.join();
    r2.join();
    w.join();
  };
  std::thread t([&] {
    for (int k = 0; k < 500; ++k) {
      std::unique_lock<spindle::RWLock> w(rw);
      ++a;
      ++b;
    }
  });
  on_runtimes({mixed, mixed});
  t.join();
  EXPECT_EQ(a, 1500);
  EXPECT_EQ(b, 1500);
  EXPECT_EQ(reads.load(), 8000);
}

}  // namespace
