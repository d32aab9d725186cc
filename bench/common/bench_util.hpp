// Small helpers shared by the C++ benchmark programs (spindle's and the C++
// peers'): argument parsing, best-of-N timing, memory figures from
// /proc/self/status, and the single JSON line each program prints.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bench {

// Command-line flags of the form --name=value or --name value; --flag alone
// means "1". Unknown flags are an error, so a typo in the runner shows up.
class Args {
 public:
  Args(int argc, char** argv, std::vector<std::string> known) : known_(std::move(known)) {
    for (int i = 1; i < argc; ++i) {
      std::string_view a = argv[i];
      if (a.substr(0, 2) != "--") fail("unexpected argument", a);
      a.remove_prefix(2);
      const auto eq = a.find('=');
      const std::string key(a.substr(0, eq));
      const bool takes_next = eq == std::string_view::npos && i + 1 < argc &&
                              std::string_view(argv[i + 1]).substr(0, 2) != "--";
      std::string value = eq != std::string_view::npos ? std::string(a.substr(eq + 1))
                          : takes_next                 ? std::string(argv[++i])
                                                       : std::string(1, '1');
      bool ok = false;
      for (const auto& k : known_) ok = ok || k == key;
      if (!ok) fail("unknown flag --", key);
      values_.emplace_back(std::move(key), std::move(value));
    }
  }

  std::string str(std::string_view key, std::string fallback) const {
    for (const auto& [k, v] : values_)
      if (k == key) return v;
    return fallback;
  }
  std::uint64_t num(std::string_view key, std::uint64_t fallback) const {
    for (const auto& [k, v] : values_) {
      if (k != key) continue;
      char* end = nullptr;
      auto n = std::strtoull(v.c_str(), &end, 10);
      if (end == v.c_str() || *end != '\0') fail("not a number: --", k);
      return n;
    }
    return fallback;
  }
  bool flag(std::string_view key) const { return str(key, "0") != "0"; }

 private:
  [[noreturn]] static void fail(const char* what, std::string_view arg) {
    std::fprintf(stderr, "%s%.*s\n", what, static_cast<int>(arg.size()), arg.data());
    std::exit(2);
  }
  std::vector<std::string> known_;
  std::vector<std::pair<std::string, std::string>> values_;
};

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Nanoseconds per operation of `ops` operations begun at `start`.
inline double ns_per_op(Clock::time_point start, std::uint64_t ops) {
  return seconds_since(start) * 1e9 / static_cast<double>(ops);
}

// Operations per second of `ops` operations begun at `start`.
inline double ops_per_second(Clock::time_point start, std::uint64_t ops) {
  return static_cast<double>(ops) / seconds_since(start);
}

// Runs `once` (which returns nanoseconds per operation) `reps` times and
// returns the smallest figure.
template <class F>
double best_of(std::uint64_t reps, F&& once) {
  double best = std::numeric_limits<double>::infinity();
  for (std::uint64_t i = 0; i < reps; ++i) {
    double v = once();
    if (v < best) best = v;
  }
  return best;
}

// The same for `once` returning a rate (operations per second): the
// largest figure.
template <class F>
double best_rate_of(std::uint64_t reps, F&& once) {
  return -best_of(reps, [&] { return -once(); });
}

// The figure of a program measuring a time per operation: once(n / 10) as
// a warm-up, then the smallest of `reps` runs of once(n).
template <class F>
double warm_best_time(std::uint64_t reps, std::uint64_t n, F&& once) {
  once(n / 10);
  return best_of(reps, [&] { return once(n); });
}

// The same for a program measuring a rate: the largest of the runs.
template <class F>
double warm_best_rate(std::uint64_t reps, std::uint64_t n, F&& once) {
  once(n / 10);
  return best_rate_of(reps, [&] { return once(n); });
}

// `count` groups made by make_unique<Group>(args...): the benchmarks' groups
// stay where they are while their workers point at them.
template <class Group, class... A>
std::vector<std::unique_ptr<Group>> make_groups(std::uint64_t count, const A&... args) {
  std::vector<std::unique_ptr<Group>> groups;
  for (std::uint64_t g = 0; g < count; ++g) groups.push_back(std::make_unique<Group>(args...));
  return groups;
}

// A field of /proc/self/status in KiB ("VmRSS", "VmHWM", ...), or -1.
inline long status_kib(std::string_view field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > field.size() && line.compare(0, field.size(), field) == 0 &&
        line[field.size()] == ':') {
      return std::strtol(line.c_str() + field.size() + 1, nullptr, 10);
    }
  }
  return -1;
}

// The one line of output the runner reads: {"value": v, ...extra}. `extra`
// is already-formatted JSON members, e.g. R"("count": 5)".
inline void print_result(double value, const std::string& extra = {}) {
  std::printf("{\"value\": %.4f%s%s}\n", value, extra.empty() ? "" : ", ", extra.c_str());
  std::fflush(stdout);
}

// Ends the program when a result check fails.
inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "check failed: %s\n", what);
    std::exit(1);
  }
}

// A JSON string literal (for notes).
inline std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace bench
