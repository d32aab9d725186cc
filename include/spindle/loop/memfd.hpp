// Sealed shared memory for passing large messages between processes.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace spindle {

// A memfd (memfd_create) mapped into this process. The writer creates it,
// fills it and seals it; the seals (no write, no grow, no shrink, no more
// seals) make it immutable, so a receiver that checks them may read it in
// place without copying or fearing changes under its feet. Pass fd() to
// another process over a Unix socket (send_fd) or by fork; the receiver
// adopts it with MemFd::open. Descriptors are O_CLOEXEC. Errors are
// std::system_error naming the call.
class MemFd {
 public:
  MemFd() noexcept = default;
  ~MemFd();
  MemFd(MemFd&& other) noexcept;
  MemFd& operator=(MemFd&& other) noexcept;
  MemFd(const MemFd&) = delete;
  MemFd& operator=(const MemFd&) = delete;

  // A writable memfd of `size` bytes (zeros), mapped read-write, unsealed.
  static MemFd create(std::string_view name, std::size_t size);
  // A memfd holding a copy of `data`, sealed.
  static MemFd from(std::string_view name, std::span<const std::byte> data);
  static MemFd from(std::string_view name, std::string_view data);
  // Takes ownership of `fd` (received from another process), checks that it
  // is a memfd sealed against writing, growing and shrinking, and maps it
  // read-only. Throws std::system_error (EPERM "... is not sealed") and
  // closes `fd` otherwise.
  static MemFd open(int fd);

  // Seals it: write, grow, shrink, and further sealing are refused from now
  // on, in every process. The writable mapping is replaced by a read-only one.
  void seal();

  int fd() const noexcept { return fd_; }
  std::size_t size() const noexcept { return size_; }
  bool sealed() const noexcept { return sealed_; }
  bool valid() const noexcept { return fd_ >= 0; }
  // The mapped contents; writable only before seal().
  std::span<std::byte> writable();
  std::span<const std::byte> bytes() const noexcept {
    return {static_cast<const std::byte*>(data_), size_};
  }
  std::string_view view() const noexcept { return {static_cast<const char*>(data_), size_}; }

 private:
  void reset() noexcept;
  int fd_ = -1;
  void* data_ = nullptr;
  std::size_t size_ = 0;
  bool sealed_ = false;
};

// Sends a descriptor over a Unix socket (SCM_RIGHTS, one byte of payload).
// Throws std::system_error ("send_fd").
void send_fd(int socket, int fd);
// Receives one; the new descriptor is O_CLOEXEC. Throws std::system_error
// ("receive_fd"; ECONNRESET if the peer closed without sending).
int receive_fd(int socket);

}  // namespace spindle
