// The spindle demo: 100,000 fibers at once. Most sleep random short times;
// a few hundred pass tokens around rings of pipes. It prints what happened,
// the backend in use, the spawn rate and the switch rate.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "spindle/spindle.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kFibers = 100'000;
constexpr int kRings = 4;
constexpr int kRingSize = 100;  // fibers (and pipes) per ring
constexpr int kLaps = 200;      // times the token goes round each ring
constexpr int kSleeps = 3;      // naps per sleeper

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// One ring: fiber i reads the token from pipe i and writes it, incremented,
// to pipe i+1. Returns how many hops the token made.
long run_ring(int ring) {
  std::vector<spindle::Pipe> pipes;
  for (int i = 0; i < kRingSize; ++i) pipes.push_back(spindle::make_pipe());
  std::vector<spindle::Fiber<long>> relays;
  for (int i = 0; i < kRingSize; ++i) {
    relays.push_back(spindle::spin(
        [&pipes, i] {
          long hops = 0;
          std::byte token[sizeof(long)];
          for (int lap = 0; lap < kLaps; ++lap) {
            std::size_t got = 0;
            while (got < sizeof(token)) {
              got += spindle::read(pipes[i].read_end, std::span(token).subspan(got));
            }
            long value;
            std::memcpy(&value, token, sizeof(value));
            ++value;
            std::memcpy(token, &value, sizeof(value));
            spindle::write(pipes[(i + 1) % kRingSize].write_end, token);
            ++hops;
          }
          return hops;
        },
        {.name = "relay"}));
  }
  long start = ring * 1'000'000L;
  std::byte token[sizeof(long)];
  std::memcpy(token, &start, sizeof(start));
  spindle::write(pipes[0].write_end, token);
  long hops = 0;
  for (auto& r : relays) hops += r.join();
  // The token came back to pipe 0 after the last lap.
  long final_value;
  std::size_t got = 0;
  while (got < sizeof(token))
    got += spindle::read(pipes[0].read_end, std::span(token).subspan(got));
  std::memcpy(&final_value, token, sizeof(final_value));
  if (final_value != start + hops) {
    std::fprintf(stderr, "ring %d: token %ld, expected %ld\n", ring, final_value, start + hops);
  }
  for (auto& p : pipes) {
    ::close(p.read_end);
    ::close(p.write_end);
  }
  return hops;
}

}  // namespace

int main() {
  auto started = Clock::now();
  struct Result {
    std::string backend, reason;
    double spawn_seconds = 0;
    long naps = 0, early = 0, hops = 0;
    std::uint64_t switches = 0, spawned = 0;
  };
  Result r = spindle::run([] {
    Result out;
    spindle::Metrics m = spindle::metrics();
    out.backend = std::string(spindle::to_string(m.backend));
    out.reason = m.backend_reason;

    long naps = 0, early = 0;
    constexpr int kSleepers = kFibers - kRings * kRingSize - kRings;
    std::vector<spindle::Fiber<void>> sleepers;
    sleepers.reserve(kSleepers);
    auto spawn_start = Clock::now();
    for (int i = 0; i < kSleepers; ++i) {
      sleepers.push_back(spindle::spin([&naps, &early, i] {
        std::minstd_rand rng(static_cast<unsigned>(i) + 1);
        for (int k = 0; k < kSleeps; ++k) {
          auto nap = std::chrono::microseconds(1000 + rng() % 49'000);  // 1-50 ms
          auto before = Clock::now();
          spindle::sleep(nap);
          if (Clock::now() - before < nap) ++early;
          ++naps;
        }
      }));
    }
    out.spawn_seconds = seconds(Clock::now() - spawn_start);

    std::vector<spindle::Fiber<long>> rings;
    for (int ring = 0; ring < kRings; ++ring) {
      rings.push_back(spindle::spin([ring] { return run_ring(ring); }, {.name = "ring"}));
    }
    for (auto& s : sleepers) s.join();
    for (auto& ring : rings) out.hops += ring.join();
    out.naps = naps;
    out.early = early;
    m = spindle::metrics();
    out.switches = m.context_switches;
    out.spawned = m.fibers_spawned;
    return out;
  });
  double elapsed = seconds(Clock::now() - started);

  std::printf("spindle demo\n");
  std::printf("  backend            %s (%s)\n", r.backend.c_str(), r.reason.c_str());
  std::printf("  fibers             %llu spawned, %d alive at once at the peak\n",
              static_cast<unsigned long long>(r.spawned), kFibers);
  std::printf("  sleepers           %ld naps of 1-50 ms, %ld woke early\n", r.naps, r.early);
  std::printf("  pipe rings         %d rings of %d fibers, token passed %ld times\n", kRings,
              kRingSize, r.hops);
  std::printf("  spawn rate (cold)  %.0f fibers/s (%.1f ns each, mapping a fresh stack)\n",
              (kFibers - kRings * kRingSize - kRings) / r.spawn_seconds,
              r.spawn_seconds * 1e9 / (kFibers - kRings * kRingSize - kRings));
  std::printf("  context switches   %llu in %.2f s: %.2f million/s\n",
              static_cast<unsigned long long>(r.switches), elapsed, r.switches / elapsed / 1e6);
  std::printf("  fibers per second  %.0f (spawned and finished, over the wall time)\n",
              static_cast<double>(r.spawned) / elapsed);
  std::printf("  wall time          %.3f s\n", elapsed);
  return r.early == 0 ? 0 : 1;
}
