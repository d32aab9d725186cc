// The Boost.Asio echo server of the echo benchmark: one io_context run by
// one thread, completion handlers (no coroutines): each connection reads
// into its buffer with async_read_some and writes it back with async_write.
//
//   bench_asio_echo --port P      prints "ready" once it listens on 127.0.0.1:P
// Boost 1.74's asio/awaitable.hpp uses std::exchange without including
// <utility>: it must come first.
#include <utility>

#include <sys/resource.h>

#include <array>
#include <boost/asio.hpp>
#include <cstdio>
#include <memory>

#include "common/bench_util.hpp"

namespace {

using boost::asio::ip::tcp;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  explicit Connection(tcp::socket socket) : socket_(std::move(socket)) {}

  void start() {
    socket_.set_option(tcp::no_delay(true));
    read();
  }

 private:
  void read() {
    socket_.async_read_some(
        boost::asio::buffer(buffer_),
        [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
          if (!ec) self->write(n);
        });
  }
  void write(std::size_t n) {
    boost::asio::async_write(
        socket_, boost::asio::buffer(buffer_.data(), n),
        [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
          if (!ec) self->read();
        });
  }

  tcp::socket socket_;
  std::array<char, 4096> buffer_;
};

void accept(tcp::acceptor& acceptor) {
  acceptor.async_accept([&acceptor](boost::system::error_code ec, tcp::socket socket) {
    if (!ec) std::make_shared<Connection>(std::move(socket))->start();
    accept(acceptor);
  });
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv, {"port"});
  const auto port = static_cast<unsigned short>(args.num("port", 0));
  if (port == 0) {
    std::fprintf(stderr, "usage: bench_asio_echo --port P\n");
    return 2;
  }
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
  // The hint 1: one thread runs the context, so Asio leaves out its locking.
  boost::asio::io_context io(1);
  tcp::acceptor acceptor(io, tcp::endpoint(boost::asio::ip::address_v4::loopback(), port));
  accept(acceptor);
  std::printf("ready\n");
  std::fflush(stdout);
  io.run();
}
