// Signals as fiber calls: wait_signal, SignalWatch, on_signal.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <vector>

#include "spindle/spindle.hpp"

namespace {

using namespace std::chrono_literals;

// Process-directed signals must find every thread but the runtime's
// blocking them (block_signals before any thread starts).
class Signals : public testing::Test {
 protected:
  static void SetUpTestSuite() { spindle::block_signals({SIGUSR1, SIGUSR2, SIGHUP}); }
};

TEST_F(Signals, WaitSignalReturnsTheFirstDelivery) {
  spindle::run([] {
    auto sender = spindle::spin([] {
      spindle::sleep(20ms);
      ::kill(::getpid(), SIGHUP);
    });
    std::optional<spindle::SignalEvent> e = spindle::wait_signal({SIGUSR1, SIGHUP}, 30s);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->signo, SIGHUP);
    EXPECT_EQ(e->pid, ::getpid());
    sender.join();
    EXPECT_FALSE(spindle::wait_signal({SIGUSR1}, 20ms));  // nothing: the deadline
  });
}

TEST_F(Signals, AWatchQueuesDeliveries) {
  spindle::run([] {
    spindle::SignalWatch watch({SIGUSR1, SIGUSR2});
    ::kill(::getpid(), SIGUSR1);
    auto first = watch.next(30s);
    ::kill(::getpid(), SIGUSR2);
    auto second = watch.next(30s);
    ASSERT_TRUE(first && second);
    EXPECT_EQ(first->signo, SIGUSR1);
    EXPECT_EQ(second->signo, SIGUSR2);
    EXPECT_FALSE(watch.next(20ms));
  });
}

TEST_F(Signals, CancelledWhileWaiting) {
  spindle::run([] {
    auto waiter = spindle::spin([] { return spindle::wait_signal({SIGUSR1}); });
    spindle::sleep(10ms);
    waiter.cancel();
    EXPECT_THROW(waiter.join(), spindle::Cancelled);
  });
}

TEST_F(Signals, OnSignalRunsAFiberPerDelivery) {
  spindle::run([] {
    std::vector<int> seen;
    spindle::Event got;
    auto handler = spindle::on_signal({SIGUSR1, SIGUSR2}, [&](const spindle::SignalEvent& e) {
      spindle::sleep(1ms);  // may suspend: it runs in a fiber
      seen.push_back(e.signo);
      got.set();
    });
    for (int signo : {SIGUSR1, SIGUSR2, SIGUSR1}) {
      ::kill(::getpid(), signo);
      EXPECT_TRUE(got.wait_for(30s));
    }
    handler.cancel();
    EXPECT_THROW(handler.join(), spindle::Cancelled);
    EXPECT_EQ(seen, (std::vector<int>{SIGUSR1, SIGUSR2, SIGUSR1}));
  });
}

}  // namespace
