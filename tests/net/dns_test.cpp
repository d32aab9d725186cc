// resolve() against a real DNS server: dnsmasq, started here on a loopback
// port with its own records (scripts/install-deps.sh installs it). Without
// dnsmasq the program says why and exits 77 (skipped). A UDP socket that
// reads and drops every query stands in for a server that never answers.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "net_test_util.hpp"

extern char** environ;

namespace {

using namespace std::chrono_literals;
using spindle::DnsError;
using spindle::Resolver;
using spindle::SocketAddress;
using Clock = std::chrono::steady_clock;

std::string find_dnsmasq() {
  std::string path = "/usr/sbin:/sbin:";
  if (const char* p = std::getenv("PATH")) path += p;
  std::stringstream dirs(path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    std::string candidate = dir + "/dnsmasq";
    if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// A free loopback port for both UDP and TCP (dnsmasq serves both), as
// far as one can tell before dnsmasq binds it.
std::uint16_t free_port() {
  for (int tries = 0; tries < 50; ++tries) {
    int u = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(u, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    ::getsockname(u, reinterpret_cast<sockaddr*>(&a), &len);
    int t = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = ::bind(t, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    ::close(t);
    ::close(u);
    if (ok) return ntohs(a.sin_port);
  }
  return 0;
}

bool tcp_port_answers(std::uint16_t port) {
  int t = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = ::connect(t, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(t);
  return ok;
}

// dnsmasq for the whole program: started before the first test, killed
// after the last.
class Dnsmasq : public ::testing::Environment {
 public:
  static inline std::string server;  // "127.0.0.1:port"

  void SetUp() override {
    std::string binary = find_dnsmasq();
    if (binary.empty()) skip("dnsmasq is not installed (scripts/install-deps.sh installs it)");
    std::uint16_t port = free_port();
    if (port == 0) skip("no free loopback port for dnsmasq");
    log_ = "/tmp/spindle-dns-test-" + std::to_string(::getpid()) + ".log";
    std::vector<std::string> args = {
        binary,
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        "--conf-file=/dev/null",
        "--pid-file",
        "--bind-interfaces",
        "--listen-address=127.0.0.1",
        "--port=" + std::to_string(port),
        "--log-facility=-",
        "--local=/test/",  // names under .test not listed here: NXDOMAIN
        "--address=/x.test/10.1.2.3",
        "--host-record=dual.test,127.0.0.1,::1",
        "--host-record=six.test,::1",
    };
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    int rc = ::posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) skip("cannot start dnsmasq: " + std::string(std::strerror(rc)));
    for (auto until = Clock::now() + 15s; Clock::now() < until;) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        skip("dnsmasq exited at start: " + read_log());
      }
      if (tcp_port_answers(port)) {
        server = "127.0.0.1:" + std::to_string(port);
        return;
      }
      std::this_thread::sleep_for(20ms);
    }
    skip("dnsmasq did not start listening within 15 s: " + read_log());
  }

  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (!log_.empty()) ::unlink(log_.c_str());
  }

 private:
  [[noreturn]] void skip(const std::string& why) {
    TearDown();
    std::printf("SKIPPED: %s\n", why.c_str());
    std::fflush(stdout);
    std::_Exit(77);
  }
  std::string read_log() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  pid_t pid_ = -1;
  std::string log_;
};

[[maybe_unused]] ::testing::Environment* const dnsmasq =
    ::testing::AddGlobalTestEnvironment(new Dnsmasq);

Resolver local() {
  Resolver r;
  r.servers = {Dnsmasq::server};
  r.use_hosts_file = false;
  return r;
}

// A "server" that reads every query and never answers.
struct Blackhole {
  spindle::UdpSocket socket = spindle::UdpSocket::bind(SocketAddress::loopback_v4());
  spindle::Fiber<void> reader = spindle::spin([this] {
    std::byte buf[1500];
    for (;;) socket.recv_from(buf);
  });
  ~Blackhole() {
    reader.cancel();
    try {
      reader.join();
    } catch (const spindle::Cancelled&) {
    }
  }
  std::string address() const { return socket.local_address().to_string(); }
  // A resolver that asks only this server.
  Resolver resolver(std::chrono::milliseconds attempt_timeout, int tries = 2) const {
    Resolver r;
    r.servers = {address()};
    r.attempt_timeout = attempt_timeout;
    r.tries = tries;
    return r;
  }
};

bool contains(const std::vector<SocketAddress>& v, std::string_view text) {
  return std::find(v.begin(), v.end(), SocketAddress::parse(text)) != v.end();
}

TEST(Dns, ResolvesRecordsOfTheLocalServer) {
  spindle::run([] {
    std::vector<SocketAddress> a = local().resolve("x.test", 80, 10s, AF_INET);
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].to_string(), "10.1.2.3:80");
    std::vector<SocketAddress> both = local().resolve("dual.test", 443, 10s);
    EXPECT_EQ(both.size(), 2u);
    EXPECT_TRUE(contains(both, "127.0.0.1:443"));
    EXPECT_TRUE(contains(both, "[::1]:443"));
    std::vector<SocketAddress> six = local().resolve("six.test", 1, 10s, AF_INET6);
    ASSERT_EQ(six.size(), 1u);
    EXPECT_EQ(six[0].to_string(), "[::1]:1");
  });
}

TEST(Dns, NameNotFoundIsAClearError) {
  spindle::run([] {
    for (std::string_view name : {"nope.test", "six.test"}) {  // six.test has no IPv4
      try {
        local().resolve(name, 80, 10s, AF_INET);
        ADD_FAILURE() << "resolved " << name;
      } catch (const DnsError& e) {
        EXPECT_TRUE(e.notfound()) << e.what();
        EXPECT_EQ(e.code().category(), spindle::dns_category());
        EXPECT_NE(std::string(e.what()).find("resolve \"" + std::string(name) + "\""),
                  std::string::npos)
            << e.what();
      }
    }
    EXPECT_THROW(local().resolve("", 80, 10s), DnsError);
    EXPECT_THROW(local().resolve(std::string(300, 'a'), 80, 10s), DnsError);
    net_test::expect_errno(EAFNOSUPPORT, [] { local().resolve("x.test", 1, 10s, AF_UNIX); });
    Resolver bad;
    bad.servers = {"not-an-address"};
    net_test::expect_errno(
        EINVAL, [&] { bad.resolve("x.test", 1, 10s); }, "not-an-address");
  });
}

TEST(Dns, LiteralAddressesNeedNoServer) {
  spindle::run([] {
    Blackhole hole;
    Resolver r = hole.resolver(20s);  // a query would run into the deadline: TimedOut
    EXPECT_EQ(r.resolve("10.9.8.7", 5, 3s).at(0).to_string(), "10.9.8.7:5");
    EXPECT_EQ(r.resolve("::1", 5, 3s).at(0).to_string(), "[::1]:5");
    EXPECT_EQ(r.resolve("10.9.8.7", 5, 3s, AF_INET).size(), 1u);
    try {
      r.resolve("10.9.8.7", 5, 3s, AF_INET6);
      ADD_FAILURE() << "an IPv4 literal resolved as IPv6";
    } catch (const DnsError& e) {
      EXPECT_TRUE(e.notfound()) << e.what();
    }
  });
}

// The first name of /etc/hosts that is not "localhost" (which resolvers may
// answer on their own), or "localhost".
std::pair<std::string, std::string> hosts_entry() {
  std::ifstream in("/etc/hosts");
  std::pair<std::string, std::string> fallback;
  for (std::string line; std::getline(in, line);) {
    line = line.substr(0, line.find('#'));
    std::stringstream words(line);
    std::string ip, name;
    if (!(words >> ip)) continue;
    if (!SocketAddress::try_parse(ip + ":0") && !SocketAddress::try_parse("[" + ip + "]:0")) {
      continue;
    }
    while (words >> name) {
      if (name.rfind("localhost", 0) != 0) return {ip, name};
      if (fallback.first.empty()) fallback = {ip, name};
    }
  }
  return fallback;
}

TEST(Dns, HonoursEtcHosts) {
  // Plain variables: Clang 14 cannot capture structured bindings.
  const std::pair<std::string, std::string> entry = hosts_entry();
  const std::string& ip = entry.first;
  const std::string& name = entry.second;
  if (name.empty()) GTEST_SKIP() << "/etc/hosts lists no name";
  spindle::run([&] {
    Blackhole hole;  // a lookup that reached a server would time out
    Resolver r = hole.resolver(100ms, 1);
    std::vector<SocketAddress> got = r.resolve(name, 7, 10s);
    bool found = false;
    for (const SocketAddress& a : got) found = found || a.ip_string() == ip;
    EXPECT_TRUE(found) << name << " should resolve to " << ip << " from /etc/hosts";
    r.use_hosts_file = false;
    try {
      r.resolve(name, 7, 10s);
      ADD_FAILURE() << "resolved without the hosts file";
    } catch (const DnsError& e) {
      EXPECT_FALSE(e.notfound()) << e.what();  // the server timed out
    }
  });
}

TEST(Dns, ServerNotAnsweringMeetsTheDeadline) {
  spindle::run([] {
    Blackhole hole;
    Resolver r = hole.resolver(10s);
    auto t0 = Clock::now();
    EXPECT_THROW(r.resolve("x.test", 80, 300ms), spindle::TimedOut);
    auto took = Clock::now() - t0;
    EXPECT_GE(took, 290ms);
    EXPECT_LT(took, 8s);
    // c-ares' own timeout, when it comes first: a DnsError saying so.
    r.attempt_timeout = 100ms;
    r.tries = 2;
    try {
      r.resolve("x.test", 80, 20s);
      ADD_FAILURE() << "resolved";
    } catch (const DnsError& e) {
      EXPECT_FALSE(e.notfound());
      EXPECT_NE(std::string(e.what()).find("imeout"), std::string::npos) << e.what();
    }
  });
}

TEST(Dns, FailsOverFromASilentServer) {
  spindle::run([] {
    Blackhole hole;
    Resolver r = local();
    r.servers = {hole.address(), Dnsmasq::server};
    r.attempt_timeout = 200ms;
    std::vector<SocketAddress> a = r.resolve("x.test", 80, 20s, AF_INET);
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].to_string(), "10.1.2.3:80");
  });
}

TEST(Dns, CancellationStopsALookup) {
  spindle::run([] {
    Blackhole hole;
    Resolver r = hole.resolver(10s);
    auto f = spindle::spin([&] { r.resolve("x.test", 80); });
    spindle::sleep(50ms);
    f.cancel();
    EXPECT_THROW(f.join(), spindle::Cancelled);
  });
}

TEST(Dns, ManyFibersResolveAtOnce) {
  spindle::run([] {
    Resolver r = local();
    std::vector<spindle::Fiber<void>> fibers;
    for (int i = 0; i < 32; ++i) {
      fibers.push_back(spindle::spin([&r, i] {
        std::string name = "n" + std::to_string(i) + ".x.test";
        EXPECT_EQ(r.resolve(name, 1, 20s, AF_INET).at(0).to_string(), "10.1.2.3:1");
      }));
    }
    for (auto& f : fibers) f.join();
  });
}

TEST(Dns, OneResolverServesRuntimesOnSeveralThreads) {
  const Resolver r = local();
  std::atomic<int> resolved{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&r, &resolved, t] {
      spindle::run([&] {
        std::vector<spindle::Fiber<void>> fibers;
        for (int i = 0; i < 8; ++i) {
          fibers.push_back(spindle::spin([&, i] {
            std::string name = "t" + std::to_string(t) + "n" + std::to_string(i) + ".x.test";
            if (r.resolve(name, 1, 20s, AF_INET).at(0).to_string() == "10.1.2.3:1") ++resolved;
          }));
        }
        for (auto& f : fibers) f.join();
      });
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(resolved.load(), 24);
}

TEST(Dns, ConnectByNameUsesHappyEyeballs) {
  spindle::run([] {
    spindle::TcpListener v4 = spindle::TcpListener::bind(SocketAddress::loopback_v4());
    Resolver r = local();
    // dual.test is ::1 and 127.0.0.1; only IPv4 listens on this port, so
    // the IPv6 attempt is refused and IPv4 wins.
    spindle::TcpStream s =
        spindle::TcpStream::connect("dual.test", v4.port(), {.deadline = 20s, .resolver = &r});
    EXPECT_EQ(s.peer_address(), v4.local_address());
    try {
      spindle::TcpStream::connect("nope.test", 80, {.deadline = 20s, .resolver = &r});
      ADD_FAILURE() << "connected";
    } catch (const DnsError& e) {
      EXPECT_TRUE(e.notfound());
    }
  });
}

}  // namespace
