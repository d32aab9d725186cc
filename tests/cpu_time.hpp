// The CPU time a test program has used, to show that something idle sleeps
// instead of spinning.
#pragma once

#include <sys/resource.h>

#include <chrono>

namespace spindle_test {

// CPU time (user + system) of every thread of this process so far.
inline std::chrono::microseconds process_cpu_time() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto us = [](const timeval& tv) {
    return std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
  };
  return us(ru.ru_utime) + us(ru.ru_stime);
}

}  // namespace spindle_test
