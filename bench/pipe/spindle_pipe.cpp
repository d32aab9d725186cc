// pipe-* / socketpair-* (see pipe_shape.hpp): a reader fiber and a writer
// fiber per group on one runtime, spindle::read_some and spindle::write on
// non-blocking descriptors. Messages per second.
#include <spindle/fiber/fiber.hpp>
#include <spindle/fiber/runtime.hpp>
#include <spindle/io/ops.hpp>

#include <string>
#include <vector>

#include "pipe/pipe_shape.hpp"

namespace {

double once(const bench::PipeShape& s, std::uint64_t messages) {
  std::vector<std::pair<int, int>> pairs;
  for (std::uint64_t g = 0; g < s.groups; ++g) pairs.push_back(s.make(true));
  const std::uint64_t total = messages * s.size;
  auto start = bench::Clock::now();
  std::vector<spindle::Fiber<void>> fibers;
  for (auto [r, w] : pairs) {
    fibers.push_back(spindle::spin([&s, r = r, total] {
      std::vector<unsigned char> buffer(s.size);
      std::uint64_t got = 0;
      while (got < total) {
        ssize_t n = spindle::read_some(r, std::as_writable_bytes(std::span(buffer)));
        bench::check(n > 0 && s.valid(buffer.data(), static_cast<std::size_t>(n), got), "read");
        got += static_cast<std::uint64_t>(n);
      }
    }));
    fibers.push_back(spindle::spin([&s, w = w, messages] {
      std::vector<unsigned char> message(s.size);
      for (std::uint64_t i = 0; i < messages; ++i) {
        bench::PipeShape::fill(message, i);
        spindle::write(w, std::as_bytes(std::span(message)));
      }
    }));
  }
  for (auto& f : fibers) f.join();
  double secs = bench::seconds_since(start);
  bench::PipeShape::close_all(pairs);
  return static_cast<double>(s.groups * messages) / secs;
}

}  // namespace

int main(int argc, char** argv) {
  auto s = bench::PipeShape::parse(argc, argv);
  spindle::run([&] {
    double best = s.best([&](std::uint64_t messages) { return once(s, messages); });
    std::string backend(spindle::to_string(spindle::metrics().backend));
    bench::print_result(best, "\"backend\": " + bench::json_string(backend) + ", " + s.json(best));
  });
}
