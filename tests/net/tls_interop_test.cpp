// TlsStream against OpenSSL's own programs: a spindle client and
// `openssl s_server`, `openssl s_client` and a spindle server, with
// certificates made by the test (tls_test_pki.hpp) in a scratch directory.
// Exits 77 (skipped), saying why, when the openssl command is missing;
// scripts/install-deps.sh installs it.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "net/tls_test_util.hpp"

extern char** environ;

namespace {

using namespace std::chrono_literals;
using spindle::FdStream;
using spindle::TlsContext;
using spindle::TlsStream;
using tls_test::pki;

bool openssl_command_present() {
  return std::system("openssl version >/dev/null 2>&1") == 0;
}

class OpensslPresent : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!openssl_command_present()) {
      std::printf(
          "SKIPPED: the openssl command is not installed (scripts/install-deps.sh "
          "installs it, Debian package 'openssl')\n");
      std::fflush(stdout);
      std::_Exit(77);
    }
  }
};
const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new OpensslPresent);

// The certificates as files, for the openssl command and certificate_file.
struct PkiFiles {
  io_test::TempDir dir;
  std::string ca = dir / "ca.pem";
  std::string cert = dir / "server.pem";
  std::string key = dir / "server.key";
  PkiFiles() {
    tls_test::write_text(ca, pki().ca.cert_pem);
    tls_test::write_text(cert, pki().server.cert_pem);
    tls_test::write_text(key, pki().server.key_pem);
  }
};

// A child process (openssl) with its stdin and its stdout + stderr on pipes.
// Killed and reaped when it goes out of scope.
class Child {
 public:
  explicit Child(const std::vector<std::string>& args) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
      throw std::system_error(errno, std::system_category(), "pipe2");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, out[1], 2);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    int rc = posix_spawnp(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    if (rc != 0) throw std::system_error(rc, std::system_category(), "posix_spawnp openssl");
    stdin_ = FdStream(in[1]);
    ::fcntl(out[0], F_SETFL, O_NONBLOCK);
    stdout_ = FdStream(out[0]);
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  FdStream& input() { return stdin_; }
  // Reads its output until `marker` appears (or it ends); returns all so far.
  std::string read_until(std::string_view marker) {
    std::byte buffer[4096];
    while (output_.find(marker) == std::string::npos) {
      std::size_t n = stdout_.read_some(buffer, 30s);
      if (n == 0) break;
      output_.append(reinterpret_cast<const char*>(buffer), n);
    }
    return output_;
  }
  std::string read_to_end() {
    std::byte buffer[4096];
    while (std::size_t n = stdout_.read_some(buffer, 30s)) {
      output_.append(reinterpret_cast<const char*>(buffer), n);
    }
    return output_;
  }
  int wait() {
    siginfo_t info = spindle::waitid(pid_, WEXITED, 30s);
    pid_ = -1;
    return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
  }

 private:
  pid_t pid_ = -1;
  FdStream stdin_;
  FdStream stdout_;
  std::string output_;
};

// Starts `openssl s_server` on a kernel-chosen loopback port and returns
// the port once it listens (it prints "ACCEPT 127.0.0.1:<port>").
int start_s_server(Child& server) {
  std::string out = server.read_until("ACCEPT ");
  std::size_t at = out.find("ACCEPT ");
  if (at == std::string::npos) throw std::runtime_error("s_server did not start: " + out);
  out = server.read_until("\n");
  std::size_t line_end = out.find('\n', at);
  std::size_t colon = out.rfind(':', line_end);
  return std::stoi(out.substr(colon + 1, line_end - colon - 1));
}

spindle::TcpStream connect_loopback(int port) {
  return spindle::TcpStream::connect(
      spindle::SocketAddress::loopback_v4(static_cast<std::uint16_t>(port)), 30s);
}

TEST(TlsInterop, SpindleClientAndOpensslServer) {
  PkiFiles files;
  spindle::run([&] {
    // -rev: answers each line reversed; -naccept 1: one connection, then exit.
    Child server({"openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1", "-rev", "-cert",
                  files.cert, "-key", files.key, "-alpn", "h2,http/1.1"});
    int port = start_s_server(server);
    TlsContext context = TlsContext::client();
    context.ca_file(files.ca).alpn({"http/1.1"});
    TlsStream tls = TlsStream::connect(context, connect_loopback(port), "example.test");
    EXPECT_EQ(tls.alpn(), "http/1.1");
    EXPECT_EQ(tls.peer_subject(), "CN=example.test");
    spindle::BufferedReader in(tls);
    tls.write_all(io_test::bytes("hello spindle\n"));
    EXPECT_EQ(in.read_line().value_or("<eof>"), "eldnips olleh");
    // About 2 MiB of lines, every one reversed, written by one fiber while
    // this one reads.
    std::string line = tls_test::pattern(1000, 5);
    for (char& c : line) c = static_cast<char>('a' + static_cast<unsigned char>(c) % 26);
    std::string reversed(line.rbegin(), line.rend());
    constexpr int kLines = 2000;
    auto writer = spindle::spin([&] {
      spindle::BufferedWriter out(tls);
      for (int i = 0; i < kLines; ++i) out.write(line + "\n");
      out.flush();
    });
    int good = 0;
    for (int i = 0; i < kLines; ++i) good += in.read_line().value_or("") == reversed;
    writer.join();
    EXPECT_EQ(good, kLines);
    tls.close();
    std::string log = server.read_to_end();
    EXPECT_EQ(server.wait(), 0) << log;
    EXPECT_NE(log.find("ALPN protocols selected: http/1.1"), std::string::npos) << log;
  });
}

TEST(TlsInterop, SpindleClientRejectsOpensslServerWithAnUntrustedCertificate) {
  PkiFiles files;
  tls_test::write_text(files.dir / "rogue.pem", pki().rogue.cert_pem);
  tls_test::write_text(files.dir / "rogue.key", pki().rogue.key_pem);
  spindle::run([&] {
    Child server({"openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1", "-rev", "-cert",
                  files.dir / "rogue.pem", "-key", files.dir / "rogue.key"});
    int port = start_s_server(server);
    TlsContext context = TlsContext::client();
    context.ca_file(files.ca);
    try {
      TlsStream::connect(context, connect_loopback(port), "example.test");
      ADD_FAILURE() << "connected to a server signed by an unknown CA";
    } catch (const spindle::TlsError& e) {
      EXPECT_EQ(std::string(e.what()),
                "TLS handshake with example.test: certificate verify failed "
                "(unable to get local issuer certificate)");
    }
    std::string log = server.read_to_end();
    EXPECT_NE(log.find("unknown ca"), std::string::npos) << log;
  });
}

TEST(TlsInterop, OpensslClientAndSpindleServer) {
  PkiFiles files;
  spindle::run([&] {
    auto listener = spindle::TcpListener::bind(spindle::SocketAddress::loopback_v4());
    int port = listener.port();
    TlsContext context = TlsContext::server();
    context.certificate_file(files.cert, files.key).alpn({"h2", "http/1.1"});
    auto server = spindle::spin([&] {
      TlsStream tls = TlsStream::accept(context, listener.accept(), 30s);
      spindle::BufferedReader in(tls);
      std::string request(in.read_line().value_or("<eof>"));
      std::string reply = "spindle heard '" + request + "' for " + std::string(tls.server_name()) +
                          " over " + std::string(tls.alpn()) + "\n";
      tls.write_all(io_test::bytes(reply));
      tls.close();
    });
    Child client({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port),
                  "-servername", "example.test", "-CAfile", files.ca, "-verify_return_error",
                  "-verify_hostname", "example.test", "-alpn", "h2", "-ign_eof"});
    client.input().write_all(io_test::bytes("ping\n"));
    server.join();
    std::string out = client.read_to_end();
    EXPECT_EQ(client.wait(), 0) << out;
    EXPECT_NE(out.find("spindle heard 'ping' for example.test over h2"), std::string::npos) << out;
    EXPECT_NE(out.find("Verify return code: 0 (ok)"), std::string::npos) << out;
  });
}

TEST(TlsInterop, OpensslClientGetsAClearRefusal) {
  PkiFiles files;
  spindle::run([&] {
    auto listener = spindle::TcpListener::bind(spindle::SocketAddress::loopback_v4());
    int port = listener.port();
    TlsContext context = TlsContext::server();
    context.certificate_file(files.cert, files.key).min_version(spindle::TlsVersion::tls1_3);
    auto server = spindle::spin([&]() -> std::string {
      try {
        TlsStream::accept(context, listener.accept(), 30s);
        return "accepted";
      } catch (const spindle::TlsError& e) {
        return e.what();
      }
    });
    // A client that offers only TLS 1.2 to a server that wants 1.3.
    Child client({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port), "-tls1_2",
                  "-CAfile", files.ca});
    client.input().close();
    std::string refusal = server.join();
    EXPECT_NE(refusal.find("TLS handshake (server): unsupported protocol"), std::string::npos)
        << refusal;
    std::string out = client.read_to_end();
    EXPECT_NE(client.wait(), 0) << out;
    EXPECT_NE(out.find("alert protocol version"), std::string::npos) << out;
  });
}

}  // namespace
