// monitor(): a fiber learns through its mailbox that another ended.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "spindle/spindle.hpp"

namespace {

using namespace std::chrono_literals;

TEST(Monitor, DeliversTheResultAndTheErrorToTheMailbox) {
  spindle::run([] {
    auto ok = spindle::spin([] {
      spindle::sleep(2ms);
      return std::string("done");
    });
    auto bad = spindle::spin_detached([]() -> std::string { throw std::runtime_error("bad"); });
    spindle::monitor(ok);
    spindle::monitor(bad);
    auto first = spindle::receive<spindle::FiberExit<std::string>>();
    auto second = spindle::receive<spindle::FiberExit<std::string>>();
    EXPECT_EQ(first.fiber, bad);  // it fails at once
    ASSERT_TRUE(first.error);
    EXPECT_FALSE(first.value);
    EXPECT_EQ(second.fiber, ok);
    ASSERT_TRUE(second.value);
    EXPECT_EQ(*second.value, "done");
    EXPECT_EQ(ok.join(), "done");  // join still has the original
    EXPECT_THROW(bad.join(), std::runtime_error);
  });
}

TEST(Monitor, AnEndedFiberIsReportedAtOnce) {
  spindle::run([] {
    auto f = spindle::spin([] {});
    f.join();
    spindle::Fiber<void> g = spindle::spin([] {});
    spindle::yield();
    spindle::monitor(g);
    auto exit = spindle::receive<spindle::FiberExit<void>>();
    EXPECT_EQ(exit.fiber, g);
    EXPECT_TRUE(exit.value.has_value());
    g.join();
  });
}

}  // namespace
