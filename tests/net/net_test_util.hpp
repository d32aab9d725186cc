// Helpers shared by the net tests.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "io/io_test_util.hpp"
#include "spindle/spindle.hpp"

namespace net_test {

using io_test::bytes;
using io_test::expect_errno;
using io_test::text;

// A listener whose accept queue is full, so that the kernel drops further
// SYNs and a connect to it hangs (until its deadline): backlog 0 holds one
// connection, which `filler` makes and never accepts.
struct HangingListener {
  spindle::TcpListener listener;
  spindle::TcpStream filler;
  spindle::SocketAddress address;
};
inline HangingListener hanging_listener(const spindle::SocketAddress& where) {
  HangingListener h;
  spindle::ListenOptions o;
  o.backlog = 0;
  h.listener = spindle::TcpListener::bind(where, o);
  h.address = h.listener.local_address();
  h.filler = spindle::TcpStream::connect(h.address, std::chrono::seconds(10));
  return h;
}

// Fills the descriptor table: lowers the soft RLIMIT_NOFILE to a little
// above the highest descriptor in use and dups until EMFILE. The
// destructor closes the fillers and restores the limit.
class FdTableFiller {
 public:
  FdTableFiller() {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    int probe = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    rlimit low = saved_;
    low.rlim_cur = static_cast<rlim_t>(probe) + 8;
    ::setrlimit(RLIMIT_NOFILE, &low);
    fds_.push_back(probe);
    for (;;) {
      int fd = ::fcntl(probe, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) break;
      fds_.push_back(fd);
    }
  }
  FdTableFiller(const FdTableFiller&) = delete;
  FdTableFiller& operator=(const FdTableFiller&) = delete;
  ~FdTableFiller() { release(); }
  void release() {
    for (int fd : fds_) ::close(fd);
    fds_.clear();
    ::setrlimit(RLIMIT_NOFILE, &saved_);
  }

 private:
  rlimit saved_{};
  std::vector<int> fds_;
};

}  // namespace net_test
