// pipe-* / socketpair-* peer (see pipe_shape.hpp): one std::thread per
// reader and per writer, blocking read(2) and write(2). Messages per second.
#include <thread>
#include <utility>
#include <vector>

#include "pipe/pipe_shape.hpp"

namespace {

void write_all(int fd, const unsigned char* data, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    bench::check(w > 0, "write");
    data += w;
    n -= static_cast<std::size_t>(w);
  }
}

double once(const bench::PipeShape& s, std::uint64_t messages) {
  return s.measure_pairs(
      messages, false, [](auto fn) { return std::thread(std::move(fn)); },
      [](int fd, std::vector<unsigned char>& buffer) {
        return ::read(fd, buffer.data(), buffer.size());
      },
      [](int fd, const std::vector<unsigned char>& message) {
        write_all(fd, message.data(), message.size());
      });
}

}  // namespace

int main(int argc, char** argv) {
  auto s = bench::PipeShape::parse(argc, argv);
  double best = s.best([&](std::uint64_t messages) { return once(s, messages); });
  bench::print_result(best, s.json(best));
}
