// waitid, futexes shared with OS threads, poll, nop, registered files and
// ring options.
#include <gtest/gtest.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>

#include "io_test_util.hpp"
#include "spindle/spindle.hpp"

namespace {

using namespace std::chrono_literals;
using io_test::bytes;
using io_test::text;

pid_t child_exiting_with(int code, std::chrono::milliseconds after = 0ms) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (after.count() > 0) ::usleep(static_cast<useconds_t>(after.count() * 1000));
    ::_exit(code);
  }
  return pid;
}

TEST(Process, WaitidReportsTheExitStatus) {
  spindle::run([] {
    pid_t pid = child_exiting_with(7, 20ms);
    ASSERT_GT(pid, 0);
    siginfo_t info = spindle::waitid(pid);
    EXPECT_EQ(info.si_pid, pid);
    EXPECT_EQ(info.si_code, CLD_EXITED);
    EXPECT_EQ(info.si_status, 7);
    io_test::expect_errno(
        ECHILD, [&] { spindle::waitid(pid); }, "waitid");
  });
}

TEST(Process, WaitidOnAPidfdAndManyChildrenAtOnce) {
  spindle::run([] {
    constexpr int kChildren = 8;
    std::vector<spindle::Fiber<int>> waiters;
    for (int i = 0; i < kChildren; ++i) {
      pid_t pid = child_exiting_with(i, std::chrono::milliseconds(5 * (kChildren - i)));
      int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
      ASSERT_GE(pidfd, 0);
      waiters.push_back(spindle::spin([pidfd] {
        siginfo_t info = spindle::waitid_pidfd(pidfd);
        ::close(pidfd);
        return info.si_status;
      }));
    }
    for (int i = 0; i < kChildren; ++i) EXPECT_EQ(waiters[static_cast<std::size_t>(i)].join(), i);
  });
}

TEST(Process, WaitidDeadlineAndCancellation) {
  spindle::run([] {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::pause();
      ::_exit(0);
    }
    EXPECT_THROW(spindle::waitid(pid, WEXITED, 20ms), spindle::TimedOut);
    EXPECT_EQ(spindle::nothrow::waitid(pid, WEXITED, 5ms).error(), ETIMEDOUT);
    auto waiter = spindle::spin([pid] { spindle::waitid(pid); });
    spindle::sleep(5ms);
    waiter.cancel();
    EXPECT_THROW(waiter.join(), spindle::Cancelled);
    ::kill(pid, SIGKILL);
    siginfo_t info = spindle::waitid(pid);
    EXPECT_EQ(info.si_code, CLD_KILLED);
    EXPECT_EQ(info.si_status, SIGKILL);
  });
}

TEST(Process, FutexWokenByAThread) {
  spindle::run([] {
    std::atomic<std::uint32_t> word{0};
    EXPECT_FALSE(spindle::futex_wait(word, 1));  // not the expected value: no wait
    std::thread waker([&] {
      std::this_thread::sleep_for(20ms);
      word.store(1);
      ::syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    });
    while (word.load() == 0) spindle::futex_wait(word, 0);
    EXPECT_EQ(word.load(), 1u);
    waker.join();
  });
}

TEST(Process, FutexWakesFibersAndThreads) {
  spindle::run([] {
    std::atomic<std::uint32_t> word{0};
    std::atomic<bool> thread_woke{false};
    std::thread sleeper([&] {
      while (word.load() == 0)
        ::syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, nullptr, nullptr, 0);
      thread_woke = true;
    });
    auto fiber = spindle::spin([&] {
      while (word.load() == 0) spindle::futex_wait(word, 0);
    });
    spindle::sleep(20ms);
    word.store(1);
    int woken = 0;
    for (int i = 0; i < 200 && !(thread_woke.load() && fiber.done()); ++i) {
      woken += spindle::futex_wake(word, 10);
      spindle::sleep(1ms);
    }
    fiber.join();
    sleeper.join();
    EXPECT_TRUE(thread_woke.load());
    EXPECT_GE(woken, 1);
  });
}

TEST(Process, FutexWaitDeadlineAndCancellation) {
  spindle::run([] {
    std::atomic<std::uint32_t> word{0};
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_THROW(spindle::futex_wait(word, 0, 20ms), spindle::TimedOut);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
    EXPECT_EQ(spindle::nothrow::futex_wait(word, 0, 5ms).error(), ETIMEDOUT);
    auto waiter = spindle::spin([&] { spindle::futex_wait(word, 0); });
    spindle::sleep(5ms);
    waiter.cancel();
    EXPECT_THROW(waiter.join(), spindle::Cancelled);
  });
}

TEST(Process, PollWaitsForReadinessWithADeadline) {
  spindle::run([] {
    spindle::Pipe p = spindle::make_pipe();
    EXPECT_NE(spindle::poll(p.write_end, EPOLLOUT) & EPOLLOUT, 0u);
    EXPECT_THROW(spindle::poll(p.read_end, EPOLLIN, 10ms), spindle::TimedOut);
    EXPECT_THROW(spindle::wait_readable(p.read_end, 10ms), spindle::TimedOut);
    EXPECT_EQ(spindle::nothrow::poll(p.read_end, EPOLLIN, 5ms).error(), ETIMEDOUT);
    auto waiter = spindle::spin([&] { return spindle::wait_readable(p.read_end, 1s); });
    spindle::sleep(2ms);
    spindle::write(p.write_end, bytes("r"));
    EXPECT_NE(waiter.join() & EPOLLIN, 0u);
    EXPECT_NE(spindle::wait_writable(p.write_end, 1s) & EPOLLOUT, 0u);
    io_test::close_all({p.read_end, p.write_end});
  });
}

TEST(Process, NopRoundTrips) {
  spindle::run([] {
    for (int i = 0; i < 1000; ++i) spindle::nop();
    EXPECT_TRUE(spindle::nothrow::nop().ok());
  });
}

TEST(Process, ForcedFallbacksAreReported) {
  spindle::run([] {
    spindle::IoMetrics m = spindle::io_metrics();
    const char* env = std::getenv("SPINDLE_IO_FALLBACK");
    if (m.backend != spindle::BackendKind::io_uring) {
      EXPECT_EQ(m.fallbacks, "");
    } else if (env != nullptr && std::string(env) == "all") {
      EXPECT_EQ(m.fallbacks,
                "socket bind listen waitid futex multishot_accept multishot_recv read_multishot "
                "buffer_ring send_bundle");
    }
  });
}

TEST(Process, RegisteredFiles) {
  spindle::Options options;
  options.uring_registered_files = 8;
  spindle::run(
      [] {
        spindle::Pipe p = spindle::make_pipe();
        bool registered = spindle::register_fd(p.read_end) && spindle::register_fd(p.write_end);
        spindle::IoMetrics m = spindle::io_metrics();
        if (io_test::on_uring()) {
          EXPECT_TRUE(registered);
          EXPECT_EQ(m.registered_files, 8u);
          EXPECT_EQ(m.registered_files_used, 2u);
        } else {
          EXPECT_FALSE(registered);
        }
        auto reader = spindle::spin([&] {
          std::byte buf[16];
          return text({buf, spindle::read(p.read_end, buf)});
        });
        spindle::write(p.write_end, bytes("fixed"));
        EXPECT_EQ(reader.join(), "fixed");
        spindle::close(p.write_end);  // unregisters
        std::byte buf[4];
        EXPECT_EQ(spindle::read(p.read_end, buf), 0u);
        spindle::unregister_fd(p.read_end);
        EXPECT_EQ(spindle::io_metrics().registered_files_used, 0u);
        spindle::close(p.read_end);
      },
      options);
}

TEST(Process, SqpollRing) {
  spindle::Options options;
  options.uring_sqpoll = true;
  options.uring_sqpoll_idle_ms = 50;
  spindle::run(
      [] {
        spindle::IoMetrics m = spindle::io_metrics();
        if (io_test::on_uring()) {
          EXPECT_TRUE(m.sqpoll || !m.sqpoll_refused.empty());
        }
        io_test::SocketPair p = io_test::socket_pair();
        auto reader = spindle::spin([&] {
          std::size_t total = 0;
          std::byte buf[4096];
          for (;;) {
            std::size_t n = spindle::recv(p.b, buf);
            if (n == 0) return total;
            total += n;
          }
        });
        std::vector<std::byte> data(1 << 20, std::byte{3});
        spindle::send(p.a, data);
        spindle::shutdown(p.a, SHUT_WR);
        EXPECT_EQ(reader.join(), data.size());
        io_test::close_all({p.a, p.b});
      },
      options);
}

}  // namespace
