#include "spindle/net/listener.hpp"

#include <cerrno>
#include <cstdio>

#include "spindle/fiber/cancel.hpp"
#include "spindle/fiber/fiber.hpp"

namespace spindle::detail {
namespace {

bool out_of_resources(int error) noexcept {
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

void log_backoff(const std::system_error& e, std::chrono::milliseconds pause) {
  std::fprintf(stderr, "spindle: %s; pausing accepts for %lld ms\n", e.what(),
               static_cast<long long>(pause.count()));
}

}  // namespace

std::size_t resilient_accept_loop(int fd, const ListenOptions& options, LoopFn<int> fn,
                                  Deadline deadline) {
  using std::chrono::milliseconds;
  std::size_t total = 0;
  milliseconds pause{0};
  bool in_callback = false;  // an error thrown by the callback is the callback's
  auto deliver = [&](int connection) -> bool {
    ++total;
    pause = milliseconds{0};  // a connection ends a streak of failures
    in_callback = true;
    bool go_on = fn.call(fn.object, connection);
    in_callback = false;
    return go_on;
  };
  for (;;) {
    try {
      spindle::accept_loop(fd, deliver, deadline);
      return total;  // the callback stopped it
    } catch (const std::system_error& e) {
      if (in_callback || !out_of_resources(e.code().value())) throw;
      pause = pause.count() == 0 ? options.backoff_min : pause * 2;
      if (pause > options.backoff_max) pause = options.backoff_max;
      if (pause.count() <= 0) pause = milliseconds{1};
      if (options.on_backoff) {
        options.on_backoff(e, pause);
      } else {
        log_backoff(e, pause);
      }
    }
    // The listen backlog holds the waiting connections meanwhile; trying
    // sooner would only fail again until some descriptor is closed.
    const auto due = std::chrono::steady_clock::now() + pause;
    if (deadline && due.time_since_epoch() >= std::chrono::nanoseconds(deadline.ns())) {
      spindle::sleep_until(std::chrono::steady_clock::time_point(
          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
              std::chrono::nanoseconds(deadline.ns()))));
      throw TimedOut();
    }
    spindle::sleep_until(due);
  }
}

}  // namespace spindle::detail
