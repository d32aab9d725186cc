// Channel<T> and select: Go's semantics (unbuffered, bounded, unbounded,
// close), deadlines and cancellation while waiting, fairness, no value lost
// or duplicated, fibers of two runtimes and plain threads.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "spindle/spindle.hpp"
#include "sync_test_util.hpp"

namespace {

using namespace sync_test;

// --- Channel -------------------------------------------------------------------

TEST(Channel, UnbufferedSendWaitsForItsReceiver) {
  spindle::run([] {
    spindle::Channel<int> ch;
    bool sent = false;
    auto sender = spindle::spin([&] {
      ch.send(7);
      sent = true;
    });
    settle();
    EXPECT_FALSE(sent);  // no receiver yet
    EXPECT_EQ(ch.receive(), 7);
    sender.join();
    EXPECT_TRUE(sent);
    EXPECT_EQ(ch.capacity(), 0u);
  });
}

TEST(Channel, TrySendOnAnUnbufferedChannelNeedsAWaitingReceiver) {
  spindle::run([] {
    spindle::Channel<int> ch;
    EXPECT_FALSE(ch.try_send(1));
    EXPECT_FALSE(ch.try_receive());
    auto receiver = spindle::spin([&] { return ch.receive(); });
    spindle::yield();
    EXPECT_TRUE(ch.try_send(2));
    EXPECT_EQ(receiver.join(), 2);
  });
}

TEST(Channel, BoundedBuffersUpToItsCapacity) {
  spindle::run([] {
    spindle::Channel<int> ch(2);
    EXPECT_TRUE(ch.try_send(1));
    EXPECT_TRUE(ch.try_send(2));
    EXPECT_FALSE(ch.try_send(3));
    EXPECT_EQ(ch.size(), 2u);
    std::vector<int> got;
    auto sender = spindle::spin([&] {
      for (int i = 3; i <= 6; ++i) ch.send(i);  // waits for room each time
    });
    for (int i = 0; i < 6; ++i) got.push_back(*ch.receive());
    sender.join();
    EXPECT_EQ(got, (std::vector<int>{1, 2, 3, 4, 5, 6}));
  });
}

TEST(Channel, UnboundedNeverWaitsButHasALimit) {
  spindle::run([] {
    spindle::Channel<int> ch(spindle::Unbounded{.limit = 5});
    for (int i = 0; i < 5; ++i) ch.send(i);
    EXPECT_THROW(ch.send(5), std::length_error);
    EXPECT_EQ(ch.size(), 5u);
    EXPECT_TRUE(ch.unbounded());
    spindle::Channel<int> big(spindle::unbounded);
    for (int i = 0; i < 100000; ++i) big.send(i);
    for (int i = 0; i < 100000; ++i) ASSERT_EQ(big.receive(), i);
  });
}

TEST(Channel, CloseLetsReceiversDrainThenEnds) {
  spindle::run([] {
    spindle::Channel<int> ch(4);
    ch.send(1);
    ch.send(2);
    EXPECT_TRUE(ch.close());
    EXPECT_FALSE(ch.close());
    EXPECT_TRUE(ch.closed());
    EXPECT_THROW(ch.send(3), spindle::ChannelClosed);
    EXPECT_THROW(ch.try_send(3), spindle::ChannelClosed);
    EXPECT_EQ(ch.receive(), 1);
    EXPECT_EQ(ch.receive(), 2);
    EXPECT_EQ(ch.receive(), std::nullopt);
    EXPECT_EQ(ch.receive(), std::nullopt);
  });
}

TEST(Channel, CloseWakesBlockedReceiversAndSenders) {
  spindle::run([] {
    spindle::Channel<int> empty;
    auto receiver = spindle::spin([&] { return empty.receive(); });
    spindle::Channel<int> full(1);
    full.send(1);
    auto sender = spindle::spin([&] {
      try {
        full.send(2);
      } catch (const spindle::ChannelClosed&) {
        return true;
      }
      return false;
    });
    spindle::yield();
    empty.close();
    full.close();
    EXPECT_EQ(receiver.join(), std::nullopt);
    EXPECT_TRUE(sender.join());    // threw ChannelClosed
    EXPECT_EQ(full.receive(), 1);  // buffered before the close: still there
    EXPECT_EQ(full.receive(), std::nullopt);
  });
}

TEST(Channel, RangeForReceivesUntilClosed) {
  spindle::run([] {
    spindle::Channel<int> ch(3);
    auto producer = spindle::spin([&] {
      for (int i = 1; i <= 100; ++i) ch.send(i);
      ch.close();
    });
    int sum = 0;
    for (int v : ch) sum += v;
    producer.join();
    EXPECT_EQ(sum, 5050);
  });
}

TEST(Channel, MoveOnlyValues) {
  spindle::run([] {
    spindle::Channel<std::unique_ptr<int>> ch;
    auto sender = spindle::spin([&] { ch.send(std::make_unique<int>(42)); });
    auto v = ch.receive();
    ASSERT_TRUE(v && *v);
    EXPECT_EQ(**v, 42);
    sender.join();
  });
}

TEST(Channel, DeadlinesReturnFalseOrEmptyAndLeaveTheValue) {
  spindle::run([] {
    spindle::Channel<std::string> ch(1);
    auto start = Clock::now();
    EXPECT_EQ(ch.receive_for(10ms), std::nullopt);
    EXPECT_GE(Clock::now() - start, 10ms);
    ch.send("a");
    std::string v = "kept";
    EXPECT_FALSE(ch.send_for(std::move(v), 10ms));
    EXPECT_EQ(v, "kept");  // not sent, not moved from
    EXPECT_FALSE(ch.send_until(std::move(v), Clock::now() + 5ms));
    EXPECT_EQ(v, "kept");
    EXPECT_EQ(ch.receive_until(Clock::now() + 1s), "a");
    EXPECT_FALSE(ch.closed());
  });
}

TEST(Channel, ACancelledReceiverTakesNothing) {
  spindle::run([] {
    spindle::Channel<int> ch;
    auto a = spindle::spin([&] { return ch.receive(); });
    auto b = spindle::spin([&] { return ch.receive(); });
    spindle::yield();
    a.cancel();
    ch.send(5);  // a is gone: b gets it
    EXPECT_TRUE(ended_cancelled(a));
    EXPECT_EQ(b.join(), 5);
    EXPECT_FALSE(ch.try_receive());
  });
}

TEST(Channel, ACancelledSenderKeepsItsValue) {
  spindle::run([] {
    spindle::Channel<std::string> ch;
    std::string value = "mine";
    auto sender = spindle::spin([&] { ch.send(std::move(value)); });
    spindle::yield();
    sender.cancel();
    EXPECT_TRUE(ended_cancelled(sender));
    EXPECT_EQ(value, "mine");
    EXPECT_FALSE(ch.try_receive());  // nothing left behind in the channel
  });
}

TEST(Channel, AValueHandedOverBeforeTheCancellationIsKept) {
  spindle::run([] {
    spindle::Channel<int> ch;
    // Receiver side: given a value, then cancelled before it ran.
    auto receiver = spindle::spin([&] {
      auto v = ch.receive();
      EXPECT_EQ(v, 9);
      EXPECT_THROW(spindle::yield(), spindle::Cancelled);
    });
    spindle::yield();
    ch.send(9);
    receiver.cancel();
    receiver.join();
    // Sender side: its value taken (into the buffer), then cancelled.
    spindle::Channel<int> one(1);
    one.send(1);
    bool returned = false;
    auto sender = spindle::spin([&] {
      one.send(2);
      returned = true;
    });
    spindle::yield();
    EXPECT_EQ(one.receive(), 1);  // moves the sender's 2 into the buffer
    sender.cancel();
    EXPECT_NO_THROW(sender.join());
    EXPECT_TRUE(returned);
    EXPECT_EQ(one.receive(), 2);
  });
}

TEST(Channel, AScopeDeadlineEndsAWait) {
  spindle::run([] {
    spindle::Channel<int> ch;
    EXPECT_FALSE(spindle::move_on_after(5ms, [&] { return ch.receive(); }).has_value());
    EXPECT_THROW(spindle::cancel_after(5ms, [&] { ch.send(1); }), spindle::TimedOut);
    EXPECT_FALSE(ch.try_receive());
  });
}

TEST(Channel, PingPongBetweenAThreadAndAFiber) {
  spindle::Channel<int> ping, pong;
  std::thread t([&] {
    for (int i = 0; i < 1000; ++i) pong.send(*ping.receive() + 1);
  });
  spindle::run([&] {
    for (int i = 0; i < 1000; ++i) {
      ping.send(i);
      ASSERT_EQ(pong.receive(), i + 1);
    }
  });
  t.join();
}

TEST(Channel, PingPongBetweenTwoRuntimes) {
  spindle::Channel<int> ping, pong;
  on_runtimes({[&] {
                 for (int i = 0; i < 2000; ++i) {
                   ping.send(i);
                   ASSERT_EQ(pong.receive(), -i);
                 }
                 ping.close();
               },
               [&] {
                 for (int v : ping) pong.send(-v);
               }});
}

TEST(Channel, ThreadWithDeadline) {
  spindle::Channel<int> ch;
  std::thread t([&] {
    auto start = Clock::now();
    EXPECT_EQ(ch.receive_for(15ms), std::nullopt);
    EXPECT_GE(Clock::now() - start, 15ms);
    EXPECT_FALSE(ch.send_for(1, 5ms));
  });
  t.join();
}

// --- select --------------------------------------------------------------------

TEST(Select, TheReadyCaseWins) {
  spindle::run([] {
    spindle::Channel<int> a(1), b(1);
    b.send(2);
    int got = 0;
    std::size_t i =
        spindle::select(spindle::on_receive(a, [&](std::optional<int> v) { got = 100 + *v; }),
                        spindle::on_receive(b, [&](std::optional<int> v) { got = 200 + *v; }));
    EXPECT_EQ(i, 1u);
    EXPECT_EQ(got, 202);
  });
}

TEST(Select, WaitsForTheFirstCaseToBecomeReady) {
  spindle::run([] {
    spindle::Channel<int> a, b;
    auto sender = spindle::spin([&] {
      spindle::sleep(5ms);
      b.send(7);
    });
    auto ra = spindle::on_receive(a);
    auto rb = spindle::on_receive(b);
    EXPECT_EQ(spindle::select(ra, rb), 1u);
    EXPECT_EQ(rb.result(), 7);
    EXPECT_FALSE(ra.result().has_value());
    sender.join();
  });
}

TEST(Select, SendCases) {
  spindle::run([] {
    spindle::Channel<std::string> out;
    spindle::Channel<int> never;
    auto receiver = spindle::spin([&] { return out.receive(); });
    bool sent = false;
    std::size_t i = spindle::select(spindle::on_receive(never),
                                    spindle::on_send(out, "hello", [&] { sent = true; }));
    EXPECT_EQ(i, 1u);
    EXPECT_TRUE(sent);
    EXPECT_EQ(receiver.join(), "hello");
    // A losing send case keeps its value.
    spindle::Channel<int> ready(1);
    ready.send(1);
    auto s = spindle::on_send(out, std::string("unsent"));
    EXPECT_EQ(spindle::select(s, spindle::on_receive(ready)), 1u);
    EXPECT_EQ(s.value(), "unsent");
  });
}

TEST(Select, TimeoutAndDefault) {
  spindle::run([] {
    spindle::Channel<int> ch;
    bool timed_out = false;
    auto start = Clock::now();
    std::size_t i = spindle::select(spindle::on_receive(ch),
                                    spindle::on_timeout(10ms, [&] { timed_out = true; }));
    EXPECT_EQ(i, 1u);
    EXPECT_TRUE(timed_out);
    EXPECT_GE(Clock::now() - start, 10ms);
    // The earliest of several deadlines wins.
    EXPECT_EQ(spindle::select(spindle::on_timeout(1s), spindle::on_receive(ch),
                              spindle::on_deadline(Clock::now() + 5ms)),
              2u);
    EXPECT_EQ(spindle::select(spindle::on_receive(ch), spindle::on_default()), 1u);
    EXPECT_THROW(spindle::select(spindle::on_default(), spindle::on_default()), std::logic_error);
    // A deadline alone is a sleep.
    start = Clock::now();
    EXPECT_EQ(spindle::select(spindle::on_timeout(5ms)), 0u);
    EXPECT_GE(Clock::now() - start, 5ms);
  });
}

TEST(Select, ClosedChannels) {
  spindle::run([] {
    spindle::Channel<int> ch;
    ch.close();
    std::optional<int> got = 1;
    EXPECT_EQ(spindle::select(spindle::on_receive(ch, [&](std::optional<int> v) { got = v; })), 0u);
    EXPECT_EQ(got, std::nullopt);
    EXPECT_THROW(spindle::select(spindle::on_send(ch, 1)), spindle::ChannelClosed);
    // Closed while the select waits.
    spindle::Channel<int> later;
    auto closer = spindle::spin([&] {
      spindle::sleep(2ms);
      later.close();
    });
    EXPECT_EQ(spindle::select(spindle::on_receive(later), spindle::on_timeout(5s)), 0u);
    closer.join();
  });
}

TEST(Select, IsFairWhenSeveralAreReady) {
  spindle::run([] {
    spindle::Channel<int> a(spindle::unbounded), b(spindle::unbounded), c(spindle::unbounded);
    constexpr int kRounds = 9000;
    for (int i = 0; i < kRounds; ++i) {
      a.send(i);
      b.send(i);
      c.send(i);
    }
    int wins[3] = {0, 0, 0};
    for (int i = 0; i < kRounds; ++i) {
      ++wins[spindle::select(spindle::on_receive(a), spindle::on_receive(b),
                             spindle::on_receive(c))];
    }
    for (int w : wins) {
      EXPECT_GT(w, kRounds / 3 - kRounds / 15);
      EXPECT_LT(w, kRounds / 3 + kRounds / 15);
    }
    EXPECT_EQ(a.size() + b.size() + c.size(), static_cast<std::size_t>(2 * kRounds));
  });
}

TEST(Select, ACancelledSelectLeavesNothingBehind) {
  spindle::run([] {
    spindle::Channel<int> a, b;
    auto selector =
        spindle::spin([&] { spindle::select(spindle::on_receive(a), spindle::on_send(b, 1)); });
    spindle::yield();
    selector.cancel();
    EXPECT_TRUE(ended_cancelled(selector));
    EXPECT_FALSE(a.try_send(1));    // no receiver left waiting
    EXPECT_FALSE(b.try_receive());  // no sender left waiting
    EXPECT_FALSE(spindle::move_on_after(
        5ms, [&] { spindle::select(spindle::on_receive(a), spindle::on_receive(b)); }));
  });
}

TEST(Select, SendAndReceiveOnOneChannelPairUp) {
  spindle::run([] {
    spindle::Channel<int> ch;
    auto one = [&](int me) {
      std::optional<int> got;
      std::size_t i =
          spindle::select(spindle::on_send(ch, me),
                          spindle::on_receive(ch, [&](std::optional<int> v) { got = v; }));
      return i == 0 ? -1 : *got;
    };
    auto x = spindle::spin([&] { return one(1); });
    auto y = spindle::spin([&] { return one(2); });
    int rx = x.join(), ry = y.join();
    // One sent, the other received it.
    EXPECT_TRUE((rx == -1 && ry == 1) || (ry == -1 && rx == 2));
  });
}

TEST(Select, FromAPlainThread) {
  spindle::Channel<int> a, b;
  std::thread t([&] {
    std::optional<int> got;
    EXPECT_EQ(spindle::select(spindle::on_receive(a),
                              spindle::on_receive(b, [&](std::optional<int> v) { got = v; })),
              1u);
    EXPECT_EQ(got, 3);
    EXPECT_EQ(spindle::select(spindle::on_receive(a), spindle::on_timeout(5ms)), 1u);
  });
  spindle::run([&] { b.send(3); });
  t.join();
}

// Producers on two runtimes and a thread send into two channels; consumers
// select over both with short deadlines (so selects keep losing to
// timeouts and to each other), others receive directly; every value is
// received exactly once.
TEST(Select, NoValueIsLostOrDuplicatedWhenSelectsLose) {
  constexpr int kPerProducer = 3000;
  spindle::Channel<int> a, b(8);
  std::vector<std::atomic<int>> seen(4 * kPerProducer);
  std::atomic<int> received{0};
  auto record = [&](int v) {
    seen[static_cast<std::size_t>(v)].fetch_add(1);
    received.fetch_add(1);
  };
  auto produce = [&](int id) {
    for (int i = 0; i < kPerProducer; ++i) {
      int v = id * kPerProducer + i;
      if (i % 2 == 0)
        a.send(v);
      else
        b.send(v);
    }
  };
  auto select_consumer = [&] {
    while (received.load() < 4 * kPerProducer) {
      spindle::select(spindle::on_receive(a, [&](std::optional<int> v) { record(*v); }),
                      spindle::on_receive(b, [&](std::optional<int> v) { record(*v); }),
                      spindle::on_timeout(200us));
    }
  };
  std::thread thread_producer([&] { produce(3); });
  std::thread thread_consumer([&] {
    while (received.load() < 4 * kPerProducer) {
      if (auto v = a.receive_for(1ms)) record(*v);
    }
  });
  on_runtimes({[&] {
                 auto p = spindle::spin([&] { produce(0); });
                 auto c = spindle::spin(select_consumer);
                 select_consumer();
                 p.join();
                 c.join();
               },
               [&] {
                 auto p = spindle::spin([&] { produce(1); });
                 auto q = spindle::spin([&] { produce(2); });
                 auto c = spindle::spin([&] {
                   while (received.load() < 4 * kPerProducer) {
                     if (auto v = b.receive_for(1ms)) record(*v);
                   }
                 });
                 select_consumer();
                 p.join();
                 q.join();
                 c.join();
               }});
  thread_producer.join();
  thread_consumer.join();
  EXPECT_EQ(received.load(), 4 * kPerProducer);
  for (std::size_t v = 0; v < seen.size(); ++v) ASSERT_EQ(seen[v].load(), 1) << "value " << v;
}

}  // namespace

namespace {

TEST(ChannelBudget, AnAlwaysReadyReceiverLetsOthersRun) {
  // Every receive finds a value, so the receiver never suspends; the
  // cooperative budget still makes it yield now and then.
  spindle::run([] {
    spindle::Channel<int> ch(spindle::unbounded);
    constexpr int kValues = 10000;
    for (int i = 0; i < kValues; ++i) ch.send(i);
    bool other_ran = false;
    int received_when_other_ran = -1;
    auto receiver = spindle::spin([&] {
      for (int i = 0; i < kValues; ++i) {
        EXPECT_EQ(ch.receive(), i);
        if (other_ran && received_when_other_ran < 0) received_when_other_ran = i;
      }
    });
    auto other = spindle::spin([&] { other_ran = true; });
    receiver.join();
    other.join();
    EXPECT_GE(received_when_other_ran, 0);
    EXPECT_LE(received_when_other_ran, 2 * 128);
    EXPECT_GT(spindle::metrics().budget_yields, 0u);
  });
}

}  // namespace
