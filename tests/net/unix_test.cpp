// UnixListener, UnixStream (with descriptor passing), socketpair(), and the
// datagram sockets UdpSocket and UnixDatagram.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "net_test_util.hpp"

namespace {

using namespace std::chrono_literals;
using net_test::bytes;
using net_test::expect_errno;
using net_test::text;
using spindle::SocketAddress;

TEST(Unix, ListenerOnAPathServesAndRemovesItsFile) {
  spindle::run([] {
    io_test::TempDir dir;
    SocketAddress where = SocketAddress::unix_path(dir / "s.sock");
    {
      spindle::UnixListener l = spindle::UnixListener::bind(where);
      struct stat st {};
      ASSERT_EQ(::stat((dir / "s.sock").c_str(), &st), 0);
      EXPECT_TRUE(S_ISSOCK(st.st_mode));
      expect_errno(
          EADDRINUSE, [&] { spindle::UnixListener::bind(where); },
          "UnixListener::bind " + where.to_string());
      auto server = spindle::spin([&] {
        std::size_t n = l.accept_loop([&](spindle::UnixStream c) {
          std::byte buf[16];
          std::size_t got = c.read_some(buf, 10s);
          c.write_all(std::span<const std::byte>(buf, got));
          return false;
        });
        EXPECT_EQ(n, 1u);
      });
      spindle::UnixStream s = spindle::UnixStream::connect(where, 10s);
      s.write_all(bytes("hello"));
      std::byte buf[5];
      EXPECT_EQ(s.read_exact(buf, 10s), 5u);
      EXPECT_EQ(text(buf), "hello");
      server.join();
      spindle::UnixListener moved = std::move(l);  // the new owner removes the file
    }
    EXPECT_NE(::access((dir / "s.sock").c_str(), F_OK), 0);
    expect_errno(
        ENOENT, [&] { spindle::UnixStream::connect(where); }, "connect " + where.to_string());
  });
}

TEST(Unix, AbstractNames) {
  spindle::run([] {
    SocketAddress where =
        SocketAddress::unix_abstract("spindle-net-test-" + std::to_string(::getpid()));
    spindle::UnixListener l = spindle::UnixListener::bind(where);
    EXPECT_EQ(l.local_address(), where);
    spindle::UnixStream s = spindle::UnixStream::connect(where, 10s);
    spindle::UnixStream c = l.accept(10s);
    c.write_all(bytes("abc"));
    std::byte buf[3];
    EXPECT_EQ(s.read_exact(buf, 10s), 3u);
    EXPECT_EQ(text(buf), "abc");
    expect_errno(EAFNOSUPPORT, [] { spindle::UnixStream::connect(SocketAddress::loopback_v4(1)); });
  });
}

TEST(Unix, SocketpairPassesDescriptors) {
  spindle::run([] {
    auto [a, b] = spindle::socketpair();
    spindle::Pipe p = spindle::make_pipe();
    int fds[] = {p.read_end};
    a.send_fds(bytes("fd"), fds, 10s);
    ::close(p.read_end);
    std::byte buf[8];
    int got[4] = {-1, -1, -1, -1};
    spindle::ReceivedFds r = b.recv_fds(buf, got, 10s);
    EXPECT_EQ(r.bytes, 2u);
    ASSERT_EQ(r.fds, 1u);
    EXPECT_NE(::fcntl(got[0], F_GETFD) & FD_CLOEXEC, 0);
    // The received descriptor is the pipe's read end.
    spindle::write(p.write_end, bytes("through"));
    std::byte data[7];
    EXPECT_EQ(spindle::read(got[0], data, 10s), 7u);
    EXPECT_EQ(text(data), "through");
    ::close(got[0]);
    ::close(p.write_end);
    a.close();
    EXPECT_EQ(b.read_some(buf, 10s), 0u);
  });
}

TEST(Udp, SendToRecvFromAndConnect) {
  spindle::run([] {
    spindle::UdpSocket server = spindle::UdpSocket::bind(SocketAddress::loopback_v4());
    spindle::UdpSocket client = spindle::UdpSocket::bind(SocketAddress::loopback_v4());
    EXPECT_EQ(client.send_to(bytes("query"), server.local_address(), 10s), 5u);
    std::byte buf[64];
    spindle::Datagram d = server.recv_from(buf, 10s);
    EXPECT_EQ(text({buf, d.size}), "query");
    EXPECT_EQ(d.from, client.local_address());
    EXPECT_FALSE(d.truncated);
    server.send_to(bytes("a longer answer"), d.from, 10s);
    std::byte small[4];
    spindle::Datagram cut = client.recv_from(small, 10s);
    EXPECT_TRUE(cut.truncated);
    EXPECT_EQ(cut.size, 4u);
    client.connect(server.local_address());
    EXPECT_EQ(client.send(bytes("again"), 10s), 5u);
    d = server.recv_from(buf, 10s);
    EXPECT_EQ(text({buf, d.size}), "again");
    EXPECT_THROW(client.recv(buf, 50ms), spindle::TimedOut);
    client.set_broadcast(true);
    EXPECT_EQ(spindle::getsockopt<int>(client.fd(), SOL_SOCKET, SO_BROADCAST), 1);
  });
}

TEST(Udp, ErrorsUsersMeet) {
  spindle::run([] {
    spindle::UdpSocket a = spindle::UdpSocket::bind(SocketAddress::loopback_v6());
    expect_errno(
        EADDRINUSE, [&] { spindle::UdpSocket::bind(a.local_address()); },
        "UdpSocket::bind " + a.local_address().to_string());
    expect_errno(EAFNOSUPPORT, [] { spindle::UdpSocket::bind(SocketAddress::parse("/x/y")); });
    // A datagram to a port nobody listens on comes back as ICMP port
    // unreachable: the connected socket's next receive reports it.
    SocketAddress nobody;
    {
      spindle::UdpSocket gone = spindle::UdpSocket::bind(SocketAddress::loopback_v6());
      nobody = gone.local_address();
    }
    a.connect(nobody);
    a.send(bytes("anyone?"), 10s);
    std::byte buf[8];
    expect_errno(ECONNREFUSED, [&] { a.recv(buf, 10s); });
    std::vector<std::byte> huge(70000);
    expect_errno(EMSGSIZE, [&] { a.send_to(huge, nobody, 10s); });
  });
}

TEST(UnixDatagram, PairsPathsAndUnbound) {
  spindle::run([] {
    auto [x, y] = spindle::UnixDatagram::pair();
    x.send(bytes("one"), 10s);
    x.send(bytes("two"), 10s);
    std::byte buf[16];
    EXPECT_EQ(text({buf, y.recv(buf, 10s)}), "one");  // boundaries kept
    EXPECT_EQ(text({buf, y.recv(buf, 10s)}), "two");

    io_test::TempDir dir;
    spindle::UnixDatagram server =
        spindle::UnixDatagram::bind(SocketAddress::unix_path(dir / "d.sock"));
    spindle::UnixDatagram client =
        spindle::UnixDatagram::bind(SocketAddress::unix_path(dir / "c.sock"));
    client.send_to(bytes("hi"), server.local_address(), 10s);
    spindle::Datagram d = server.recv_from(buf, 10s);
    EXPECT_EQ(text({buf, d.size}), "hi");
    EXPECT_EQ(d.from.unix_name(), dir / "c.sock");
    server.send_to(bytes("back"), d.from, 10s);
    EXPECT_EQ(text({buf, client.recv(buf, 10s)}), "back");

    spindle::UnixDatagram anon = spindle::UnixDatagram::unbound();
    anon.send_to(bytes("anon"), server.local_address(), 10s);
    d = server.recv_from(buf, 10s);
    EXPECT_EQ(text({buf, d.size}), "anon");
    expect_errno(ENOENT, [&] {
      anon.send_to(bytes("x"), SocketAddress::unix_path(dir / "none.sock"), 10s);
    });
    expect_errno(EAFNOSUPPORT, [] { spindle::UnixDatagram::bind(SocketAddress::loopback_v4()); });
  });
}

}  // namespace
