// Buffer rings: io_uring provided-buffer rings, or the same buffers handed
// out in user space.
#include "spindle/io/buffer_ring.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "io/io_internal.hpp"

namespace spindle {

using namespace io_detail;

namespace {

std::size_t page_round(std::size_t n) {
  std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return (n + page - 1) / page * page;
}

void* map(std::size_t bytes, const char* what) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::system_error(errno, std::system_category(), what);
  return p;
}

io_uring_buf_ring* as_ring(void* p) noexcept {
  return static_cast<io_uring_buf_ring*>(p);
}

}  // namespace

BufferRing::BufferRing(std::size_t count, std::size_t size, Use use)
    : count_(count), size_(size), use_(use) {
  if (count == 0 || count > 32768 || (count & (count - 1)) != 0) {
    throw std::invalid_argument("spindle::BufferRing: count must be a power of two up to 32768");
  }
  if (size == 0 || size > (1u << 30)) {
    throw std::invalid_argument("spindle::BufferRing: size must be 1 byte to 1 GiB");
  }
  Scheduler& s = Scheduler::require("BufferRing");
  if (s.running() == nullptr) throw std::logic_error("spindle::BufferRing made outside a fiber");
  State& st = state_of(s);
  owner_ = &s;
  data_bytes_ = page_round(count * size);
  data_ = static_cast<std::byte*>(map(data_bytes_, "BufferRing: mmap"));
  bool kernel = st.uring != nullptr && native(Feature::buffer_ring, *st.uring) &&
                (use == Use::receive || native(Feature::send_bundle, *st.uring));
  if (kernel) {
    ring_bytes_ = page_round(count * sizeof(io_uring_buf));
    ring_ = map(ring_bytes_, "BufferRing: mmap");
    std::uint16_t group;
    if (!st.free_groups.empty()) {
      group = st.free_groups.back();
      st.free_groups.pop_back();
    } else {
      group = st.next_group++;
    }
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(ring_);
    reg.ring_entries = static_cast<std::uint32_t>(count);
    reg.bgid = group;
    if (io_uring_register_buf_ring(&st.uring->ring(), &reg, 0) == 0) {
      group_ = group;
      io_uring_buf_ring_init(as_ring(ring_));
    } else {
      st.free_groups.push_back(group);  // an older kernel: buffers in user space
      ::munmap(ring_, ring_bytes_);
      ring_ = nullptr;
    }
  }
  if (use == Use::receive && kernel_managed()) {
    int mask = io_uring_buf_ring_mask(static_cast<std::uint32_t>(count));
    for (std::size_t id = 0; id < count; ++id) {
      io_uring_buf_ring_add(as_ring(ring_), data_ + id * size, static_cast<unsigned>(size),
                            static_cast<unsigned short>(id), mask, static_cast<int>(id));
    }
    io_uring_buf_ring_advance(as_ring(ring_), static_cast<int>(count));
  } else {
    free_.reserve(count);
    for (std::size_t id = count; id-- > 0;) free_.push_back(static_cast<std::uint16_t>(id));
  }
}

BufferRing::~BufferRing() {
  if (group_ != 0) {
    // Unregister only on the runtime that owns it; once that runtime is
    // gone, its ring (and the registration) went with it.
    Scheduler* s = Scheduler::current();
    if (s == owner_ && s != nullptr) {
      State& st = state_of(*s);
      io_uring_unregister_buf_ring(&st.uring->ring(), group_);
      try {
        st.free_groups.push_back(group_);
      } catch (...) {
      }
    }
  }
  if (ring_ != nullptr) ::munmap(ring_, ring_bytes_);
  if (data_ != nullptr) ::munmap(data_, data_bytes_);
}

void BufferRing::give_to_kernel(std::uint16_t id, std::size_t length) noexcept {
  io_uring_buf_ring_add(as_ring(ring_), buffer(id).data(), static_cast<unsigned>(length), id,
                        io_uring_buf_ring_mask(static_cast<std::uint32_t>(count_)), 0);
  io_uring_buf_ring_advance(as_ring(ring_), 1);
}

void BufferRing::recycle(std::uint16_t id) noexcept {
  if (use_ == Use::receive && kernel_managed()) {
    give_to_kernel(id, size_);
  } else {
    free_.push_back(id);  // never grows past count_: reserved
  }
  if (outstanding_ > 0) --outstanding_;
  if (!waiters_.empty()) {
    detail::FiberControl* f = waiters_.back();
    waiters_.pop_back();
    owner(f)->schedule(f);
  }
}

void BufferRing::release_sent(std::uint16_t id) noexcept {
  recycle(id);
}

int BufferRing::take() noexcept {
  if (free_.empty()) return -1;
  std::uint16_t id = free_.back();
  free_.pop_back();
  ++outstanding_;
  return id;
}

void BufferRing::wait_for_recycle() {
  Scheduler& s = Scheduler::require("BufferRing");
  detail::FiberControl* f = s.running();
  Scheduler::checkpoint(f);
  waiters_.push_back(f);
  struct Hook : detail::WaitHook {
    BufferRing* ring;
    detail::FiberControl* fiber;
  } hook;
  hook.ring = this;
  hook.fiber = f;
  hook.interrupt = [](detail::WaitHook* h) noexcept {
    auto* self = static_cast<Hook*>(h);
    auto& w = self->ring->waiters_;
    w.erase(std::remove(w.begin(), w.end(), self->fiber), w.end());
    owner(self->fiber)->schedule(self->fiber);
  };
  s.park_interruptible(detail::WaitKind::io, &hook);
  Scheduler::checkpoint(f);
}

bool BufferRing::push(std::span<const std::byte> data) {
  if (use_ != Use::send) throw std::logic_error("spindle::BufferRing::push on a receive ring");
  std::size_t pieces = (data.size() + size_ - 1) / size_;
  if (pieces > free_.size()) return false;
  queued_.reserve(count_);
  while (!data.empty()) {
    std::size_t n = std::min(size_, data.size());
    auto id = static_cast<std::uint16_t>(take());
    std::memcpy(buffer(id).data(), data.data(), n);
    queued_.push_back({id, static_cast<std::uint32_t>(n), 0});
    queued_bytes_ += n;
    if (kernel_managed()) give_to_kernel(id, n);
    data = data.subspan(n);
  }
  return true;
}

}  // namespace spindle
