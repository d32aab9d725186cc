#include "spindle/context/stack.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "context/sanitizers.hpp"

#ifdef SPINDLE_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace spindle::context {

namespace {

std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

std::size_t round_to_pages(std::size_t n) noexcept {
  std::size_t page = page_size();
  return (n + page - 1) / page * page;
}

}  // namespace

// A context ends with a final switch, so the frames still on its stack never
// return and ASan never unpoisons their redzones. Forget them when the stack
// is given back, or the next context on this stack (or the next mapping at
// this address) trips over them.
void StackPool::forget_frames(const Stack& stack) noexcept {
#ifdef SPINDLE_ASAN
  __asan_unpoison_memory_region(stack.low(), stack.usable_size());
#else
  (void)stack;
#endif
}

// Lives in the top bytes of a cached stack.
struct StackPool::FreeNode {
  FreeNode* next;
  Stack stack;
};

StackPool::StackPool(StackOptions options) : options_(options) {
  options_.size = round_to_pages(options_.size == 0 ? page_size() : options_.size);
}

StackPool::~StackPool() {
  while (free_ != nullptr) {
    FreeNode* node = free_;
    free_ = node->next;
    unmap(node->stack);
  }
}

Stack StackPool::map(std::size_t size, bool guard) {
  std::size_t usable = round_to_pages(size);
  std::size_t guard_size = guard ? page_size() : 0;
  std::size_t total = usable + guard_size;
  void* p = ::mmap(nullptr, total, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (p == MAP_FAILED) {
    throw std::system_error(errno, std::system_category(), "spindle: mmap fiber stack");
  }
  if (guard_size != 0 && ::mprotect(p, guard_size, PROT_NONE) != 0) {
    int err = errno;
    ::munmap(p, total);
    throw std::system_error(err, std::system_category(),
                            err == ENOMEM ? "spindle: mprotect fiber stack guard page "
                                            "(vm.max_map_count reached?)"
                                          : "spindle: mprotect fiber stack guard page");
  }
  return Stack{static_cast<std::byte*>(p), total, guard_size};
}

void StackPool::unmap(Stack stack) noexcept {
  if (!stack) return;
  forget_frames(stack);
  ::munmap(stack.base, stack.mapping_size);
}

Stack StackPool::allocate() {
  if (free_ != nullptr) {
    FreeNode* node = free_;
    free_ = node->next;
    --cached_count_;
    return node->stack;
  }
  return map(options_.size, options_.guard);
}

Stack StackPool::allocate(std::size_t size) {
  if (round_to_pages(size) == options_.size) return allocate();
  return map(size, options_.guard);
}

void StackPool::release(Stack stack) noexcept {
  bool ours = stack.usable_size() == options_.size && (stack.guard_size != 0) == options_.guard;
  if (!ours || cached_count_ >= options_.max_cached) {
    unmap(stack);
    return;
  }
  forget_frames(stack);
  auto* node = reinterpret_cast<FreeNode*>(stack.top() - sizeof(FreeNode));
  node->next = free_;
  node->stack = stack;
  free_ = node;
  ++cached_count_;
}

}  // namespace spindle::context
