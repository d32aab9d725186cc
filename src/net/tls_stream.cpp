// TlsStream: OpenSSL over a BIO pair, driven by the stream below.
//
// OpenSSL reads and writes only memory: one end of a BIO pair is the SSL's,
// the other ours. An SSL call that wants more input (SSL_ERROR_WANT_READ)
// gets it by a read of the stream below into a staging buffer, copied into
// the pair; output it produced is written to the stream below straight from
// the pair's buffer (zero copy) before the call returns. Both buffers are
// fixed, so a connection holds at most their size whatever its peer does.
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <array>
#include <atomic>
#include <climits>
#include <cstring>
#include <mutex>
#include <optional>

#include "io/io_internal.hpp"
#include "net/tls_openssl.hpp"
#include "spindle/fiber/cancel.hpp"
#include "spindle/net/tls_stream.hpp"
#include "spindle/sync/mutex.hpp"

namespace spindle {

namespace detail {

namespace {

// Each direction's buffer in the BIO pair: two full TLS records (at most
// 16 KiB of data plus 256 bytes of overhead each in TLS 1.3, 2 KiB in 1.2).
constexpr std::size_t kPairBuffer = 32 * 1024;
// Largest read of the stream below at once.
constexpr std::size_t kStaging = 16 * 1024;
// Largest SSL_write at once: one record.
constexpr std::size_t kRecord = 16 * 1024;

enum class Op { handshake, read, write, shutdown };

const char* op_name(Op op) {
  switch (op) {
    case Op::handshake:
      return "handshake";
    case Op::read:
      return "read";
    case Op::write:
      return "write";
    case Op::shutdown:
      return "shutdown";
  }
  return "operation";
}

// Reasons OpenSSL gives for bytes that are not TLS records at all.
bool looks_like_not_tls(unsigned long error) {
  if (ERR_GET_LIB(error) != ERR_LIB_SSL) return false;
  int reason = ERR_GET_REASON(error);
  return reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_HTTP_REQUEST ||
         reason == SSL_R_HTTPS_PROXY_REQUEST || reason == SSL_R_PACKET_LENGTH_TOO_LONG;
}

bool is_ip_address(const std::string& host) {
  unsigned char address[16];
  return ::inet_pton(AF_INET, host.c_str(), address) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), address) == 1;
}

}  // namespace

class TlsSession {
 public:
  TlsSession(const TlsContext& context, std::unique_ptr<TlsTransport> transport, bool server)
      : context_(context.state()), transport_(std::move(transport)), server_(server) {
    ssl_ = SSL_new(context_->ctx);
    if (ssl_ == nullptr) throw TlsError(TlsErrc::config, "TLS: " + take_openssl_error());
    BIO* internal = nullptr;
    if (BIO_new_bio_pair(&internal, kPairBuffer, &network_, kPairBuffer) != 1) {
      SSL_free(ssl_);
      throw TlsError(TlsErrc::config, "TLS: " + take_openssl_error());
    }
    SSL_set_bio(ssl_, internal, internal);
    SSL_set_app_data(ssl_, this);
    if (server) {
      SSL_set_accept_state(ssl_);
    } else {
      SSL_set_connect_state(ssl_);
    }
  }
  ~TlsSession() {
    SSL_free(ssl_);
    BIO_free(network_);
  }
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  void set_host(std::string_view host) {
    host_ = host;
    if (host_.empty()) {
      if (context_->verify) {
        throw TlsError(TlsErrc::config,
                       "TLS connect: a host name is needed to verify the server's certificate");
      }
      return;
    }
    if (is_ip_address(host_)) {
      // An address is checked against the certificate's IP entries and is
      // never sent by SNI (RFC 6066 allows only names there).
      if (context_->verify &&
          X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), host_.c_str()) != 1) {
        throw TlsError(TlsErrc::config, "TLS connect: bad address " + host_);
      }
      return;
    }
    if (SSL_set_tlsext_host_name(ssl_, host_.c_str()) != 1) {
      throw TlsError(TlsErrc::config, "TLS connect: bad host name " + host_);
    }
    if (context_->verify) {
      SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      if (SSL_set1_host(ssl_, host_.c_str()) != 1) {
        throw TlsError(TlsErrc::config, "TLS connect: bad host name " + host_);
      }
    }
  }

  void handshake() {
    drive(Op::handshake, [this] { return SSL_do_handshake(ssl_); });
    handshake_done_ = true;
  }

  std::size_t read(std::span<std::byte> buffer) {
    check_usable(Op::read);
    if (buffer.empty()) return 0;
    int size = static_cast<int>(std::min<std::size_t>(buffer.size(), INT_MAX));
    return static_cast<std::size_t>(
        drive(Op::read, [&] { return SSL_read(ssl_, buffer.data(), size); }));
  }

  std::size_t write(std::span<const std::byte> data) {
    check_usable(Op::write);
    if (write_broken_.load(std::memory_order_relaxed)) {
      throw TlsError(TlsErrc::unusable,
                     describe(Op::write) + ": an earlier write was interrupted part way");
    }
    if (data.empty()) return 0;
    int size = static_cast<int>(std::min(data.size(), kRecord));
    // SSL_write has taken the data once it returns: a write that fails
    // after that leaves a record half sent and the caller unsure what went.
    bool taken = false;
    try {
      return static_cast<std::size_t>(drive(Op::write, [&] {
        int n = SSL_write(ssl_, data.data(), size);
        taken = n > 0;
        return n;
      }));
    } catch (...) {
      if (taken) write_broken_.store(true, std::memory_order_relaxed);
      throw;
    }
  }

  void shutdown() {
    check_usable(Op::shutdown);
    if (sent_close_notify()) {
      // Sent before (what an interrupted flush left goes now). Calling
      // SSL_shutdown again would wait for the peer's close_notify.
      flush_output();
      return;
    }
    drive(Op::shutdown, [this] {
      int r = SSL_shutdown(ssl_);
      return r >= 0 ? 1 : r;  // 0: sent, the peer's has not come yet: fine
    });
  }

  void close() {
    bool notify = handshake_done_ && !failed() && !write_broken_.load(std::memory_order_relaxed) &&
                  !sent_close_notify();
    if (notify && !cancellation_pending()) {
      try {
        shutdown();
      } catch (const std::system_error&) {
        // The peer may be gone; it then sees no close_notify, nothing more.
      }
    }
    transport_->close();
  }

  // The SNI callback of a server context (tls_choose_by_name).
  void keep_context(std::shared_ptr<TlsContextState> chosen) { chosen_ = std::move(chosen); }

  SSL* ssl() const noexcept { return ssl_; }
  TlsTransport& transport() noexcept { return *transport_; }

 private:
  // Runs an SSL call until it is done, moving bytes between the BIO pair
  // and the stream below as it asks.
  //
  // A read never writes to the stream below: what it produced (a TLS 1.3
  // KeyUpdate answer) waits for the next write or close, as RFC 8446
  // allows. A reader that wrote could block on a peer that does not read
  // (it is writing to us), and two such peers would wait for each other.
  template <class Call>
  int drive(Op op, Call call) {
    const bool writes = op != Op::read;
    for (;;) {
      int r = 0;
      int error = SSL_ERROR_NONE;
      std::uint64_t generation = 0;
      Failure failure;
      {
        std::lock_guard lock(ssl_mutex_);
        ERR_clear_error();
        r = call();
        if (r <= 0) error = SSL_get_error(ssl_, r);
        generation = input_generation_;
        if (error != SSL_ERROR_NONE && error != SSL_ERROR_ZERO_RETURN &&
            error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
          failure = diagnose(op, error);
        }
      }
      switch (error) {
        case SSL_ERROR_NONE:
          if (writes) flush_output();
          return r;
        case SSL_ERROR_ZERO_RETURN:
          return 0;
        case SSL_ERROR_WANT_WRITE:
          flush_output();
          break;
        case SSL_ERROR_WANT_READ:
          if (writes) flush_output();
          fill_input(op, generation);
          break;
        default:
          fail(op, failure);
      }
    }
  }

  // Writes what OpenSSL produced to the stream below, one fiber at a time
  // so that records go out whole and in order; the fiber goes on until the
  // pair is empty, bytes added meanwhile included. The bytes are written
  // from the pair's buffer without the lock: OpenSSL only appends behind
  // them, and only this fiber takes them out.
  void flush_output() {
    if (pending_output() == 0) return;
    std::lock_guard out(out_mutex_);
    for (;;) {
      char* data = nullptr;
      int n = 0;
      {
        std::lock_guard lock(ssl_mutex_);
        n = BIO_nread0(network_, &data);
      }
      if (n <= 0) return;
      std::size_t sent =
          transport_->write_some(std::as_bytes(std::span(data, static_cast<std::size_t>(n))));
      std::lock_guard lock(ssl_mutex_);
      BIO_nread(network_, &data, static_cast<int>(sent));
    }
  }

  // Reads from the stream below into the pair, for an SSL call that wanted
  // more input when the pair had seen `generation` reads. A fiber that
  // waited here while another read returns at once: the pair has new input
  // to try.
  void fill_input(Op op, std::uint64_t generation) {
    std::lock_guard in(in_mutex_);
    std::size_t room = 0;
    std::optional<Failure> failure;
    {
      std::lock_guard lock(ssl_mutex_);
      if (generation != input_generation_) return;
      // OpenSSL asked for more after the end: it saw the end as truncation.
      if (eof_) failure = diagnose(op, SSL_ERROR_SYSCALL);
      room = std::min(BIO_ctrl_get_write_guarantee(network_), staging_.size());
      if (room == 0) {
        failure_ = describe(op) + ": the peer's record does not fit the input buffer";
        throw TlsError(TlsErrc::protocol, failure_);
      }
    }
    if (failure) fail(op, *failure);
    std::size_t n = transport_->read_some(std::span(staging_.data(), room));
    std::lock_guard lock(ssl_mutex_);
    if (n == 0) {
      eof_ = true;
      BIO_shutdown_wr(network_);
    } else {
      // Fits: nobody else adds to the pair, and SSL only frees room.
      BIO_write(network_, staging_.data(), static_cast<int>(n));
    }
    ++input_generation_;
  }

  std::size_t pending_output() {
    std::lock_guard lock(ssl_mutex_);
    return BIO_ctrl_pending(network_);
  }

  bool sent_close_notify() {
    std::lock_guard lock(ssl_mutex_);
    return (SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) != 0;
  }

  bool failed() {
    std::lock_guard lock(ssl_mutex_);
    return !failure_.empty();
  }

  // "TLS handshake with example.test", "TLS read (server for example.test)".
  std::string describe(Op op) const {
    std::string text = std::string("TLS ") + op_name(op);
    if (!server_) {
      if (!host_.empty()) text += " with " + host_;
      return text;
    }
    const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
    text += name != nullptr ? std::string(" (server for ") + name + ")" : " (server)";
    return text;
  }

  void check_usable(Op op) {
    std::lock_guard lock(ssl_mutex_);
    if (!failure_.empty()) {
      throw TlsError(TlsErrc::unusable,
                     describe(op) + ": the connection failed earlier (" + failure_ + ")");
    }
  }

  struct Failure {
    TlsErrc code = TlsErrc::protocol;
    std::string text;
    long verify_result = 0;
  };

  // What an SSL call's failure means, read off this thread's OpenSSL error
  // queue (which it empties) right after the call, under the lock.
  Failure diagnose(Op op, int ssl_error) {
    unsigned long first = ERR_peek_error();
    long verify = SSL_get_verify_result(ssl_);
    bool verify_failed = ERR_GET_LIB(first) == ERR_LIB_SSL &&
                         ERR_GET_REASON(first) == SSL_R_CERTIFICATE_VERIFY_FAILED;
    bool eof = ERR_GET_LIB(first) == ERR_LIB_SSL &&
               ERR_GET_REASON(first) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
    if (ssl_error == SSL_ERROR_SYSCALL && first == 0) eof = eof_;
    std::string reason = take_openssl_error();
    Failure f;
    f.text = describe(op) + ": ";
    if (verify_failed) {
      f.code = TlsErrc::certificate;
      f.verify_result = verify;
      f.text += "certificate verify failed (";
      f.text += X509_verify_cert_error_string(verify);
      f.text += ')';
    } else if (eof && !handshake_done_) {
      f.code = TlsErrc::closed_in_handshake;
      f.text += "the peer closed the connection during the handshake";
    } else if (eof) {
      f.code = TlsErrc::truncated;
      f.text += "the peer closed the connection without close_notify (the data may be truncated)";
    } else {
      f.text += reason;
      if (looks_like_not_tls(first)) f.text += " (the peer does not speak TLS?)";
    }
    failure_ = f.text;
    return f;
  }

  // Throws `failure`, after sending the alert OpenSSL queued for the peer
  // (best effort; not from a read, which never writes).
  [[noreturn]] void fail(Op op, const Failure& failure) {
    if (op != Op::read) {
      try {
        flush_output();
      } catch (const std::system_error&) {
        // The peer may be gone: the alert was a courtesy.
      }
    }
    throw TlsError(failure.code, failure.text, failure.verify_result);
  }

  std::shared_ptr<TlsContextState> context_;
  std::shared_ptr<TlsContextState> chosen_;  // by SNI, if another
  std::unique_ptr<TlsTransport> transport_;
  SSL* ssl_ = nullptr;
  BIO* network_ = nullptr;  // our end of the pair; SSL owns the other
  bool server_;
  bool handshake_done_ = false;
  std::string host_;
  // OpenSSL's objects (the SSL and the pair) and the fields below it are
  // used under this lock, which is never held across a suspension: a
  // reader and a writer fiber may run on two workers at once.
  std::mutex ssl_mutex_;
  bool eof_ = false;
  std::string failure_;                 // why the connection failed, once it has
  std::uint64_t input_generation_ = 0;  // reads of the stream below so far
  std::atomic<bool> write_broken_{false};
  Mutex in_mutex_;   // one fiber reads the stream below at a time
  Mutex out_mutex_;  // one fiber writes it at a time
  std::array<std::byte, kStaging> staging_;
};

int tls_choose_by_name(SSL* ssl, int* /*alert*/, void* arg) {
  const auto* state = static_cast<const TlsContextState*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr || !state->choose_by_name) return SSL_TLSEXT_ERR_OK;
  const TlsContext* chosen = state->choose_by_name(name);
  if (chosen == nullptr || chosen->state().get() == state) return SSL_TLSEXT_ERR_OK;
  if (SSL_set_SSL_CTX(ssl, chosen->state()->ctx) == nullptr) return SSL_TLSEXT_ERR_ALERT_FATAL;
  static_cast<TlsSession*>(SSL_get_app_data(ssl))->keep_context(chosen->state());
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace detail

using detail::TlsSession;

TlsStream::TlsStream() noexcept = default;
TlsStream::TlsStream(std::unique_ptr<TlsSession> session) noexcept : session_(std::move(session)) {}
TlsStream::TlsStream(TlsStream&& other) noexcept = default;
TlsStream& TlsStream::operator=(TlsStream&& other) noexcept = default;
TlsStream::~TlsStream() = default;

TlsStream TlsStream::connect_erased(const TlsContext& context,
                                    std::unique_ptr<detail::TlsTransport> transport,
                                    std::string_view host, Deadline deadline) {
  if (context.is_server()) {
    throw TlsError(TlsErrc::config, "TLS connect: the context is a server context");
  }
  auto session = std::make_unique<TlsSession>(context, std::move(transport), false);
  session->set_host(host);
  io_detail::timed(deadline, [&] { session->handshake(); });
  return TlsStream(std::move(session));
}

TlsStream TlsStream::accept_erased(const TlsContext& context,
                                   std::unique_ptr<detail::TlsTransport> transport,
                                   Deadline deadline) {
  if (!context.is_server()) {
    throw TlsError(TlsErrc::config, "TLS accept: the context is a client context");
  }
  auto session = std::make_unique<TlsSession>(context, std::move(transport), true);
  io_detail::timed(deadline, [&] { session->handshake(); });
  return TlsStream(std::move(session));
}

TlsSession& TlsStream::session(const char* op) const {
  if (!session_) throw std::system_error(EBADF, std::system_category(), std::string("TLS ") + op);
  return *session_;
}

detail::TlsTransport& TlsStream::transport() {
  return session("next_layer").transport();
}

std::size_t TlsStream::read_some(std::span<std::byte> buffer, Deadline deadline) {
  TlsSession& s = session("read");
  return io_detail::timed(deadline, [&] { return s.read(buffer); });
}

std::size_t TlsStream::write_some(std::span<const std::byte> data, Deadline deadline) {
  TlsSession& s = session("write");
  return io_detail::timed(deadline, [&] { return s.write(data); });
}

void TlsStream::write_all(std::span<const std::byte> data, Deadline deadline) {
  TlsSession& s = session("write");
  io_detail::timed(deadline, [&] {
    while (!data.empty()) data = data.subspan(s.write(data));
  });
}

void TlsStream::shutdown_write(Deadline deadline) {
  TlsSession& s = session("shutdown");
  io_detail::timed(deadline, [&] { s.shutdown(); });
}

void TlsStream::close() {
  if (!session_) return;
  std::unique_ptr<TlsSession> s = std::move(session_);
  s->close();
}

std::string_view TlsStream::alpn() const noexcept {
  if (!session_) return {};
  const unsigned char* data = nullptr;
  unsigned length = 0;
  SSL_get0_alpn_selected(session_->ssl(), &data, &length);
  return {reinterpret_cast<const char*>(data), length};
}

std::string_view TlsStream::server_name() const noexcept {
  if (!session_) return {};
  const char* name = SSL_get_servername(session_->ssl(), TLSEXT_NAMETYPE_host_name);
  return name != nullptr ? std::string_view(name) : std::string_view();
}

std::string_view TlsStream::version() const noexcept {
  return session_ ? SSL_get_version(session_->ssl()) : std::string_view();
}

std::string_view TlsStream::cipher() const noexcept {
  if (!session_) return {};
  const char* name = SSL_get_cipher_name(session_->ssl());
  return name != nullptr ? std::string_view(name) : std::string_view();
}

std::string TlsStream::peer_subject() const {
  if (!session_) return {};
  X509* cert = SSL_get0_peer_certificate(session_->ssl());
  if (cert == nullptr) return {};
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) throw std::bad_alloc();
  X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  std::string subject(data, static_cast<std::size_t>(length));
  BIO_free(bio);
  return subject;
}

void* TlsStream::native_handle() const noexcept {
  return session_ ? session_->ssl() : nullptr;
}

}  // namespace spindle
