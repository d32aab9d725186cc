// lines-mbps: splits a file (the runner makes a 1 GiB one of mixed line
// lengths and reads it once first, so it is in the page cache) into lines
// with spindle::BufferedReader::read_line over a spindle::File, counting
// the lines and their bytes (checked against --lines / --bytes). MiB of
// file per second, the best of --reps after an untimed pass.
#include <spindle/fiber/runtime.hpp>
#include <spindle/fs/file.hpp>
#include <spindle/stream/buffered_reader.hpp>

#include <string>

#include "common/bench_util.hpp"

int main(int argc, char** argv) {
  bench::Args args(argc, argv, {"file", "lines", "bytes", "buffer", "reps"});
  const std::string path = args.str("file", "");
  const std::uint64_t want_lines = args.num("lines", 0);
  const std::uint64_t want_bytes = args.num("bytes", 0);
  const std::uint64_t buffer = args.num("buffer", 64 * 1024);
  const std::uint64_t reps = args.num("reps", 3);
  bench::check(!path.empty() && buffer > 0, "--file PATH --buffer 1..");
  spindle::run([&] {
    auto once = [&] {
      auto start = bench::Clock::now();
      spindle::File file = spindle::File::open(path);
      spindle::BufferedReader reader(file, {.buffer_size = buffer});
      std::uint64_t lines = 0, bytes = 0;
      while (auto line = reader.read_line()) {
        ++lines;
        bytes += line->size();
      }
      double secs = bench::seconds_since(start);
      bench::check(want_lines == 0 || lines == want_lines, "the number of lines");
      bench::check(want_bytes == 0 || bytes == want_bytes, "the bytes in lines");
      return static_cast<double>(file.size()) / (1024.0 * 1024.0) / secs;
    };
    once();  // warm-up
    double best = -bench::best_of(reps, [&] { return -once(); });
    std::string backend(spindle::to_string(spindle::metrics().backend));
    bench::print_result(best, "\"backend\": " + bench::json_string(backend));
  });
}
