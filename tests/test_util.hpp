// Helpers shared by the tests of every layer from fibers up.
#pragma once

#include <chrono>

#include "spindle/spindle.hpp"

namespace spindle_test {

// join() of a cancelled fiber rethrows Cancelled; true if it did.
template <class T>
bool ended_cancelled(spindle::Fiber<T>& f) {
  try {
    f.join();
  } catch (const spindle::Cancelled&) {
    return true;
  }
  return false;
}

// Sleeps (in a fiber) in short steps until `done()` holds or `limit` has
// passed, and returns done(). For what another fiber, thread or the kernel
// makes true soon: a fixed short sleep fails on a loaded machine (or with a
// sidecar thread in the way); the generous limit does not, and a condition
// that holds ends the wait at once.
template <class Pred>
bool eventually(Pred done, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    spindle::sleep(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace spindle_test
