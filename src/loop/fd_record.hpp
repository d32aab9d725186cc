// The state of one descriptor, shared by the Loop and its backend.
#pragma once

#include <cstdint>
#include <functional>

#include "loop/poll_list.hpp"
#include "spindle/loop/backend.hpp"

namespace spindle {

class Watcher;

namespace detail {

// Everything an event on one fd needs, in one record indexed by fd (the
// backend's FdTable), so that dispatching a read event touches one cache
// line: the backend's registration, the loop's watcher generation and data,
// and the read callback stored inline. The write and error callbacks, and
// the fibers' waits (epoll), follow on the next line.
struct alignas(64) FdRecord {
  // --- backend ---
  // Bumped on every change of the registration; an event carries the epoch
  // it was registered with, and one that no longer matches is stale.
  std::uint32_t epoch = 0;
  std::uint32_t watch_events = 0;  // EPOLLIN/EPOLLOUT/... the watcher asks for
  WatchMode mode = WatchMode::level;
  bool watched = false;     // a loop watcher owns the registration
  bool registered = false;  // epoll: known to epoll (armed or disarmed oneshot)
  bool armed = false;       // io_uring: a poll request is in flight

  // --- loop ---
  bool has_watcher = false;      // the callbacks below are a live watcher's
  std::uint32_t generation = 0;  // Watcher handles carry it; bumped on retire
  void* data = nullptr;
  std::function<void(Watcher&)> read;

  // --- second line ---
  PollList waits;  // epoll: the fibers' one-shot waits
  std::function<void(Watcher&)> write;
  std::function<void(Watcher&)> error;
};

}  // namespace detail
}  // namespace spindle
