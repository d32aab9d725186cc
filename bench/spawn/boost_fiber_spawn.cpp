// spawn-ns and spawn-rss peer: Boost.Fiber with pooled_fixedsize_stack.
//
//   --mode=ns  : spawn+join --count fibers in batches of --batch; ns per fiber.
//   --mode=rss : --count fibers alive at once, each blocked on a condition
//                variable until all are spawned; (peak RSS - baseline) / count
//                in KiB per fiber.
#include <boost/context/stack_traits.hpp>
#include <boost/fiber/all.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/bench_util.hpp"

namespace {

double spawn_ns(boost::fibers::pooled_fixedsize_stack& stacks, std::uint64_t count,
                std::uint64_t batch) {
  std::vector<boost::fibers::fiber> fibers;
  fibers.reserve(batch);
  std::uint64_t ran = 0;
  auto start = bench::Clock::now();
  for (std::uint64_t done = 0; done < count; done += batch) {
    const std::uint64_t n = std::min(batch, count - done);
    for (std::uint64_t i = 0; i < n; ++i) {
      fibers.emplace_back(std::allocator_arg, stacks, [&ran] { ++ran; });
    }
    for (auto& f : fibers) f.join();
    fibers.clear();
  }
  double elapsed = bench::seconds_since(start);
  if (ran != count) std::abort();
  return elapsed * 1e9 / static_cast<double>(count);
}

double spawn_rss(boost::fibers::pooled_fixedsize_stack& stacks, std::uint64_t count) {
  std::vector<boost::fibers::fiber> fibers;
  fibers.reserve(count);
  boost::fibers::mutex mutex;
  boost::fibers::condition_variable cv;
  bool release = false;
  std::uint64_t waiting = 0;
  const long baseline = bench::status_kib("VmRSS");
  for (std::uint64_t i = 0; i < count; ++i) {
    fibers.emplace_back(std::allocator_arg, stacks, [&] {
      std::unique_lock<boost::fibers::mutex> lock(mutex);
      ++waiting;
      cv.wait(lock, [&] { return release; });
    });
  }
  while (waiting < count) boost::this_fiber::yield();  // let every fiber block
  const long peak = bench::status_kib("VmHWM");
  {
    std::lock_guard<boost::fibers::mutex> lock(mutex);
    release = true;
  }
  cv.notify_all();
  for (auto& f : fibers) f.join();
  return static_cast<double>(peak - baseline) / static_cast<double>(count);
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv, {"mode", "count", "batch", "reps", "stack-size"});
  const std::string mode = args.str("mode", "ns");
  const auto stack_size = args.num("stack-size", boost::context::stack_traits::default_size());
  const std::string extra = "\"stack_size\": " + std::to_string(stack_size);
  if (mode == "ns") {
    const auto count = args.num("count", 1'000'000);
    const auto batch = args.num("batch", 1'000);
    const auto reps = args.num("reps", 3);
    boost::fibers::pooled_fixedsize_stack stacks(stack_size);
    spawn_ns(stacks, count / 10, batch);  // warm-up (fills the pool)
    bench::print_result(bench::best_of(reps, [&] { return spawn_ns(stacks, count, batch); }),
                        extra + ", \"count\": " + std::to_string(count));
  } else if (mode == "rss") {
    const auto count = args.num("count", 1'000'000);
    // The pool grows by doubling; cap each malloc at 1024 stacks so a million
    // stacks do not ask for one block of tens of GiB at the end.
    boost::fibers::pooled_fixedsize_stack stacks(stack_size, 1024, 1024);
    bench::print_result(spawn_rss(stacks, count), extra + ", \"count\": " + std::to_string(count));
  } else {
    std::fprintf(stderr, "--mode must be ns or rss\n");
    return 2;
  }
}
