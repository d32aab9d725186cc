// TlsStream: a TLS connection (client or server) over any byte stream.
#pragma once

#include <concepts>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "spindle/io/result.hpp"
#include "spindle/net/tls_context.hpp"
#include "spindle/net/tls_error.hpp"
#include "spindle/stream/stream.hpp"

namespace spindle {

namespace detail {

// The stream under a TlsStream, its type erased so that TLS itself is
// compiled once (src/net/tls_stream.cpp), not per stream type.
class TlsTransport {
 public:
  virtual ~TlsTransport() = default;
  virtual std::size_t read_some(std::span<std::byte> buffer) = 0;
  virtual std::size_t write_some(std::span<const std::byte> data) = 0;
  virtual void close() = 0;
  virtual const std::type_info& type() const noexcept = 0;
  virtual void* get() noexcept = 0;
};

template <class S>
class TlsTransportOf final : public TlsTransport {
 public:
  explicit TlsTransportOf(S&& stream) : stream_(std::move(stream)) {}
  std::size_t read_some(std::span<std::byte> buffer) override { return stream_.read_some(buffer); }
  std::size_t write_some(std::span<const std::byte> data) override {
    return stream_.write_some(data);
  }
  void close() override { stream_.close(); }
  const std::type_info& type() const noexcept override { return typeid(S); }
  void* get() noexcept override { return &stream_; }

 private:
  S stream_;
};

class TlsSession;

}  // namespace detail

// A TLS connection over a byte stream it owns: any spindle::Stream (a TCP
// or Unix stream, an FdStream, another TlsStream), moved in; TlsStream is
// a Stream itself, so BufferedReader, BufferedWriter and copy() work over
// it. The stream below is type-erased (one allocation per connection, one
// virtual call per read or write of it), so TLS is compiled once and a
// TlsStream's type does not depend on what it runs over. OpenSSL works on memory (a BIO pair of two
// 32 KiB buffers, so what a connection holds is bounded) and every byte to or from the peer goes
// through the stream's own operations: they suspend the fiber, not the thread, and their deadlines
// and cancellation apply.
//
// connect() and accept() do the handshake and return an open stream. The
// client verifies the server's certificate and that it names `host` (an
// IP address is checked against the certificate's IP entries), and sends
// `host` by SNI. read_some / write_some / write_all then move application
// data; shutdown_write() sends close_notify; close() sends it (best effort) and
// closes the stream below. Destroying an open TlsStream closes the stream
// below without close_notify: the peer sees a truncated stream.
//
// Errors: TlsError (TlsErrc says which kind) naming the operation and peer
// (std::system_error with EBADF on a closed or moved-from TlsStream);
// the stream below's own errors pass through unchanged; a Deadline that
// expires throws spindle::TimedOut and cancellation spindle::Cancelled,
// both after the stream below has let go of its buffers. A read or a
// handshake interrupted that way leaves the TlsStream consistent (a read
// may be retried); a write interrupted after part of a record went out
// leaves it unusable for writing (TlsErrc::unusable), as the peer would
// otherwise get a broken record.
//
// Fibers: one fiber may read while another writes (full duplex), also on
// two workers (threads) of one runtime; two concurrent readers, or two
// writers, are serialized. Movable (not while in use); a moved-from
// TlsStream is closed.
class TlsStream {
 public:
  // Client handshake over `stream` with the server `host`.
  template <Stream S>
  requires std::move_constructible<S>
  static TlsStream connect(const TlsContext& context, S stream, std::string_view host,
                           Deadline deadline = {}) {
    return connect_erased(context, erase(std::move(stream)), host, deadline);
  }
  // Server handshake over `stream` (an accepted connection).
  template <Stream S>
  requires std::move_constructible<S>
  static TlsStream accept(const TlsContext& context, S stream, Deadline deadline = {}) {
    return accept_erased(context, erase(std::move(stream)), deadline);
  }

  TlsStream() noexcept;
  TlsStream(TlsStream&& other) noexcept;
  TlsStream& operator=(TlsStream&& other) noexcept;
  ~TlsStream();

  // Reads up to buffer.size() bytes of application data (at most one TLS
  // record's worth); 0 once the peer sent close_notify. Suspends while no
  // data is there. Throws TlsErrc::truncated if the stream below ends
  // without close_notify (unless the context allows truncation).
  std::size_t read_some(std::span<std::byte> buffer, Deadline deadline = {});
  // Encrypts and sends up to 16 KiB of `data` (one record); returns how
  // much. Suspends until the record is handed to the stream below.
  std::size_t write_some(std::span<const std::byte> data, Deadline deadline = {});
  // Sends all of `data`.
  void write_all(std::span<const std::byte> data, Deadline deadline = {});
  // Sends close_notify: the peer reads end of stream. Reading goes on until
  // the peer's own close_notify. Idempotent.
  void shutdown_write(Deadline deadline = {});
  // Sends close_notify unless sent or impossible (errors of that are
  // ignored: the peer may be gone), then closes the stream below, whose
  // errors are thrown. Idempotent; the TlsStream is closed afterwards.
  void close();
  bool is_open() const noexcept { return session_ != nullptr; }

  // What the handshake agreed on. alpn(): the protocol, empty without ALPN.
  // server_name(): the SNI name the client sent (on both sides; empty if
  // none). version(): "TLSv1.3". cipher(): the cipher suite's name.
  std::string_view alpn() const noexcept;
  std::string_view server_name() const noexcept;
  std::string_view version() const noexcept;
  std::string_view cipher() const noexcept;
  // The peer certificate's subject ("CN=example.test"), empty without one.
  std::string peer_subject() const;

  // The stream below, as the type it was given as; std::bad_cast if not.
  template <class S>
  S& next_layer() {
    detail::TlsTransport& t = transport();
    if (t.type() != typeid(S)) throw std::bad_cast();
    return *static_cast<S*>(t.get());
  }
  // OpenSSL's SSL*, for settings spindle does not wrap.
  void* native_handle() const noexcept;

 private:
  explicit TlsStream(std::unique_ptr<detail::TlsSession> session) noexcept;
  template <class S>
  static std::unique_ptr<detail::TlsTransport> erase(S&& stream) {
    return std::make_unique<detail::TlsTransportOf<S>>(std::move(stream));
  }
  static TlsStream connect_erased(const TlsContext& context,
                                  std::unique_ptr<detail::TlsTransport> transport,
                                  std::string_view host, Deadline deadline);
  static TlsStream accept_erased(const TlsContext& context,
                                 std::unique_ptr<detail::TlsTransport> transport,
                                 Deadline deadline);
  detail::TlsTransport& transport();
  detail::TlsSession& session(const char* op) const;

  std::unique_ptr<detail::TlsSession> session_;
};

}  // namespace spindle
