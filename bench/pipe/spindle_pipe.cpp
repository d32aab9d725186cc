// pipe-* / socketpair-* (see pipe_shape.hpp): a reader fiber and a writer
// fiber per group on one runtime, spindle::read_some and spindle::write on
// non-blocking descriptors. Messages per second.
#include <spindle/fiber/fiber.hpp>
#include <spindle/fiber/runtime.hpp>
#include <spindle/io/ops.hpp>

#include <string>
#include <utility>
#include <vector>

#include "pipe/pipe_shape.hpp"

namespace {

double once(const bench::PipeShape& s, std::uint64_t messages) {
  return s.measure_pairs(
      messages, true, [](auto fn) { return spindle::spin(std::move(fn)); },
      [](int fd, std::vector<unsigned char>& buffer) {
        return spindle::read_some(fd, std::as_writable_bytes(std::span(buffer)));
      },
      [](int fd, const std::vector<unsigned char>& message) {
        spindle::write(fd, std::as_bytes(std::span(message)));
      });
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
