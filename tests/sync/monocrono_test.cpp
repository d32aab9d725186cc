// The Monocrono check: 256 fibers each wait for a message in their mailbox;
// on each message a fiber does blocking work off the runtime thread and
// replies; the sender checks every response.
//
// The blocking work goes through spindle::blocking() (the io layer's
// blocking-work pool) when this tree has it; otherwise through a plain
// std::thread per job that replies through a channel, which is the same
// shape: the fiber waits, its runtime does not.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "spindle/spindle.hpp"
#include "sync_test_util.hpp"

#if __has_include("spindle/io/blocking.hpp")
#define SPINDLE_TEST_HAS_BLOCKING 1
#endif

namespace {

using namespace sync_test;

constexpr int kWorkers = 256;
constexpr int kRounds = spindle_test::kThreadSanitizer ? 3 : 8;

struct Request {
  int round;
  std::uint64_t input;
  spindle::Channel<std::pair<int, std::uint64_t>>* reply;
};

// The "blocking work": a real blocking system call (a short sleep in the
// kernel) plus some CPU, done off the runtime thread.
std::uint64_t compute(std::uint64_t x) {
  for (int i = 0; i < 1000; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
  return x;
}
std::uint64_t work(std::uint64_t x) {
  ::usleep(200);
  return compute(x);
}

std::uint64_t off_thread(std::uint64_t x) {
#ifdef SPINDLE_TEST_HAS_BLOCKING
  return spindle::blocking([x] { return work(x); });
#else
  spindle::Channel<std::uint64_t> done(1);
  std::thread t([&done, x] { done.send(work(x)); });
  std::uint64_t r = *done.receive();
  t.join();
  return r;
#endif
}

TEST(Monocrono, TwoHundredFiftySixFibersAnswerEveryMessage) {
  spindle::run([] {
    spindle::Channel<std::pair<int, std::uint64_t>> replies(spindle::unbounded);
    std::vector<spindle::Fiber<int>> workers;
    for (int w = 0; w < kWorkers; ++w) {
      workers.push_back(spindle::spin([w] {
        int handled = 0;
        spindle::receive_loop<Request>([&](Request r) {
          if (r.round < 0) return false;  // stop
          r.reply->send({w * 1000 + r.round, off_thread(r.input)});
          ++handled;
          return true;
        });
        return handled;
      }));
    }
    for (int round = 0; round < kRounds; ++round) {
      for (int w = 0; w < kWorkers; ++w) {
        workers[w].send(Request{round, static_cast<std::uint64_t>(w * 7919 + round), &replies});
      }
      // Every worker answers this round, each with its own result.
      std::vector<bool> seen(kWorkers, false);
      for (int n = 0; n < kWorkers; ++n) {
        auto [tag, value] = *replies.receive();
        int w = tag / 1000;
        ASSERT_EQ(tag % 1000, round);
        ASSERT_FALSE(seen[w]) << "worker " << w << " answered twice";
        seen[w] = true;
        ASSERT_EQ(value, compute(static_cast<std::uint64_t>(w * 7919 + round))) << "worker " << w;
      }
    }
    for (auto& w : workers) w.send(Request{-1, 0, nullptr});
    for (auto& w : workers) EXPECT_EQ(w.join(), kRounds);
    EXPECT_EQ(replies.size(), 0u);
  });
}

}  // namespace
