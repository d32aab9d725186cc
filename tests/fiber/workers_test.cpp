// Several workers: placement, work stealing, migration, the fiber tree
// across workers, parking without lost wake-ups, and shutdown.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <unistd.h>

#include <any>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "spindle/spindle.hpp"
#include "test_config.hpp"

namespace {

using namespace std::chrono_literals;

const spindle::Options kTwoWorkers{.workers = 2};

// Fails the test program (instead of letting CI hang until its timeout) if
// the body takes longer than `limit`: a lost wake-up shows up as a hang.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit, const char* what) {
    thread_ = std::thread([this, limit, what] {
      std::unique_lock lock(mutex_);
      if (!done_cv_.wait_for(lock, limit, [this] { return done_; })) {
        std::fprintf(stderr, "watchdog: %s did not finish within %llds (lost wake-up?)\n", what,
                     static_cast<long long>(limit.count()));
        std::_Exit(1);
      }
    });
  }
  ~Watchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    done_cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::thread thread_;
};

TEST(Workers, CountAndPlacement) {
  spindle::run(
      [] {
        EXPECT_EQ(spindle::worker_count(), 2u);
        EXPECT_EQ(spindle::current_worker(), 0u);  // the main fiber runs on worker 0
        pthread_t main_thread = pthread_self();
        auto f = spindle::spin_on(1, [&] {
          EXPECT_EQ(spindle::current_worker(), 1u);
          EXPECT_FALSE(pthread_equal(pthread_self(), main_thread));
          spindle::sleep(1ms);
          EXPECT_EQ(spindle::current_worker(), 1u);
          return spindle::metrics().worker;
        });
        EXPECT_EQ(f.join(), 1u);
        EXPECT_EQ(spindle::metrics().workers, 2u);
        EXPECT_THROW(spindle::spin_on(2, [] {}), std::out_of_range);
      },
      kTwoWorkers);
}

TEST(Workers, OneWorkerPerCpuWhenZero) {
  spindle::Options o;
  o.workers = 0;
  unsigned seen = spindle::run([] { return spindle::worker_count(); }, o);
  EXPECT_GE(seen, 1u);
  o.workers = 65;
  EXPECT_THROW(spindle::run([] {}, o), std::invalid_argument);
}

int fib(int n) {
  if (n < 2) return n;
  auto a = spindle::spin([n] { return fib(n - 1); });
  int b = fib(n - 2);
  return a.join() + b;
}

TEST(Workers, ForkJoinFibonacci) {
  int result = spindle::run([] { return fib(17); }, kTwoWorkers);
  EXPECT_EQ(result, 1597);
}

TEST(Workers, ParallelSumSpreadsOverWorkers) {
  constexpr int kChunks = 64;
  constexpr std::int64_t kPerChunk = 20000;
  std::array<std::atomic<int>, 2> ran{};
  std::int64_t total = spindle::run(
      [&] {
        std::vector<spindle::Fiber<std::int64_t>> parts;
        for (int c = 0; c < kChunks; ++c) {
          parts.push_back(spindle::spin([c, &ran] {
            ran[spindle::current_worker()].fetch_add(1);
            std::int64_t sum = 0;
            for (std::int64_t i = 0; i < kPerChunk; ++i) {
              sum += c * kPerChunk + i;
              if (i % 5000 == 0) spindle::yield();
            }
            return sum;
          }));
        }
        std::int64_t sum = 0;
        for (auto& p : parts) sum += p.join();
        return sum;
      },
      kTwoWorkers);
  std::int64_t n = kChunks * kPerChunk;
  EXPECT_EQ(total, n * (n - 1) / 2);
  EXPECT_EQ(ran[0] + ran[1], kChunks);
}

TEST(Workers, ManyFibersFromOneWorkerSpreadToAll) {
  // A million in a plain build; fewer under the sanitizers (TSan tracks
  // every fiber as a thread).
  const int total = spindle_test::kThreadSanitizer ? 10000 : 1000000;
  constexpr int kBatch = 500;  // within the stack cache: no mmap churn
  std::array<std::atomic<std::int64_t>, 2> ran{};
  spindle::run(
      [&] {
        std::vector<spindle::Fiber<void>> batch;
        batch.reserve(kBatch);
        for (int done = 0; done < total; done += kBatch) {
          for (int i = 0; i < kBatch; ++i) {
            batch.push_back(spindle::spin([&ran] { ran[spindle::current_worker()].fetch_add(1); }));
          }
          for (auto& f : batch) f.join();
          batch.clear();
        }
      },
      kTwoWorkers);
  // Worker 0 may run few or none: while its main fiber spawns, worker 1
  // steals from its queue.
  EXPECT_EQ(ran[0] + ran[1], total);
  EXPECT_GT(ran[1].load(), 0) << "no fiber was stolen by worker 1";
}

TEST(Workers, FiberThatRanNeverChangesThread) {
  std::atomic<int> moved{0};
  spindle::run(
      [&] {
        std::vector<spindle::Fiber<void>> fibers;
        for (int i = 0; i < 64; ++i) {
          fibers.push_back(spindle::spin([&moved, i] {
            pthread_t me = pthread_self();
            unsigned worker = spindle::current_worker();
            for (int round = 0; round < 200; ++round) {
              if (round % 50 == i % 50) spindle::sleep(100us);
              spindle::yield();
              if (!pthread_equal(pthread_self(), me) || spindle::current_worker() != worker) {
                moved.fetch_add(1);
              }
            }
          }));
        }
        for (auto& f : fibers) f.join();
      },
      kTwoWorkers);
  EXPECT_EQ(moved.load(), 0);
}

TEST(Workers, MigrateTo) {
  spindle::run(
      [] {
        EXPECT_THROW(spindle::migrate_to(1), std::logic_error);  // main is not migratable
        auto f = spindle::spin(
            [] {
              spindle::migrate_to(1);
              EXPECT_EQ(spindle::current_worker(), 1u);
              spindle::yield();
              spindle::migrate_to(0);
              EXPECT_EQ(spindle::current_worker(), 0u);
              spindle::migrate_to(0);  // already there
              EXPECT_THROW(spindle::migrate_to(7), std::out_of_range);
              spindle::cancel_after(10s, [] {
                // A deadline lives in this worker's loop: the fiber stays.
                EXPECT_THROW(spindle::migrate_to(1), std::logic_error);
              });
              spindle::migrate_to(1);
              return spindle::current_worker();
            },
            spindle::SpinOptions{.migratable = true});
        EXPECT_EQ(f.join(), 1u);
      },
      kTwoWorkers);
}

TEST(Workers, MigratableFibersBalanceAtYields) {
  // All start on worker 0 (spin_on); a migratable fiber that yields while
  // worker 1 is idle may be handed over.
  std::atomic<int> seen_on_1{0};
  spindle::run(
      [&] {
        spindle::sleep(20ms);  // worker 1 has nothing to do: it parks
        std::vector<spindle::Fiber<void>> fibers;
        for (int i = 0; i < 8; ++i) {
          fibers.push_back(spindle::spin(
              [&] {
                auto give_up = std::chrono::steady_clock::now() + 20s;
                while (std::chrono::steady_clock::now() < give_up) {
                  if (spindle::current_worker() == 1) {
                    seen_on_1.fetch_add(1);
                    break;
                  }
                  spindle::yield();
                }
              },
              spindle::SpinOptions{.worker = 0, .migratable = true}));
        }
        for (auto& f : fibers) f.join();
      },
      kTwoWorkers);
  EXPECT_GT(seen_on_1.load(), 0);
}

TEST(Workers, ChildFailureReachesParentOnAnotherWorker) {
  EXPECT_THROW(spindle::run(
                   [] {
                     auto blocked = spindle::spin_on(1, [] { spindle::sleep(1h); });
                     auto failing = spindle::spin_on(1, []() -> int {
                       spindle::sleep(1ms);
                       throw std::runtime_error("child failed");
                     });
                     spindle::sleep(1h);  // cancelled by the failure
                   },
                   kTwoWorkers),
               std::runtime_error);
}

TEST(Workers, JoinAcrossWorkers) {
  spindle::run(
      [] {
        for (int i = 0; i < 200; ++i) {
          auto f = spindle::spin_on(static_cast<unsigned>(i % 2), [i] {
            if (i % 3 == 0) spindle::sleep(10us);
            return i;
          });
          EXPECT_EQ(f.join(), i);
        }
        // select: the first to finish wins, the rest are cancelled.
        auto slow = spindle::spin_on(1, [] {
          spindle::sleep(1h);
          return 1;
        });
        auto fast = spindle::spin_on(1, [] { return 2; });
        auto won = spindle::select(slow, fast);
        EXPECT_EQ(won.index, 1u);
      },
      kTwoWorkers);
}

TEST(Workers, ResumeFromAnotherWorker) {
  spindle::run(
      [] {
        for (int i = 0; i < 200; ++i) {
          auto f = spindle::spin_on(1, [] { return std::any_cast<int>(spindle::suspend()); });
          if (i % 2 == 1) spindle::sleep(20us);  // sometimes it is in suspend() already
          f.resume(i);
          EXPECT_EQ(f.join(), i);
        }
        // A resume that arrives first waits for the next suspend().
        auto g = spindle::spin_on(1, [] {
          spindle::sleep(2ms);
          return std::any_cast<int>(spindle::suspend());
        });
        g.resume(7);
        EXPECT_THROW(g.resume(8), std::logic_error);  // one pending at a time
        EXPECT_EQ(g.join(), 7);
      },
      kTwoWorkers);
}

TEST(Workers, ParkingAndWakingLosesNoWakeUp) {
  Watchdog dog(120s, "ParkingAndWakingLosesNoWakeUp");
  constexpr int kRounds = spindle_test::kThreadSanitizer ? 2000 : 20000;
  spindle::run(
      [&] {
        // Pairs of fibers on different workers hand a token back and forth
        // through unbuffered channels: every hand-off parks one side, and
        // the workers park whenever both of theirs wait.
        constexpr int kPairs = 4;
        std::vector<spindle::Fiber<void>> fibers;
        std::vector<std::unique_ptr<spindle::Channel<int>>> there, back;
        for (int p = 0; p < kPairs; ++p) {
          there.push_back(std::make_unique<spindle::Channel<int>>());
          back.push_back(std::make_unique<spindle::Channel<int>>());
        }
        for (int p = 0; p < kPairs; ++p) {
          auto* a = there[p].get();
          auto* b = back[p].get();
          fibers.push_back(spindle::spin_on(0, [a, b, p] {
            for (int i = 0; i < kRounds; ++i) {
              a->send(i);
              EXPECT_EQ(b->receive(), i);
              if ((i + p) % 1000 == 0) spindle::sleep(50us);  // let the workers park
            }
          }));
          fibers.push_back(spindle::spin_on(1, [a, b] {
            for (int i = 0; i < kRounds; ++i) b->send(*a->receive());
          }));
        }
        // A plain thread wakes parked fibers too.
        spindle::Channel<int> from_thread;
        std::thread t([&] {
          for (int i = 0; i < 200; ++i) {
            from_thread.send(i);
            std::this_thread::sleep_for(100us);
          }
        });
        auto reader = spindle::spin_on(1, [&] {
          for (int i = 0; i < 200; ++i) EXPECT_EQ(from_thread.receive(), i);
        });
        reader.join();
        t.join();
        for (auto& f : fibers) f.join();
      },
      kTwoWorkers);
}

TEST(Workers, ShutdownWithFibersBlockedEverywhere) {
  Watchdog dog(120s, "ShutdownWithFibersBlockedEverywhere");
  std::atomic<int> cancelled{0};
  auto t0 = std::chrono::steady_clock::now();
  spindle::run(
      [&] {
        spindle::Channel<int> never;
        spindle::Mutex held;
        held.lock();
        int fds[2];
        ASSERT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
        auto group = spindle::spin([&] {
          for (unsigned w = 0; w < 2; ++w) {
            auto count = [&cancelled](auto fn) {
              return [&cancelled, fn] {
                try {
                  fn();
                } catch (const spindle::Cancelled&) {
                  cancelled.fetch_add(1);
                  throw;
                }
              };
            };
            spindle::spin_on(w, count([&] { never.receive(); }));
            spindle::spin_on(w, count([&] { held.lock(); }));
            spindle::spin_on(w, count([] { spindle::sleep(1h); }));
            spindle::spin_on(w, count([] { spindle::suspend(); }));
            spindle::spin_on(w, count([&] { spindle::wait_readable(fds[0]); }));
            spindle::spin_on(w, count([] {
                               auto inner = spindle::spin([] { spindle::sleep(1h); });
                               inner.join();
                             }));
          }
          spindle::sleep(1h);
        });
        spindle::sleep(20ms);  // let them all block
        group.cancel();
        EXPECT_THROW(group.join(), spindle::Cancelled);
        held.unlock();
        ::close(fds[0]);
        ::close(fds[1]);
      },
      kTwoWorkers);
  EXPECT_EQ(cancelled.load(), 12);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 60s);
}

TEST(Workers, GracefulShutdownAcrossWorkers) {
  spindle::run(
      [] {
        std::atomic<int> saw{0};
        auto server = spindle::spin([&] {
          for (unsigned w = 0; w < 2; ++w) {
            spindle::spin_on(w, [&] {
              spindle::until_shutdown([] { spindle::sleep(1h); });
              if (spindle::shutting_down()) saw.fetch_add(1);
            });
          }
          spindle::until_shutdown([] { spindle::sleep(1h); });
        });
        spindle::sleep(10ms);
        server.shutdown(10s);
        server.join();
        EXPECT_EQ(saw.load(), 2);
      },
      kTwoWorkers);
}

TEST(Workers, DetachedFailureOnAnotherWorkerReachesRun) {
  EXPECT_THROW(spindle::run(
                   [] {
                     spindle::spin_detached([] { throw std::runtime_error("detached"); },
                                            spindle::SpinOptions{.worker = 1});
                   },
                   kTwoWorkers),
               std::runtime_error);
}

TEST(Workers, HandleDroppedOnAnotherThread) {
  // The last reference to a control block, dropped on a plain thread, frees
  // it on its owner's thread (its stack goes back to that worker's pool).
  spindle::run(
      [] {
        for (int i = 0; i < 100; ++i) {
          spindle::FiberRef ref = spindle::spin_on(static_cast<unsigned>(i % 2), [] {});
          while (!ref.done()) spindle::sleep(10us);
          std::thread t([r = std::move(ref)]() mutable { r = spindle::FiberRef(); });
          t.join();
        }
        spindle::sleep(1ms);
      },
      kTwoWorkers);
}

TEST(Workers, HighPriorityRunsFirstButNormalStillRuns) {
  std::vector<int> order;
  spindle::run([&] {
    auto low = spindle::spin([&] { order.push_back(0); });
    auto high = spindle::spin([&] { order.push_back(1); },
                              spindle::SpinOptions{.priority = spindle::Priority::high});
    low.join();
    high.join();
  });
  EXPECT_EQ(order, (std::vector<int>{1, 0}));
  // A high-priority fiber that never waits still lets normal ones run.
  spindle::run([] {
    std::atomic<bool> stop{false};
    auto hog = spindle::spin(
        [&] {
          while (!stop.load()) spindle::yield();
        },
        spindle::SpinOptions{.priority = spindle::Priority::high});
    auto normal = spindle::spin([&] {
      for (int i = 0; i < 100; ++i) spindle::yield();
      stop = true;
    });
    normal.join();
    hog.join();
  });
}

}  // namespace
