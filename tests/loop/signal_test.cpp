// Loop::signal: signalfd delivery, fan-out, coalescing, mask restore; on the
// backend SPINDLE_BACKEND names.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#include "alloc_counter.hpp"
#include "loop_test_util.hpp"
#include "spindle/loop/signal.hpp"

namespace {

using namespace spindle_test;
using spindle::Loop;
using spindle::SignalEvent;
using spindle::SignalSubscription;

sigset_t current_mask() {
  sigset_t m;
  ::pthread_sigmask(SIG_SETMASK, nullptr, &m);
  return m;
}

bool blocked(int signo) {
  sigset_t m = current_mask();
  return ::sigismember(&m, signo) == 1;
}

bool same_mask(const sigset_t& a, const sigset_t& b) {
  for (int s = 1; s < NSIG; ++s) {
    if (::sigismember(&a, s) != ::sigismember(&b, s)) return false;
  }
  return true;
}

TEST(Signal, RaiseReachesTheSubscriber) {
  Loop loop;
  std::vector<SignalEvent> got;
  SignalSubscription sub = loop.signal(SIGUSR1, [&](const SignalEvent& e) { got.push_back(e); });
  EXPECT_TRUE(blocked(SIGUSR1));
  ::raise(SIGUSR1);
  turn_until(loop, [&] { return !got.empty(); });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].signo, SIGUSR1);
  EXPECT_EQ(got[0].count, 1u);
  EXPECT_EQ(got[0].pid, ::getpid());
  EXPECT_EQ(got[0].code, SI_TKILL);
  sub.remove();
  EXPECT_FALSE(blocked(SIGUSR1));
}

TEST(Signal, KillToTheProcess) {
  Loop loop;
  int calls = 0;
  loop.signal(SIGUSR2, [&](const SignalEvent& e) {
    EXPECT_EQ(e.code, SI_USER);
    ++calls;
  });
  ASSERT_EQ(::kill(::getpid(), SIGUSR2), 0);
  turn_until(loop, [&] { return calls > 0; });
  EXPECT_EQ(calls, 1);
}

TEST(Signal, FanOutToEverySubscriberInOrder) {
  Loop loop;
  std::string log;
  loop.signal(SIGUSR1, [&](const SignalEvent&) { log += "a"; });
  loop.signal(SIGUSR1, [&](const SignalEvent&) { log += "b"; });
  loop.signal(SIGUSR2, [&](const SignalEvent&) { log += "C"; });
  SignalSubscription d = loop.signal(SIGUSR1, [&](const SignalEvent&) { log += "d"; });
  ::raise(SIGUSR1);
  turn_until(loop, [&] { return log.size() >= 3; });
  EXPECT_EQ(log, "abd");
  log.clear();
  d.remove();
  ::raise(SIGUSR2);
  ::raise(SIGUSR1);
  turn_until(loop, [&] { return log.size() >= 3; });
  std::sort(log.begin(), log.end());
  EXPECT_EQ(log, "Cab");
}

TEST(Signal, StandardSignalsCoalesceInTheKernel) {
  Loop loop;
  std::vector<std::uint32_t> counts;
  loop.signal(SIGUSR1, [&](const SignalEvent& e) { counts.push_back(e.count); });
  for (int i = 0; i < 3; ++i) ::raise(SIGUSR1);  // one stays pending
  turn_until(loop, [&] { return !counts.empty(); });
  loop.run_once(10ms);
  EXPECT_EQ(counts, (std::vector<std::uint32_t>{1}));
}

TEST(Signal, QueuedRealTimeSignalsAreCountedInOneCall) {
  Loop loop;
  std::vector<std::uint32_t> counts;
  int rt = SIGRTMIN + 1;
  loop.signal(rt, [&](const SignalEvent& e) { counts.push_back(e.count); });
  for (int i = 0; i < 5; ++i) ::raise(rt);  // real-time signals queue
  turn_until(loop, [&] { return !counts.empty(); });
  loop.run_once(10ms);
  EXPECT_EQ(counts, (std::vector<std::uint32_t>{5}));
}

TEST(Signal, RemovingTheLastSubscriberRestoresTheExactMask) {
  sigset_t usr2;
  ::sigemptyset(&usr2);
  ::sigaddset(&usr2, SIGUSR2);
  ::pthread_sigmask(SIG_BLOCK, &usr2, nullptr);  // blocked before: must stay blocked
  sigset_t before = current_mask();
  {
    Loop loop;
    SignalSubscription a = loop.signal(SIGUSR1, [](const SignalEvent&) {});
    SignalSubscription b = loop.signal(SIGUSR1, [](const SignalEvent&) {});
    SignalSubscription c = loop.signal(SIGUSR2, [](const SignalEvent&) {});
    loop.signal(SIGHUP, [](const SignalEvent&) {});
    EXPECT_TRUE(blocked(SIGUSR1));
    EXPECT_TRUE(blocked(SIGHUP));
    a.remove();
    EXPECT_TRUE(blocked(SIGUSR1));  // b still wants it
    b.remove();
    b.remove();  // idempotent
    EXPECT_FALSE(blocked(SIGUSR1));
    c.remove();
    EXPECT_TRUE(blocked(SIGUSR2));  // as found
    // SIGHUP's subscription ends with the loop.
  }
  EXPECT_TRUE(same_mask(current_mask(), before));
  ::pthread_sigmask(SIG_UNBLOCK, &usr2, nullptr);
}

TEST(Signal, TwoLoopsOnOneThreadShareTheBlock) {
  Loop one, two;
  SignalSubscription a = one.signal(SIGUSR1, [](const SignalEvent&) {});
  SignalSubscription b = two.signal(SIGUSR1, [](const SignalEvent&) {});
  a.remove();
  EXPECT_TRUE(blocked(SIGUSR1));  // the other loop still reads it
  b.remove();
  EXPECT_FALSE(blocked(SIGUSR1));
}

TEST(Signal, PendingDeliveriesAreDiscardedNotDeliveredTheOldWay) {
  Loop loop;
  SignalSubscription sub = loop.signal(SIGUSR1, [](const SignalEvent&) {});
  ::raise(SIGUSR1);  // pending, never read
  sub.remove();      // unblocking must not kill us with it
  EXPECT_FALSE(blocked(SIGUSR1));
  sigset_t pending;
  ::sigpending(&pending);
  EXPECT_EQ(::sigismember(&pending, SIGUSR1), 0);
}

TEST(Signal, RemoveInsideACallback) {
  Loop loop;
  std::string log;
  SignalSubscription a, b, c;
  a = loop.signal(SIGUSR1, [&](const SignalEvent&) {
    log += "a";
    a.remove();  // itself
    b.remove();  // a later one: not called for this delivery
    EXPECT_FALSE(b.active());
  });
  b = loop.signal(SIGUSR1, [&](const SignalEvent&) { log += "b"; });
  c = loop.signal(SIGUSR1, [&](const SignalEvent&) {
    log += "c";
    // Added during a delivery: waits for the next one.
    loop.signal(SIGUSR1, [&](const SignalEvent&) { log += "n"; });
  });
  ::raise(SIGUSR1);
  turn_until(loop, [&] { return !log.empty(); });
  EXPECT_EQ(log, "ac");
  log.clear();
  ::raise(SIGUSR1);
  turn_until(loop, [&] { return log.size() >= 2; });
  EXPECT_EQ(log, "cn");
  c.remove();
}

TEST(Signal, RemovingTheLastSubscriptionLetsRunReturn) {
  Loop loop;
  SignalSubscription sub;
  sub = loop.signal(SIGUSR1, [&](const SignalEvent&) { sub.remove(); });
  loop.after(std::chrono::milliseconds(1), [] { ::raise(SIGUSR1); });
  loop.run();  // returns once nothing is watched
  EXPECT_FALSE(sub.active());
  EXPECT_FALSE(blocked(SIGUSR1));
}

TEST(Signal, BadSignalNumbersAreClearErrors) {
  Loop loop;
  for (int bad : {0, -1, SIGKILL, SIGSTOP, 32, NSIG, 1000}) {
    try {
      loop.signal(bad, [](const SignalEvent&) {});
      FAIL() << "signal " << bad << " did not throw";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EINVAL);
      EXPECT_NE(std::string(e.what()).find("signal " + std::to_string(bad)), std::string::npos)
          << e.what();
    }
  }
  EXPECT_THROW(loop.signal(SIGUSR1, nullptr), std::system_error);
  EXPECT_FALSE(blocked(SIGUSR1));
  EXPECT_FALSE(loop.has_work());
  EXPECT_THROW(spindle::block_signals({SIGUSR1, 0}), std::system_error);
}

TEST(Signal, BlockSignalsHelper) {
  spindle::block_signals({SIGUSR1, SIGUSR2});
  EXPECT_TRUE(blocked(SIGUSR1));
  EXPECT_TRUE(blocked(SIGUSR2));
  {
    Loop loop;
    SignalSubscription s = loop.signal(SIGUSR1, [](const SignalEvent&) {});
    s.remove();
  }
  EXPECT_TRUE(blocked(SIGUSR1));  // it was blocked before the subscription
  sigset_t both;
  ::sigemptyset(&both);
  ::sigaddset(&both, SIGUSR1);
  ::sigaddset(&both, SIGUSR2);
  ::pthread_sigmask(SIG_UNBLOCK, &both, nullptr);
}

TEST(Signal, DispatchAllocatesNothing) {
  Loop loop;
  int calls = 0;
  loop.signal(SIGUSR1, [&](const SignalEvent&) { ++calls; });
  loop.signal(SIGUSR1, [&](const SignalEvent&) { ++calls; });
  ::raise(SIGUSR1);
  turn_until(loop, [&] { return calls >= 2; });  // warm-up
  long before = spindle_test::allocations();
  for (int i = 0; i < 10; ++i) {
    ::raise(SIGUSR1);
    int want = calls + 2;
    while (calls < want) loop.run_once(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(spindle_test::allocations() - before, 0);
}

}  // namespace
