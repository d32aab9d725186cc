// Shared main() of every test program. For the io_uring run of a test on a
// kernel that forbids io_uring, it says why and exits 77 (CTest: skipped).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>

#ifndef SPINDLE_CONTEXT_ONLY
#include "spindle/loop/backend.hpp"
#endif

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
#ifndef SPINDLE_CONTEXT_ONLY
  const char* env = std::getenv("SPINDLE_BACKEND");
  if (env != nullptr && std::string_view(env) == "io_uring") {
    spindle::UringProbe probe = spindle::probe_io_uring();
    if (!probe.available) {
      std::printf("SKIPPED: io_uring is not available here (%s); the epoll run covers this test\n",
                  probe.reason.c_str());
      return 77;
    }
  }
#endif
  return RUN_ALL_TESTS();
}
