// Queue<T>, Mailbox<T> and the per-fiber mailbox (fiber.send / receive):
// semantics, limits, deadlines and cancellation while waiting, and senders
// on other runtimes and plain threads.
#include <gtest/gtest.h>

#include <any>
#include <atomic>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "spindle/spindle.hpp"
#include "sync_test_util.hpp"

namespace {

using namespace sync_test;

// --- Queue ---------------------------------------------------------------------

TEST(Queue, BoundedPushWaitsForRoomPopWaitsForValues) {
  spindle::run([] {
    spindle::Queue<int> q(2);
    EXPECT_TRUE(q.bounded());
    EXPECT_EQ(q.capacity(), 2u);
    std::vector<int> got;
    auto consumer = spindle::spin([&] {
      for (int i = 0; i < 5; ++i) got.push_back(*q.pop());
    });
    for (int i = 0; i < 5; ++i) q.push(i);
    consumer.join();
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_TRUE(q.empty());
  });
}

TEST(Queue, UnboundedByDefaultWithALimit) {
  spindle::run([] {
    spindle::Queue<int> q;
    EXPECT_FALSE(q.bounded());
    EXPECT_EQ(q.capacity(), spindle::Unbounded::kDefaultLimit);
    spindle::Queue<int> zero(0);  // Polyphony's "no capacity"
    EXPECT_FALSE(zero.bounded());
    spindle::Queue<int> small(spindle::Unbounded{.limit = 3});
    small.push(1);
    small.push(2);
    small << 3;
    EXPECT_THROW(small.push(4), std::length_error);
    EXPECT_EQ(small.size(), 3u);
  });
}

TEST(Queue, ShiftEachTakesWhatIsQueuedNow) {
  spindle::run([] {
    spindle::Queue<int> q;
    for (int i = 1; i <= 4; ++i) q.push(i);
    std::vector<int> seen;
    std::size_t n = q.shift_each([&](int v) {
      seen.push_back(v);
      if (v == 2) q.push(10);  // left for later
    });
    EXPECT_EQ(n, 4u);
    EXPECT_EQ(seen, (std::vector<int>{1, 2, 3, 4}));
    EXPECT_EQ(q.size(), 1u);
    EXPECT_EQ(q.shift(), 10);
    EXPECT_EQ(q.shift_each([](int) {}), 0u);
  });
}

TEST(Queue, ClearDropsValuesAndLetsWaitingPushersIn) {
  spindle::run([] {
    spindle::Queue<int> q(2);
    q.push(1);
    q.push(2);
    auto pusher = spindle::spin([&] {
      q.push(3);
      q.push(4);
    });
    spindle::yield();
    EXPECT_EQ(q.clear(), 2u);
    pusher.join();
    EXPECT_EQ(q.pop(), 3);
    EXPECT_EQ(q.pop(), 4);
    EXPECT_TRUE(q.empty());
  });
}

TEST(Queue, TryAndDeadlines) {
  spindle::run([] {
    spindle::Queue<std::string> q(1);
    EXPECT_FALSE(q.try_pop());
    EXPECT_TRUE(q.try_push("a"));
    EXPECT_FALSE(q.try_push("b"));
    std::string v = "kept";
    auto start = Clock::now();
    EXPECT_FALSE(q.push_for(std::move(v), 10ms));
    EXPECT_GE(Clock::now() - start, 10ms);
    EXPECT_EQ(v, "kept");
    EXPECT_EQ(q.pop_for(1s), "a");
    EXPECT_EQ(q.pop_for(5ms), std::nullopt);
  });
}

TEST(Queue, CloseDrainsThenEnds) {
  spindle::run([] {
    spindle::Queue<int> q;
    q.push(1);
    auto waiter = spindle::spin([&] {
      q.pop();
      return q.pop();  // waits; the close ends it
    });
    spindle::yield();
    EXPECT_TRUE(q.close());
    EXPECT_EQ(waiter.join(), std::nullopt);
    EXPECT_THROW(q.push(2), spindle::ChannelClosed);
    EXPECT_TRUE(q.closed());
  });
}

TEST(Queue, CancelledWaitersLoseNothing) {
  spindle::run([] {
    spindle::Queue<int> q(1);
    auto popper = spindle::spin([&] { return q.pop(); });
    spindle::yield();
    popper.cancel();
    EXPECT_TRUE(ended_cancelled(popper));
    q.push(1);
    int kept = 2;
    auto pusher = spindle::spin([&] { q.push(std::move(kept)); });
    spindle::yield();
    pusher.cancel();
    EXPECT_TRUE(ended_cancelled(pusher));
    EXPECT_EQ(q.size(), 1u);
    EXPECT_EQ(q.pop(), 1);
    EXPECT_FALSE(q.try_pop());
    EXPECT_FALSE(spindle::move_on_after(5ms, [&] { return q.pop(); }).has_value());
  });
}

TEST(Queue, ProducersAndConsumersOnTwoRuntimesAndThreads) {
  constexpr int kPerProducer = 5000, kProducers = 6;
  spindle::Queue<int> q(64);
  std::vector<std::atomic<int>> seen(kProducers * kPerProducer);
  std::atomic<int> producers_left{kProducers};
  auto produce = [&](int id) {
    for (int i = 0; i < kPerProducer; ++i) q.push(id * kPerProducer + i);
    if (--producers_left == 0) q.close();
  };
  auto consume = [&] {
    while (auto v = q.pop()) seen[static_cast<std::size_t>(*v)].fetch_add(1);
  };
  std::thread tp([&] { produce(4); }), tp2([&] { produce(5); }), tc(consume);
  on_runtimes({[&] {
                 auto p = spindle::spin([&] { produce(0); });
                 auto c = spindle::spin(consume);
                 produce(1);
                 p.join();
                 c.join();
               },
               [&] {
                 auto p = spindle::spin([&] { produce(2); });
                 auto c = spindle::spin(consume);
                 produce(3);
                 consume();
                 p.join();
                 c.join();
               }});
  tp.join();
  tp2.join();
  tc.join();
  for (std::size_t v = 0; v < seen.size(); ++v) ASSERT_EQ(seen[v].load(), 1) << "value " << v;
}

// --- Mailbox<T> ----------------------------------------------------------------

TEST(Mailbox, FailPolicyThrowsWhenFull) {
  spindle::run([] {
    spindle::Mailbox<int> mb(2);
    EXPECT_EQ(mb.policy(), spindle::MailboxPolicy::fail);
    mb.send(1);
    mb.send(2);
    EXPECT_THROW(mb.send(3), spindle::MailboxFull);
    EXPECT_FALSE(mb.try_send(3));
    EXPECT_EQ(mb.receive(), 1);
    EXPECT_TRUE(mb.try_send(3));
    EXPECT_THROW(spindle::Mailbox<int>(0), std::invalid_argument);
  });
}

TEST(Mailbox, BlockPolicyWaitsForRoom) {
  spindle::run([] {
    spindle::Mailbox<int> mb(1, spindle::MailboxPolicy::block);
    mb.send(1);
    bool sent = false;
    auto sender = spindle::spin([&] {
      mb.send(2);
      sent = true;
    });
    settle();
    EXPECT_FALSE(sent);
    EXPECT_EQ(mb.receive(), 1);
    sender.join();
    EXPECT_TRUE(sent);
    EXPECT_FALSE(mb.send_for(3, 5ms));
  });
}

TEST(Mailbox, ReceiveLoopEndsOnCloseOrFalse) {
  spindle::run([] {
    spindle::Mailbox<int> mb;
    for (int i = 0; i < 5; ++i) mb.send(i);
    std::vector<int> got;
    mb.receive_loop([&](int v) {
      got.push_back(v);
      return v < 2;
    });
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2}));
    mb.close();
    mb.receive_loop([&](int v) { got.push_back(v); });  // drains 3, 4, then ends
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_THROW(mb.receive(), spindle::ChannelClosed);
    EXPECT_THROW(mb.send(1), spindle::ChannelClosed);
  });
}

TEST(Mailbox, DeadlineAndCancellation) {
  spindle::run([] {
    spindle::Mailbox<int> mb;
    EXPECT_EQ(mb.receive_for(5ms), std::nullopt);
    auto receiver = spindle::spin([&] { return mb.receive(); });
    spindle::yield();
    receiver.cancel();
    EXPECT_TRUE(ended_cancelled(receiver));
    mb.send(1);
    EXPECT_EQ(mb.size(), 1u);  // not lost to the cancelled receiver
  });
}

// --- The per-fiber mailbox -------------------------------------------------------

TEST(FiberMailbox, SendAndReceive) {
  spindle::run([] {
    auto echo = spindle::spin([] {
      std::vector<std::string> got;
      for (int i = 0; i < 3; ++i) got.push_back(spindle::receive<std::string>());
      return got;
    });
    echo.send(std::string("a"));
    echo.send(std::string("b"));
    spindle::yield();
    echo.send(std::string("c"));
    EXPECT_EQ(echo.join(), (std::vector<std::string>{"a", "b", "c"}));
  });
}

TEST(FiberMailbox, TypedMessagesAsAVariant) {
  using Msg = std::variant<int, std::string>;
  spindle::run([] {
    auto f = spindle::spin([] {
      int ints = 0;
      std::string text;
      spindle::receive_loop<Msg>([&](Msg m) {
        if (auto* i = std::get_if<int>(&m)) {
          ints += *i;
          return true;
        }
        text = std::get<std::string>(m);
        return false;  // a string ends the loop
      });
      return text + ":" + std::to_string(ints);
    });
    f.send(Msg(1));
    f.send(Msg(2));
    f.send(Msg(std::string("end")));
    EXPECT_EQ(f.join(), "end:3");
  });
}

TEST(FiberMailbox, AMessageOfAnotherTypeIsAnError) {
  spindle::run([] {
    auto f = spindle::spin([] {
      EXPECT_THROW(spindle::receive<int>(), std::bad_any_cast);
      return spindle::receive<int>();  // the bad one was removed
    });
    f.send(std::string("not an int"));
    f.send(5);
    EXPECT_EQ(f.join(), 5);
  });
}

TEST(FiberMailbox, DeadlineAndCancellation) {
  spindle::run([] {
    auto f = spindle::spin([] {
      auto none = spindle::receive_for(5ms);
      EXPECT_FALSE(none.has_value());
      EXPECT_FALSE(spindle::try_receive().has_value());
      spindle::receive();  // cancelled here
    });
    spindle::sleep(10ms);
    f.cancel();
    EXPECT_TRUE(ended_cancelled(f));
    f = {};
  });
}

TEST(FiberMailbox, BoundedWithTheFailPolicy) {
  spindle::run([] {
    spindle::Event go;
    auto f = spindle::spin([&] {
      go.wait();
      std::size_t n = 0;
      while (spindle::try_receive()) ++n;
      return n;
    });
    const std::size_t cap = spindle::Mailbox<std::any>::kDefaultCapacity;
    for (std::size_t i = 0; i < cap; ++i) f.send(static_cast<int>(i));
    EXPECT_THROW(f.send(0), spindle::MailboxFull);
    EXPECT_FALSE(f.try_send(0));
    go.set();
    EXPECT_EQ(f.join(), cap);
  });
}

TEST(FiberMailbox, MessagesToAFinishedFiberAreFreedWithIt) {
  spindle::run([] {
    auto f = spindle::spin([] {});
    f.join();  // done; the control block lives on in `ref`? no: join empties f
    auto g = spindle::spin([] {});
    spindle::FiberRef ref = g;
    g.join();
    ref.send(std::string(1000, 'x'));  // kept until the last handle is gone (ASan: no leak)
    ref.send(std::vector<int>(100, 1));
  });
}

TEST(FiberMailbox, SendersOnOtherRuntimesAndThreads) {
  constexpr int kPerSender = 2000;
  std::atomic<spindle::FiberRef*> target{nullptr};
  spindle::Latch senders_done(4);  // the handle outlives every send
  std::atomic<int> sum{0};
  auto send_all = [&](int base) {
    spindle::FiberRef* t;
    while ((t = target.load()) == nullptr) std::this_thread::yield();
    for (int i = 0; i < kPerSender; ++i) {
      while (!t->try_send(base + i)) std::this_thread::yield();  // full: back off
    }
    senders_done.count_down();
  };
  std::thread t1([&] { send_all(0); }), t2([&] { send_all(kPerSender); });
  on_runtimes({[&] {
                 auto receiver = spindle::spin([&] {
                   for (int i = 0; i < 4 * kPerSender; ++i) sum += spindle::receive<int>();
                 });
                 spindle::FiberRef ref = receiver;
                 target = &ref;
                 receiver.join();
                 senders_done.wait();
               },
               [&] {
                 auto f = spindle::spin([&] { send_all(3 * kPerSender); });
                 send_all(2 * kPerSender);
                 f.join();
               }});
  t1.join();
  t2.join();
  int n = 4 * kPerSender;
  EXPECT_EQ(sum.load(), n * (n - 1) / 2);
}

}  // namespace
