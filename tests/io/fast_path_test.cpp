// The io_uring fast path: writes and sends after a write on the same fd,
// and reads after a read that filled its buffer, are tried as non-blocking
// system calls before an SQE. They must behave exactly as the SQE would: the same data, a wait when
// the call would block, cancellation and deadlines while waiting, and
// MSG_WAITALL honoured. Runs on both backends (on epoll every operation
// tries the system call first anyway).
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <numeric>
#include <vector>

#include "io_test_util.hpp"

using namespace std::chrono_literals;
using io_test::bytes;

namespace {

std::uint64_t sqes() {
  return spindle::io_metrics().sqes_submitted;
}

}  // namespace

TEST(FastPath, WritesAfterAWriteTakeNoSqe) {
  spindle::run([] {
    spindle::Pipe p = spindle::make_pipe();
    std::uint64_t before = sqes();
    for (int i = 0; i < 100; ++i) spindle::write(p.write_end, bytes("0123456789abcdef"));
    // The first write went through the ring; the others were system calls.
    if (io_test::on_uring()) {
      EXPECT_LE(sqes() - before, 1u);
    }
    std::vector<std::byte> all(1600);
    std::size_t got = 0;
    while (got < all.size()) got += spindle::read(p.read_end, std::span(all).subspan(got));
    for (std::size_t i = 0; i < all.size(); i += 16) {
      EXPECT_EQ(io_test::text(std::span(all).subspan(i, 16)), "0123456789abcdef");
    }
    io_test::close_all({p.read_end, p.write_end});
  });
}

TEST(FastPath, ReadsAfterAFullReadTakeNoSqe) {
  spindle::run([] {
    io_test::SocketPair sp = io_test::socket_pair();
    std::string sent(1000, '\0');
    for (std::size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>('a' + i % 26);
    spindle::send(sp.b, bytes(sent));
    std::uint64_t before = sqes();
    std::string received;
    std::byte chunk[100];
    for (int i = 0; i < 10; ++i) {
      std::size_t n = spindle::recv(sp.a, chunk);
      received += io_test::text(std::span(chunk, n));
    }
    EXPECT_EQ(received, sent);
    // At most the first receive (no hint yet) went through the ring.
    if (io_test::on_uring()) {
      EXPECT_LE(sqes() - before, 1u);
    }
    io_test::close_all({sp.a, sp.b});
  });
}

TEST(FastPath, ASendAfterAReceiveGoesThroughTheRing) {
  // Request / response: the reply's fiber waits for the next request
  // anyway, so its send rides along with the round's SQEs.
  spindle::run([] {
    io_test::SocketPair sp = io_test::socket_pair();
    std::byte buf[64];
    for (int i = 0; i < 5; ++i) {
      spindle::send(sp.b, bytes("ping"));
      ASSERT_EQ(spindle::recv(sp.a, buf), 4u);
      std::uint64_t before = sqes();
      spindle::send(sp.a, bytes("pong"));
      if (io_test::on_uring()) {
        EXPECT_EQ(sqes() - before, 1u);
      }
      ASSERT_EQ(spindle::recv(sp.b, buf), 4u);
      EXPECT_EQ(io_test::text(std::span(buf, 4)), "pong");
    }
    io_test::close_all({sp.a, sp.b});
  });
}

TEST(FastPath, AReadWithAStaleHintWaitsAndCanBeCancelledOrTimedOut) {
  spindle::run([] {
    spindle::Pipe p = spindle::make_pipe();
    std::byte buf[4];
    // A full read: the next read on this fd tries the system call first.
    spindle::write(p.write_end, bytes("full"));
    ASSERT_EQ(spindle::read(p.read_end, buf), 4u);

    // Nothing there now: it must wait, then get what arrives.
    auto reader = spindle::spin([&] {
      std::byte b[4];
      std::size_t n = spindle::read(p.read_end, b);
      return io_test::text(std::span(b, n));
    });
    spindle::yield();
    spindle::sleep(10ms);
    spindle::write(p.write_end, bytes("late"));
    EXPECT_EQ(reader.join(), "late");

    // Again with a hint set (the read above was full): a deadline expires.
    EXPECT_THROW(spindle::read(p.read_end, buf, 20ms), spindle::TimedOut);

    // And a cancellation while it waits.
    spindle::write(p.write_end, bytes("full"));
    ASSERT_EQ(spindle::read(p.read_end, buf), 4u);
    auto victim = spindle::spin([&] {
      std::byte b[4];
      try {
        spindle::read(p.read_end, b);
        return false;
      } catch (const spindle::Cancelled&) {
        return true;
      }
    });
    spindle::yield();
    spindle::sleep(10ms);
    victim.cancel();
    EXPECT_TRUE(victim.join());
    // The data written afterwards is still there for the next reader.
    spindle::write(p.write_end, bytes("next"));
    ASSERT_EQ(spindle::read(p.read_end, buf), 4u);
    EXPECT_EQ(io_test::text(buf), "next");
    io_test::close_all({p.read_end, p.write_end});
  });
}

TEST(FastPath, WaitAllIsNotCutShortByAFullReadBefore) {
  spindle::run([] {
    // epoll's recv makes one MSG_DONTWAIT attempt per readiness, which
    // returns what is there even with MSG_WAITALL: only io_uring waits for
    // all (the behaviour the fast path must keep).
    if (!io_test::on_uring()) GTEST_SKIP() << "MSG_WAITALL is io_uring-only";
    io_test::SocketPair sp = io_test::socket_pair();
    std::byte ten[10];
    spindle::send(sp.b, bytes("0123456789"));
    ASSERT_EQ(spindle::recv(sp.a, ten), 10u);  // full: the hint is set
    auto reader = spindle::spin([&] {
      std::byte twenty[20];
      std::size_t n = spindle::recv(sp.a, twenty, MSG_WAITALL);
      return io_test::text(std::span(twenty, n));
    });
    spindle::send(sp.b, bytes("abcde"));
    spindle::yield();
    spindle::sleep(10ms);
    spindle::send(sp.b, bytes("fghijklmnopqrst"));
    EXPECT_EQ(reader.join(), "abcdefghijklmnopqrst");
    io_test::close_all({sp.a, sp.b});
  });
}

TEST(FastPath, BlockingPipeWithBackpressure) {
  // A pipe without O_NONBLOCK: the fast path uses RWF_NOWAIT, and must hand
  // over to the ring (never block the thread) when the pipe is full.
  spindle::run([] {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    std::vector<std::byte> data(512 * 1024);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i * 7 + i / 251);
    auto reader = spindle::spin([&] {
      std::vector<std::byte> got;
      std::byte chunk[4096];
      while (got.size() < data.size()) {
        std::size_t n = spindle::read(fds[0], chunk);
        if (n == 0) break;
        got.insert(got.end(), chunk, chunk + n);
      }
      return got;
    });
    spindle::write(fds[1], data);
    EXPECT_TRUE(reader.join() == data);
    io_test::close_all({fds[0], fds[1]});
  });
}

TEST(FastPath, RegularFileWritesAndReads) {
  // Buffered writes to a regular file usually refuse RWF_NOWAIT
  // (EOPNOTSUPP): they go to the ring, and keep doing so.
  io_test::TempDir dir;
  spindle::run([&] {
    std::string path = dir / "f";
    int fd = spindle::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    for (int i = 0; i < 50; ++i) spindle::write(fd, bytes("0123456789"));
    std::vector<std::byte> back(500);
    std::size_t got = 0;
    while (got < back.size()) {
      std::size_t n = spindle::pread(fd, std::span(back).subspan(got), got);
      ASSERT_GT(n, 0u);
      got += n;
    }
    for (std::size_t i = 0; i < back.size(); i += 10) {
      EXPECT_EQ(io_test::text(std::span(back).subspan(i, 10)), "0123456789");
    }
    spindle::close(fd);
  });
}

TEST(FastPath, ErrorsComeOutTheSameWay) {
  spindle::run([] {
    io_test::SocketPair sp = io_test::socket_pair();
    ::close(sp.a);
    io_test::expect_errno(
        EPIPE, [&] { spindle::send(sp.b, bytes("x")); }, "send");
    io_test::expect_errno(
        EPIPE, [&] { spindle::write(sp.b, bytes("x")); }, "write");
    ::close(sp.b);
  });
}
