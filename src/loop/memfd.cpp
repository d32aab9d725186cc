// MemFd: memfd_create, fill, F_ADD_SEALS; and descriptor passing.
#include "spindle/loop/memfd.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

namespace spindle {

namespace {

constexpr int kSeals = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK;

[[noreturn]] void fail(int err, const std::string& what) {
  throw std::system_error(err, std::system_category(), what);
}

void* map(int fd, std::size_t size, int prot, const char* what) {
  if (size == 0) return nullptr;
  void* p = ::mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) fail(errno, what);
  return p;
}

// One byte of data with room for one descriptor in the control data: what
// send_fd() sends and receive_fd() takes. It points into itself, so it
// neither copies nor moves.
struct FdMessage {
  char byte = 'F';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};

  FdMessage() {
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
  }
  FdMessage(const FdMessage&) = delete;
  FdMessage& operator=(const FdMessage&) = delete;
};

}  // namespace

MemFd::~MemFd() {
  reset();
}

MemFd::MemFd(MemFd&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      sealed_(std::exchange(other.sealed_, false)) {}

MemFd& MemFd::operator=(MemFd&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = std::exchange(other.fd_, -1);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    sealed_ = std::exchange(other.sealed_, false);
  }
  return *this;
}

void MemFd::reset() noexcept {
  if (data_ != nullptr) ::munmap(data_, size_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  data_ = nullptr;
  size_ = 0;
  sealed_ = false;
}

MemFd MemFd::create(std::string_view name, std::size_t size) {
  std::string n(name);
  MemFd m;
  m.fd_ = ::memfd_create(n.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (m.fd_ < 0) fail(errno, "memfd_create " + n);
  if (::ftruncate(m.fd_, static_cast<off_t>(size)) != 0) {
    fail(errno, "ftruncate memfd " + n + " to " + std::to_string(size) + " bytes");
  }
  m.size_ = size;
  m.data_ = map(m.fd_, size, PROT_READ | PROT_WRITE, "mmap memfd");
  return m;
}

MemFd MemFd::from(std::string_view name, std::span<const std::byte> data) {
  MemFd m = create(name, data.size());
  if (!data.empty()) std::memcpy(m.data_, data.data(), data.size());
  m.seal();
  return m;
}

MemFd MemFd::from(std::string_view name, std::string_view data) {
  return from(name, std::as_bytes(std::span<const char>(data.data(), data.size())));
}

std::span<std::byte> MemFd::writable() {
  if (fd_ < 0) fail(EBADF, "memfd writable: no memfd");
  if (sealed_) fail(EPERM, "memfd writable: sealed");
  return {static_cast<std::byte*>(data_), size_};
}

void MemFd::seal() {
  if (fd_ < 0) fail(EBADF, "memfd seal: no memfd");
  if (sealed_) return;
  // F_SEAL_WRITE is refused while a writable shared mapping exists.
  if (data_ != nullptr) {
    ::munmap(data_, size_);
    data_ = nullptr;
  }
  if (::fcntl(fd_, F_ADD_SEALS, kSeals | F_SEAL_SEAL) != 0) {
    int err = errno;
    data_ = map(fd_, size_, PROT_READ | PROT_WRITE, "mmap memfd");
    fail(err, "fcntl(F_ADD_SEALS) memfd");
  }
  data_ = map(fd_, size_, PROT_READ, "mmap memfd");
  sealed_ = true;
}

MemFd MemFd::open(int fd) {
  MemFd m;
  m.fd_ = fd;  // owned from here on: closed if anything below throws
  std::string what = "memfd open fd " + std::to_string(fd);
  if (fd < 0) {
    m.fd_ = -1;
    fail(EBADF, what);
  }
  int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0) fail(errno == EINVAL ? EPERM : errno, what + ": not a sealable memfd");
  if ((seals & kSeals) != kSeals) fail(EPERM, what + ": not sealed against write, grow and shrink");
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail(errno, what + ": fstat");
  m.size_ = static_cast<std::size_t>(st.st_size);
  m.data_ = map(fd, m.size_, PROT_READ, "mmap memfd");
  m.sealed_ = true;
  return m;
}

void send_fd(int socket, int fd) {
  FdMessage m;
  cmsghdr* cmsg = CMSG_FIRSTHDR(&m.msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  ssize_t n;
  do {
    n = ::sendmsg(socket, &m.msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) fail(errno, "send_fd " + std::to_string(fd));
}

int receive_fd(int socket) {
  FdMessage m;
  ssize_t n;
  do {
    n = ::recvmsg(socket, &m.msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) fail(errno, "receive_fd");
  if (n == 0) fail(ECONNRESET, "receive_fd: the peer closed the socket");
  cmsghdr* cmsg = CMSG_FIRSTHDR(&m.msg);
  if (cmsg == nullptr || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) {
    fail(EBADMSG, "receive_fd: no descriptor came with the message");
  }
  int fd;
  std::memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
  if ((m.msg.msg_flags & MSG_CTRUNC) != 0) {
    ::close(fd);
    fail(EBADMSG, "receive_fd: control data truncated");
  }
  return fd;
}

}  // namespace spindle
