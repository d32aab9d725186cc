// TlsStream between two spindle fibers over a socketpair: handshakes, SNI,
// ALPN, certificate errors, garbage and early closes from the peer,
// deadlines and cancellation, close_notify against truncation, and large
// transfers both ways at once.
#include <gtest/gtest.h>
#include <openssl/x509_vfy.h>

#include <string>
#include <vector>

#include "net/tls_test_util.hpp"

namespace {

using namespace std::chrono_literals;
using spindle::FdStream;
using spindle::TlsContext;
using spindle::TlsErrc;
using spindle::TlsError;
using spindle::TlsStream;
using tls_test::client_context;
using tls_test::pki;
using tls_test::server_context;

std::span<const std::byte> bytes(std::string_view s) {
  return io_test::bytes(s);
}

struct Pair {
  TlsStream client;
  TlsStream server;
};

// Connects a client and a server over a fresh socketpair.
Pair connect_pair(const TlsContext& client_ctx, const TlsContext& server_ctx,
                  std::string_view host = "example.test") {
  io_test::SocketPair sp = io_test::socket_pair();
  auto server = spindle::spin([&] { return TlsStream::accept(server_ctx, FdStream(sp.b)); });
  TlsStream client = TlsStream::connect(client_ctx, FdStream(sp.a), host);
  return {std::move(client), server.join()};
}

// The outcome of a handshake on each side: "ok" or the TlsError's text.
struct Outcome {
  std::string client;
  std::string server;
  TlsErrc client_code{};
  long verify_result = 0;
};

Outcome try_handshake(const TlsContext& client_ctx, const TlsContext& server_ctx,
                      std::string_view host = "example.test") {
  io_test::SocketPair sp = io_test::socket_pair();
  auto server = spindle::spin([&]() -> std::string {
    try {
      TlsStream s = TlsStream::accept(server_ctx, FdStream(sp.b));
      std::byte buffer[64];
      s.read_some(buffer);  // the client's verdict comes after the server's Finished
      return "ok";
    } catch (const TlsError& e) {
      return e.what();
    }
  });
  Outcome out;
  try {
    TlsStream c = TlsStream::connect(client_ctx, FdStream(sp.a), host);
    out.client = "ok";
    c.close();
  } catch (const TlsError& e) {
    out.client = e.what();
    out.client_code = static_cast<TlsErrc>(e.code().value());
    out.verify_result = e.verify_result();
  }
  out.server = server.join();
  return out;
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

TEST(Tls, ClientAndServerExchangeAndCloseCleanly) {
  spindle::run([] {
    TlsContext server_ctx = server_context();
    server_ctx.alpn({"h2", "http/1.1"});
    TlsContext client_ctx = client_context();
    client_ctx.alpn({"http/1.1"});
    Pair p = connect_pair(client_ctx, server_ctx);
    EXPECT_EQ(p.client.alpn(), "http/1.1");
    EXPECT_EQ(p.server.alpn(), "http/1.1");
    EXPECT_EQ(p.client.server_name(), "example.test");
    EXPECT_EQ(p.server.server_name(), "example.test");
    EXPECT_EQ(p.client.version(), "TLSv1.3");
    EXPECT_FALSE(p.client.cipher().empty());
    EXPECT_EQ(p.client.peer_subject(), "CN=example.test");
    EXPECT_EQ(p.server.peer_subject(), "");

    p.client.write_all(bytes("hello over TLS"));
    std::byte buffer[64];
    std::size_t n = p.server.read_some(buffer);
    EXPECT_EQ(io_test::text(std::span(buffer, n)), "hello over TLS");
    p.server.write_all(bytes("and back"));
    n = p.client.read_some(buffer);
    EXPECT_EQ(io_test::text(std::span(buffer, n)), "and back");

    // close_notify: the server reads end of stream, not an error.
    p.client.close();
    EXPECT_FALSE(p.client.is_open());
    EXPECT_EQ(p.server.read_some(buffer), 0u);
    EXPECT_EQ(p.server.read_some(buffer), 0u);
    p.server.close();
    p.server.close();  // idempotent
  });
}

TEST(Tls, ShutdownHalfClosesAndTheOtherDirectionGoesOn) {
  spindle::run([] {
    Pair p = connect_pair(client_context(), server_context());
    p.client.write_all(bytes("request"));
    p.client.shutdown_write();
    p.client.shutdown_write();  // idempotent
    EXPECT_EQ(tls_test::read_all(p.server), "request");
    p.server.write_all(bytes("response"));
    p.server.close();
    EXPECT_EQ(tls_test::read_all(p.client), "response");
    p.client.close();
  });
}

TEST(Tls, AlpnWithoutACommonProtocolGoesOnWithoutAlpn) {
  spindle::run([] {
    TlsContext server_ctx = server_context();
    server_ctx.alpn({"h2"});
    TlsContext client_ctx = client_context();
    client_ctx.alpn({"spdy/1"});
    Pair p = connect_pair(client_ctx, server_ctx);
    EXPECT_EQ(p.client.alpn(), "");
    EXPECT_EQ(p.server.alpn(), "");
    TlsContext plain = client_context();
    Pair q = connect_pair(plain, server_ctx);
    EXPECT_EQ(q.client.alpn(), "");
  });
}

TEST(Tls, AlpnNamesAreChecked) {
  TlsContext c = TlsContext::client();
  try {
    c.alpn({"h2", ""});
    ADD_FAILURE() << "an empty ALPN name was accepted";
  } catch (const TlsError& e) {
    EXPECT_EQ(e.code(), TlsErrc::config);
    EXPECT_TRUE(contains(e.what(), "TLS ALPN")) << e.what();
  }
  EXPECT_THROW(c.alpn({std::string(256, 'x')}), TlsError);
}

TEST(Tls, ServerChoosesItsCertificateBySni) {
  spindle::run([] {
    TlsContext example = server_context(pki().server);
    example.alpn({"http/1.1"});
    TlsContext fallback = server_context(pki().other);
    fallback.alpn({"h2"});
    fallback.on_server_name([&](std::string_view name) -> const TlsContext* {
      return name == "example.test" ? &example : nullptr;
    });
    TlsContext client_ctx = client_context();
    client_ctx.alpn({"h2", "http/1.1"});
    Pair p = connect_pair(client_ctx, fallback, "example.test");
    EXPECT_EQ(p.client.peer_subject(), "CN=example.test");
    EXPECT_EQ(p.server.server_name(), "example.test");
    EXPECT_EQ(p.client.alpn(), "http/1.1");  // the chosen context's list
    Pair q = connect_pair(client_ctx, fallback, "other.test");
    EXPECT_EQ(q.client.peer_subject(), "CN=other.test");
    EXPECT_EQ(q.client.alpn(), "h2");
  });
}

TEST(Tls, IpAddressIsCheckedAgainstTheCertificate) {
  spindle::run([] {
    Pair p = connect_pair(client_context(), server_context(), "127.0.0.1");
    EXPECT_EQ(p.client.server_name(), "");  // no SNI for an address
    Outcome o = try_handshake(client_context(), server_context(), "127.0.0.2");
    EXPECT_TRUE(contains(o.client, "certificate verify failed (IP address mismatch)")) << o.client;
  });
}

TEST(Tls, UnknownCaIsAClearError) {
  spindle::run([] {
    Outcome o = try_handshake(client_context(), server_context(pki().rogue));
    EXPECT_EQ(o.client,
              "TLS handshake with example.test: certificate verify failed "
              "(unable to get local issuer certificate)");
    EXPECT_EQ(o.client_code, TlsErrc::certificate);
    EXPECT_EQ(o.verify_result, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    // The server learns why from the client's alert.
    EXPECT_TRUE(contains(o.server, "TLS handshake (server for example.test): ")) << o.server;
    EXPECT_TRUE(contains(o.server, "unknown ca")) << o.server;
  });
}

TEST(Tls, WrongHostNameIsAClearError) {
  spindle::run([] {
    Outcome o = try_handshake(client_context(), server_context(pki().other), "example.test");
    EXPECT_EQ(o.client,
              "TLS handshake with example.test: certificate verify failed (hostname mismatch)");
    EXPECT_EQ(o.verify_result, X509_V_ERR_HOSTNAME_MISMATCH);
  });
}

TEST(Tls, ExpiredCertificateIsAClearError) {
  spindle::run([] {
    Outcome o = try_handshake(client_context(), server_context(pki().expired));
    EXPECT_EQ(o.client,
              "TLS handshake with example.test: certificate verify failed "
              "(certificate has expired)");
    EXPECT_EQ(o.verify_result, X509_V_ERR_CERT_HAS_EXPIRED);
  });
}

TEST(Tls, SystemCasDoNotTrustTheTestCa) {
  spindle::run([] {
    Outcome o = try_handshake(TlsContext::client(), server_context());
    EXPECT_EQ(o.client_code, TlsErrc::certificate) << o.client;
  });
}

TEST(Tls, VerificationOffAcceptsAnyServer) {
  spindle::run([] {
    TlsContext insecure = TlsContext::client();
    insecure.verify_peer(false);
    Pair p = connect_pair(insecure, server_context(pki().rogue), "whatever.test");
    EXPECT_EQ(p.client.peer_subject(), "CN=example.test");
  });
}

TEST(Tls, ClientNeedsAHostToVerify) {
  spindle::run([] {
    io_test::SocketPair sp = io_test::socket_pair();
    try {
      TlsStream::connect(client_context(), FdStream(sp.a), "");
      ADD_FAILURE() << "connected without a host name";
    } catch (const TlsError& e) {
      EXPECT_EQ(e.code(), TlsErrc::config);
    }
    ::close(sp.b);
    EXPECT_THROW(TlsStream::connect(server_context(), FdStream(sp.a), "x"), TlsError);
  });
}

TEST(Tls, ClientCertificates) {
  spindle::run([] {
    TlsContext server_ctx = server_context();
    server_ctx.ca_pem(pki().ca.cert_pem).verify_peer(true);
    TlsContext with_cert = client_context();
    with_cert.certificate_pem(pki().client.cert_pem, pki().client.key_pem);
    Pair p = connect_pair(with_cert, server_ctx);
    p.client.write_all(bytes("x"));  // TLS 1.3: the server verifies after its Finished
    std::byte b[4];
    EXPECT_EQ(p.server.read_some(b), 1u);
    EXPECT_EQ(p.server.peer_subject(), "CN=client.test");

    Outcome o = try_handshake(client_context(), server_ctx);
    EXPECT_TRUE(contains(o.server, "TLS handshake (server for example.test): ")) << o.server;
    EXPECT_TRUE(contains(o.server, "certificate")) << o.server;
  });
}

// A peer that answers a ClientHello with something that is not TLS.
TEST(Tls, GarbageFromTheServerIsAClearError) {
  spindle::run([] {
    for (std::string garbage : {std::string("HTTP/1.1 400 Bad Request\r\n\r\n"),
                                tls_test::pattern(5000, 7), std::string("\x16\x03\x03\xff\xff")}) {
      io_test::SocketPair sp = io_test::socket_pair();
      auto peer = spindle::spin([&] {
        std::byte hello[4096];
        spindle::read(sp.b, hello);
        spindle::send(sp.b, bytes(garbage));
        ::shutdown(sp.b, SHUT_WR);
        std::byte rest[4096];
        while (spindle::read(sp.b, rest) > 0) {
        }
        ::close(sp.b);
      });
      try {
        TlsStream::connect(client_context(), FdStream(sp.a), "example.test");
        ADD_FAILURE() << "a handshake with garbage succeeded";
      } catch (const TlsError& e) {
        EXPECT_TRUE(e.code() == TlsErrc::protocol || e.code() == TlsErrc::closed_in_handshake)
            << e.what();
        EXPECT_TRUE(contains(e.what(), "TLS handshake with example.test: ")) << e.what();
        EXPECT_TRUE(contains(e.what(), "(the peer does not speak TLS?)")) << e.what();
      }
      peer.join();
    }
  });
}

TEST(Tls, GarbageFromTheClientIsAClearError) {
  spindle::run([] {
    TlsContext server_ctx = server_context();
    for (std::string garbage :
         {std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), tls_test::pattern(100000, 3)}) {
      io_test::SocketPair sp = io_test::socket_pair();
      auto peer = spindle::spin([&] {
        spindle::nothrow::send(sp.a, bytes(garbage)).ok();
        ::shutdown(sp.a, SHUT_WR);
        std::byte rest[4096];
        while (spindle::nothrow::read(sp.a, rest).value_or(0) > 0) {
        }
        ::close(sp.a);
      });
      try {
        TlsStream::accept(server_ctx, FdStream(sp.b));
        ADD_FAILURE() << "a handshake with garbage succeeded";
      } catch (const TlsError& e) {
        EXPECT_EQ(e.code(), TlsErrc::protocol) << e.what();
        EXPECT_TRUE(contains(e.what(), "TLS handshake (server): ")) << e.what();
        EXPECT_TRUE(contains(e.what(), "(the peer does not speak TLS?)")) << e.what();
      }
      peer.join();
    }
  });
}

TEST(Tls, GarbageAfterTheHandshakeIsAClearError) {
  spindle::run([] {
    io_test::SocketPair sp = io_test::socket_pair();
    int raw = ::dup(sp.a);
    TlsContext server_ctx = server_context();
    auto server = spindle::spin([&] { return TlsStream::accept(server_ctx, FdStream(sp.b)); });
    TlsStream client = TlsStream::connect(client_context(), FdStream(sp.a), "example.test");
    TlsStream s = server.join();
    // Bytes that are not a record, in the middle of the record stream.
    spindle::send(raw, bytes(std::string("\x17\x03\x03\x00\x20", 5) + std::string(32, 'g')));
    std::byte buffer[64];
    try {
      s.read_some(buffer, 10s);
      ADD_FAILURE() << "a forged record was accepted";
    } catch (const TlsError& e) {
      EXPECT_EQ(e.code(), TlsErrc::protocol);
      EXPECT_TRUE(contains(e.what(), "TLS read (server for example.test): ")) << e.what();
    }
    // The failed stream says so instead of going on.
    try {
      s.write_all(bytes("more"));
      ADD_FAILURE() << "wrote on a failed stream";
    } catch (const TlsError& e) {
      EXPECT_EQ(e.code(), TlsErrc::unusable);
      EXPECT_TRUE(contains(e.what(), "failed earlier")) << e.what();
    }
    s.close();
    ::close(raw);
  });
}

TEST(Tls, PeerClosingMidHandshake) {
  spindle::run([] {
    io_test::SocketPair sp = io_test::socket_pair();
    auto peer = spindle::spin([&] {
      std::byte hello[4096];
      spindle::read(sp.b, hello);  // the ClientHello, then goodbye
      ::close(sp.b);
    });
    try {
      TlsStream::connect(client_context(), FdStream(sp.a), "example.test");
      ADD_FAILURE() << "handshake succeeded";
    } catch (const TlsError& e) {
      EXPECT_EQ(e.code(), TlsErrc::closed_in_handshake);
      EXPECT_EQ(std::string(e.what()),
                "TLS handshake with example.test: the peer closed the connection during the "
                "handshake");
    }
    peer.join();

    io_test::SocketPair sp2 = io_test::socket_pair();
    ::close(sp2.a);
    try {
      TlsStream::accept(server_context(), FdStream(sp2.b));
      ADD_FAILURE() << "handshake succeeded";
    } catch (const TlsError& e) {
      EXPECT_EQ(e.code(), TlsErrc::closed_in_handshake) << e.what();
    }
  });
}

TEST(Tls, HandshakeDeadline) {
  spindle::run([] {
    io_test::SocketPair sp = io_test::socket_pair();  // the server never answers
    auto start = std::chrono::steady_clock::now();
    EXPECT_THROW(TlsStream::connect(client_context(), FdStream(sp.a), "example.test", 100ms),
                 spindle::TimedOut);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms);
    io_test::SocketPair sp2 = io_test::socket_pair();  // the client never says hello
    EXPECT_THROW(TlsStream::accept(server_context(), FdStream(sp2.b), 50ms), spindle::TimedOut);
    ::close(sp.b);
    ::close(sp2.a);
  });
}

TEST(Tls, CancelledMidHandshakeLeavesNothingBehind) {
  spindle::run([] {
    TlsContext client_ctx = client_context();
    std::vector<io_test::SocketPair> pairs;
    std::vector<spindle::Fiber<void>> fibers;
    for (int i = 0; i < 50; ++i) {
      pairs.push_back(io_test::socket_pair());
      int fd = pairs.back().a;
      fibers.push_back(spindle::spin(
          [&client_ctx, fd] { TlsStream::connect(client_ctx, FdStream(fd), "example.test"); }));
    }
    spindle::sleep(20ms);
    for (auto& f : fibers) f.cancel();
    for (auto& f : fibers) {
      try {
        f.join();
        ADD_FAILURE() << "a handshake with a silent peer finished";
      } catch (const spindle::Cancelled&) {
      }
    }
    for (auto& p : pairs) ::close(p.b);
  });
}

TEST(Tls, ReadDeadlineCanBeRetried) {
  spindle::run([] {
    Pair p = connect_pair(client_context(), server_context());
    std::byte buffer[64];
    EXPECT_THROW(p.client.read_some(buffer, 30ms), spindle::TimedOut);
    p.server.write_all(bytes("late"));
    std::size_t n = p.client.read_some(buffer, 5s);
    EXPECT_EQ(io_test::text(std::span(buffer, n)), "late");
  });
}

// A write that times out while its record is half sent cannot be retried:
// the caller cannot know what went out, so the stream refuses to write.
TEST(Tls, WriteInterruptedMidRecordLeavesTheStreamUnusableForWriting) {
  spindle::run([] {
    Pair p = connect_pair(client_context(), server_context());
    std::string big = tls_test::pattern(8 << 20, 9);  // far more than the socket buffers
    EXPECT_THROW(p.client.write_all(bytes(big), 200ms), spindle::TimedOut);
    try {
      p.client.write_all(bytes("more"));
      ADD_FAILURE() << "wrote after an interrupted write";
    } catch (const TlsError& e) {
      EXPECT_EQ(e.code(), TlsErrc::unusable);
      EXPECT_EQ(std::string(e.what()),
                "TLS write with example.test: an earlier write was interrupted part way");
    }
    // Reading still works.
    p.server.write_all(bytes("reply"));
    std::byte buffer[16];
    std::size_t n = p.client.read_some(buffer);
    EXPECT_EQ(io_test::text(std::span(buffer, n)), "reply");
    p.client.close();
  });
}

TEST(Tls, TruncatedStreamIsAnErrorUnlessAllowed) {
  spindle::run([] {
    for (bool allow : {false, true}) {
      TlsContext client_ctx = client_context();
      client_ctx.allow_truncation(allow);
      Pair p = connect_pair(client_ctx, server_context());
      p.server.write_all(bytes("partial"));
      p.server.next_layer<FdStream>().close();  // no close_notify
      std::byte buffer[64];
      std::size_t n = p.client.read_some(buffer);
      EXPECT_EQ(io_test::text(std::span(buffer, n)), "partial");
      if (allow) {
        EXPECT_EQ(p.client.read_some(buffer), 0u);
        continue;
      }
      try {
        p.client.read_some(buffer);
        ADD_FAILURE() << "a truncated stream read as a clean end";
      } catch (const TlsError& e) {
        EXPECT_EQ(e.code(), TlsErrc::truncated);
        EXPECT_EQ(std::string(e.what()),
                  "TLS read with example.test: the peer closed the connection without "
                  "close_notify (the data may be truncated)");
      }
    }
  });
}

TEST(Tls, NextLayerIsTheStreamBelow) {
  spindle::run([] {
    Pair p = connect_pair(client_context(), server_context());
    EXPECT_GE(p.client.next_layer<FdStream>().fd(), 0);
    EXPECT_THROW(p.client.next_layer<int>(), std::bad_cast);
    TlsStream moved = std::move(p.client);
    EXPECT_FALSE(p.client.is_open());  // NOLINT: use after move is the point
    EXPECT_THROW(p.client.read_some(std::span<std::byte>()), std::system_error);
    EXPECT_TRUE(moved.is_open());
  });
}

static_assert(spindle::Stream<TlsStream>);
static_assert(!spindle::FdBackedStream<TlsStream>);  // its bytes are not the fd's

TEST(Tls, BufferedReaderAndWriterWorkOverIt) {
  spindle::run([] {
    Pair p = connect_pair(client_context(), server_context());
    auto writer = spindle::spin([&] {
      spindle::BufferedWriter out(p.client);
      for (int i = 0; i < 1000; ++i) out.write("line " + std::to_string(i) + "\n");
      out.flush();
      p.client.shutdown_write();
    });
    spindle::BufferedReader in(p.server);
    int count = 0;
    while (auto line = in.read_line()) {
      EXPECT_EQ(*line, "line " + std::to_string(count));
      ++count;
    }
    EXPECT_EQ(count, 1000);
    writer.join();
  });
}

// TLS inside TLS: a TlsStream runs over any Stream, itself included.
TEST(Tls, TlsOverTls) {
  spindle::run([] {
    Pair outer = connect_pair(client_context(), server_context());
    TlsContext inner_server = server_context(pki().other);
    auto server =
        spindle::spin([&] { return TlsStream::accept(inner_server, std::move(outer.server)); });
    TlsStream inner = TlsStream::connect(client_context(), std::move(outer.client), "other.test");
    TlsStream inner_s = server.join();
    inner.write_all(bytes("nested"));
    std::byte buffer[16];
    std::size_t n = inner_s.read_some(buffer);
    EXPECT_EQ(io_test::text(std::span(buffer, n)), "nested");
    EXPECT_EQ(inner.peer_subject(), "CN=other.test");
    inner.close();
    EXPECT_EQ(inner_s.read_some(buffer), 0u);
  });
}

// Several MiB each way at once: a reader and a writer fiber on each side.
TEST(Tls, LargeTransfersBothWaysAtOnce) {
  spindle::run([] {
    constexpr std::size_t kSize = 6 << 20;
    std::string up = tls_test::pattern(kSize, 1);
    std::string down = tls_test::pattern(kSize + 12345, 2);
    Pair p = connect_pair(client_context(), server_context());
    auto pump = [](TlsStream& s, const std::string& data) {
      std::span<const std::byte> rest = bytes(data);
      std::size_t step = 1;
      while (!rest.empty()) {  // uneven pieces, from 1 byte to 64 KiB
        std::size_t n = std::min(rest.size(), step);
        s.write_all(rest.first(n));
        rest = rest.subspan(n);
        step = step * 3 % 65536 + 1;
      }
      s.shutdown_write();
    };
    auto drain = [](TlsStream& s) {
      tls_test::Checksum sum;
      std::vector<std::byte> buffer(40000);
      while (std::size_t n = s.read_some(buffer)) sum.add(std::span(buffer.data(), n));
      return sum;
    };
    auto client_writer = spindle::spin([&] { pump(p.client, up); });
    auto server_writer = spindle::spin([&] { pump(p.server, down); });
    auto server_reader = spindle::spin([&] { return drain(p.server); });
    tls_test::Checksum at_client = drain(p.client);
    tls_test::Checksum at_server = server_reader.join();
    client_writer.join();
    server_writer.join();
    EXPECT_EQ(at_server.bytes, up.size());
    EXPECT_TRUE(at_server == tls_test::checksum(up));
    EXPECT_EQ(at_client.bytes, down.size());
    EXPECT_TRUE(at_client == tls_test::checksum(down));
  });
}

TEST(Tls, CertificateFilesAndTheirErrors) {
  io_test::TempDir dir;
  tls_test::write_text(dir / "server.pem", pki().server.cert_pem + pki().ca.cert_pem);
  tls_test::write_text(dir / "server.key", pki().server.key_pem);
  tls_test::write_text(dir / "other.key", pki().other.key_pem);
  tls_test::write_text(dir / "ca.pem", pki().ca.cert_pem);
  tls_test::write_text(dir / "junk.pem", "not a certificate\n");
  spindle::run([&] {
    TlsContext server_ctx = TlsContext::server();
    server_ctx.certificate_file(dir / "server.pem", dir / "server.key");
    TlsContext client_ctx = TlsContext::client();
    client_ctx.no_default_ca().ca_file(dir / "ca.pem");
    Pair p = connect_pair(client_ctx, server_ctx);
    EXPECT_EQ(p.client.peer_subject(), "CN=example.test");
  });
  auto expect_config = [](auto&& fn, std::string_view mentions) {
    try {
      fn();
      ADD_FAILURE() << "no error, expected one mentioning " << mentions;
    } catch (const TlsError& e) {
      EXPECT_EQ(e.code(), TlsErrc::config);
      EXPECT_TRUE(contains(e.what(), mentions)) << e.what();
    }
  };
  expect_config(
      [&] { TlsContext::server().certificate_file(dir / "nope.pem", dir / "server.key"); },
      "TLS certificate chain " + (dir / "nope.pem") + ": No such file or directory");
  expect_config(
      [&] { TlsContext::server().certificate_file(dir / "server.pem", dir / "other.key"); },
      "TLS private key");
  expect_config([&] { TlsContext::client().ca_file(dir / "junk.pem"); }, "TLS CA file");
  expect_config([&] { TlsContext::client().ca_pem("garbage"); }, "TLS CA PEM");
  expect_config([&] { TlsContext::server().certificate_pem("x", "y"); }, "TLS certificate PEM");
  expect_config([&] { TlsContext::client().on_server_name(nullptr); }, "on_server_name");
}

}  // namespace
