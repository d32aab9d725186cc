// accept_loop, recv_loop / read_loop with buffer rings, splice_loop and
// proxies, chain and splice_chunks, send_bundle, fire-and-forget ops.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "io_test_util.hpp"
#include "spindle/spindle.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using io_test::bytes;
using io_test::text;

std::string pattern(std::size_t n, unsigned seed = 1) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + seed) % 26);
  return s;
}

std::string read_all(int fd) {
  std::string out;
  spindle::read_into(fd, out, {.limit = 1 << 30, .until_eof = true});
  return out;
}

TEST(Loops, AcceptLoopDeliversEveryConnectionAndStops) {
  spindle::run([] {
    io_test::Listener l = io_test::tcp_listener();
    constexpr int kClients = 100;
    auto clients = spindle::spin([&] {
      for (int i = 0; i < kClients; ++i) {
        int fd = io_test::tcp_connect(l.address);
        spindle::send(fd, bytes("x"));
        spindle::close(fd);
      }
    });
    int served = 0;
    std::size_t n = spindle::accept_loop(l.fd, [&](int c) {
      EXPECT_NE(::fcntl(c, F_GETFD) & FD_CLOEXEC, 0);
      std::byte b[1];
      EXPECT_EQ(spindle::recv(c, b), 1u);
      spindle::close(c);
      return ++served < kClients;  // false: stop
    });
    EXPECT_EQ(n, static_cast<std::size_t>(kClients));
    clients.join();
    // break_loop() ends it too.
    auto one = spindle::spin([&] { spindle::close(io_test::tcp_connect(l.address)); });
    std::size_t m = spindle::accept_loop(l.fd, [&](int c) {
      spindle::close(c);
      spindle::break_loop();
    });
    EXPECT_EQ(m, 1u);
    one.join();
    spindle::close(l.fd);
  });
}

TEST(Loops, AcceptLoopBurstBeyondItsQueueAndItsErrors) {
  spindle::run([] {
    io_test::Listener l = io_test::tcp_listener(1024);
    constexpr int kClients = 300;
    std::vector<int> fds;
    for (int i = 0; i < kClients; ++i) fds.push_back(io_test::tcp_connect(l.address));
    int served = 0;
    spindle::accept_loop(l.fd, [&](int c) {
      spindle::sleep(0ns);
      ::close(c);
      return ++served < kClients;
    });
    EXPECT_EQ(served, kClients);
    for (int fd : fds) ::close(fd);
    io_test::expect_errno(
        EBADF, [] { spindle::accept_loop(999'999, [](int) {}); }, "accept fd");
    int not_listening = spindle::socket(AF_INET, SOCK_STREAM);
    io_test::expect_errno(EINVAL, [&] { spindle::accept_loop(not_listening, [](int) {}); });
    ::close(not_listening);
    // A deadline and a cancellation end it with no connection lost or leaked.
    EXPECT_THROW(spindle::accept_loop(
                     l.fd, [](int c) { ::close(c); }, 20ms),
                 spindle::TimedOut);
    auto loop = spindle::spin([&] { spindle::accept_loop(l.fd, [](int c) { ::close(c); }); });
    spindle::sleep(5ms);
    loop.cancel();
    EXPECT_THROW(loop.join(), spindle::Cancelled);
    spindle::close(l.fd);
  });
}

TEST(Loops, RecvLoopWithABufferRing) {
  spindle::run([] {
    io_test::SocketPair p = io_test::socket_pair();
    spindle::BufferRing ring(16, 4096);
    EXPECT_EQ(ring.count(), 16u);
    EXPECT_EQ(ring.size(), 4096u);
    std::string data = pattern(3 << 20);
    auto writer = spindle::spin([&] {
      spindle::send(p.b, bytes(data));
      spindle::shutdown(p.b, SHUT_WR);
    });
    std::string got;
    std::size_t chunks = 0;
    spindle::IoMetrics before = spindle::io_metrics();
    std::size_t n = spindle::recv_loop(p.a, ring, [&](std::span<const std::byte> chunk) {
      EXPECT_LE(chunk.size(), 4096u);
      got += text(chunk);
      ++chunks;
    });
    writer.join();
    EXPECT_EQ(n, data.size());
    EXPECT_TRUE(got == data);
    EXPECT_GT(chunks, 1u);
    EXPECT_EQ(ring.available(), ring.count());  // every buffer came back
    spindle::IoMetrics after = spindle::io_metrics();
    if (io_test::on_uring() && after.fallbacks.find("multishot_recv") == std::string::npos) {
      // Multishot: far fewer SQEs than chunks (the writer's sends count too).
      EXPECT_TRUE(ring.kernel_managed());
      EXPECT_LT(after.sqes_submitted - before.sqes_submitted, chunks / 2) << chunks;
    }
    io_test::close_all({p.a, p.b});
  });
}

TEST(Loops, RecvLoopSlowConsumerRunsTheRingDry) {
  spindle::run([] {
    io_test::SocketPair p = io_test::socket_pair();
    spindle::BufferRing ring(2, 1024);  // far less than the data: ENOBUFS, re-arm
    std::string data = pattern(256 * 1024, 3);
    auto writer = spindle::spin([&] {
      spindle::send(p.b, bytes(data));
      ::close(p.b);
    });
    std::string got;
    spindle::recv_loop(p.a, ring, [&](std::span<const std::byte> chunk) {
      got += text(chunk);
      if (got.size() % 16 == 0) spindle::sleep(0ns);
    });
    writer.join();
    EXPECT_TRUE(got == data);
    EXPECT_EQ(ring.available(), 2u);
    ::close(p.a);
  });
}

TEST(Loops, RecvLoopStopsEarlyAndGivesTheBuffersBack) {
  spindle::run([] {
    io_test::SocketPair p = io_test::socket_pair();
    spindle::BufferRing ring(8, 512);
    spindle::send(p.b, bytes(pattern(10000)));
    std::size_t seen = 0;
    spindle::recv_loop(p.a, ring, [&](std::span<const std::byte> chunk) {
      seen += chunk.size();
      return false;  // the first chunk is enough
    });
    EXPECT_GT(seen, 0u);
    EXPECT_LE(seen, 512u);
    EXPECT_EQ(ring.available(), 8u);
    // break_loop() from a nested call.
    auto stop = [] { spindle::break_loop(); };
    spindle::send(p.b, bytes("more"));
    spindle::recv_loop(p.a, ring, [&](std::span<const std::byte>) { stop(); });
    EXPECT_EQ(ring.available(), 8u);
    // An exception from the callback leaves the loop cleanly.
    spindle::send(p.b, bytes("more"));
    EXPECT_THROW(spindle::recv_loop(
                     p.a, ring, [](std::span<const std::byte>) { throw std::runtime_error("x"); }),
                 std::runtime_error);
    EXPECT_EQ(ring.available(), 8u);
    io_test::close_all({p.a, p.b});
  });
}

TEST(Loops, ReadLoopOnAPipeAndAFile) {
  spindle::run([] {
    spindle::Pipe p = spindle::make_pipe();
    std::string data = pattern(200'000, 5);
    auto writer = spindle::spin([&] {
      spindle::write(p.write_end, bytes(data));
      ::close(p.write_end);
    });
    std::string got;
    spindle::read_loop(p.read_end, [&](std::span<const std::byte> chunk) { got += text(chunk); });
    writer.join();
    EXPECT_TRUE(got == data);
    ::close(p.read_end);
    // A regular file cannot be polled: one read per buffer.
    io_test::TempDir dir;
    int fd = spindle::open((dir / "f").c_str(), O_CREAT | O_RDWR, 0600);
    spindle::pwrite(fd, bytes(data), 0);
    spindle::BufferRing ring(4, 8192);
    std::string file;
    spindle::read_loop(fd, ring, [&](std::span<const std::byte> chunk) { file += text(chunk); });
    EXPECT_TRUE(file == data);
    spindle::close(fd);
  });
}

TEST(Loops, RecvLoopDeadlineCancellationAndErrors) {
  spindle::run([] {
    io_test::SocketPair p = io_test::socket_pair();
    spindle::BufferRing ring(4, 256);
    EXPECT_THROW(spindle::recv_loop(
                     p.a, ring, [](std::span<const std::byte>) {}, 20ms),
                 spindle::TimedOut);
    EXPECT_EQ(ring.available(), 4u);
    auto loop =
        spindle::spin([&] { spindle::recv_loop(p.a, ring, [](std::span<const std::byte>) {}); });
    spindle::sleep(5ms);
    loop.cancel();
    EXPECT_THROW(loop.join(), spindle::Cancelled);
    EXPECT_EQ(ring.available(), 4u);
    io_test::expect_errno(
        EBADF, [&] { spindle::recv_loop(999'999, ring, [](std::span<const std::byte>) {}); },
        "recv fd 999999");
    // A reset connection fails the loop.
    io_test::Listener l = io_test::tcp_listener();
    int c = io_test::tcp_connect(l.address);
    int s = spindle::accept(l.fd);
    linger lg{1, 0};
    spindle::setsockopt(s, SOL_SOCKET, SO_LINGER, lg);
    ::close(s);
    io_test::expect_errno(ECONNRESET,
                          [&] { spindle::recv_loop(c, ring, [](std::span<const std::byte>) {}); });
    io_test::close_all({c, l.fd, p.a, p.b});
  });
}

TEST(Loops, ManyRecvLoopsShareOneRing) {
  spindle::run([] {
    constexpr int kPairs = 16;
    spindle::BufferRing ring(8, 1024);  // fewer buffers than loops
    std::vector<io_test::SocketPair> pairs;
    for (int i = 0; i < kPairs; ++i) pairs.push_back(io_test::socket_pair());
    std::vector<spindle::Fiber<std::size_t>> loops;
    for (auto& p : pairs) {
      loops.push_back(spindle::spin([&ring, fd = p.a] {
        return spindle::recv_loop(fd, ring, [](std::span<const std::byte>) { spindle::yield(); });
      }));
    }
    std::string data = pattern(50'000);
    for (auto& p : pairs) {
      spindle::send(p.b, bytes(data));
      ::close(p.b);
    }
    for (auto& f : loops) EXPECT_EQ(f.join(), data.size());
    EXPECT_EQ(ring.available(), 8u);
    for (auto& p : pairs) ::close(p.a);
  });
}

TEST(Loops, SpliceLoopAndTwoWayProxy) {
  spindle::run([] {
    // client <-> (c1 | c2) proxy (s1 | s2) <-> server
    io_test::SocketPair client = io_test::socket_pair();
    io_test::SocketPair server = io_test::socket_pair();
    auto proxy = spindle::spin([&] { return spindle::two_way_proxy(client.b, server.a); });
    std::string up = pattern(2 << 20, 1), down = pattern(1 << 20, 2);
    auto uploader = spindle::spin([&] {
      spindle::send(client.a, bytes(up));
      spindle::shutdown(client.a, SHUT_WR);
    });
    auto echo = spindle::spin([&] {
      std::string got = read_all(server.b);
      spindle::send(server.b, bytes(down));
      spindle::shutdown(server.b, SHUT_WR);
      return got;
    });
    std::string back = read_all(client.a);
    uploader.join();
    EXPECT_TRUE(echo.join() == up);
    EXPECT_TRUE(back == down);
    auto [ab, ba] = proxy.join();
    EXPECT_EQ(ab, up.size());
    EXPECT_EQ(ba, down.size());
    io_test::close_all({client.a, client.b, server.a, server.b});
    // splice_loop between a pipe and a socket goes direct.
    spindle::Pipe p = spindle::make_pipe();
    io_test::SocketPair s = io_test::socket_pair();
    auto w = spindle::spin([&] {
      spindle::write(p.write_end, bytes(up));
      ::close(p.write_end);
    });
    auto mover = spindle::spin([&] {
      std::size_t n = spindle::splice_loop(p.read_end, s.a);
      spindle::shutdown(s.a, SHUT_WR);
      return n;
    });
    EXPECT_TRUE(read_all(s.b) == up);
    EXPECT_EQ(mover.join(), up.size());
    w.join();
    io_test::close_all({p.read_end, s.a, s.b});
  });
}

TEST(Loops, ProxyCancellationStopsBothDirections) {
  spindle::run([] {
    io_test::SocketPair a = io_test::socket_pair();
    io_test::SocketPair b = io_test::socket_pair();
    auto proxy = spindle::spin([&] { return spindle::two_way_proxy(a.b, b.a); });
    spindle::sleep(5ms);
    proxy.cancel();
    EXPECT_THROW(proxy.join(), spindle::Cancelled);
    EXPECT_THROW(spindle::two_way_proxy(a.b, b.a, 10ms), spindle::TimedOut);
    io_test::close_all({a.a, a.b, b.a, b.b});
  });
}

TEST(Loops, ChainWritesSplicesAndSendsInOrder) {
  spindle::run([] {
    io_test::SocketPair s = io_test::socket_pair();
    spindle::Pipe body = spindle::make_pipe();
    std::string payload = pattern(100'000, 9);
    auto filler = spindle::spin([&] { spindle::write(body.write_end, bytes(payload)); });
    std::string head = "HEAD\n", tail = "\nTAIL";
    auto reader = spindle::spin([&] { return read_all(s.b); });
    std::size_t n = spindle::chain({spindle::ChainOp::send(s.a, bytes(head)),
                                    spindle::ChainOp::splice(body.read_end, s.a, payload.size()),
                                    spindle::ChainOp::write(s.a, bytes(tail))});
    filler.join();
    EXPECT_EQ(n, head.size() + payload.size() + tail.size());
    spindle::shutdown(s.a, SHUT_WR);
    EXPECT_TRUE(reader.join() == head + payload + tail);
    io_test::close_all({s.a, s.b});
    s = io_test::socket_pair();
    // A splice whose input ends early: ENODATA, naming the step.
    spindle::write(body.write_end, bytes("short"));
    ::close(body.write_end);
    io_test::expect_errno(
        ENODATA,
        [&] {
          spindle::chain({spindle::ChainOp::write(s.a, bytes("x")),
                          spindle::ChainOp::splice(body.read_end, s.a, 100)});
        },
        "chain step 1: splice");
    io_test::expect_errno(
        EBADF, [&] { spindle::chain({spindle::ChainOp::write(999'999, bytes("x"))}); },
        "chain step 0: write fd 999999");
    // A long chain runs in linked batches.
    std::vector<spindle::ChainOp> many;
    std::string piece = "0123456789";
    for (int i = 0; i < 100; ++i) many.push_back(spindle::ChainOp::write(s.a, bytes(piece)));
    auto reader2 = spindle::spin([&] {
      std::string got;
      while (got.size() < 1006) spindle::read_into(s.b, got);
      return got;
    });
    EXPECT_EQ(spindle::chain(many), 1000u);
    std::string want = "xshort";  // what the failed chain above moved
    for (int i = 0; i < 100; ++i) want += piece;
    EXPECT_EQ(reader2.join(), want);
    io_test::close_all({s.a, s.b, body.read_end});
  });
}

TEST(Loops, SpliceChunksFramesLikeHttpChunkedEncoding) {
  spindle::run([] {
    io_test::TempDir dir;
    int file = spindle::open((dir / "body").c_str(), O_CREAT | O_RDWR, 0600);
    std::string data = pattern(10'000, 4);
    spindle::pwrite(file, bytes(data), 0);
    io_test::SocketPair s = io_test::socket_pair();
    auto reader = spindle::spin([&] { return read_all(s.b); });
    spindle::SpliceChunks framing;
    framing.prefix = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    framing.postfix = "0\r\n\r\n";
    framing.chunk_prefix = [](std::size_t n) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%zx\r\n", n);
      return std::string(buf);
    };
    framing.chunk_postfix = [](std::size_t) { return std::string("\r\n"); };
    framing.chunk_size = 4096;
    EXPECT_EQ(spindle::splice_chunks(file, s.a, framing), data.size());
    spindle::shutdown(s.a, SHUT_WR);
    std::string want = framing.prefix;
    for (std::size_t off = 0; off < data.size(); off += 4096) {
      std::size_t n = std::min<std::size_t>(4096, data.size() - off);
      want += framing.chunk_prefix(n) + data.substr(off, n) + "\r\n";
    }
    want += framing.postfix;
    EXPECT_EQ(reader.join(), want);
    io_test::close_all({file, s.a, s.b});
  });
}

TEST(Loops, SendBundleFromASendRing) {
  spindle::run([] {
    io_test::SocketPair s = io_test::socket_pair();
    spindle::BufferRing ring(16, 1000, spindle::BufferRing::Use::send);
    std::string fallbacks = spindle::io_metrics().fallbacks;
    EXPECT_EQ(ring.kernel_managed(), io_test::on_uring() &&
                                         fallbacks.find("send_bundle") == std::string::npos &&
                                         fallbacks.find("buffer_ring") == std::string::npos);
    std::string want;
    for (int i = 0; i < 5; ++i) {
      std::string msg = pattern(1500 + static_cast<std::size_t>(i) * 100, static_cast<unsigned>(i));
      ASSERT_TRUE(ring.push(bytes(msg)));  // two buffers each
      want += msg;
    }
    EXPECT_EQ(ring.available(), 6u);
    EXPECT_FALSE(ring.push(bytes(pattern(7000))));  // does not fit: nothing queued
    EXPECT_EQ(ring.queued_bytes(), want.size());
    auto reader = spindle::spin([&] {
      std::string got;
      while (got.size() < want.size()) spindle::read_into(s.b, got);
      return got;
    });
    EXPECT_EQ(spindle::send_bundle(s.a, ring), want.size());
    EXPECT_EQ(reader.join(), want);
    EXPECT_EQ(ring.available(), 16u);
    EXPECT_EQ(ring.queued_bytes(), 0u);
    EXPECT_EQ(spindle::send_bundle(s.a, ring), 0u);  // nothing queued
    // Many rounds through the same ring, larger than the socket buffer.
    auto big_reader = spindle::spin([&] {
      std::string got;
      while (got.size() < 2'000'000) spindle::read_into(s.b, got);
      return got.size();
    });
    std::size_t total = 0;
    while (total < 2'000'000) {
      while (ring.push(bytes(pattern(1000)))) {
      }
      total += spindle::send_bundle(s.a, ring);
    }
    EXPECT_EQ(big_reader.join(), total);
    io_test::close_all({s.a, s.b});
  });
}

TEST(Loops, WriteAsyncKeepsOrderAndOutlivesTheCaller) {
  spindle::run([] {
    io_test::SocketPair s = io_test::socket_pair();
    {
      std::string local = "first ";
      spindle::write_async(s.a, bytes(local));  // copied
      local = "CHANGED";
      spindle::write_async(s.a, std::string("second "));
      spindle::write_async(s.a, std::vector<std::byte>(3, std::byte{'x'}));
      auto shared = std::make_shared<std::string>(" shared");
      spindle::write_async(s.a, shared, bytes(*shared));
      spindle::write_async(s.a, pattern(1 << 20));  // more than the socket holds
      spindle::shutdown_async(s.a, SHUT_WR);
    }
    EXPECT_GT(spindle::async_queued_bytes(), 0u);
    std::string got = read_all(s.b);
    EXPECT_TRUE(got == "first second xxx shared" + pattern(1 << 20));
    spindle::close_async(s.a);
    EXPECT_TRUE(spindle_test::eventually([&] { return ::fcntl(s.a, F_GETFD) == -1; }))
        << "close_async never closed";
    EXPECT_TRUE(spindle_test::eventually([] { return spindle::async_queued_bytes() == 0; }));
    ::close(s.b);
  });
}

TEST(Loops, WriteAsyncErrorsGoToTheHandler) {
  std::vector<spindle::AsyncError> errors;
  spindle::set_async_error_handler([&](const spindle::AsyncError& e) { errors.push_back(e); });
  spindle::run([&] {
    io_test::SocketPair s = io_test::socket_pair();
    ::close(s.b);
    spindle::write_async(s.a, std::string("lost"));
    spindle::write_async(s.a, std::string("dropped after the failure"));
    spindle::close_async(s.a);  // still happens
    EXPECT_TRUE(spindle_test::eventually([] { return spindle::io_metrics().async_errors != 0; }))
        << "the async write never failed";
    EXPECT_EQ(spindle::io_metrics().async_errors, 1u);
    EXPECT_TRUE(spindle_test::eventually([&] { return ::fcntl(s.a, F_GETFD) == -1; }))
        << "close_async never closed";
    // The queue limit.
    io_test::SocketPair t = io_test::socket_pair();
    std::size_t queued = 0;
    try {
      for (;;) {
        spindle::write_async(t.a, std::string(1 << 20, 'z'));
        queued += 1 << 20;
      }
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ENOBUFS);
    }
    EXPECT_LE(queued, spindle::kAsyncQueueLimit);
    spindle::close_async(t.a);
    ::close(t.b);  // the writer fails (EPIPE) and the queue drains
  });
  spindle::set_async_error_handler(nullptr);
  ASSERT_GE(errors.size(), 1u);
  EXPECT_STREQ(errors[0].op, "write_async");
  EXPECT_EQ(errors[0].error.value(), EPIPE);
}

}  // namespace
