// pipe-* / socketpair-* peer (see pipe_shape.hpp): Boost.Asio, one
// io_context on one thread; per group a reader (async_read_some) and a
// writer (async_write) on posix::stream_descriptor, completion handlers.
// Messages per second.
//
// Boost 1.74's asio/awaitable.hpp uses std::exchange without including
// <utility>: it must come first.
#include <utility>

#include <boost/asio.hpp>
#include <memory>
#include <vector>

#include "pipe/pipe_shape.hpp"

namespace {

using boost::asio::posix::stream_descriptor;

struct Reader {
  const bench::PipeShape& s;
  stream_descriptor fd;
  std::uint64_t total;
  std::uint64_t got = 0;
  std::vector<unsigned char> buffer;

  Reader(const bench::PipeShape& shape, boost::asio::io_context& io, int raw, std::uint64_t t)
      : s(shape), fd(io, raw), total(t), buffer(shape.size) {}
  void start() {
    fd.async_read_some(boost::asio::buffer(buffer),
                       [this](boost::system::error_code ec, std::size_t n) {
                         bench::check(!ec && s.valid(buffer.data(), n, got), "read");
                         got += n;
                         if (got < total) start();
                       });
  }
};

struct Writer {
  stream_descriptor fd;
  std::uint64_t messages;
  std::uint64_t i = 0;
  std::vector<unsigned char> message;

  Writer(const bench::PipeShape& s, boost::asio::io_context& io, int raw, std::uint64_t m)
      : fd(io, raw), messages(m), message(s.size) {}
  void start() {
    bench::PipeShape::fill(message, i);
    boost::asio::async_write(fd, boost::asio::buffer(message),
                             [this](boost::system::error_code ec, std::size_t) {
                               bench::check(!ec, "write");
                               if (++i < messages) start();
                             });
  }
};

double once(const bench::PipeShape& s, std::uint64_t messages) {
  boost::asio::io_context io(1);  // one thread: Asio leaves out its locking
  std::vector<std::unique_ptr<Reader>> readers;
  std::vector<std::unique_ptr<Writer>> writers;
  for (std::uint64_t g = 0; g < s.groups; ++g) {
    auto [r, w] = s.make(true);
    readers.push_back(std::make_unique<Reader>(s, io, r, messages * s.size));
    writers.push_back(std::make_unique<Writer>(s, io, w, messages));
  }
  auto start = bench::Clock::now();
  for (auto& r : readers) r->start();
  for (auto& w : writers) w->start();
  io.run();
  double rate = bench::ops_per_second(start, s.groups * messages);
  for (auto& r : readers) bench::check(r->got == messages * s.size, "bytes read");
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  auto s = bench::PipeShape::parse(argc, argv);
  double best = s.best([&](std::uint64_t messages) { return once(s, messages); });
  bench::print_result(best, s.json(best));
}
