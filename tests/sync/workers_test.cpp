// The sync layer between fibers of different workers of one runtime: a
// notifier on one worker wakes a waiter owned by another through that
// worker's remote queue.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

#include "spindle/spindle.hpp"
#include "test_config.hpp"

namespace {

using namespace std::chrono_literals;

const spindle::Options kTwoWorkers{.workers = 2};

TEST(SyncWorkers, ChannelPingPongAcrossWorkers) {
  const int rounds = spindle_test::kThreadSanitizer ? 2000 : 50000;
  spindle::run(
      [&] {
        spindle::Channel<int> ping;
        spindle::Channel<int> pong(1);  // one buffered, one rendezvous
        auto echo = spindle::spin_on(1, [&] {
          EXPECT_EQ(spindle::current_worker(), 1u);
          while (auto v = ping.receive()) pong.send(*v + 1);
        });
        for (int i = 0; i < rounds; ++i) {
          ping.send(i);
          ASSERT_EQ(pong.receive(), i + 1);
        }
        ping.close();
        echo.join();
      },
      kTwoWorkers);
}

TEST(SyncWorkers, MutexContentionAcrossWorkers) {
  const int per_fiber = spindle_test::kThreadSanitizer ? 500 : 5000;
  constexpr int kFibersPerWorker = 8;
  std::int64_t counter = 0;  // guarded by the mutex, not atomic on purpose
  spindle::run(
      [&] {
        spindle::Mutex m;
        std::vector<spindle::Fiber<void>> fibers;
        for (unsigned w = 0; w < 2; ++w) {
          for (int i = 0; i < kFibersPerWorker; ++i) {
            fibers.push_back(spindle::spin_on(w, [&, i] {
              for (int k = 0; k < per_fiber; ++k) {
                std::lock_guard lock(m);
                ++counter;
                if ((k + i) % 64 == 0) spindle::yield();  // hold it across a switch
              }
            }));
          }
        }
        for (auto& f : fibers) f.join();
      },
      kTwoWorkers);
  EXPECT_EQ(counter, std::int64_t{2} * kFibersPerWorker * per_fiber);
}

TEST(SyncWorkers, QueueFansOutToBothWorkers) {
  const int items = spindle_test::kThreadSanitizer ? 2000 : 50000;
  std::atomic<std::int64_t> sum{0};
  std::atomic<int> by_worker[2] = {};
  spindle::run(
      [&] {
        spindle::Queue<int> q(64);
        std::vector<spindle::Fiber<void>> consumers;
        for (unsigned w = 0; w < 2; ++w) {
          for (int c = 0; c < 3; ++c) {
            consumers.push_back(spindle::spin_on(w, [&, w] {
              while (auto v = q.pop()) {
                sum.fetch_add(*v);
                by_worker[w].fetch_add(1);
              }
            }));
          }
        }
        auto producer = spindle::spin_on(1, [&] {
          for (int i = 1; i <= items; ++i) q.push(i);
          q.close();
        });
        producer.join();
        for (auto& c : consumers) c.join();
      },
      kTwoWorkers);
  EXPECT_EQ(sum.load(), std::int64_t{items} * (items + 1) / 2);
  EXPECT_EQ(by_worker[0] + by_worker[1], items);
}

TEST(SyncWorkers, WaitGroupAndEventAcrossWorkers) {
  spindle::run(
      [] {
        spindle::WaitGroup wg;
        spindle::Event go(spindle::Event::Mode::manual_reset);
        std::atomic<int> ran{0};
        for (int i = 0; i < 40; ++i) {
          wg.add(1);
          spindle::spin_on(static_cast<unsigned>(i % 2), [&] {
            go.wait();
            ran.fetch_add(1);
            wg.done();
          });
        }
        spindle::sleep(1ms);
        go.set();
        wg.wait();
        EXPECT_EQ(ran.load(), 40);
      },
      kTwoWorkers);
}

TEST(SyncWorkers, SelectAcrossWorkers) {
  spindle::run(
      [] {
        spindle::Channel<int> a, b;
        auto sender = spindle::spin_on(1, [&] {
          for (int i = 0; i < 200; ++i) {
            if (i % 2 == 0)
              a.send(i);
            else
              b.send(i);
          }
        });
        int got = 0;
        for (int i = 0; i < 200; ++i) {
          spindle::select(spindle::on_receive(a, [&](std::optional<int>) { ++got; }),
                          spindle::on_receive(b, [&](std::optional<int>) { ++got; }));
        }
        sender.join();
        EXPECT_EQ(got, 200);
      },
      kTwoWorkers);
}

}  // namespace
