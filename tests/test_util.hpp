// Helpers shared by the tests of every layer from fibers up.
#pragma once

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

}  // namespace spindle_test
