// loop-dispatch-ns and loop-timers-ns for spindle's callback loop
// (spindle::Loop, no fibers). The work is in loop_work.h, shared with the
// libev and libuv programs.
//
//   --mode dispatch: level-triggered read watchers (Loop::watch with a read
//                    callback) on --fds socketpairs; a turn is
//                    Loop::run_once() (no timeout).
//   --mode timers:   Loop::after(delay, fn) then Loop::cancel(timer).
//
// The backend comes from SPINDLE_BACKEND (the runner runs this program once
// per backend) and is reported in the output.
#include <spindle/loop/loop.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "loop/loop_work.h"

namespace {

std::string backend_member(const spindle::Loop& loop) {
  return "\"backend\": \"" + std::string(spindle::to_string(loop.backend_kind())) + "\"";
}

void turn(void* loop) { static_cast<spindle::Loop*>(loop)->run_once(); }

int dispatch(const lw_args& a) {
  lw_raise_nofile(a.fds);
  std::vector<int> watched(a.fds), peer(a.fds);
  lw_socketpairs(a.fds, watched.data(), peer.data());
  spindle::Loop loop;
  std::uint64_t dispatched = 0;
  for (int fd : watched) {
    loop.watch(fd, {.read = [&dispatched](spindle::Watcher& w) {
                      lw_drain(w.fd());
                      ++dispatched;
                    }});
  }
  lw_dispatch_result r = lw_dispatch(&a, peer.data(), &dispatched, turn, &loop);
  lw_print_dispatch(&r, backend_member(loop).c_str());
  for (int fd : watched) loop.unwatch(fd);
  lw_close_socketpairs(a.fds, watched.data(), peer.data());
  return 0;
}

int timers(const lw_args& a) {
  spindle::Loop loop;
  std::int64_t* delays = lw_delays(a.timers);
  std::vector<spindle::Timer> handles(a.timers);
  std::uint64_t fired = 0;
  auto once = [&] {
    std::int64_t start = lw_now_ns();
    for (std::uint32_t i = 0; i < a.timers; ++i) {
      handles[i] = loop.after(std::chrono::nanoseconds(delays[i]), [&fired] { ++fired; });
    }
    for (std::uint32_t i = 0; i < a.timers; ++i) {
      if (!loop.cancel(handles[i])) lw_die("Loop::cancel: a pending timer was not cancelled");
    }
    double ns = static_cast<double>(lw_now_ns() - start) / a.timers;
    if (loop.timers_pending() != 0 || fired != 0) lw_die("timers left or fired");
    return ns;
  };
  once();  // warm-up: the loop's timer records and heap reach their size
  double best = 0;
  for (std::uint32_t rep = 0; rep < a.reps; ++rep) {
    double ns = once();
    if (rep == 0 || ns < best) best = ns;
  }
  std::free(delays);
  lw_print(best, backend_member(loop).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  lw_args a = lw_parse(argc, argv);
  return a.mode == LW_DISPATCH ? dispatch(a) : timers(a);
}
