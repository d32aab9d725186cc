// Timers: repeating without drift, missed periods, reschedule, cancel inside
// callbacks, ordering, never early; on the backend SPINDLE_BACKEND names.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <system_error>
#include <thread>
#include <vector>

#include "alloc_counter.hpp"
#include "loop_test_util.hpp"
#include "spindle/loop/loop.hpp"

namespace {

using namespace spindle_test;
using spindle::Loop;
using spindle::Timer;
using Clock = std::chrono::steady_clock;

std::int64_t ns(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

TEST(Every, ThousandPeriodsStayOnTheGrid) {
  Loop loop;
  constexpr std::int64_t interval = 1'000'000;  // 1 ms
  std::uint64_t periods = 0;                    // firings, counting the missed ones
  int calls = 0, off_grid = 0, early = 0, behind = 0;
  std::int64_t origin = 0;
  Timer t;
  t = loop.every(std::chrono::nanoseconds(interval), [&](std::uint64_t missed) {
    std::int64_t now = Loop::now_ns();
    ++calls;
    periods += 1 + missed;
    // Never early: this is firing number `periods`.
    if (now < origin + static_cast<std::int64_t>(periods) * interval) ++early;
    // Within one period of the ideal: the periods that have passed are
    // those counted, or one more at most (the one that ended since).
    auto passed = static_cast<std::uint64_t>((now - origin) / interval);
    if (passed > periods + 1) ++behind;
    // No drift: the next firing is due exactly on the grid.
    auto next = loop.due(t);
    if (!next || ns(*next) != origin + static_cast<std::int64_t>(periods + 1) * interval) {
      ++off_grid;
    }
    if (periods >= 1000) loop.cancel(t);
  });
  origin = ns(*loop.due(t)) - interval;
  loop.run();
  EXPECT_GE(periods, 1000u);
  EXPECT_LE(static_cast<std::uint64_t>(calls), periods);
  EXPECT_EQ(early, 0);
  EXPECT_EQ(off_grid, 0);
  EXPECT_EQ(behind, 0);
  EXPECT_EQ(loop.timers_pending(), 0u);
}

TEST(Every, ALateLoopReportsMissedPeriodsInOneCall) {
  Loop loop;
  std::vector<std::uint64_t> missed_log;
  Timer t = loop.every(2ms, [&](std::uint64_t missed) {
    missed_log.push_back(missed);
    if (missed_log.size() == 1) std::this_thread::sleep_for(11ms);  // the loop falls behind
    if (missed_log.size() == 3) loop.cancel(t);
  });
  loop.run();
  ASSERT_EQ(missed_log.size(), 3u);
  EXPECT_GE(missed_log[1], 4u);  // ~5 periods passed: one call, not a burst of five
}

TEST(Every, CancelFromItsOwnCallbackStopsIt) {
  Loop loop;
  int calls = 0;
  bool cancelled = false, again = true;
  Timer t;
  t = loop.every(1ms, [&](std::uint64_t) {
    if (++calls == 3) {
      cancelled = loop.cancel(t);
      again = loop.cancel(t);
    }
  });
  loop.run();  // returns: nothing left
  EXPECT_EQ(calls, 3);
  EXPECT_TRUE(cancelled);  // a repeating timer is pending until cancelled
  EXPECT_FALSE(again);     // idempotent
  EXPECT_FALSE(loop.due(t));
}

TEST(Every, CancelFromAnotherCallback) {
  Loop loop;
  int ticks = 0;
  Timer t = loop.every(1ms, [&](std::uint64_t) { ++ticks; });
  loop.after(10ms, [&] { EXPECT_TRUE(loop.cancel(t)); });
  loop.run();
  EXPECT_GE(ticks, 1);
  EXPECT_LE(ticks, 10);
}

TEST(Every, ARecordReusedInsideTheCallbackIsNotDisturbed) {
  Loop loop;
  int old_calls = 0, new_calls = 0;
  Timer t, fresh;
  t = loop.every(1ms, [&](std::uint64_t) {
    ++old_calls;
    loop.cancel(t);
    // Probably takes the record just freed: the old timer must not come back.
    fresh = loop.every(1ms, [&](std::uint64_t) {
      if (++new_calls == 3) loop.cancel(fresh);
    });
  });
  loop.run();
  EXPECT_EQ(old_calls, 1);
  EXPECT_EQ(new_calls, 3);
  EXPECT_FALSE(loop.cancel(t));
}

TEST(Every, RescheduleMovesTheGrid) {
  Loop loop;
  std::vector<std::int64_t> fired;
  Timer t = loop.every(50ms, [&](std::uint64_t) {
    fired.push_back(Loop::now_ns());
    if (fired.size() == 3) loop.cancel(t);
  });
  std::int64_t start = Loop::now_ns();
  ASSERT_TRUE(loop.reschedule(t, 5ms));  // first firing moves to now + 5 ms ...
  auto first = *loop.due(t);
  loop.run();
  ASSERT_EQ(fired.size(), 3u);
  EXPECT_LT(fired[0] - start, 45'000'000);  // well before the original 50 ms
  // ... and the rest follow it every 50 ms.
  EXPECT_GE(fired[1], ns(first) + 50'000'000);
  EXPECT_GE(fired[2], ns(first) + 100'000'000);
}

TEST(Every, BadIntervalsAreClearErrors) {
  Loop loop;
  for (std::chrono::nanoseconds bad : {0ns, std::chrono::nanoseconds(-1ms)}) {
    try {
      loop.every(bad, [](std::uint64_t) {});
      FAIL() << "no error";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EINVAL);
      EXPECT_NE(std::string(e.what()).find("every"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(loop.timers_pending(), 0u);
}

TEST(Every, DispatchAllocatesNothing) {
  Loop loop;
  int ticks = 0;
  Timer t = loop.every(1ms, [&](std::uint64_t) { ++ticks; });
  turn_until(loop, [&] { return ticks >= 3; });  // warm-up
  long before = spindle_test::allocations();
  int target = ticks + 20;
  while (ticks < target) loop.run_once(50ms);
  long after = spindle_test::allocations();
  EXPECT_EQ(after - before, 0);
  loop.cancel(t);
}

TEST(Reschedule, EarlierLaterAndFromCallbacks) {
  Loop loop;
  std::vector<char> order;
  Timer a = loop.after(100ms, [&] { order.push_back('a'); });
  Timer b = loop.after(5ms, [&] { order.push_back('b'); });
  Timer c = loop.after(200ms, [&] { order.push_back('c'); });
  EXPECT_TRUE(loop.reschedule(a, 1ms));                             // a: now first
  EXPECT_TRUE(loop.reschedule(b, 30ms));                            // b: later
  loop.after(2ms, [&] { EXPECT_TRUE(loop.reschedule(c, 10ms)); });  // c: earlier, from a callback
  auto start = Clock::now();
  loop.run();
  EXPECT_EQ(order, (std::vector<char>{'a', 'c', 'b'}));
  EXPECT_LT(Clock::now() - start, 150ms);
  EXPECT_FALSE(loop.reschedule(a, 1ms));  // fired: not pending
  EXPECT_FALSE(loop.reschedule(Timer{}, 1ms));
}

TEST(Reschedule, ATieGoesAfterTimersAlreadySetForThatTime) {
  Loop loop;
  std::vector<int> order;
  auto when = Clock::now() + 5ms;
  Timer first = loop.at(when + 1s, [&] { order.push_back(1); });
  loop.at(when, [&] { order.push_back(2); });
  loop.at(when, [&] { order.push_back(3); });
  loop.reschedule(first, when);
  loop.run();
  EXPECT_EQ(order, (std::vector<int>{2, 3, 1}));
}

TEST(Reschedule, OwnOneShotCallbackCannotReschedule) {
  Loop loop;
  bool result = true;
  Timer t;
  t = loop.after(1ms, [&] { result = loop.reschedule(t, 1ms); });
  loop.run();
  EXPECT_FALSE(result);
}

TEST(OneShot, ManyRandomTimersFireInOrderAndNeverEarly) {
  Loop loop;
  std::mt19937 rng(42);
  std::vector<std::pair<std::int64_t, int>> fired;
  std::vector<std::int64_t> deadline(300);
  int early = 0;
  for (int i = 0; i < 300; ++i) {
    auto d = std::chrono::microseconds(rng() % 20000);
    Timer t = loop.after(d, [&, i] {
      std::int64_t now = Loop::now_ns();
      if (now < deadline[i]) ++early;
      fired.emplace_back(deadline[i], i);
    });
    deadline[i] = ns(*loop.due(t));
  }
  loop.run();
  ASSERT_EQ(fired.size(), 300u);
  EXPECT_EQ(early, 0);
  EXPECT_TRUE(std::is_sorted(fired.begin(), fired.end()));  // by deadline, ties by order set
}

TEST(OneShot, CancelAnotherAndItselfInsideCallbacks) {
  Loop loop;
  std::vector<char> order;
  Timer b, c;
  Timer a = loop.after(1ms, [&] {
    order.push_back('a');
    EXPECT_TRUE(loop.cancel(b));
    EXPECT_FALSE(loop.cancel(a));  // its own: already fired
  });
  b = loop.after(1ms, [&] { order.push_back('b'); });  // same deadline, later: cancelled by a
  c = loop.after(2ms, [&] { order.push_back('c'); });
  loop.run();
  EXPECT_EQ(order, (std::vector<char>{'a', 'c'}));
}

}  // namespace
