// Cancellation and deadlines of operations in flight, many at once, with
// buffers on the fibers' stacks: the kernel must never write into a frame
// the fiber has left (ASan watches), and no data may be lost.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "io_test_util.hpp"
#include "spindle/spindle.hpp"
#include "test_config.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using io_test::bytes;

constexpr int kFibers = spindle_test::fibers_alive(2'000);

using spindle_test::ended_cancelled;

TEST(CancelIo, ManyRecvsWithStackBuffersCancelledThenDataArrives) {
  io_test::raise_fd_limit(static_cast<rlim_t>(kFibers) + 256);
  spindle::run([] {
    std::vector<io_test::SocketPair> pairs(kFibers / 2);
    for (auto& p : pairs) p = io_test::socket_pair();
    std::vector<spindle::Fiber<void>> readers;
    for (int i = 0; i < kFibers; ++i) {
      int fd = i % 2 == 0 ? pairs[static_cast<std::size_t>(i / 2)].a
                          : pairs[static_cast<std::size_t>(i / 2)].b;
      readers.push_back(spindle::spin([fd, i] {
        std::byte buf[512];
        if (i % 3 == 0) {
          spindle::recv(fd, buf);
        } else if (i % 3 == 1) {
          spindle::read(fd, buf);
        } else {
          iovec v[2] = {{buf, 100}, {buf + 100, 400}};
          spindle::readv(fd, v);
        }
      }));
    }
    spindle::yield();
    for (auto& r : readers) r.cancel();
    int cancelled = 0;
    for (auto& r : readers) cancelled += ended_cancelled(r) ? 1 : 0;
    EXPECT_EQ(cancelled, kFibers);
    // Data now would land in dead frames if any operation were still armed.
    std::vector<std::byte> junk(512, std::byte{0x5a});
    for (auto& p : pairs) {
      spindle::write(p.a, junk);
      spindle::write(p.b, junk);
    }
    spindle::sleep(5ms);
    EXPECT_EQ(spindle::io_metrics().ops_in_flight, 0u);
    // And it is all still there: nothing was read behind our back.
    for (auto& p : pairs) {
      std::byte buf[1024];
      EXPECT_EQ(spindle::read(p.a, buf), 512u);
      EXPECT_EQ(spindle::read(p.b, buf), 512u);
      io_test::close_all({p.a, p.b});
    }
  });
}

TEST(CancelIo, DeadlinesRacingWithDataLoseNothing) {
  io_test::raise_fd_limit(static_cast<rlim_t>(kFibers) + 256);
  spindle::run([] {
    constexpr int kPairs = kFibers / 4;
    std::vector<io_test::SocketPair> pairs(kPairs);
    for (auto& p : pairs) p = io_test::socket_pair();
    std::mt19937 rng(42);
    std::vector<spindle::Fiber<std::size_t>> readers;
    for (int i = 0; i < kPairs; ++i) {
      auto deadline = std::chrono::microseconds(200 + rng() % 3000);
      readers.push_back(spindle::spin([fd = pairs[static_cast<std::size_t>(i)].a, deadline] {
        std::byte buf[64];
        auto r = spindle::nothrow::recv(fd, buf, 0, deadline);
        if (r.ok()) return *r;
        EXPECT_EQ(r.error(), ETIMEDOUT);
        return std::size_t{0};
      }));
    }
    std::vector<spindle::Fiber<void>> writers;
    for (int i = 0; i < kPairs; ++i) {
      auto delay = std::chrono::microseconds(rng() % 3000);
      writers.push_back(spindle::spin([fd = pairs[static_cast<std::size_t>(i)].b, delay] {
        spindle::sleep(delay);
        spindle::send(fd, bytes("0123456789"));
      }));
    }
    for (auto& w : writers) w.join();
    std::size_t received = 0, timed_out = 0;
    for (auto& r : readers) {
      std::size_t n = r.join();
      received += n;
      timed_out += n == 0 ? 1 : 0;
    }
    // What a reader did not take is still in its socket.
    std::size_t left = 0;
    for (auto& p : pairs) {
      std::byte buf[64];
      auto r = spindle::nothrow::recv(p.a, buf, 0, 1ms);
      if (r.ok()) left += *r;
      io_test::close_all({p.a, p.b});
    }
    EXPECT_EQ(received + left, static_cast<std::size_t>(kPairs) * 10);
    EXPECT_GT(timed_out, 0u);  // some deadlines did win
  });
}

TEST(CancelIo, LoopsAndProxiesCancelledMidStream) {
  io_test::raise_fd_limit(4096);
  spindle::run([] {
    constexpr int kLoops = 100;
    std::vector<io_test::SocketPair> pairs(kLoops);
    for (auto& p : pairs) p = io_test::socket_pair();
    std::vector<spindle::Fiber<void>> loops;
    for (int i = 0; i < kLoops; ++i) {
      int fd = pairs[static_cast<std::size_t>(i)].a;
      loops.push_back(spindle::spin([fd, i] {
        if (i % 2 == 0) {
          spindle::BufferRing ring(4, 256);  // on this fiber's stack, registered
          spindle::recv_loop(fd, ring, [](std::span<const std::byte>) { spindle::yield(); });
        } else {
          spindle::recv_loop(fd, [](std::span<const std::byte>) {});
        }
      }));
    }
    std::vector<spindle::Fiber<void>> feeders;
    for (auto& p : pairs) {
      feeders.push_back(spindle::spin([fd = p.b] {
        std::byte chunk[300] = {};
        for (;;) {
          spindle::send(fd, chunk);
          spindle::sleep(100us);
        }
      }));
    }
    spindle::sleep(20ms);
    for (auto& l : loops) l.cancel();
    for (auto& l : loops) EXPECT_TRUE(ended_cancelled(l));
    for (auto& f : feeders) f.cancel();
    for (auto& f : feeders) EXPECT_TRUE(ended_cancelled(f));
    EXPECT_EQ(spindle::io_metrics().ops_in_flight, 0u);
    for (auto& p : pairs) io_test::close_all({p.a, p.b});
  });
}

TEST(CancelIo, SplicesAndChainsCancelledMidway) {
  spindle::run([] {
    io_test::SocketPair a = io_test::socket_pair();
    io_test::SocketPair b = io_test::socket_pair();
    auto mover = spindle::spin([&] { spindle::splice_loop(a.b, b.a); });
    spindle::send(a.a, bytes("some data"));
    spindle::sleep(2ms);
    mover.cancel();
    EXPECT_TRUE(ended_cancelled(mover));
    spindle::Pipe p = spindle::make_pipe();
    auto chained = spindle::spin([&] {
      spindle::chain({spindle::ChainOp::write(b.a, bytes("x")),
                      spindle::ChainOp::splice(p.read_end, b.a, 1000)});  // waits for the pipe
    });
    spindle::sleep(2ms);
    chained.cancel();
    EXPECT_TRUE(ended_cancelled(chained));
    EXPECT_THROW(spindle::chain({spindle::ChainOp::splice(p.read_end, b.a, 10)}, 5ms),
                 spindle::TimedOut);
    io_test::close_all({a.a, a.b, b.a, b.b, p.read_end, p.write_end});
  });
}

}  // namespace
