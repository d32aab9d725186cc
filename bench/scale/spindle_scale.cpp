// scale for spindle (the workloads: bench/scale/scale_shape.hpp): the same
// workload at 1 worker and at --workers (the figure), so the speedup comes
// from the same run. The backend comes from SPINDLE_BACKEND and is reported
// in the output.
#include <spindle/fiber/fiber.hpp>
#include <spindle/fiber/runtime.hpp>

#include <cstdio>
#include <string>
#include <utility>

#include "common/bench_util.hpp"
#include "scale/scale_shape.hpp"

int main(int argc, char** argv) {
  const auto shape = bench::ScaleShape::parse(argc, argv, "workers");
  const auto workers = static_cast<unsigned>(shape.workers);
  std::string backend;
  auto measure = [&](unsigned n) {
    spindle::Options options;
    options.workers = n;
    // Fork/join keeps up to a few thousand fibers alive: keep their stacks.
    options.stack_cache = 8192;
    return spindle::run(
        [&] {
          backend = spindle::to_string(spindle::metrics().backend);
          return shape.best([](auto fn) { return spindle::spin(std::move(fn)); },
                            [] { spindle::yield(); });
        },
        options);
  };
  double one = measure(1);
  double many = measure(workers);
  char note[160];
  std::snprintf(note, sizeof(note), "1 worker: %.3g/s; speedup at %u: %.2fx", one, workers,
                many / one);
  bench::print_result(many, "\"backend\": " + bench::json_string(backend) +
                                ", \"workers\": " + std::to_string(workers) + ", \"one_worker\": " +
                                std::to_string(one) + ", \"note\": " + bench::json_string(note));
}
