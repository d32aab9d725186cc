// Many fibers at once: 10,000 readers on socketpairs, and thousands of
// fibers on a tiny ring (a full submission queue, an overflowing
// completion queue).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "io_test_util.hpp"
#include "spindle/spindle.hpp"
#include "test_config.hpp"

namespace {

using namespace std::chrono_literals;
using io_test::bytes;

constexpr int kReaders = spindle_test::fibers_alive(10'000);

TEST(Scale, TenThousandFibersReadFromSocketpairs) {
  // Both ends of each pair are read: kReaders descriptors in all.
  rlim_t limit = io_test::raise_fd_limit(static_cast<rlim_t>(kReaders) + 256);
  ASSERT_GE(limit, static_cast<rlim_t>(kReaders) + 64) << "RLIMIT_NOFILE too low";
  spindle::run([] {
    std::vector<io_test::SocketPair> pairs(kReaders / 2);
    for (auto& p : pairs) p = io_test::socket_pair();
    auto end = [&](int i) {
      return i % 2 == 0 ? pairs[static_cast<std::size_t>(i / 2)].a
                        : pairs[static_cast<std::size_t>(i / 2)].b;
    };
    auto peer = [&](int i) {
      return i % 2 == 0 ? pairs[static_cast<std::size_t>(i / 2)].b
                        : pairs[static_cast<std::size_t>(i / 2)].a;
    };
    std::vector<spindle::Fiber<int>> readers;
    readers.reserve(kReaders);
    for (int i = 0; i < kReaders; ++i) {
      readers.push_back(spindle::spin([fd = end(i)] {
        char buf[16] = {};  // on the fiber's stack
        std::size_t got = 0;
        while (got < sizeof(int)) {
          got += spindle::read(fd, std::as_writable_bytes(std::span(buf + got, sizeof(int) - got)));
        }
        int v;
        std::memcpy(&v, buf, sizeof(v));
        return v;
      }));
    }
    spindle::yield();  // every reader is blocked now
    EXPECT_EQ(spindle::io_metrics().ops_in_flight, static_cast<std::uint64_t>(kReaders));
    for (int i = 0; i < kReaders; ++i) {
      spindle::write(peer(i), std::as_bytes(std::span(&i, 1)));
    }
    for (int i = 0; i < kReaders; ++i) EXPECT_EQ(readers[static_cast<std::size_t>(i)].join(), i);
    for (auto& p : pairs) io_test::close_all({p.a, p.b});
  });
}

constexpr int kTinyRingFibers = spindle_test::fibers_alive(3'000);
constexpr int kRounds = 10;

TEST(Scale, TinyRingFullQueueAndCompletionOverflow) {
  io_test::raise_fd_limit(static_cast<rlim_t>(kTinyRingFibers) * 2 + 256);
  spindle::Options options;
  options.uring_entries = 4;  // SQ of 4, CQ of 16: thousands of fibers overrun both
  spindle::run(
      [] {
        std::vector<io_test::SocketPair> pairs(kTinyRingFibers);
        for (auto& p : pairs) p = io_test::socket_pair();
        std::vector<spindle::Fiber<int>> fibers;
        for (int i = 0; i < kTinyRingFibers; ++i) {
          // Ping-pong: each fiber echoes what its partner sends, kRounds times.
          fibers.push_back(spindle::spin([&, i] {
            int fd = pairs[static_cast<std::size_t>(i)].b;
            char buf[8];
            int rounds = 0;
            for (int r = 0; r < kRounds; ++r) {
              std::size_t n = spindle::recv(fd, std::as_writable_bytes(std::span(buf)));
              spindle::send(fd, std::as_bytes(std::span(buf, n)));
              ++rounds;
            }
            return rounds;
          }));
        }
        std::vector<spindle::Fiber<bool>> drivers;
        for (int i = 0; i < kTinyRingFibers; ++i) {
          drivers.push_back(spindle::spin([&, i] {
            int fd = pairs[static_cast<std::size_t>(i)].a;
            bool ok = true;
            for (int r = 0; r < kRounds; ++r) {
              char msg[8];
              std::snprintf(msg, sizeof(msg), "%d", r);
              std::size_t len = std::strlen(msg);
              spindle::send(fd, std::as_bytes(std::span(msg, len)));
              char back[8];
              std::size_t got = 0;
              while (got < len)
                got += spindle::recv(fd, std::as_writable_bytes(std::span(back + got, len - got)));
              ok = ok && std::memcmp(back, msg, len) == 0;
            }
            return ok;
          }));
        }
        for (auto& d : drivers) EXPECT_TRUE(d.join());
        for (auto& f : fibers) EXPECT_EQ(f.join(), kRounds);
        // A chain longer than the ring runs one step at a time.
        std::vector<spindle::ChainOp> steps;
        for (int i = 0; i < 40; ++i)
          steps.push_back(spindle::ChainOp::write(pairs[0].a, bytes("ab")));
        EXPECT_EQ(spindle::chain(steps), 80u);
        std::string got;
        while (got.size() < 80) spindle::read_into(pairs[0].b, got);
        for (auto& p : pairs) io_test::close_all({p.a, p.b});
        spindle::IoMetrics m = spindle::io_metrics();
        EXPECT_EQ(m.ops_in_flight, 0u);
        if (m.backend == spindle::BackendKind::io_uring) {
          EXPECT_EQ(m.kernel_in_flight, 0u);
        }
      },
      options);
}

}  // namespace
