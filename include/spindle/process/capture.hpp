// Running a program to completion and collecting its output.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "spindle/loop/child.hpp"

namespace spindle {

struct CaptureOptions {
  std::string input;  // written to the child's stdin, which is then closed
  // Most bytes kept of stdout and of stderr (each). A child that writes
  // more is terminated and capture throws std::system_error(EMSGSIZE,
  // "capture <program>: stdout longer than N bytes").
  std::size_t limit = 16 * 1024 * 1024;
  // > 0: the child is terminated (SIGTERM, SIGKILL after kill_grace) when
  // it has not exited after this long; the result then has
  // status.timed_out set and the output written so far.
  std::chrono::nanoseconds timeout{0};
  std::chrono::nanoseconds kill_grace = std::chrono::seconds(5);
  bool merge_stderr = false;  // stderr goes to `out` too
  std::string cwd;
  std::optional<std::vector<std::string>> env;
};

struct CaptureResult {
  std::string out;
  std::string err;
  ExitStatus status;
};

// Runs argv with piped stdio, feeds it `input`, reads stdout and stderr
// concurrently (two fibers, so neither pipe can fill up and stall the
// child) and waits for the exit. A non-zero exit is not an error: look at
// status. Throws what spawn throws (the program cannot run), EMSGSIZE for
// output over the limit; a cancellation of the calling fiber terminates
// the child first.
CaptureResult capture(std::vector<std::string> argv, CaptureOptions options = {});

}  // namespace spindle
