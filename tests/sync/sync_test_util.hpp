// Helpers shared by the sync layer's tests.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <thread>
#include <vector>

#include "spindle/spindle.hpp"
#include "test_config.hpp"
#include "test_util.hpp"

namespace sync_test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using spindle_test::ended_cancelled;

// Runs each function as the main fiber of its own runtime, each on its own
// OS thread ("different workers" until the multi-core runtime exists), and
// joins them. A failed EXPECT inside is reported by GoogleTest as usual; an
// exception escaping a runtime fails the test.
//
// The runtimes meet at a barrier before they run their function, so their
// io_uring rings are mapped at the same time: liburing maps and unmaps rings
// with raw system calls that TSan cannot see, and a ring mapped where
// another thread's ring had just been unmapped looks like a race to it.
inline void on_runtimes(std::vector<std::function<void()>> mains) {
  std::vector<std::thread> threads;
  spindle::Barrier started(static_cast<std::int64_t>(mains.size()));
  for (auto& m : mains) {
    threads.emplace_back([m, &started] {
      try {
        spindle::run([&] {
          started.arrive_and_wait();
          m();
        });
      } catch (const std::exception& e) {
        ADD_FAILURE() << "runtime failed: " << e.what();
      } catch (...) {
        ADD_FAILURE() << "runtime failed with a non-std exception";
      }
    });
  }
  for (auto& t : threads) t.join();
}

// Lets the other fibers (and, for a while, other threads) make progress.
inline void settle() {
  for (int i = 0; i < 20; ++i) spindle::yield();
  spindle::sleep(2ms);
}

}  // namespace sync_test
