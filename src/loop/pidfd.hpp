// pidfd system calls, called directly: glibc 2.36's <sys/pidfd.h> lacks
// extern "C" (fixed in 2.37), and older C libraries lack the wrappers.
#pragma once

#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

namespace spindle::detail {

// The new descriptor is always O_CLOEXEC.
inline int pidfd_open(pid_t pid) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0u));
}

inline int pidfd_send_signal(int pidfd, int signo) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signo, nullptr, 0u));
}

}  // namespace spindle::detail
