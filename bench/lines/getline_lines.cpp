// lines-mbps peer: the same file split with std::getline on a
// std::ifstream (default buffering, one std::string reused), counting the
// lines and their bytes (checked). MiB of file per second, the best of
// --reps after an untimed pass.
#include <fstream>
#include <string>

#include "common/bench_util.hpp"

int main(int argc, char** argv) {
  bench::Args args(argc, argv, {"file", "lines", "bytes", "reps"});
  const std::string path = args.str("file", "");
  const std::uint64_t want_lines = args.num("lines", 0);
  const std::uint64_t want_bytes = args.num("bytes", 0);
  const std::uint64_t reps = args.num("reps", 3);
  bench::check(!path.empty(), "--file PATH");
  auto once = [&] {
    auto start = bench::Clock::now();
    std::ifstream in(path, std::ios::binary);
    bench::check(in.good(), "open the file");
    std::string line;
    std::uint64_t lines = 0, bytes = 0;
    while (std::getline(in, line)) {
      ++lines;
      bytes += line.size();
    }
    double secs = bench::seconds_since(start);
    bench::check(want_lines == 0 || lines == want_lines, "the number of lines");
    bench::check(want_bytes == 0 || bytes == want_bytes, "the bytes in lines");
    std::uint64_t size = lines + bytes;  // every line ends with '\n'
    return static_cast<double>(size) / (1024.0 * 1024.0) / secs;
  };
  once();  // warm-up
  double best = -bench::best_of(reps, [&] { return -once(); });
  bench::print_result(best);
}
