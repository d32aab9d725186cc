// switch-ns: two spindle fibers call spindle::yield() in turn; nanoseconds
// per yield. The backend comes from SPINDLE_BACKEND (the runner runs this
// program once per backend) and is reported in the output.
#include <spindle/fiber/fiber.hpp>
#include <spindle/fiber/runtime.hpp>

#include <cstdint>
#include <string>
#include <utility>

#include "switch/switch_shape.hpp"

namespace {

double once(std::uint64_t yields) {
  return bench::two_yielding(
      yields, [](auto body) { return spindle::spin(std::move(body)); }, [] { spindle::yield(); });
}

}  // namespace

int main(int argc, char** argv) {
  auto s = bench::SwitchShape::parse(argc, argv);
  spindle::run([&] {
    double best = s.best(once);
    std::string backend(spindle::to_string(spindle::metrics().backend));
    bench::print_result(best, "\"backend\": " + bench::json_string(backend) + ", " + s.json());
  });
}
