// Stress: many producers and consumers — fibers of two runtimes on two
// threads plus plain threads — through channels and queues, with deadlines
// and cancellations racing the hand-offs. Every value is accounted for
// exactly once: none lost, none duplicated.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "spindle/spindle.hpp"
#include "sync_test_util.hpp"

namespace {

using namespace sync_test;

// TSan runs everything 5-15x slower: fewer values there.
constexpr int kPerProducer = spindle_test::kThreadSanitizer ? 2000 : 20000;
constexpr int kFiberProducers = 4;   // per runtime
constexpr int kThreadProducers = 2;  // plain threads
constexpr int kProducers = 2 * kFiberProducers + kThreadProducers;
constexpr int kValues = kProducers * kPerProducer;

// Which values arrived, and how often.
class Ledger {
 public:
  Ledger() : seen_(std::make_unique<std::atomic<std::uint8_t>[]>(kValues)) {}
  void record(int v) {
    ASSERT_GE(v, 0);
    ASSERT_LT(v, kValues);
    std::uint8_t before = seen_[static_cast<std::size_t>(v)].fetch_add(1);
    ASSERT_EQ(before, 0) << "value " << v << " received twice";
    received_.fetch_add(1);
  }
  int received() const { return received_.load(); }
  void check() const {
    EXPECT_EQ(received_.load(), kValues);
    for (int v = 0; v < kValues; ++v) {
      ASSERT_EQ(seen_[static_cast<std::size_t>(v)].load(), 1) << "value " << v << " lost";
    }
  }

 private:
  std::unique_ptr<std::atomic<std::uint8_t>[]> seen_;
  std::atomic<int> received_{0};
};

// A channel-like thing: Channel<int> or Queue<int>, with one interface.
template <class C>
struct Ops;
template <>
struct Ops<spindle::Channel<int>> {
  static void send(spindle::Channel<int>& c, int v) { c.send(v); }
  static bool send_for(spindle::Channel<int>& c, int v, std::chrono::microseconds d) {
    return c.send_for(v, d);
  }
  static std::optional<int> receive(spindle::Channel<int>& c) { return c.receive(); }
  static std::optional<int> receive_for(spindle::Channel<int>& c, std::chrono::microseconds d) {
    return c.receive_for(d);
  }
};
template <>
struct Ops<spindle::Queue<int>> {
  static void send(spindle::Queue<int>& c, int v) { c.push(v); }
  static bool send_for(spindle::Queue<int>& c, int v, std::chrono::microseconds d) {
    return c.push_for(v, d);
  }
  static std::optional<int> receive(spindle::Queue<int>& c) { return c.pop(); }
  static std::optional<int> receive_for(spindle::Queue<int>& c, std::chrono::microseconds d) {
    return c.pop_for(d);
  }
};

// The mix, on one channel or queue:
// - producer fibers alternate send() and send_for() with short deadlines
//   (retrying what timed out: the value is still theirs);
// - producer threads send();
// - consumer fibers: plain receive(); receive_for() with short deadlines;
//   receive() inside move_on_after scopes that expire (a scope deadline
//   racing the hand-off); and short-lived consumers cancelled by another
//   fiber while they wait;
// - consumer threads: receive() and receive_for().
// The last producer closes it; consumers drain until closed.
template <class C>
void run_mix(C& ch) {
  using O = Ops<C>;
  Ledger ledger;
  std::atomic<int> producers_left{kProducers};
  auto produced = [&] {
    if (--producers_left == 0) ch.close();
  };
  auto fiber_producer = [&](int id) {
    for (int i = 0; i < kPerProducer; ++i) {
      int v = id * kPerProducer + i;
      if (i % 2 == 0) {
        O::send(ch, v);
      } else {
        while (!O::send_for(ch, v, std::chrono::microseconds(50 + i % 100))) {
        }
      }
      if (i % 97 == 0) spindle::yield();
    }
    produced();
  };
  auto thread_producer = [&](int id) {
    for (int i = 0; i < kPerProducer; ++i) O::send(ch, id * kPerProducer + i);
    produced();
  };
  auto drain = [&] {
    while (auto v = O::receive(ch)) ledger.record(*v);
  };
  auto timed_consumer = [&] {
    for (;;) {
      if (auto v = O::receive_for(ch, std::chrono::microseconds(100))) {
        ledger.record(*v);
      } else if (ch.closed()) {
        drain();
        return;
      }
    }
  };
  auto scoped_consumer = [&] {
    for (;;) {
      auto got =
          spindle::move_on_after(std::chrono::microseconds(80), [&] { return O::receive(ch); });
      if (got.has_value()) {
        if (!got->has_value()) return;  // closed and drained
        ledger.record(**got);
      }
    }
  };
  // Consumers that live a short while and are cancelled as they wait; the
  // value a cancelled receive had been handed is recorded (receive returns
  // it), otherwise it stays for the others.
  auto cancelled_consumers = [&] {
    std::uint32_t seed = 12345;
    while (!ch.closed()) {
      auto c = spindle::spin([&] {
        while (auto v = O::receive(ch)) ledger.record(*v);
      });
      seed = seed * 1103515245 + 12345;
      for (std::uint32_t k = 0; k < 1 + (seed >> 16) % 8; ++k) spindle::yield();
      c.cancel();
      try {
        c.join();
      } catch (const spindle::Cancelled&) {
      }
    }
  };
  auto runtime = [&](int first_producer) {
    return [&, first_producer] {
      std::vector<spindle::Fiber<void>> fs;
      for (int p = 0; p < kFiberProducers; ++p) {
        fs.push_back(spindle::spin([&, p] { fiber_producer(first_producer + p); }));
      }
      fs.push_back(spindle::spin(drain));
      fs.push_back(spindle::spin(timed_consumer));
      fs.push_back(spindle::spin(scoped_consumer));
      fs.push_back(spindle::spin(cancelled_consumers));
      drain();
      for (auto& f : fs) f.join();
    };
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreadProducers; ++t) {
    threads.emplace_back([&, t] { thread_producer(2 * kFiberProducers + t); });
  }
  threads.emplace_back(drain);
  threads.emplace_back(timed_consumer);
  on_runtimes({runtime(0), runtime(kFiberProducers)});
  for (auto& t : threads) t.join();
  ledger.check();
}

TEST(Stress, UnbufferedChannel) {
  spindle::Channel<int> ch;
  run_mix(ch);
}

TEST(Stress, BoundedChannel) {
  spindle::Channel<int> ch(16);
  run_mix(ch);
}

TEST(Stress, UnboundedChannel) {
  spindle::Channel<int> ch(spindle::unbounded);
  run_mix(ch);
}

TEST(Stress, BoundedQueue) {
  spindle::Queue<int> q(4);
  run_mix(q);
}

// Selects over three channels (a send case among them) on both runtimes
// and a thread, with deadlines; producers feed two channels, and every
// value goes round once through the third before it is counted.
TEST(Stress, SelectsForwardingValues) {
  spindle::Channel<int> a(4), b, relay(2);
  Ledger ledger;
  std::atomic<int> producers_left{kProducers};
  std::atomic<int> forwarded{0};
  auto produce = [&](int id) {
    for (int i = 0; i < kPerProducer; ++i) (i % 2 == 0 ? a : b).send(id * kPerProducer + i);
    if (--producers_left == 0) {
      a.close();
      b.close();
    }
  };
  // Takes from a or b and forwards into relay (a send case that may lose
  // to a receive case: then the value waits in `pending`).
  auto forwarder = [&] {
    std::optional<int> pending;
    bool a_open = true, b_open = true;
    while (a_open || b_open || pending) {
      if (pending) {
        auto send = spindle::on_send(relay, *pending, [&] {
          pending.reset();
          forwarded.fetch_add(1);
        });
        spindle::select(send, spindle::on_timeout(std::chrono::microseconds(200)));
        continue;
      }
      auto ra = spindle::on_receive(a);
      auto rb = spindle::on_receive(b);
      std::size_t i = spindle::select(ra, rb, spindle::on_timeout(std::chrono::microseconds(300)));
      if (i == 0) {
        if (ra.result())
          pending = *ra.result();
        else
          a_open = false;
      } else if (i == 1) {
        if (rb.result())
          pending = *rb.result();
        else
          b_open = false;
      }
    }
  };
  auto collect = [&] {
    while (ledger.received() < kValues) {
      if (auto v = relay.receive_for(std::chrono::milliseconds(1))) ledger.record(*v);
    }
  };
  auto runtime = [&](int first) {
    return [&, first] {
      std::vector<spindle::Fiber<void>> fs;
      for (int p = 0; p < kFiberProducers; ++p) {
        fs.push_back(spindle::spin([&, p] { produce(first + p); }));
      }
      fs.push_back(spindle::spin(forwarder));
      fs.push_back(spindle::spin(collect));
      forwarder();
      for (auto& f : fs) f.join();
    };
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreadProducers; ++t) {
    threads.emplace_back([&, t] { produce(2 * kFiberProducers + t); });
  }
  threads.emplace_back(forwarder);
  threads.emplace_back(collect);
  on_runtimes({runtime(0), runtime(kFiberProducers)});
  for (auto& t : threads) t.join();
  EXPECT_EQ(forwarded.load(), kValues);
  ledger.check();
}

// Mutex + CondVar + Semaphore + WaitGroup together: a hand-made bounded
// buffer, fibers of two runtimes and threads on both sides.
TEST(Stress, LocksAndConditions) {
  constexpr int kCap = 8;
  spindle::Mutex m;
  spindle::CondVar not_full, not_empty;
  std::vector<int> buffer;
  spindle::Semaphore tickets(kValues);  // one per value, taken by consumers
  spindle::WaitGroup consumers_done;
  Ledger ledger;
  auto produce = [&](int id) {
    for (int i = 0; i < kPerProducer; ++i) {
      std::unique_lock<spindle::Mutex> lk(m);
      if (i % 3 == 0) {
        while (!not_full.wait_for(lk, std::chrono::microseconds(100),
                                  [&] { return buffer.size() < kCap; })) {
        }
      } else {
        not_full.wait(lk, [&] { return buffer.size() < kCap; });
      }
      buffer.push_back(id * kPerProducer + i);
      not_empty.notify_one();
    }
  };
  auto consume = [&] {
    while (tickets.try_acquire()) {
      std::unique_lock<spindle::Mutex> lk(m);
      not_empty.wait(lk, [&] { return !buffer.empty(); });
      int v = buffer.back();
      buffer.pop_back();
      not_full.notify_one();
      lk.unlock();
      ledger.record(v);
    }
    consumers_done.done();
  };
  constexpr int kConsumers = 2 * 3 + 2;
  consumers_done.add(kConsumers);
  auto runtime = [&](int first) {
    return [&, first] {
      std::vector<spindle::Fiber<void>> fs;
      for (int p = 0; p < kFiberProducers; ++p) {
        fs.push_back(spindle::spin([&, p] { produce(first + p); }));
      }
      for (int c = 0; c < 3; ++c) fs.push_back(spindle::spin(consume));
      consumers_done.wait();
      for (auto& f : fs) f.join();
    };
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreadProducers; ++t) {
    threads.emplace_back([&, t] { produce(2 * kFiberProducers + t); });
  }
  threads.emplace_back(consume);
  threads.emplace_back(consume);
  on_runtimes({runtime(0), runtime(kFiberProducers)});
  for (auto& t : threads) t.join();
  EXPECT_TRUE(buffer.empty());
  ledger.check();
}

}  // namespace
