// What the test build can afford.
#pragma once

namespace spindle_test {

#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif
#else
inline constexpr bool kThreadSanitizer = false;
#endif

// TSan tracks every fiber as a thread and dies past 8,128 of them: tests
// that keep more fibers alive than that use this many under TSan.
inline constexpr int fibers_alive(int wanted) {
  return kThreadSanitizer && wanted > 4000 ? 4000 : wanted;
}

}  // namespace spindle_test
