// Which kernel interface an event loop waits through.
#pragma once

#include <string_view>

namespace spindle {

// `automatic` picks io_uring when the kernel allows it (it can be disabled by
// the kernel.io_uring_disabled sysctl or a seccomp filter) and epoll
// otherwise. The environment variable SPINDLE_BACKEND (io_uring | epoll |
// auto) overrides what a program asks for.
enum class BackendKind { automatic, io_uring, epoll };

std::string_view to_string(BackendKind kind) noexcept;

}  // namespace spindle
