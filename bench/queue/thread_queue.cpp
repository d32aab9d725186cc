// queue-msgs peer: std::thread, and a bounded queue made of std::mutex and
// two std::condition_variable (the textbook one), one thread per producer
// and consumer (see queue_shape.hpp). Messages per second.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "queue/queue_shape.hpp"

namespace {

class BoundedQueue {
 public:
  explicit BoundedQueue(std::size_t cap) : cap_(cap) {}
  void push(std::uint64_t v) {
    std::unique_lock<std::mutex> lk(m_);
    not_full_.wait(lk, [&] { return q_.size() < cap_; });
    q_.push_back(v);
    not_empty_.notify_one();
  }
  std::optional<std::uint64_t> pop() {
    std::unique_lock<std::mutex> lk(m_);
    not_empty_.wait(lk, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return std::nullopt;
    std::uint64_t v = q_.front();
    q_.pop_front();
    not_full_.notify_one();
    return v;
  }
  void close() {
    std::lock_guard<std::mutex> g(m_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  std::mutex m_;
  std::condition_variable not_full_, not_empty_;
  std::deque<std::uint64_t> q_;
  std::size_t cap_;
  bool closed_ = false;
};

double once(const bench::QueueShape& s, std::uint64_t msgs) {
  struct Group {
    explicit Group(std::size_t cap) : q(cap) {}
    BoundedQueue q;
    std::mutex m;
    std::uint64_t producers_left = 0, sum = 0;
  };
  auto groups = bench::make_groups<Group>(s.groups, s.capacity);
  return bench::measure_groups(
      s, msgs, groups, [](auto fn) { return std::thread(std::move(fn)); },
      [](Group& g) {
        std::uint64_t sum = 0;
        while (auto v = g.q.pop()) sum += *v;
        std::lock_guard<std::mutex> lk(g.m);
        g.sum += sum;
      },
      [](Group& g, std::uint64_t n) {
        for (std::uint64_t i = 1; i <= n; ++i) g.q.push(i);
        std::lock_guard<std::mutex> lk(g.m);
        if (--g.producers_left == 0) g.q.close();
      });
}

}  // namespace

int main(int argc, char** argv) {
  auto s = bench::QueueShape::parse(argc, argv);
  double best =
      bench::warm_best_rate(s.reps, s.messages, [&](std::uint64_t msgs) { return once(s, msgs); });
  bench::print_result(best, s.json());
}
