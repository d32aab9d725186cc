// Reads, writes and readiness waits from fibers on pipes and files.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "spindle/spindle.hpp"

namespace {

using namespace std::chrono_literals;

std::span<const std::byte> bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

TEST(Ops, PipeRoundTripBetweenFibers) {
  spindle::run([] {
    spindle::Pipe p = spindle::make_pipe();
    auto writer = spindle::spin([&] {
      spindle::sleep(2ms);  // the reader blocks first
      spindle::write(p.write_end, bytes("hello"));
    });
    std::byte buf[16];
    std::size_t n = spindle::read(p.read_end, buf);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), n), "hello");
    writer.join();
    ::close(p.write_end);
    EXPECT_EQ(spindle::read(p.read_end, buf), 0u);  // end of file
    ::close(p.read_end);
  });
}

TEST(Ops, LargeTransferThroughAPipeWithBackpressure) {
  spindle::run([] {
    spindle::Pipe p = spindle::make_pipe();
    std::string data(4 << 20, '\0');
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + 7);
    auto writer = spindle::spin([&] {
      spindle::write(p.write_end, bytes(data));  // far more than the pipe holds
      ::close(p.write_end);
    });
    std::string got;
    std::vector<std::byte> buf(65536);
    for (;;) {
      std::size_t n = spindle::read(p.read_end, buf);
      if (n == 0) break;
      got.append(reinterpret_cast<char*>(buf.data()), n);
    }
    writer.join();
    ::close(p.read_end);
    EXPECT_EQ(got.size(), data.size());
    EXPECT_TRUE(got == data);
  });
}

constexpr int kFibers = 200;
constexpr int kLaps = 20;

TEST(Ops, ManyFibersPassATokenAroundARingOfPipes) {
  spindle::run([] {
    std::vector<spindle::Pipe> pipes;
    for (int i = 0; i < kFibers; ++i) pipes.push_back(spindle::make_pipe());
    std::vector<spindle::Fiber<int>> fibers;
    for (int i = 0; i < kFibers; ++i) {
      fibers.push_back(spindle::spin([&, i] {
        int passes = 0;
        std::byte token[1];
        for (int lap = 0; lap < kLaps; ++lap) {
          if (spindle::read(pipes[i].read_end, token) != 1) return -1;
          token[0] = std::byte(static_cast<unsigned char>(token[0]) + 1);
          spindle::write(pipes[(i + 1) % kFibers].write_end, token);
          ++passes;
        }
        return passes;
      }));
    }
    std::byte start[1] = {std::byte{0}};
    spindle::write(pipes[0].write_end, start);
    for (auto& f : fibers) EXPECT_EQ(f.join(), kLaps);
    std::byte last[1];
    EXPECT_EQ(spindle::read(pipes[0].read_end, last), 1u);
    EXPECT_EQ(static_cast<unsigned>(last[0]), (kFibers * kLaps) % 256u);
    for (auto& p : pipes) {
      ::close(p.read_end);
      ::close(p.write_end);
    }
  });
}

TEST(Ops, RegularFilesReadOnBothBackends) {
  spindle::run([] {
    char path[] = "/tmp/spindle-ops-XXXXXX";
    int fd = ::mkostemp(path, O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ::unlink(path);
    spindle::write(fd, bytes("file contents"));
    ASSERT_EQ(::lseek(fd, 0, SEEK_SET), 0);
    EXPECT_NE(spindle::wait_readable(fd) & EPOLLIN, 0u);  // always ready, like poll(2)
    std::byte buf[64];
    std::size_t n = spindle::read(fd, buf);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), n), "file contents");
    ::close(fd);
  });
}

TEST(Ops, WaitReadableAndWritable) {
  spindle::run([] {
    spindle::Pipe p = spindle::make_pipe();
    EXPECT_NE(spindle::wait_writable(p.write_end) & EPOLLOUT, 0u);
    auto waiter = spindle::spin([&] { return spindle::wait_readable(p.read_end); });
    spindle::yield();
    EXPECT_FALSE(waiter.done());
    std::byte one[1] = {std::byte{1}};
    spindle::write(p.write_end, one);
    EXPECT_NE(waiter.join() & EPOLLIN, 0u);
    // Two fibers may wait on one fd; closing the writer wakes both (HUP).
    std::byte sink[1];
    spindle::read(p.read_end, sink);
    auto a = spindle::spin([&] { return spindle::wait_readable(p.read_end); });
    auto b = spindle::spin([&] { return spindle::wait_readable(p.read_end); });
    spindle::yield();
    ::close(p.write_end);
    EXPECT_NE(a.join() & (EPOLLIN | EPOLLHUP), 0u);
    EXPECT_NE(b.join() & (EPOLLIN | EPOLLHUP), 0u);
    ::close(p.read_end);
  });
}

TEST(Ops, ErrorsNameTheOperationAndFd) {
  spindle::run([] {
    std::byte buf[4];
    try {
      spindle::read(999'999, buf);
      ADD_FAILURE() << "no error";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF);
      EXPECT_NE(std::string(e.what()).find("read fd 999999"), std::string::npos) << e.what();
    }
    EXPECT_EQ(spindle::read_some(999'999, buf), -EBADF);
    spindle::Pipe p = spindle::make_pipe();
    ::close(p.read_end);
    try {
      spindle::write(p.write_end, bytes("x"));
      ADD_FAILURE() << "no EPIPE";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EPIPE);
    }
    ::close(p.write_end);
  });
}

TEST(Ops, WaitOnAWatchedFdIsEBUSY) {
  spindle::run([] {
    spindle::Pipe p = spindle::make_pipe();
    spindle::current_loop().watch(p.read_end, {.read = [](spindle::Watcher&) {}});
    try {
      spindle::wait_readable(p.read_end);
      ADD_FAILURE() << "no EBUSY";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBUSY);
    }
    spindle::current_loop().unwatch(p.read_end);
    ::close(p.read_end);
    ::close(p.write_end);
  });
}

}  // namespace
