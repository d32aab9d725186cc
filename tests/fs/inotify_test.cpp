// Inotify: events for files created, modified and deleted by another fiber.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "io/io_test_util.hpp"
#include "spindle/spindle.hpp"

namespace {

using namespace std::chrono_literals;
using io_test::bytes;
using io_test::expect_errno;

TEST(Inotify, CreateModifyDelete) {
  spindle::run([] {
    io_test::TempDir dir;
    spindle::Inotify notify;
    int wd = notify.watch(dir.path(), IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_DELETE);
    auto actor = spindle::spin([&] {
      spindle::File f = spindle::File::create(dir / "x.txt");
      f.write_all(bytes("some bytes"));
      f.close();
      spindle::remove(dir / "x.txt");
    });
    std::vector<std::uint32_t> seen;
    notify.each([&](const spindle::InotifyEvent& e) {
      EXPECT_EQ(e.wd, wd);
      EXPECT_EQ(e.name, "x.txt");
      EXPECT_EQ(e.path, std::filesystem::path(dir / "x.txt"));
      seen.push_back(e.mask & (IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_DELETE));
      return (e.mask & IN_DELETE) == 0;
    });
    actor.join();
    ASSERT_GE(seen.size(), 4u);
    EXPECT_EQ(seen.front(), static_cast<std::uint32_t>(IN_CREATE));
    EXPECT_NE(std::find(seen.begin(), seen.end(), IN_MODIFY), seen.end());
    EXPECT_NE(std::find(seen.begin(), seen.end(), IN_CLOSE_WRITE), seen.end());
    EXPECT_EQ(seen.back(), static_cast<std::uint32_t>(IN_DELETE));
  });
}

TEST(Inotify, NextWithADeadlineAndUnwatch) {
  spindle::run([] {
    io_test::TempDir dir;
    spindle::Inotify notify;
    int wd = notify.watch(dir.path(), IN_CREATE);
    EXPECT_FALSE(notify.next(30ms));  // nothing happened
    spindle::write_file(dir / "new", "", {.atomic = false});
    auto e = notify.next(10s);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->name, "new");
    EXPECT_TRUE(e->mask & IN_CREATE);
    notify.unwatch(wd);
    auto ignored = notify.next(10s);
    ASSERT_TRUE(ignored);
    EXPECT_TRUE(ignored->mask & IN_IGNORED);
    EXPECT_EQ(ignored->path, std::filesystem::path(dir.path()));
    spindle::write_file(dir / "unseen", "", {.atomic = false});
    EXPECT_FALSE(notify.next(30ms));
  });
}

TEST(Inotify, WatchedFileAndManyEvents) {
  spindle::run([] {
    io_test::TempDir dir;
    spindle::write_file(dir / "log", "");
    spindle::Inotify notify;
    notify.watch(dir / "log", IN_MODIFY);
    spindle::File f = spindle::File::open(dir / "log", O_WRONLY | O_APPEND);
    constexpr int kWrites = 2000;  // more than one read's batch of events
    for (int i = 0; i < kWrites; ++i) f.write_all(bytes("line\n"));
    int modifications = 0;
    while (auto e = notify.next(200ms)) {
      EXPECT_TRUE(e->name.empty());  // the watch is the file itself
      EXPECT_EQ(e->path, std::filesystem::path(dir / "log"));
      ++modifications;
    }
    // The kernel merges identical events that are still queued.
    EXPECT_GE(modifications, 1);
    EXPECT_LE(modifications, kWrites);
  });
}

TEST(Inotify, WatchingAMissingPath) {
  spindle::run([] {
    io_test::TempDir dir;
    spindle::Inotify notify;
    expect_errno(
        ENOENT, [&] { notify.watch(dir / "missing", IN_ALL_EVENTS); },
        "inotify_add_watch " + (dir / "missing"));
  });
}

TEST(Inotify, CancelledWhileWaiting) {
  spindle::run([] {
    io_test::TempDir dir;
    spindle::Inotify notify;
    notify.watch(dir.path(), IN_CREATE);
    auto waiter = spindle::spin([&] { return notify.next(); });
    spindle::sleep(20ms);
    waiter.cancel();
    EXPECT_THROW(waiter.join(), spindle::Cancelled);
    // The instance still works afterwards.
    spindle::write_file(dir / "after", "", {.atomic = false});
    auto e = notify.next(10s);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->name, "after");
  });
}

}  // namespace
