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
  std::vector<std::unique_ptr<Group>> groups;
  for (std::uint64_t g = 0; g < s.groups; ++g)
    groups.push_back(std::make_unique<Group>(s.capacity));
  auto start = bench::Clock::now();
  std::vector<std::thread> threads;
  for (auto& gp : groups) {
    Group* g = gp.get();
    g->producers_left = s.producers;
    for (std::uint64_t c = 0; c < s.consumers; ++c) {
      threads.emplace_back([g] {
        std::uint64_t sum = 0;
        while (auto v = g->q.pop()) sum += *v;
        std::lock_guard<std::mutex> lk(g->m);
        g->sum += sum;
      });
    }
    for (std::uint64_t p = 0; p < s.producers; ++p) {
      threads.emplace_back([g, msgs] {
        for (std::uint64_t i = 1; i <= msgs; ++i) g->q.push(i);
        std::lock_guard<std::mutex> lk(g->m);
        if (--g->producers_left == 0) g->q.close();
      });
    }
  }
  for (auto& t : threads) t.join();
  double secs = bench::seconds_since(start);
  for (auto& g : groups) bench::check_sum(g->sum, s.group_sum(msgs));
  return static_cast<double>(s.groups * s.producers * msgs) / secs;
}

}  // namespace

int main(int argc, char** argv) {
  auto s = bench::QueueShape::parse(argc, argv);
  once(s, s.messages / 10);  // warm-up
  double best = -bench::best_of(s.reps, [&] { return -once(s, s.messages); });
  bench::print_result(best, s.json());
}
