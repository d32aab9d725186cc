// file-mbps peer: dd(1) reading the same file to /dev/null in blocks of
// --block bytes (`dd if=FILE of=/dev/null bs=N`), its throughput taken
// from its own report (bytes copied / seconds). MiB per second, the best
// of --reps after an untimed run.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/bench_util.hpp"

namespace {

// One dd run: MiB/s from the "N bytes (...) copied, S s, ..." line.
double run_dd(const std::string& path, std::uint64_t block) {
  std::string cmd = "dd if='" + path + "' of=/dev/null bs=" + std::to_string(block) + " 2>&1";
  bench::check(path.find('\'') == std::string::npos, "a path without quotes");
  FILE* out = ::popen(cmd.c_str(), "r");
  bench::check(out != nullptr, "popen dd");
  char line[512];
  double bytes = -1, secs = -1;
  while (std::fgets(line, sizeof line, out) != nullptr) {
    std::string text(line);
    auto copied = text.find(" copied, ");
    if (copied == std::string::npos) continue;
    bytes = std::strtod(line, nullptr);
    secs = std::strtod(line + copied + 9, nullptr);
  }
  int status = ::pclose(out);
  bench::check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "dd exit status");
  bench::check(bytes > 0 && secs > 0, "dd's report (bytes copied, seconds)");
  return bytes / (1024.0 * 1024.0) / secs;
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv, {"file", "block", "reps"});
  const std::string path = args.str("file", "");
  const std::uint64_t block = args.num("block", 128 * 1024);
  const std::uint64_t reps = args.num("reps", 3);
  bench::check(!path.empty() && block > 0, "--file PATH --block 1..");
  run_dd(path, block);  // warm-up
  double best = -bench::best_of(reps, [&] { return -run_dd(path, block); });
  bench::print_result(best);
}
