// Counts heap allocations, to prove that hot paths allocate nothing.
// Include from exactly one file of a test program: it replaces the global
// operator new of the whole program.
#pragma once

#include <atomic>
#include <cstdlib>
#include <new>

namespace spindle_test {

inline std::atomic<long> g_allocations{0};

// The number of operator new calls since the program started.
inline long allocations() {
  return g_allocations.load(std::memory_order_relaxed);
}

}  // namespace spindle_test

void* operator new(std::size_t size) {
  spindle_test::g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
  return operator new(size);
}
#if defined(__GNUC__) && !defined(__clang__)
// Our operator new is malloc, so free is the matching release.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
