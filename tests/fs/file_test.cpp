// File, read_file and write_file.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "io/io_test_util.hpp"
#include "spindle/spindle.hpp"

namespace {

using namespace std::chrono_literals;
using io_test::bytes;
using io_test::expect_errno;
using io_test::text;

static_assert(spindle::Stream<spindle::File>);
static_assert(spindle::VectoredStream<spindle::File>);
static_assert(spindle::FdBackedStream<spindle::File>);

TEST(File, WriteReadAtOffsetsSizeSyncClose) {
  spindle::run([] {
    io_test::TempDir dir;
    spindle::File f = spindle::File::open(dir / "a", O_RDWR | O_CREAT | O_EXCL, 0600);
    EXPECT_NE(::fcntl(f.fd(), F_GETFD) & FD_CLOEXEC, 0);
    f.write_all(bytes("hello, file"));
    EXPECT_EQ(f.size(), 11u);
    f.pwrite(bytes("HELLO"), 0);
    std::byte buf[64];
    EXPECT_EQ(text({buf, f.pread(buf, 0)}), "HELLO, file");
    EXPECT_EQ(text({buf, f.pread(buf, 7)}), "file");
    EXPECT_EQ(f.pread(buf, 100), 0u);
    f.sync();
    f.sync_data();
    f.close();
    f.close();  // idempotent
    EXPECT_FALSE(f.is_open());
    EXPECT_EQ(spindle::stat(dir / "a").mode, 0600u);
  });
}

TEST(File, ErrorsNameThePath) {
  spindle::run([] {
    io_test::TempDir dir;
    std::string missing = dir / "missing";
    expect_errno(
        ENOENT, [&] { spindle::File::open(missing); }, "open " + missing);
    expect_errno(
        EISDIR, [&] { spindle::File::open(dir.path(), O_WRONLY); }, "open " + dir.path());
    spindle::File ro = spindle::File::create(dir / "ro");
    ro.close();
    spindle::File r = spindle::File::open(dir / "ro");
    expect_errno(
        EBADF, [&] { r.write_all(bytes("x")); }, "write " + (dir / "ro"));
  });
}

TEST(File, IsAStream) {
  spindle::run([] {
    io_test::TempDir dir;
    {
      spindle::File out = spindle::File::create(dir / "lines");
      spindle::BufferedWriter w(out);
      for (int i = 0; i < 10000; ++i) w.write(std::to_string(i) + "\n");
      w.flush();
    }
    spindle::File in = spindle::File::open(dir / "lines");
    spindle::BufferedReader r(in);
    int expected = 0;
    for (std::string_view line : r.lines()) EXPECT_EQ(line, std::to_string(expected++));
    EXPECT_EQ(expected, 10000);
    // copy() splices between two files.
    spindle::File from = spindle::File::open(dir / "lines");
    spindle::File to = spindle::File::create(dir / "copy");
    EXPECT_EQ(spindle::copy(from, to), from.size());
    EXPECT_EQ(spindle::read_file(dir / "copy"), spindle::read_file(dir / "lines"));
  });
}

TEST(WholeFile, WriteThenRead) {
  spindle::run([] {
    io_test::TempDir dir;
    std::string path = dir / "w";
    spindle::write_file(path, "first");
    EXPECT_EQ(spindle::read_file(path), "first");
    spindle::write_file(path, "second, longer");
    EXPECT_EQ(spindle::read_file(path), "second, longer");
    spindle::write_file(path, "3", {.atomic = false, .sync = false});
    EXPECT_EQ(spindle::read_file(path), "3");
    // No temporary file stays behind.
    auto entries = spindle::list_directory(dir.path());
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0].name, "w");
    std::string big(5 * 1024 * 1024 + 11, 'b');
    spindle::write_file(path, big, {.mode = 0640});
    EXPECT_EQ(spindle::read_file(path), big);
    spindle::write_file(dir / "empty", "");
    EXPECT_EQ(spindle::read_file(dir / "empty"), "");
  });
}

TEST(WholeFile, AtomicReplaceNeverShowsAMix) {
  spindle::run([] {
    io_test::TempDir dir;
    std::string path = dir / "flip";
    std::string a(256 * 1024, 'a'), b(256 * 1024, 'b');
    spindle::write_file(path, a);
    bool done = false;
    auto writer = spindle::spin([&] {
      for (int i = 0; i < 20; ++i) spindle::write_file(path, i % 2 ? a : b, {.sync = false});
      done = true;
    });
    int reads = 0;
    while (!done) {
      std::string got = spindle::read_file(path);
      EXPECT_TRUE(got == a || got == b);
      ++reads;
    }
    writer.join();
    EXPECT_GT(reads, 0);
  });
}

TEST(WholeFile, Errors) {
  spindle::run([] {
    io_test::TempDir dir;
    std::string missing = dir / "no/such/file";
    expect_errno(
        ENOENT, [&] { (void)spindle::read_file(missing); }, "open " + missing);
    expect_errno(
        ENOENT, [&] { spindle::write_file(missing, "x"); }, "open ");
    spindle::write_file(dir / "big", std::string(1000, 'x'));
    expect_errno(
        EMSGSIZE, [&] { (void)spindle::read_file(dir / "big", 999); },
        "read_file " + (dir / "big"));
    EXPECT_EQ(spindle::read_file(dir / "big", 1000).size(), 1000u);
    // A failed write_file leaves nothing behind: the target is a directory.
    spindle::create_directory(dir / "d");
    spindle::write_file(dir / "d/inside", "keep");
    expect_errno(
        EISDIR, [&] { spindle::write_file(dir / "d", "x"); }, "rename");
    auto entries = spindle::list_directory(dir.path());
    EXPECT_EQ(entries.size(), 2u);  // big, d
  });
}

TEST(WholeFile, ManyFibersAtOnce) {
  spindle::run([] {
    io_test::TempDir dir;
    std::vector<spindle::Fiber<void>> fibers;
    for (int i = 0; i < 50; ++i) {
      fibers.push_back(spindle::spin([&, i] {
        std::string path = dir / "f";
        path += std::to_string(i);
        std::string content(static_cast<std::size_t>(i) * 1000, static_cast<char>('a' + i % 26));
        spindle::write_file(path, content, {.sync = false});
        EXPECT_EQ(spindle::read_file(path), content);
      }));
    }
    for (auto& f : fibers) f.join();
    EXPECT_EQ(spindle::list_directory(dir.path()).size(), 50u);
  });
}

}  // namespace
