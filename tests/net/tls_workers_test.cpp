// TlsStream on a runtime with two workers: one connection's reader and
// writer fibers on different workers (threads) at once, and handshakes on
// both workers sharing contexts. Also run by the TSan build.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "net/tls_test_util.hpp"
#include "test_config.hpp"

namespace {

using spindle::FdStream;
using spindle::TlsContext;
using spindle::TlsStream;

const spindle::Options kTwoWorkers{.workers = 2};

tls_test::Checksum drain(TlsStream& s) {
  tls_test::Checksum sum;
  std::vector<std::byte> buffer(32 * 1024);
  while (std::size_t n = s.read_some(buffer)) sum.add(std::span(buffer.data(), n));
  return sum;
}

void send_all(TlsStream& s, const std::string& data) {
  std::span<const std::byte> rest = io_test::bytes(data);
  while (!rest.empty()) {
    std::size_t n = std::min<std::size_t>(rest.size(), 20000);
    s.write_all(rest.first(n));
    rest = rest.subspan(n);
  }
  s.shutdown_write();
}

TEST(TlsWorkers, ReaderAndWriterOnDifferentWorkers) {
  const std::size_t size = spindle_test::kThreadSanitizer ? (256 << 10) : (4 << 20);
  std::string up = tls_test::pattern(size, 11);
  std::string down = tls_test::pattern(size + 333, 12);
  spindle::run(
      [&] {
        TlsContext server_ctx = tls_test::server_context();
        TlsContext client_ctx = tls_test::client_context();
        io_test::SocketPair sp = io_test::socket_pair();
        auto accepting =
            spindle::spin_on(1, [&] { return TlsStream::accept(server_ctx, FdStream(sp.b)); });
        TlsStream client = TlsStream::connect(client_ctx, FdStream(sp.a), "example.test");
        TlsStream server = accepting.join();
        // Each stream: its reader on one worker, its writer on the other.
        auto client_writer = spindle::spin_on(1, [&] { send_all(client, up); });
        auto server_writer = spindle::spin_on(0, [&] { send_all(server, down); });
        auto server_reader = spindle::spin_on(1, [&] { return drain(server); });
        auto client_reader = spindle::spin_on(0, [&] { return drain(client); });
        tls_test::Checksum at_server = server_reader.join();
        tls_test::Checksum at_client = client_reader.join();
        client_writer.join();
        server_writer.join();
        EXPECT_TRUE(at_server == tls_test::checksum(up));
        EXPECT_TRUE(at_client == tls_test::checksum(down));
        client.close();
        server.close();
      },
      kTwoWorkers);
}

TEST(TlsWorkers, HandshakesOnBothWorkersShareContexts) {
  const int connections = spindle_test::kThreadSanitizer ? 6 : 40;
  spindle::run(
      [&] {
        TlsContext server_ctx = tls_test::server_context();
        server_ctx.alpn({"h2"});
        TlsContext client_ctx = tls_test::client_context();
        client_ctx.alpn({"h2"});
        std::vector<spindle::Fiber<std::string>> fibers;
        for (int i = 0; i < connections; ++i) {
          io_test::SocketPair sp = io_test::socket_pair();
          unsigned worker = static_cast<unsigned>(i % 2);
          fibers.push_back(spindle::spin_on(worker, [&server_ctx, fd = sp.b] {
            TlsStream s = TlsStream::accept(server_ctx, FdStream(fd));
            std::string got = tls_test::read_all(s);
            s.write_all(io_test::bytes(got + " back"));
            s.close();
            return got;
          }));
          fibers.push_back(spindle::spin_on(1 - worker, [&client_ctx, fd = sp.a, i] {
            TlsStream c = TlsStream::connect(client_ctx, FdStream(fd), "example.test");
            std::string hello = "hello " + std::to_string(i);
            c.write_all(io_test::bytes(hello));
            c.shutdown_write();
            std::string reply = tls_test::read_all(c);
            EXPECT_EQ(reply, hello + " back");
            EXPECT_EQ(c.alpn(), "h2");
            c.close();
            return reply;
          }));
        }
        for (auto& f : fibers) EXPECT_FALSE(f.join().empty());
      },
      kTwoWorkers);
}

}  // namespace
