// switch-ns peer: Boost.Fiber. Two fibers on the default round-robin
// scheduler call boost::this_fiber::yield() in turn; nanoseconds per yield.
#include <boost/fiber/all.hpp>

#include <cstdint>
#include <utility>

#include "switch/switch_shape.hpp"

namespace {

double once(std::uint64_t yields) {
  return bench::two_yielding(
      yields, [](auto body) { return boost::fibers::fiber(std::move(body)); },
      [] { boost::this_fiber::yield(); });
}

}  // namespace

int main(int argc, char** argv) {
  auto s = bench::SwitchShape::parse(argc, argv);
  bench::print_result(s.best(once), s.json());
}
