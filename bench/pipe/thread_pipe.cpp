// pipe-* / socketpair-* peer (see pipe_shape.hpp): one std::thread per
// reader and per writer, blocking read(2) and write(2). Messages per second.
#include <thread>
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
  std::vector<std::pair<int, int>> pairs;
  for (std::uint64_t g = 0; g < s.groups; ++g) pairs.push_back(s.make(false));
  const std::uint64_t total = messages * s.size;
  auto start = bench::Clock::now();
  std::vector<std::thread> threads;
  for (auto [r, w] : pairs) {
    threads.emplace_back([&s, r = r, total] {
      std::vector<unsigned char> buffer(s.size);
      std::uint64_t got = 0;
      while (got < total) {
        ssize_t n = ::read(r, buffer.data(), buffer.size());
        bench::check(n > 0 && s.valid(buffer.data(), static_cast<std::size_t>(n), got), "read");
        got += static_cast<std::uint64_t>(n);
      }
    });
    threads.emplace_back([&s, w = w, messages] {
      std::vector<unsigned char> message(s.size);
      for (std::uint64_t i = 0; i < messages; ++i) {
        bench::PipeShape::fill(message, i);
        write_all(w, message.data(), message.size());
      }
    });
  }
  for (auto& t : threads) t.join();
  double secs = bench::seconds_since(start);
  bench::PipeShape::close_all(pairs);
  return static_cast<double>(s.groups * messages) / secs;
}

}  // namespace

int main(int argc, char** argv) {
  auto s = bench::PipeShape::parse(argc, argv);
  double best = s.best([&](std::uint64_t messages) { return once(s, messages); });
  bench::print_result(best, s.json(best));
}
