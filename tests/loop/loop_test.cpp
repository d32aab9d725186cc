// The watcher contract and one-shot timers, on the backend SPINDLE_BACKEND names.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "alloc_counter.hpp"
#include "loop_test_util.hpp"
#include "spindle/loop/loop.hpp"

namespace {

using namespace spindle_test;

// A callback that counts its calls and unwatches at the first.
auto count_once(int& calls) {
  return [&calls](spindle::Watcher& w) {
    ++calls;
    w.unwatch();
  };
}

// A read callback that reads a byte and sets `eof` when there was none.
auto set_on_eof(bool& eof) {
  return [&eof](spindle::Watcher& w) {
    char c;
    if (::read(w.fd(), &c, 1) == 0) eof = true;
  };
}

// A pipe whose read end `loop` watches and that never becomes ready: keeps
// the loop waiting.
Fds watch_idle_pipe(spindle::Loop& loop) {
  Fds p = make_pipe();
  loop.watch(p.a, {.read = [](spindle::Watcher&) {}});
  return p;
}

TEST(Loop, LevelTriggeredReadRepeatsUntilDrained) {
  spindle::Loop loop;
  Fds p = make_pipe();
  int calls = 0;
  loop.watch(p.a, {.read = [&](spindle::Watcher&) { ++calls; }});
  put(p.b);
  turn_until(loop, [&] { return calls >= 3; });
  EXPECT_GE(calls, 3);  // not drained: reported on every turn
  drain(p.a);
  int seen = calls;
  loop.run_once(20ms);
  EXPECT_EQ(calls, seen);
}

TEST(Loop, EdgeTriggeredReportsOnlyNewData) {
  spindle::Loop loop;
  Fds p = make_pipe();
  int calls = 0;
  loop.watch(p.a, {.read = [&](spindle::Watcher&) { ++calls; }, .edge_triggered = true});
  put(p.b);
  turn_until(loop, [&] { return calls >= 1; });
  loop.run_once(20ms);
  loop.run_once(20ms);
  EXPECT_EQ(calls, 1);  // no drain, no new edge
  put(p.b);
  turn_until(loop, [&] { return calls >= 2; });
  EXPECT_EQ(calls, 2);
}

TEST(Loop, OneshotDisarmsUntilRearmed) {
  spindle::Loop loop;
  Fds p = make_pipe();
  int calls = 0;
  spindle::Watcher w =
      loop.watch(p.a, {.read = [&](spindle::Watcher&) { ++calls; }, .oneshot = true});
  put(p.b);
  turn_until(loop, [&] { return calls >= 1; });
  loop.run_once(20ms);
  EXPECT_EQ(calls, 1);
  w.rearm();
  turn_until(loop, [&] { return calls >= 2; });
  EXPECT_EQ(calls, 2);
}

TEST(Loop, WriteCallbackWhenWritable) {
  spindle::Loop loop;
  Fds p = make_pipe();
  int writes = 0;
  loop.watch(p.b, {.write = count_once(writes)});
  turn_until(loop, [&] { return writes >= 1; });
  EXPECT_EQ(writes, 1);
}

TEST(Loop, HangupIsDeliveredAsRead) {
  spindle::Loop loop;
  Fds p = make_pipe();
  bool eof = false;
  loop.watch(p.a, {.read = set_on_eof(eof)});
  p.close_b();
  turn_until(loop, [&] { return eof; });
  EXPECT_TRUE(eof);
}

TEST(Loop, ShutdownOfThePeerIsDeliveredAsRead) {
  spindle::Loop loop;
  Fds s = make_socketpair();
  bool eof = false;
  loop.watch(s.a, {.read = set_on_eof(eof)});
  ::shutdown(s.b, SHUT_WR);
  turn_until(loop, [&] { return eof; });
  EXPECT_TRUE(eof);
}

TEST(Loop, ErrorGoesToTheErrorCallbackOnly) {
  spindle::Loop loop;
  Fds p = make_pipe();
  p.close_a();  // the write end now reports EPOLLERR
  int errors = 0, writes = 0;
  loop.watch(p.b, {.write = [&](spindle::Watcher&) { ++writes; }, .error = count_once(errors)});
  turn_until(loop, [&] { return errors >= 1; });
  EXPECT_EQ(errors, 1);
  EXPECT_EQ(writes, 0);
}

TEST(Loop, ErrorWithoutErrorCallbackIsReadAndWrite) {
  spindle::Loop loop;
  Fds p = make_pipe();
  p.close_a();
  int writes = 0;
  loop.watch(p.b, {.write = count_once(writes)});
  turn_until(loop, [&] { return writes >= 1; });
  EXPECT_EQ(writes, 1);
}

TEST(Loop, FailedConnectReportsError) {
  spindle::Loop loop;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(1);  // nothing listens on port 1 of loopback
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ASSERT_TRUE(rc == 0 || errno == EINPROGRESS || errno == ECONNREFUSED);
  int errors = 0;
  loop.watch(fd, {.write = [&](spindle::Watcher&) {},
                  .error =
                      [&](spindle::Watcher& w) {
                        int err = 0;
                        socklen_t len = sizeof(err);
                        ::getsockopt(w.fd(), SOL_SOCKET, SO_ERROR, &err, &len);
                        EXPECT_EQ(err, ECONNREFUSED);
                        ++errors;
                        w.unwatch();
                      }});
  turn_until(loop, [&] { return errors >= 1; });
  EXPECT_EQ(errors, 1);
  ::close(fd);
}

TEST(Loop, DispatchOrderIsReadThenWrite) {
  spindle::Loop loop;
  Fds s = make_socketpair();
  put(s.b);
  std::string order;
  loop.watch(s.a, {.read = [&](spindle::Watcher&) { order += "r"; },
                   .write =
                       [&](spindle::Watcher& w) {
                         order += "w";
                         w.unwatch();
                       }});
  turn_until(loop, [&] { return order.size() >= 2; });
  EXPECT_EQ(order.substr(0, 2), "rw");
}

TEST(Loop, UnwatchInsideReadSuppressesWriteOfTheSameEvent) {
  spindle::Loop loop;
  Fds s = make_socketpair();
  put(s.b);  // readable and writable at once
  int reads = 0, writes = 0;
  loop.watch(s.a, {.read =
                       [&](spindle::Watcher& w) {
                         ++reads;
                         w.unwatch();
                         EXPECT_FALSE(w.active());
                       },
                   .write = [&](spindle::Watcher&) { ++writes; }});
  turn_until(loop, [&] { return reads >= 1; });
  loop.run_once(20ms);
  EXPECT_EQ(reads, 1);
  EXPECT_EQ(writes, 0);
}

TEST(Loop, UnwatchingAnotherReadyFdDropsItsFetchedEvent) {
  spindle::Loop loop;
  Fds p1 = make_pipe();
  Fds p2 = make_pipe();
  put(p1.b);
  put(p2.b);
  int first = 0, second = 0;
  // Whichever fires first unwatches the other: both events were fetched in
  // the same round, so exactly one callback may run.
  loop.watch(p1.a, {.read = [&](spindle::Watcher&) {
               ++first;
               loop.unwatch(p2.a);
               loop.unwatch(p1.a);
             }});
  loop.watch(p2.a, {.read = [&](spindle::Watcher&) {
               ++second;
               loop.unwatch(p1.a);
               loop.unwatch(p2.a);
             }});
  turn_until(loop, [&] { return first + second >= 1; });
  loop.run_once(20ms);
  EXPECT_EQ(first + second, 1);
}

TEST(Loop, ClosedAndReusedFdNumberNeverReachesTheNewWatcher) {
  spindle::Loop loop;
  Fds p1 = make_pipe();
  Fds p2 = make_pipe();
  put(p1.b);
  put(p2.b);  // both ready: both events are fetched in the same round
  int killers = 0, new_calls = 0;
  int victim = -1;
  Fds fresh;
  // Whichever is dispatched first unwatches and closes the other, then
  // opens an empty pipe (which takes the lowest free number: the victim's)
  // and watches it. The victim's fetched event must not reach it.
  auto cb = [&](spindle::Watcher& w) {
    ++killers;
    if (victim != -1) return;
    victim = w.fd() == p1.a ? p2.a : p1.a;
    loop.unwatch(victim);
    ::close(victim);
    fresh = make_pipe();
    EXPECT_EQ(fresh.a, victim) << "the fd number was not reused; the test proves less";
    loop.watch(fresh.a, {.read = [&](spindle::Watcher&) { ++new_calls; }});
    loop.unwatch(w.fd());
  };
  loop.watch(p1.a, {.read = cb});
  loop.watch(p2.a, {.read = cb});
  turn_until(loop, [&] { return killers >= 1; });
  loop.run_once(20ms);
  loop.run_once(20ms);
  EXPECT_EQ(killers, 1);
  EXPECT_EQ(new_calls, 0);  // the new pipe is empty: any call was a stale event
  if (victim == p1.a) p1.a = -1;
  if (victim == p2.a) p2.a = -1;
  if (fresh.a == victim) {
    // fresh owns the reused number now; nothing else closes it.
  }
}

TEST(Loop, WatchReplacesAndUnwatchIsIdempotent) {
  spindle::Loop loop;
  Fds p = make_pipe();
  int a = 0, b = 0;
  spindle::Watcher first = loop.watch(p.a, {.read = [&](spindle::Watcher&) { ++a; }});
  spindle::Watcher second = loop.watch(p.a, {.read =
                                                 [&](spindle::Watcher& w) {
                                                   ++b;
                                                   w.unwatch();
                                                 },
                                             .data = &b});
  EXPECT_FALSE(first.active());
  EXPECT_TRUE(second.active());
  EXPECT_EQ(second.data(), &b);
  EXPECT_EQ(first.data(), nullptr);
  put(p.b);
  turn_until(loop, [&] { return b >= 1; });
  EXPECT_EQ(a, 0);
  EXPECT_EQ(b, 1);
  loop.unwatch(p.a);
  loop.unwatch(p.a);
  loop.unwatch(12345);  // never watched: silently nothing
  first.unwatch();
  EXPECT_FALSE(second.active());
}

TEST(Loop, ReplacingItsOwnWatcherInsideTheCallback) {
  spindle::Loop loop;
  Fds p = make_pipe();
  int first = 0, second = 0;
  loop.watch(p.a, {.read = [&](spindle::Watcher& w) {
               ++first;
               std::string big(200, 'x');  // captured state outlives the swap
               loop.watch(w.fd(), {.read = [&, big](spindle::Watcher& w2) {
                            ++second;
                            EXPECT_EQ(big.size(), 200u);
                            drain(w2.fd());
                            w2.unwatch();
                          }});
             }});
  put(p.b);
  turn_until(loop, [&] { return second >= 1; });
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 1);
}

TEST(Loop, WatchingABadFdIsAClearError) {
  spindle::Loop loop;
  EXPECT_THROW(loop.watch(-1, {.read = [](spindle::Watcher&) {}}), std::system_error);
}

// A batch of ready watchers is one turn. On io_uring with DEFER_TASKRUN the
// kernel posts only about 20 deferred completions per entry (Linux 6.13
// on): the backend must fetch the rest in the same wait().
TEST(Loop, AHundredReadyWatchersAreDispatchedInOneTurn) {
  spindle::Loop loop;
  std::vector<Fds> pairs;
  for (int i = 0; i < 100; ++i) pairs.push_back(make_socketpair());
  int calls = 0;
  for (auto& p : pairs) {
    loop.watch(p.a, {.read = [&calls](spindle::Watcher& w) {
                 ++calls;
                 drain(w.fd());
               }});
  }
  loop.run_once(0ms);  // the polls are armed (io_uring), nothing is ready
  EXPECT_EQ(calls, 0);
  for (auto& p : pairs) put(p.b);  // each write queues the kernel's wake-up work
  loop.run_once(10s);
  EXPECT_EQ(calls, 100);
}

TEST(Loop, DispatchAllocatesNothing) {
  spindle::Loop loop;
  std::vector<Fds> pipes;
  for (int i = 0; i < 50; ++i) pipes.push_back(make_pipe());
  int calls = 0;
  for (auto& p : pipes) {
    loop.watch(p.a, {.read = [&calls](spindle::Watcher& w) {
                 ++calls;
                 char buf[16];
                 while (::read(w.fd(), buf, sizeof(buf)) > 0) {
                 }
               }});
  }
  for (auto& p : pipes) put(p.b);
  turn_until(loop, [&] { return calls >= 50; });  // warm-up round
  for (auto& p : pipes) put(p.b);
  long before = spindle_test::allocations();
  int target = calls + 50;
  while (calls < target) loop.run_once(100ms);
  long after = spindle_test::allocations();
  EXPECT_EQ(after - before, 0);
  EXPECT_GE(loop.stats().events_dispatched, 100u);
}

TEST(LoopTimers, FireInDeadlineOrderAndNeverEarly) {
  spindle::Loop loop;
  std::vector<int> fired;
  auto start = std::chrono::steady_clock::now();
  for (int ms : {30, 10, 20}) {
    loop.after(std::chrono::milliseconds(ms), [&, ms] {
      EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(ms));
      fired.push_back(ms);
    });
  }
  loop.run();
  EXPECT_EQ(fired, (std::vector<int>{10, 20, 30}));
  EXPECT_EQ(loop.stats().timers_fired, 3u);
}

TEST(LoopTimers, EqualDeadlinesFireInTheOrderSet) {
  spindle::Loop loop;
  std::vector<int> fired;
  auto when = std::chrono::steady_clock::now() + 5ms;
  for (int i = 0; i < 10; ++i) loop.at(when, [&, i] { fired.push_back(i); });
  loop.run();
  EXPECT_EQ(fired, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(LoopTimers, AfterZeroNeverRunsInline) {
  spindle::Loop loop;
  int turns_seen = 0;
  bool fired = false;
  loop.after(0ms, [&] {
    // A zero timer set from a timer callback waits for the next turn.
    loop.after(0ms, [&] { fired = true; });
    turns_seen = static_cast<int>(loop.stats().turns);
  });
  EXPECT_FALSE(fired);
  loop.run_once(0ms);
  EXPECT_FALSE(fired);
  loop.run_once(0ms);
  EXPECT_TRUE(fired);
  EXPECT_EQ(turns_seen, 1);
}

TEST(LoopTimers, CancelBeforeAndInsideCallbacks) {
  spindle::Loop loop;
  bool a = false, b = false;
  spindle::Timer ta = loop.after(5ms, [&] { a = true; });
  spindle::Timer tb;
  spindle::Timer self;
  bool self_cancel = true;
  self = loop.after(1ms, [&] {
    self_cancel = loop.cancel(self);  // its own: already fired
    EXPECT_TRUE(loop.cancel(tb));     // another, still pending
  });
  tb = loop.after(10ms, [&] { b = true; });
  EXPECT_TRUE(loop.cancel(ta));
  EXPECT_FALSE(loop.cancel(ta));  // idempotent
  loop.run();
  EXPECT_FALSE(a);
  EXPECT_FALSE(b);
  EXPECT_FALSE(self_cancel);
  EXPECT_FALSE(loop.cancel(spindle::Timer{}));
}

TEST(Loop, StopFromAnotherThreadWakesABlockedRun) {
  spindle::Loop loop;
  Fds idle = watch_idle_pipe(loop);
  std::thread stopper([&] {
    std::this_thread::sleep_for(50ms);
    loop.stop();
  });
  auto start = std::chrono::steady_clock::now();
  loop.run();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  stopper.join();
}

TEST(Loop, StopBeforeATurnMeansNoBlockingWait) {
  spindle::Loop loop;
  Fds idle = watch_idle_pipe(loop);
  loop.stop();
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(loop.run_once(10s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

TEST(Loop, RunForReturnsAfterTheDuration) {
  spindle::Loop loop;
  Fds idle = watch_idle_pipe(loop);
  auto start = std::chrono::steady_clock::now();
  loop.run_for(30ms);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 30ms);
  EXPECT_LT(took, 2s);
}

// Loops made one after another by two threads that never synchronize: under
// TSan a ring mapped where the other thread's ring was must not inherit its
// access history (liburing maps rings behind TSan's back; the backend
// unmaps them through libc in that build). Trivial in other builds.
TEST(Loop, LoopsOfUnrelatedThreadsShareNoHistory) {
  auto churn = [](std::chrono::milliseconds first_wait) {
    std::this_thread::sleep_for(first_wait);
    for (int i = 0; i < 3; ++i) {
      spindle::Loop loop;
      Fds p = make_pipe();
      loop.watch(p.a, {.read = [](spindle::Watcher&) {}});
      loop.run_once(std::chrono::milliseconds(0));
    }
  };
  std::thread early(churn, std::chrono::milliseconds(0));
  std::thread late(churn, std::chrono::milliseconds(200));
  early.join();
  late.join();
}

}  // namespace
