// switch-ns peer: raw Boost.Context. Two boost::context::fiber objects (the
// main context and one fiber) resume each other; the figure is nanoseconds
// per resume, each resume being one switch.
#include <boost/context/fiber.hpp>

#include <cstdint>
#include <utility>

#include "switch/switch_shape.hpp"

namespace ctx = boost::context;

namespace {

double once(std::uint64_t switches) {
  const std::uint64_t rounds = switches / 2;  // one round = there and back
  bool stop = false;
  ctx::fiber other{[&stop](ctx::fiber&& caller) {
    while (!stop) caller = std::move(caller).resume();
    return std::move(caller);
  }};
  other = std::move(other).resume();  // start it outside the timed part
  auto start = bench::Clock::now();
  for (std::uint64_t i = 0; i < rounds; ++i) other = std::move(other).resume();
  double ns = bench::ns_per_op(start, 2 * rounds);
  stop = true;
  other = std::move(other).resume();  // lets the fiber return
  return ns;
}

}  // namespace

int main(int argc, char** argv) {
  auto s = bench::SwitchShape::parse(argc, argv);
  bench::print_result(s.best(once), s.json());
}
