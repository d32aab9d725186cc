// Reading an exit status through a pidfd (shared by child_exit and spawn).
#pragma once

#include <sys/types.h>

#include "spindle/loop/child.hpp"

namespace spindle::detail {

// waitid(P_PIDFD, pidfd, WEXITED | WNOHANG [| WNOWAIT]). Returns false if the
// process has not exited yet; otherwise fills `status` (known = false if
// waitid failed, e.g. ECHILD: not our child, or reaped elsewhere).
bool read_exit_status(int pidfd, pid_t pid, bool reap, ExitStatus& status) noexcept;

}  // namespace spindle::detail
