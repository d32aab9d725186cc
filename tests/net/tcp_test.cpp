// TcpListener and TcpStream: the normal path, the errors users meet
// (refused, reset, broken pipe, timeouts, EMFILE on accept), and Happy
// Eyeballs across addresses.
#include <gtest/gtest.h>
#include <netinet/tcp.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "net_test_util.hpp"

namespace {

using namespace std::chrono_literals;
using net_test::bytes;
using net_test::expect_errno;
using net_test::text;
using spindle::SocketAddress;
using spindle::TcpListener;
using spindle::TcpStream;
using Clock = std::chrono::steady_clock;

TEST(Tcp, EchoRoundTripWithAddressesAndOptions) {
  spindle::run([] {
    TcpListener l = TcpListener::bind(SocketAddress::loopback_v4());
    ASSERT_NE(l.port(), 0);
    EXPECT_NE(::fcntl(l.fd(), F_GETFD) & FD_CLOEXEC, 0);
    auto server = spindle::spin([&] {
      TcpStream c = l.accept(10s);
      EXPECT_EQ(c.peer_address().ip_string(), "127.0.0.1");
      EXPECT_EQ(c.local_address(), l.local_address());
      std::byte buf[64];
      std::size_t n = c.read_some(buf);
      c.write_all(std::span<const std::byte>(buf, n));
      c.shutdown();
      EXPECT_EQ(c.read_some(buf), 0u);  // the client closed
    });
    TcpStream s = TcpStream::connect(l.local_address(), 10s);
    EXPECT_EQ(s.peer_address(), l.local_address());
    s.set_nodelay(true);
    EXPECT_TRUE(s.nodelay());
    s.set_keepalive(true, {.idle = 30s, .interval = 5s, .count = 3});
    EXPECT_TRUE(s.keepalive());
    EXPECT_EQ(spindle::getsockopt<int>(s.fd(), IPPROTO_TCP, TCP_KEEPIDLE), 30);
    s.set_keepalive(false);
    EXPECT_FALSE(s.keepalive());
    s.write_all(bytes("ping"));
    std::byte buf[4];
    EXPECT_EQ(s.read_exact(buf), 4u);
    EXPECT_EQ(text(buf), "ping");
    std::byte more[8];
    EXPECT_EQ(s.read_exact(more), 0u);  // end of stream
    s.close();
    EXPECT_FALSE(s.is_open());
    server.join();
  });
}

TEST(Tcp, AcceptLoopServesManyClientsOverIPv6) {
  spindle::run([] {
    TcpListener l = TcpListener::bind(SocketAddress::loopback_v6());
    constexpr int kClients = 20;
    auto server = spindle::spin([&] {
      int served = 0;
      std::size_t n = l.accept_loop([&](TcpStream c) {
        spindle::spin([c = std::move(c)]() mutable {
          std::byte buf[32];
          std::size_t got = c.read_some(buf);
          c.write_all(std::span<const std::byte>(buf, got));
        });
        return ++served < kClients;
      });
      EXPECT_EQ(n, static_cast<std::size_t>(kClients));
    });
    std::vector<spindle::Fiber<void>> clients;
    for (int i = 0; i < kClients; ++i) {
      clients.push_back(spindle::spin([&, i] {
        TcpStream s = TcpStream::connect(l.local_address(), 10s);
        std::string msg = "client " + std::to_string(i);
        s.write_all(bytes(msg));
        std::string got(msg.size(), '\0');
        EXPECT_EQ(s.read_exact(std::as_writable_bytes(std::span(got))), msg.size());
        EXPECT_EQ(got, msg);
      }));
    }
    for (auto& c : clients) c.join();
    server.join();
  });
}

static_assert(spindle::Stream<TcpStream> && spindle::VectoredStream<TcpStream> &&
              spindle::FdBackedStream<TcpStream>);
static_assert(spindle::Stream<spindle::UnixStream> &&
              spindle::VectoredStream<spindle::UnixStream> &&
              spindle::FdBackedStream<spindle::UnixStream>);

TEST(Tcp, WorksWithTheStreamLayer) {
  spindle::run([] {
    TcpListener l = TcpListener::bind(SocketAddress::loopback_v4());
    auto server = spindle::spin([&] {
      TcpStream c = l.accept(10s);
      spindle::BufferedWriter out(c);
      out.write("first line\nsecond");
      out.write(" line\n");
      out.flush();
      // copy() from a socket pair's end into the TCP stream (spliced: both
      // are descriptors).
      auto [a, b] = spindle::socketpair();
      a.write_all(bytes("spliced\n"));
      a.close();
      EXPECT_EQ(spindle::copy(b, c), 8u);
      c.shutdown();
    });
    TcpStream s = TcpStream::connect(l.local_address(), 10s);
    spindle::BufferedReader in(s);
    std::vector<std::string> lines;
    in.each_line([&](std::string_view line) { lines.emplace_back(line); });
    EXPECT_EQ(lines, (std::vector<std::string>{"first line", "second line", "spliced"}));
    iovec parts[2] = {{const_cast<char*>("ab"), 2}, {const_cast<char*>("cd"), 2}};
    EXPECT_GE(s.writev_some(parts, 10s), 1u);
    server.join();
  });
}

TEST(Tcp, ConnectionRefusedNamesTheAddress) {
  spindle::run([] {
    SocketAddress gone;
    {
      TcpListener l = TcpListener::bind(SocketAddress::loopback_v4());
      gone = l.local_address();
    }
    expect_errno(
        ECONNREFUSED, [&] { TcpStream::connect(gone, 10s); }, "connect " + gone.to_string());
  });
}

TEST(Tcp, BindErrors) {
  spindle::run([] {
    TcpListener a = TcpListener::bind(SocketAddress::loopback_v4());
    SocketAddress taken = a.local_address();
    expect_errno(
        EADDRINUSE, [&] { TcpListener::bind(taken); }, "TcpListener::bind " + taken.to_string());
    expect_errno(EAFNOSUPPORT, [&] { TcpListener::bind(SocketAddress::parse("@x")); });
    // SO_REUSEPORT: two listeners share a port when both ask for it.
    spindle::ListenOptions shared;
    shared.reuse_port = true;
    TcpListener b = TcpListener::bind(SocketAddress::loopback_v4(), shared);
    TcpListener c = TcpListener::bind(b.local_address(), shared);
    EXPECT_EQ(b.port(), c.port());
    TcpStream s = TcpStream::connect(b.local_address(), 10s);
    EXPECT_TRUE(s.is_open());
  });
}

TEST(Tcp, ResetByPeer) {
  spindle::run([] {
    TcpListener l = TcpListener::bind(SocketAddress::loopback_v4());
    TcpStream s = TcpStream::connect(l.local_address(), 10s);
    {
      TcpStream c = l.accept(10s);
      linger abort{1, 0};  // close sends RST
      spindle::setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, abort);
    }
    std::byte buf[16];
    expect_errno(
        ECONNRESET, [&] { s.read_some(buf, 10s); }, "fd");
  });
}

TEST(Tcp, BrokenPipeIsAnErrorNotASignal) {
  spindle::run([] {
    // With SIGPIPE's default action a send without MSG_NOSIGNAL would kill
    // the test program.
    struct sigaction dfl {};
    struct sigaction saved {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGPIPE, &dfl, &saved);
    TcpListener l = TcpListener::bind(SocketAddress::loopback_v4());
    TcpStream s = TcpStream::connect(l.local_address(), 10s);
    l.accept(10s).close();
    int error = 0;
    std::vector<std::byte> chunk(64 * 1024);
    for (int i = 0; i < 1000 && error == 0; ++i) {
      try {
        s.write_all(chunk, 10s);
      } catch (const std::system_error& e) {
        error = e.code().value();
      }
    }
    ::sigaction(SIGPIPE, &saved, nullptr);
    EXPECT_TRUE(error == EPIPE || error == ECONNRESET) << error;
    if (error == ECONNRESET) {  // the reset came first; the next send is the broken pipe
      expect_errno(EPIPE, [&] { s.write_all(chunk, 10s); });
    }
  });
}

TEST(Tcp, DeadlinesOnReadAndConnect) {
  spindle::run([] {
    TcpListener l = TcpListener::bind(SocketAddress::loopback_v4());
    TcpStream s = TcpStream::connect(l.local_address(), 10s);
    std::byte buf[8];
    EXPECT_THROW(s.read_some(buf, 50ms), spindle::TimedOut);
    net_test::HangingListener h = net_test::hanging_listener(SocketAddress::loopback_v4());
    auto t0 = Clock::now();
    EXPECT_THROW(TcpStream::connect(h.address, 200ms), spindle::TimedOut);
    EXPECT_GE(Clock::now() - t0, 190ms);
  });
}

TEST(HappyEyeballs, FallsBackToIPv4WhenIPv6IsRefused) {
  spindle::run([] {
    TcpListener v4 = TcpListener::bind(SocketAddress::loopback_v4());
    SocketAddress refused;
    {
      TcpListener gone = TcpListener::bind(SocketAddress::loopback_v6());
      refused = gone.local_address();
    }
    SocketAddress list[] = {refused, v4.local_address()};
    auto t0 = Clock::now();
    TcpStream s = TcpStream::connect(list, {.deadline = 20s});
    EXPECT_EQ(s.peer_address(), v4.local_address());
    // A refusal starts the next attempt at once, without the 250 ms delay
    // (generous bound: a loaded machine).
    EXPECT_LT(Clock::now() - t0, 5s);
  });
}

TEST(HappyEyeballs, AStalledIPv6AttemptLosesToALaterIPv4One) {
  spindle::run([] {
    net_test::HangingListener v6 = net_test::hanging_listener(SocketAddress::loopback_v6());
    TcpListener v4 = TcpListener::bind(SocketAddress::loopback_v4());
    // Two IPv6 addresses that stall, then IPv4: interleaving tries IPv4 second.
    SocketAddress list[] = {v6.address, v6.address, v4.local_address()};
    auto t0 = Clock::now();
    TcpStream s = TcpStream::connect(list, {.deadline = 20s, .attempt_delay = 100ms});
    auto took = Clock::now() - t0;
    EXPECT_EQ(s.peer_address(), v4.local_address());
    EXPECT_GE(took, 90ms);  // the second attempt waited for the delay
    EXPECT_LT(took, 10s);
    s.write_all(bytes("x"));
    TcpStream c = v4.accept(10s);
    std::byte b[1];
    EXPECT_EQ(c.read_some(b, 10s), 1u);
  });
}

TEST(HappyEyeballs, AllFailingNamesEveryAddress) {
  spindle::run([] {
    SocketAddress a, b;
    {
      TcpListener x = TcpListener::bind(SocketAddress::loopback_v4());
      TcpListener y = TcpListener::bind(SocketAddress::loopback_v6());
      a = x.local_address();
      b = y.local_address();
    }
    SocketAddress list[] = {a, b};
    try {
      TcpStream::connect(list, {.deadline = 20s});
      ADD_FAILURE() << "connected";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ECONNREFUSED);
      std::string what = e.what();
      EXPECT_NE(what.find(a.to_string()), std::string::npos) << what;
      EXPECT_NE(what.find(b.to_string()), std::string::npos) << what;
    }
    expect_errno(EDESTADDRREQ, [] { TcpStream::connect(std::span<const SocketAddress>()); });
  });
}

TEST(HappyEyeballs, DeadlineCancelsEveryAttempt) {
  spindle::run([] {
    net_test::HangingListener v6 = net_test::hanging_listener(SocketAddress::loopback_v6());
    net_test::HangingListener v4 = net_test::hanging_listener(SocketAddress::loopback_v4());
    SocketAddress list[] = {v6.address, v4.address};
    auto t0 = Clock::now();
    EXPECT_THROW(TcpStream::connect(list, {.deadline = 300ms, .attempt_delay = 50ms}),
                 spindle::TimedOut);
    EXPECT_GE(Clock::now() - t0, 290ms);
  });
}

TEST(HappyEyeballs, CancellingTheCallerCancelsTheAttempts) {
  spindle::run([] {
    net_test::HangingListener v6 = net_test::hanging_listener(SocketAddress::loopback_v6());
    net_test::HangingListener v4 = net_test::hanging_listener(SocketAddress::loopback_v4());
    SocketAddress list[] = {v6.address, v4.address};
    auto f = spindle::spin([&] { TcpStream::connect(list, {.attempt_delay = 20ms}); });
    spindle::sleep(100ms);
    f.cancel();
    EXPECT_THROW(f.join(), spindle::Cancelled);
  });
}

TEST(TcpListener, AcceptLoopRidesOutEmfileWithoutSpinning) {
  spindle::run([] {
    std::atomic<int> backoffs{0};
    std::string last_report;
    spindle::ListenOptions o;
    o.backoff_min = 5ms;
    o.backoff_max = 40ms;
    o.on_backoff = [&](const std::system_error& e, std::chrono::milliseconds pause) {
      ++backoffs;
      last_report = e.what();
      EXPECT_GE(pause, 5ms);
      EXPECT_LE(pause, 40ms);
    };
    TcpListener l = TcpListener::bind(SocketAddress::loopback_v4(), o);
    constexpr int kClients = 3;
    std::vector<TcpStream> clients;
    for (int i = 0; i < kClients; ++i)
      clients.push_back(TcpStream::connect(l.local_address(), 10s));
    std::vector<TcpStream> accepted;
    auto filler = std::make_unique<net_test::FdTableFiller>();
    auto server = spindle::spin([&] {
      l.accept_loop([&](TcpStream c) {
        accepted.push_back(std::move(c));
        return accepted.size() < kClients;
      });
    });
    spindle::sleep(400ms);
    EXPECT_TRUE(accepted.empty());
    int during = backoffs.load();
    filler.reset();  // descriptors free again
    server.join();
    EXPECT_EQ(accepted.size(), static_cast<std::size_t>(kClients));
    // 400 ms of EMFILE with pauses of 5, 10, 20, 40, 40 ... ms: about a
    // dozen reports. A loop that spun would report thousands.
    EXPECT_GE(during, 2);
    EXPECT_LE(during, 60);
    EXPECT_NE(last_report.find("Too many open files"), std::string::npos) << last_report;
  });
}

TEST(TcpListener, AcceptWithoutTheLoopReportsEmfile) {
  spindle::run([] {
    TcpListener l = TcpListener::bind(SocketAddress::loopback_v4());
    TcpStream s = TcpStream::connect(l.local_address(), 10s);
    {
      net_test::FdTableFiller filler;
      expect_errno(
          EMFILE, [&] { l.accept(10s); }, "accept");
    }
    TcpStream c = l.accept(10s);  // the connection waited in the backlog
    EXPECT_TRUE(c.is_open());
  });
}

}  // namespace
