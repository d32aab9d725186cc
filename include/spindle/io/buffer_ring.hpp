// Buffer rings: a set of equal buffers that the kernel picks from as data
// arrives (io_uring provided-buffer rings), for recv_loop / read_loop, or
// that queue data for send_bundle.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace spindle {

namespace detail {
struct FiberControl;
}

class BufferRing {
 public:
  enum class Use : std::uint8_t {
    receive,  // recv_loop / read_loop: every buffer starts free for the kernel
    send,     // send_bundle: buffers carry queued data (push), empty at first
  };

  // `count` buffers of `size` bytes each; count is a power of two up to
  // 32768. Must be made in a fiber: on io_uring (when the kernel has
  // buffer rings, 5.19) the ring is registered with the fiber's runtime and
  // belongs to it; destroy it there, after the loops using it returned.
  // Elsewhere (epoll, older kernels, SPINDLE_IO_FALLBACK=buffer_ring) the
  // same buffers are handed out in user space. Throws std::invalid_argument
  // for a bad count or size, std::system_error if memory or registration
  // fails, std::logic_error outside a fiber.
  BufferRing(std::size_t count, std::size_t size, Use use = Use::receive);
  ~BufferRing();
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;

  std::size_t count() const noexcept { return count_; }
  std::size_t size() const noexcept { return size_; }
  Use use() const noexcept { return use_; }
  // The io_uring buffer group id (0 when not registered).
  std::uint16_t group() const noexcept { return group_; }
  // Whether the kernel picks the buffers (a registered io_uring ring).
  bool kernel_managed() const noexcept { return group_ != 0; }
  // Buffers not handed out (receive) / not holding queued data (send).
  std::size_t available() const noexcept { return count_ - outstanding_; }

  std::span<std::byte> buffer(std::uint16_t id) noexcept {
    return {data_ + static_cast<std::size_t>(id) * size_, size_};
  }
  // Gives buffer `id` back (a receive ring: to the kernel, or to the free
  // list). The loops do this when the callback returns.
  void recycle(std::uint16_t id) noexcept;

  // Send rings: copies `data` into free buffers (several if it is larger
  // than size()) queued for the next send_bundle. Returns false, queuing
  // nothing, when there are not enough free buffers (the limit on what a
  // ring may hold).
  bool push(std::span<const std::byte> data);
  std::size_t queued_bytes() const noexcept { return queued_bytes_; }

  // For the io layer's loops.
  struct Queued {
    std::uint16_t id;
    std::uint32_t length;
    std::uint32_t sent;  // bytes of it already sent
  };
  std::vector<Queued>& queued() noexcept { return queued_; }
  // Takes a free buffer in user space (-1: none free).
  int take() noexcept;
  // The kernel handed out buffer `id` (a CQE carried it).
  void handed_out() noexcept { ++outstanding_; }
  // The running fiber waits until a buffer is recycled (interruptible).
  void wait_for_recycle();
  void release_sent(std::uint16_t id) noexcept;
  void sent_bytes(std::size_t n) noexcept { queued_bytes_ -= n; }

 private:
  void give_to_kernel(std::uint16_t id, std::size_t length) noexcept;

  std::size_t count_;
  std::size_t size_;
  Use use_;
  std::uint16_t group_ = 0;
  std::size_t outstanding_ = 0;
  std::byte* data_ = nullptr;
  std::size_t data_bytes_ = 0;
  void* ring_ = nullptr;  // io_uring_buf_ring (mmap'ed)
  std::size_t ring_bytes_ = 0;
  void* owner_ = nullptr;  // the Scheduler it was registered with
  std::vector<std::uint16_t> free_;
  std::vector<Queued> queued_;
  std::size_t queued_bytes_ = 0;
  std::vector<detail::FiberControl*> waiters_;
};

}  // namespace spindle
