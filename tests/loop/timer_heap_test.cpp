// TimerHeap: ordering, ties, removal anywhere, a million timers.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "spindle/loop/timer_heap.hpp"

namespace {

TEST(TimerHeap, PopsInDeadlineThenInsertionOrder) {
  spindle::TimerHeap heap;
  std::vector<spindle::TimerNode> nodes(8);
  std::int64_t deadlines[] = {50, 10, 30, 10, 20, 50, 10, 0};
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    nodes[i].deadline_ns = deadlines[i];
    heap.push(&nodes[i]);
  }
  std::vector<std::size_t> order;
  while (spindle::TimerNode* n = heap.pop())
    order.push_back(static_cast<std::size_t>(n - nodes.data()));
  EXPECT_EQ(order, (std::vector<std::size_t>{7, 1, 3, 6, 4, 2, 0, 5}));
}

TEST(TimerHeap, RemoveAnywhereKeepsTheOrder) {
  std::mt19937_64 rng(7);
  spindle::TimerHeap heap;
  std::vector<spindle::TimerNode> nodes(5000);
  for (auto& n : nodes) {
    n.deadline_ns = static_cast<std::int64_t>(rng() % 1000);
    heap.push(&n);
  }
  std::vector<bool> removed(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); i += 3) {
    heap.remove(&nodes[i]);
    removed[i] = true;
    EXPECT_FALSE(nodes[i].queued());
    heap.remove(&nodes[i]);  // idempotent
  }
  std::int64_t last = -1;
  std::size_t popped = 0;
  while (spindle::TimerNode* n = heap.pop()) {
    EXPECT_GE(n->deadline_ns, last);
    last = n->deadline_ns;
    EXPECT_FALSE(removed[static_cast<std::size_t>(n - nodes.data())]);
    ++popped;
  }
  EXPECT_EQ(popped, nodes.size() - (nodes.size() + 2) / 3);
}

TEST(TimerHeap, AMillionTimersInsertAndCancel) {
  std::mt19937_64 rng(11);
  spindle::TimerHeap heap;
  std::vector<spindle::TimerNode> nodes(1'000'000);
  for (auto& n : nodes) {
    n.deadline_ns = static_cast<std::int64_t>(rng() % 1'000'000'000);
    heap.push(&n);
  }
  EXPECT_EQ(heap.size(), nodes.size());
  std::shuffle(nodes.begin(), nodes.begin(), rng);
  for (std::size_t i = 0; i < nodes.size(); i += 2) heap.remove(&nodes[i]);
  EXPECT_EQ(heap.size(), nodes.size() / 2);
  std::int64_t last = -1;
  while (spindle::TimerNode* n = heap.pop()) {
    ASSERT_GE(n->deadline_ns, last);
    last = n->deadline_ns;
  }
}

}  // namespace
