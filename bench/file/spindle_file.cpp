// file-mbps: reads a whole file (the runner makes a 1 GiB one and reads it
// once first, so it is in the page cache) in --block bytes per
// spindle::pread, with --fibers fibers each reading its own contiguous
// slice into its own buffer. On io_uring each read is one SQE; on epoll
// it runs on the blocking pool. MiB per second, the best of --reps after
// an untimed pass.
#include <fcntl.h>
#include <unistd.h>

#include <spindle/fiber/fiber.hpp>
#include <spindle/fiber/runtime.hpp>
#include <spindle/io/ops.hpp>

#include <string>
#include <vector>

#include "common/bench_util.hpp"

int main(int argc, char** argv) {
  bench::Args args(argc, argv, {"file", "fibers", "block", "reps"});
  const std::string path = args.str("file", "");
  const std::uint64_t fibers = args.num("fibers", 1);
  const std::uint64_t block = args.num("block", 128 * 1024);
  const std::uint64_t reps = args.num("reps", 3);
  bench::check(!path.empty() && fibers > 0 && block > 0, "--file PATH --fibers 1.. --block 1..");
  spindle::run([&] {
    int fd = spindle::open(path.c_str(), O_RDONLY);
    const std::uint64_t size = static_cast<std::uint64_t>(spindle::fstatx(fd).stx_size);
    bench::check(size >= fibers * block, "the file is smaller than one block per fiber");
    // Slices of whole blocks; the last fiber also takes the remainder.
    const std::uint64_t slice = size / fibers / block * block;
    auto once = [&] {
      auto start = bench::Clock::now();
      std::vector<spindle::Fiber<std::uint64_t>> fs;
      for (std::uint64_t f = 0; f < fibers; ++f) {
        std::uint64_t from = f * slice, to = f + 1 == fibers ? size : from + slice;
        fs.push_back(spindle::spin([fd, from, to, block] {
          std::vector<std::byte> buffer(block);
          std::uint64_t got = 0;
          for (std::uint64_t at = from; at < to;) {
            std::size_t n = spindle::pread(fd, buffer, at);
            bench::check(n > 0, "short file");
            at += n;
            got += n;
          }
          return got;
        }));
      }
      std::uint64_t total = 0;
      for (auto& f : fs) total += f.join();
      bench::check(total == size, "bytes read");
      return static_cast<double>(size) / (1024.0 * 1024.0) / bench::seconds_since(start);
    };
    once();  // warm-up
    double best = -bench::best_of(reps, [&] { return -once(); });
    spindle::close(fd);
    std::string backend(spindle::to_string(spindle::metrics().backend));
    bench::print_result(best, "\"backend\": " + bench::json_string(backend) + ", \"fibers\": " +
                                  std::to_string(fibers) + ", \"bytes\": " + std::to_string(size));
  });
}
