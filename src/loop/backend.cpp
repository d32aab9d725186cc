#include "spindle/loop/backend.hpp"

#include <liburing.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string_view>

#include "loop/epoll_backend.hpp"
#include "loop/uring_backend.hpp"

namespace spindle {

std::string_view to_string(BackendKind kind) noexcept {
  switch (kind) {
    case BackendKind::automatic:
      return "auto";
    case BackendKind::io_uring:
      return "io_uring";
    case BackendKind::epoll:
      return "epoll";
  }
  return "unknown";
}

const UringProbe& probe_io_uring() {
  static const UringProbe probe = [] {
    UringProbe p;
    io_uring ring;
    int rc = io_uring_queue_init(4, &ring, 0);
    if (rc == 0) {
      io_uring_queue_exit(&ring);
      p.available = true;
      p.reason = "io_uring_setup succeeded";
      return p;
    }
    p.reason = std::string("io_uring_setup: ") + std::strerror(-rc);
    int disabled = 0;
    if (std::ifstream("/proc/sys/kernel/io_uring_disabled") >> disabled; disabled != 0) {
      p.reason += " (sysctl kernel.io_uring_disabled=" + std::to_string(disabled) + ")";
    } else if (rc == -EPERM || rc == -ENOSYS) {
      p.reason += " (a seccomp filter or a kernel without io_uring)";
    }
    return p;
  }();
  return probe;
}

BackendKind choose_backend(BackendKind requested, std::string* reason) {
  std::string why;
  if (const char* env = std::getenv("SPINDLE_BACKEND"); env != nullptr && *env != '\0') {
    std::string_view v(env);
    if (v == "io_uring") {
      requested = BackendKind::io_uring;
    } else if (v == "epoll") {
      requested = BackendKind::epoll;
    } else if (v == "auto") {
      requested = BackendKind::automatic;
    } else {
      throw std::invalid_argument("SPINDLE_BACKEND must be io_uring, epoll or auto, not '" +
                                  std::string(v) + "'");
    }
    why = "SPINDLE_BACKEND=" + std::string(v);
  } else {
    why = "Options::backend=" + std::string(to_string(requested));
  }
  BackendKind chosen = requested;
  if (requested == BackendKind::automatic) {
    const UringProbe& probe = probe_io_uring();
    chosen = probe.available ? BackendKind::io_uring : BackendKind::epoll;
    why += probe.available ? ": io_uring is available" : ": epoll, since " + probe.reason;
  }
  if (reason != nullptr) *reason = std::move(why);
  return chosen;
}

std::unique_ptr<Backend> make_backend(BackendKind kind, const BackendOptions& options) {
  BackendOptions chosen = options;
  if (const char* env = std::getenv("SPINDLE_SIDECAR"); env != nullptr && *env != '\0') {
    std::string_view v(env);
    if (v != "0" && v != "1") {
      throw std::invalid_argument("SPINDLE_SIDECAR must be 1 or 0, not '" + std::string(v) + "'");
    }
    // A ring that asks for SQPOLL already submits off the loop's thread;
    // the override leaves it alone rather than make the program fail.
    chosen.sidecar = v == "1" && (options.sidecar || !options.uring_sqpoll);
  }
  switch (kind) {
    case BackendKind::io_uring:
      return std::make_unique<UringBackend>(chosen);
    case BackendKind::epoll:
      return std::make_unique<EpollBackend>(chosen);
    case BackendKind::automatic:
      break;
  }
  return make_backend(choose_backend(kind), options);
}

}  // namespace spindle
