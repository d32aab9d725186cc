// Socket operations on both backends: success, the errors users meet,
// deadlines and cancellation mid-operation.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/un.h>

#include <numeric>
#include <vector>

#include "io_test_util.hpp"
#include "spindle/spindle.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using io_test::bytes;
using io_test::text;
using Clock = std::chrono::steady_clock;

using spindle_test::ended_cancelled;

TEST(Socket, TcpAcceptConnectSendRecv) {
  spindle::run([] {
    io_test::Listener l = io_test::tcp_listener();
    auto server = spindle::spin([&] {
      sockaddr_in peer{};
      socklen_t len = sizeof(peer);
      int c = spindle::accept(l.fd, reinterpret_cast<sockaddr*>(&peer), &len);
      EXPECT_EQ(peer.sin_family, AF_INET);
      EXPECT_NE(::fcntl(c, F_GETFD) & FD_CLOEXEC, 0);
      EXPECT_NE(::fcntl(c, F_GETFL) & O_NONBLOCK, 0);
      std::byte buf[64];
      std::size_t n = spindle::recv(c, buf);
      spindle::send(c, std::span<const std::byte>(buf, n));
      spindle::shutdown(c, SHUT_WR);
      EXPECT_EQ(spindle::recv(c, buf), 0u);  // the client closed
      spindle::close(c);
    });
    int fd = io_test::tcp_connect(l.address);
    EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    spindle::send(fd, bytes("ping"));
    std::byte buf[64];
    std::size_t n = spindle::recv(fd, buf);
    EXPECT_EQ(text({buf, n}), "ping");
    EXPECT_EQ(spindle::recv(fd, buf), 0u);  // the server shut down its side
    spindle::close(fd);
    server.join();
    spindle::close(l.fd);
  });
}

TEST(Socket, ConnectionRefused) {
  spindle::run([] {
    io_test::Listener l = io_test::tcp_listener();
    sockaddr_in gone = l.address;
    spindle::close(l.fd);  // nobody listens on that port now
    int fd = spindle::socket(AF_INET, SOCK_STREAM);
    io_test::expect_errno(
        ECONNREFUSED,
        [&] { spindle::connect(fd, reinterpret_cast<const sockaddr*>(&gone), sizeof(gone)); },
        "connect fd");
    auto r = spindle::nothrow::connect(fd, reinterpret_cast<const sockaddr*>(&gone), sizeof(gone));
    EXPECT_FALSE(r.ok());
    spindle::close(fd);
  });
}

TEST(Socket, BrokenPipeAndConnectionReset) {
  spindle::run([] {
    io_test::SocketPair p = io_test::socket_pair();
    ::close(p.b);
    std::vector<std::byte> big(1 << 16, std::byte{1});
    io_test::expect_errno(
        EPIPE, [&] { spindle::send(p.a, big); }, "send fd");
    io_test::expect_errno(
        EPIPE, [&] { spindle::write(p.a, big); }, "write fd");
    ::close(p.a);

    // A TCP peer that closes with unread data (or SO_LINGER 0) resets.
    io_test::Listener l = io_test::tcp_listener();
    int c = io_test::tcp_connect(l.address);
    int s = spindle::accept(l.fd);
    linger lg{1, 0};
    spindle::setsockopt(s, SOL_SOCKET, SO_LINGER, lg);
    ::close(s);
    std::byte buf[16];
    io_test::expect_errno(
        ECONNRESET, [&] { spindle::recv(c, buf); }, "recv fd");
    ::close(c);
    ::close(l.fd);
  });
}

TEST(Socket, BadDescriptor) {
  spindle::run([] {
    std::byte buf[8];
    io_test::expect_errno(
        EBADF, [&] { spindle::recv(987'654, buf); }, "recv fd 987654");
    io_test::expect_errno(
        EBADF, [&] { spindle::send(987'654, buf); }, "send fd 987654");
    io_test::expect_errno(
        EBADF, [&] { spindle::accept(987'654); }, "accept fd 987654");
    io_test::expect_errno(
        EBADF, [&] { spindle::close(987'654); }, "close fd 987654");
    io_test::expect_errno(EBADF, [&] { spindle::shutdown(987'654, SHUT_RDWR); });
    auto r = spindle::nothrow::recv(987'654, buf);
    EXPECT_EQ(r.error(), EBADF);
    EXPECT_THROW(r.value(), std::system_error);
  });
}

TEST(Socket, NoEagainLeaksFromNonBlockingSockets) {
  spindle::run([] {
    io_test::SocketPair p = io_test::socket_pair();
    // The reader waits (EAGAIN inside) until data arrives.
    auto reader = spindle::spin([&] {
      std::byte buf[8];
      return spindle::nothrow::recv(p.a, buf);
    });
    spindle::sleep(2ms);
    spindle::send(p.b, bytes("x"));
    auto r = reader.join();
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(*r, 1u);
    // A writer into a full socket waits until the reader drains it.
    std::vector<std::byte> big(8 << 20, std::byte{7});
    auto writer = spindle::spin([&] { spindle::send(p.a, big); });
    std::size_t got = 0;
    std::vector<std::byte> buf(1 << 16);
    while (got < big.size()) got += spindle::recv(p.b, buf);
    writer.join();
    EXPECT_EQ(got, big.size());
    io_test::close_all({p.a, p.b});
  });
}

TEST(Socket, SendvAndWritevCompletePartialWrites) {
  spindle::run([] {
    io_test::SocketPair p = io_test::socket_pair();
    std::vector<std::vector<char>> parts;
    std::vector<iovec> iov;
    std::size_t total = 0;
    for (int i = 0; i < 40; ++i) {
      parts.emplace_back(static_cast<std::size_t>(100'000 + i * 1000),
                         static_cast<char>('a' + i % 26));
      total += parts.back().size();
    }
    for (auto& part : parts) iov.push_back({part.data(), part.size()});
    auto drain = [&] {
      std::string got;
      std::vector<std::byte> buf(1 << 16);
      while (got.size() < total) {
        std::size_t n = spindle::recv(p.b, buf);
        got.append(reinterpret_cast<char*>(buf.data()), n);
      }
      return got;
    };
    std::string want;
    for (auto& part : parts) want.append(part.data(), part.size());
    auto reader = spindle::spin(drain);
    EXPECT_EQ(spindle::sendv(p.a, iov), total);
    EXPECT_TRUE(reader.join() == want);
    reader = spindle::spin(drain);
    EXPECT_EQ(spindle::writev(p.a, iov), total);
    EXPECT_TRUE(reader.join() == want);
    // writev_some: one call, possibly short.
    std::size_t some = spindle::writev_some(p.a, iov);
    EXPECT_GT(some, 0u);
    EXPECT_LE(some, total);
    io_test::close_all({p.a, p.b});
  });
}

TEST(Socket, RecvmsgAndSendmsg) {
  spindle::run([] {
    io_test::SocketPair p = io_test::socket_pair(SOCK_DGRAM);
    char a[] = "hello ", b[] = "world";
    iovec out[2] = {{a, 6}, {b, 5}};
    msghdr m{};
    m.msg_iov = out;
    m.msg_iovlen = 2;
    EXPECT_EQ(spindle::sendmsg(p.a, m), 11u);
    char in[32];
    iovec iv{in, sizeof(in)};
    msghdr r{};
    r.msg_iov = &iv;
    r.msg_iovlen = 1;
    EXPECT_EQ(spindle::recvmsg(p.b, r), 11u);
    EXPECT_EQ(std::string(in, 11), "hello world");
    io_test::close_all({p.a, p.b});
  });
}

TEST(Socket, DescriptorPassing) {
  spindle::run([] {
    io_test::SocketPair p = io_test::socket_pair();
    spindle::Pipe pipe = spindle::make_pipe();
    int pass[2] = {pipe.read_end, pipe.write_end};
    auto sender = spindle::spin([&] { spindle::send_fds(p.a, bytes("fds!"), pass); });
    std::byte buf[16];
    int got[4] = {-1, -1, -1, -1};
    spindle::ReceivedFds r = spindle::recv_fds(p.b, buf, got);
    sender.join();
    EXPECT_EQ(r.bytes, 4u);
    ASSERT_EQ(r.fds, 2u);
    EXPECT_NE(::fcntl(got[0], F_GETFD) & FD_CLOEXEC, 0);  // MSG_CMSG_CLOEXEC
    // The received ends are the same pipe: write through one, read the other.
    spindle::write(got[1], bytes("via passed fd"));
    std::size_t n = spindle::read(pipe.read_end, buf);
    EXPECT_EQ(text({buf, n}), "via passed fd");
    // Too many descriptors for the room given: all closed, EMSGSIZE.
    spindle::send_fds(p.a, bytes("x"), pass);
    int one[1];
    io_test::expect_errno(
        EMSGSIZE, [&] { spindle::recv_fds(p.b, buf, one); }, "recv_fds");
    // Empty data cannot carry descriptors.
    io_test::expect_errno(EINVAL, [&] { spindle::send_fds(p.a, {}, pass); });
    io_test::close_all({got[0], got[1], pipe.read_end, pipe.write_end, p.a, p.b});
  });
}

TEST(Socket, SocketBindListenErrors) {
  spindle::run([] {
    io_test::expect_errno(
        EAFNOSUPPORT, [] { spindle::socket(12345, SOCK_STREAM); }, "socket");
    io_test::Listener l = io_test::tcp_listener();
    int other = spindle::socket(AF_INET, SOCK_STREAM);
    io_test::expect_errno(
        EADDRINUSE,
        [&] {
          spindle::bind(other, reinterpret_cast<const sockaddr*>(&l.address), sizeof(l.address));
        },
        "bind fd");
    EXPECT_EQ(spindle::getsockopt<int>(l.fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
    spindle::setsockopt(other, IPPROTO_TCP, TCP_NODELAY, 1);
    EXPECT_EQ(spindle::getsockopt<int>(other, IPPROTO_TCP, TCP_NODELAY), 1);
    io_test::expect_errno(
        EBADF, [] { spindle::setsockopt(-5, SOL_SOCKET, SO_REUSEADDR, 1); }, "setsockopt fd -5");
    io_test::close_all({other, l.fd});
  });
}

TEST(Socket, AcceptAndRecvDeadlines) {
  spindle::run([] {
    io_test::Listener l = io_test::tcp_listener();
    auto start = Clock::now();
    EXPECT_THROW(spindle::accept(l.fd, 20ms), spindle::TimedOut);
    EXPECT_GE(Clock::now() - start, 20ms);
    EXPECT_EQ(spindle::nothrow::accept(l.fd, 5ms).error(), ETIMEDOUT);
    io_test::SocketPair p = io_test::socket_pair();
    std::byte buf[8];
    EXPECT_THROW(spindle::recv(p.a, buf, 0, 10ms), spindle::TimedOut);
    EXPECT_EQ(spindle::nothrow::read(p.a, buf, 5ms).error(), ETIMEDOUT);
    EXPECT_EQ(spindle::read_some(p.a, buf, 5ms), -ETIMEDOUT);
    // A deadline at a time point; data already there beats a past deadline.
    spindle::send(p.b, bytes("ok"));
    EXPECT_EQ(spindle::recv(p.a, buf, 0, spindle::Deadline::at(Clock::now() - 1s)), 2u);
    // The fiber is not cancelled by an expired deadline: it goes on.
    EXPECT_FALSE(spindle::cancellation_pending());
    spindle::send(p.b, bytes("again"));
    EXPECT_EQ(spindle::recv(p.a, buf, 0, 1s), 5u);
    io_test::close_all({p.a, p.b, l.fd});
  });
}

TEST(Socket, DeadlineInsideAnOuterCancelScope) {
  spindle::run([] {
    io_test::SocketPair p = io_test::socket_pair();
    std::byte buf[8];
    // The outer scope expires first: its cancellation, not the op's TimedOut.
    auto r = spindle::move_on_after(10ms, [&] { return spindle::recv(p.a, buf, 0, 10s); });
    EXPECT_FALSE(r.has_value());
    // The op's deadline expires first: TimedOut, the outer scope lives on.
    bool timed_out = false;
    spindle::move_on_after(10s, [&] {
      try {
        spindle::recv(p.a, buf, 0, 5ms);
      } catch (const spindle::TimedOut&) {
        timed_out = true;
      }
    });
    EXPECT_TRUE(timed_out);
    io_test::close_all({p.a, p.b});
  });
}

TEST(Socket, CancelledMidRecvAndAccept) {
  spindle::run([] {
    io_test::SocketPair p = io_test::socket_pair();
    io_test::Listener l = io_test::tcp_listener();
    auto reader = spindle::spin([&] {
      std::byte buf[32];
      spindle::recv(p.a, buf);
    });
    auto acceptor = spindle::spin([&] { spindle::accept(l.fd); });
    auto nothrow_reader = spindle::spin([&] {
      std::byte buf[32];
      return spindle::nothrow::recv(p.a, buf).error();
    });
    spindle::yield();
    reader.cancel();
    acceptor.cancel();
    nothrow_reader.cancel();
    EXPECT_TRUE(ended_cancelled(reader));
    EXPECT_TRUE(ended_cancelled(acceptor));
    EXPECT_EQ(nothrow_reader.join(), ECANCELED);
    // The socket still works, and nothing reads from it behind our back.
    spindle::send(p.b, bytes("after"));
    std::byte buf[16];
    EXPECT_EQ(text({buf, spindle::recv(p.a, buf)}), "after");
    io_test::close_all({p.a, p.b, l.fd});
  });
}

TEST(Socket, CloseWorksInACancelledFiber) {
  spindle::run([] {
    io_test::SocketPair p = io_test::socket_pair();
    auto f = spindle::spin([&] {
      try {
        spindle::sleep(10s);
      } catch (const spindle::Cancelled&) {
        spindle::close(p.a);  // cleanup of a cancelled fiber: still closes
        throw;
      }
    });
    spindle::yield();
    f.cancel();
    EXPECT_THROW(f.join(), spindle::Cancelled);
    EXPECT_EQ(::fcntl(p.a, F_GETFD), -1);
    ::close(p.b);
  });
}

TEST(Socket, ConnectDeadline) {
  spindle::run([] {
    // A listener that never accepts, with a full backlog, leaves a
    // non-blocking Unix connect waiting.
    int srv = spindle::socket(AF_UNIX, SOCK_STREAM);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "@spindle-connect-%d", ::getpid());
    addr.sun_path[0] = '\0';  // abstract
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 +
                                           std::strlen(addr.sun_path + 1));
    spindle::bind(srv, reinterpret_cast<sockaddr*>(&addr), len);
    spindle::listen(srv, 0);
    std::vector<int> clients;
    bool timed_out = false;
    for (int i = 0; i < 8 && !timed_out; ++i) {
      int c = spindle::socket(AF_UNIX, SOCK_STREAM);
      clients.push_back(c);
      try {
        spindle::connect(c, reinterpret_cast<sockaddr*>(&addr), len, 20ms);
      } catch (const spindle::TimedOut&) {
        timed_out = true;
      }
    }
    EXPECT_TRUE(timed_out);
    for (int c : clients) ::close(c);
    ::close(srv);
  });
}

TEST(Socket, MetricsCountOperations) {
  spindle::run([] {
    io_test::SocketPair p = io_test::socket_pair();
    spindle::IoMetrics before = spindle::io_metrics();
    auto reader = spindle::spin([&] {
      std::byte buf[8];
      return spindle::recv(p.a, buf);
    });
    spindle::yield();
    EXPECT_EQ(spindle::io_metrics().ops_in_flight, before.ops_in_flight + 1);
    spindle::send(p.b, bytes("m"));
    reader.join();
    spindle::IoMetrics after = spindle::io_metrics();
    EXPECT_GE(after.ops_started, before.ops_started + 2);
    EXPECT_EQ(after.ops_in_flight, 0u);
    EXPECT_GE(after.cqe_waits, 1u);
    EXPECT_EQ(after.backend, spindle::metrics().backend);
    if (after.backend == spindle::BackendKind::io_uring) {
      EXPECT_GT(after.sqes_submitted, before.sqes_submitted);
      EXPECT_GT(after.cqes_reaped, before.cqes_reaped);
      // With a sidecar (SPINDLE_SIDECAR=1) its thread makes the enters.
      EXPECT_GT(after.sidecar ? after.sidecar_calls : after.kernel_enters, 0u);
    }
    io_test::close_all({p.a, p.b});
  });
}

}  // namespace
