// Runtimes with Options::sidecar: every worker's blocking kernel calls are
// made by its sidecar thread, and the workers only sleep on futexes. On the
// backend SPINDLE_BACKEND names; multithreaded, so TSan runs it too.
#include <gtest/gtest.h>

#include <vector>

#include "cpu_time.hpp"
#include "io_test_util.hpp"
#include "spindle/spindle.hpp"
#include "test_config.hpp"

namespace {

using namespace std::chrono_literals;
using io_test::bytes;

constexpr int kFibers = spindle_test::fibers_alive(2'000);

TEST(SidecarRuntime, PipePingPongWithoutTheWorkerEnteringTheRing) {
  spindle::run(
      [] {
        int there[2];
        int back[2];
        ASSERT_EQ(::pipe2(there, O_CLOEXEC), 0);
        ASSERT_EQ(::pipe2(back, O_CLOEXEC), 0);
        constexpr int kRounds = 2'000;
        auto echo = spindle::spin([&] {
          std::byte b[1];
          for (int i = 0; i < kRounds; ++i) {
            ASSERT_EQ(spindle::read(there[0], b), 1u);
            spindle::write(back[1], b);
          }
        });
        std::byte b[1] = {std::byte{7}};
        for (int i = 0; i < kRounds; ++i) {
          spindle::write(there[1], b);
          ASSERT_EQ(spindle::read(back[0], b), 1u);
          if (i % 500 == 0) spindle::sleep(1ms);
        }
        echo.join();
        spindle::IoMetrics m = spindle::io_metrics();
        EXPECT_TRUE(m.sidecar);
        EXPECT_GT(m.sidecar_calls, 0u);
        EXPECT_GT(m.cqe_waits, 0u);
        if (m.backend == spindle::BackendKind::io_uring) {
          EXPECT_EQ(m.kernel_enters, 0u);  // the sidecar made them all
          EXPECT_GT(m.cqes_reaped, 0u);
        }
        io_test::close_all({there[0], there[1], back[0], back[1]});
      },
      {.sidecar = true});
}

TEST(SidecarRuntime, TinyRingWithThousandsOfFibers) {
  // A 4-entry submission queue fills at once: the sidecar submits it on
  // demand while the worker waits.
  io_test::raise_fd_limit(static_cast<rlim_t>(kFibers) + 256);
  spindle::run(
      [] {
        std::vector<io_test::SocketPair> pairs(kFibers);
        for (auto& p : pairs) p = io_test::socket_pair();
        std::vector<spindle::Fiber<std::size_t>> readers;
        for (auto& p : pairs) {
          readers.push_back(spindle::spin([fd = p.a] {
            std::byte buf[16];
            return spindle::recv(fd, buf);
          }));
        }
        spindle::yield();
        for (auto& p : pairs) spindle::send(p.b, bytes("hello"));
        std::size_t total = 0;
        for (auto& r : readers) total += r.join();
        EXPECT_EQ(total, 5u * pairs.size());
        for (auto& p : pairs) io_test::close_all({p.a, p.b});
      },
      {.uring_entries = 4, .sidecar = true});
}

TEST(SidecarRuntime, TwoWorkersPingPongAndSleep) {
  spindle::run(
      [] {
        spindle::Channel<int> ping;
        spindle::Channel<int> pong;
        constexpr int kRounds = 5'000;
        auto other = spindle::spin_on(1, [&] {
          for (int i = 0; i < kRounds; ++i) {
            std::optional<int> v = ping.receive();
            ASSERT_TRUE(v.has_value());
            if (i % 1'000 == 0) spindle::sleep(1ms);
            pong.send(*v + 1);
          }
          EXPECT_TRUE(spindle::io_metrics().sidecar);
        });
        for (int i = 0; i < kRounds; ++i) {
          ping.send(i);
          EXPECT_EQ(pong.receive(), i + 1);
        }
        other.join();
      },
      {.workers = 2, .sidecar = true});
}

TEST(SidecarRuntime, AnIdleWorkerAndItsSidecarSleep) {
  // The worker's idle spin and the hand-off's spins are bounded: a fiber
  // asleep for 200 ms leaves both threads asleep for nearly all of it.
  spindle::run(
      [] {
        spindle::sleep(1ms);  // the sidecar has made its first calls
        auto before = spindle_test::process_cpu_time();
        for (int i = 0; i < 4; ++i) spindle::sleep(50ms);
        auto used = spindle_test::process_cpu_time() - before;
        // Generous (sanitizers, a loaded machine): a spinning thread alone
        // would use about 200 ms.
        EXPECT_LT(used, 60ms) << "the worker or its sidecar spun while idle";
      },
      {.sidecar = true});
}

TEST(SidecarRuntime, RefusedWithSqpoll) {
  if (spindle::choose_backend(spindle::BackendKind::automatic) != spindle::BackendKind::io_uring) {
    GTEST_SKIP() << "io_uring only";
  }
  EXPECT_THROW(spindle::run([] {}, {.uring_sqpoll = true, .sidecar = true}), std::invalid_argument);
}

}  // namespace
