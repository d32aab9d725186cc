// File operations: on io_uring one SQE each, on epoll the blocking pool.
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/stat.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "io_test_util.hpp"
#include "spindle/spindle.hpp"

namespace {

using namespace std::chrono_literals;
using io_test::bytes;
using io_test::text;

TEST(File, OpenWriteReadStatSyncClose) {
  spindle::run([] {
    io_test::TempDir dir;
    std::string path = dir / "a.txt";
    int fd = spindle::open(path.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0644);
    EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);  // always O_CLOEXEC
    spindle::pwrite(fd, bytes("hello, file"), 0);
    spindle::pwrite(fd, bytes("HELLO"), 0);
    spindle::fsync(fd);
    spindle::fdatasync(fd);
    std::byte buf[64];
    std::size_t n = spindle::pread(fd, buf, 0);
    EXPECT_EQ(text({buf, n}), "HELLO, file");
    EXPECT_EQ(text({buf, spindle::pread(fd, buf, 7)}), "file");
    EXPECT_EQ(spindle::pread(fd, buf, 1000), 0u);  // past the end
    struct statx st = spindle::fstatx(fd);
    EXPECT_EQ(st.stx_size, 11u);
    EXPECT_TRUE(S_ISREG(st.stx_mode));
    struct statx by_path = spindle::statx(AT_FDCWD, path.c_str());
    EXPECT_EQ(by_path.stx_ino, st.stx_ino);
    // The file position: read and write use and move it.
    ASSERT_EQ(::lseek(fd, 0, SEEK_SET), 0);
    EXPECT_EQ(text({buf, spindle::read(fd, std::span(buf, 5))}), "HELLO");
    spindle::write(fd, bytes("!!"));
    EXPECT_EQ(text({buf, spindle::pread(fd, buf, 0)}), "HELLO!!file");
    spindle::close(fd);
    io_test::expect_errno(
        EBADF, [&] { spindle::fsync(fd); }, "fsync fd");
  });
}

TEST(File, VectoredAtOffsets) {
  spindle::run([] {
    io_test::TempDir dir;
    int fd = spindle::open((dir / "v").c_str(), O_CREAT | O_RDWR, 0600);
    char a[] = "abc", b[] = "defgh";
    iovec out[2] = {{a, 3}, {b, 5}};
    EXPECT_EQ(spindle::pwritev(fd, out, 2), 8u);
    char x[4] = {}, y[6] = {};
    iovec in[2] = {{x, 4}, {y, 6}};
    EXPECT_EQ(spindle::preadv(fd, in, 0), 10u);
    EXPECT_EQ(std::string(x, 4), std::string("\0\0ab", 4));
    EXPECT_EQ(std::string(y, 6), "cdefgh");
    ASSERT_EQ(::lseek(fd, 0, SEEK_SET), 0);
    EXPECT_EQ(spindle::readv(fd, in), 10u);
    spindle::close(fd);
  });
}

TEST(File, DirectoriesRenameUnlinkErrors) {
  spindle::run([] {
    io_test::TempDir dir;
    std::string sub = dir / "sub";
    spindle::mkdir(sub.c_str(), 0755);
    io_test::expect_errno(
        EEXIST, [&] { spindle::mkdir(sub.c_str()); }, "mkdirat");
    std::string f1 = sub + "/one", f2 = sub + "/two";
    spindle::close(spindle::open(f1.c_str(), O_CREAT | O_WRONLY, 0600));
    spindle::rename(f1.c_str(), f2.c_str());
    io_test::expect_errno(
        ENOENT, [&] { spindle::open(f1.c_str(), O_RDONLY); }, f1);
    EXPECT_TRUE(S_ISREG(spindle::statx(AT_FDCWD, f2.c_str()).stx_mode));
    io_test::expect_errno(
        ENOENT, [&] { spindle::statx(AT_FDCWD, f1.c_str()); }, "statx");
    io_test::expect_errno(
        ENOENT, [&] { spindle::rename(f1.c_str(), f2.c_str()); }, "renameat");
    spindle::unlink(f2.c_str());
    io_test::expect_errno(
        ENOENT, [&] { spindle::unlink(f2.c_str()); }, "unlinkat");
    spindle::unlinkat(AT_FDCWD, sub.c_str(), AT_REMOVEDIR);
    EXPECT_EQ(spindle::nothrow::open(f2.c_str(), O_RDONLY).error(), ENOENT);
    EXPECT_EQ(spindle::nothrow::statx(AT_FDCWD, sub.c_str()).error(), ENOENT);
    auto st = spindle::nothrow::statx(AT_FDCWD, dir.path().c_str());
    ASSERT_TRUE(st.ok());
    EXPECT_TRUE(S_ISDIR(st->stx_mode));
  });
}

TEST(File, Fallocate) {
  spindle::run([] {
    io_test::TempDir dir;
    int fd = spindle::open((dir / "big").c_str(), O_CREAT | O_RDWR, 0600);
    auto r = spindle::nothrow::fallocate(fd, 0, 0, 1 << 20);
    if (!r.ok() && r.error() == EOPNOTSUPP) GTEST_SKIP() << "the file system cannot fallocate";
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(spindle::fstatx(fd).stx_size, 1u << 20);
    spindle::fallocate(fd, FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20);
    EXPECT_EQ(spindle::fstatx(fd).stx_size, 1u << 20);
    spindle::close(fd);
  });
}

TEST(File, ManyFibersReadOneFileConcurrently) {
  spindle::run([] {
    io_test::TempDir dir;
    int fd = spindle::open((dir / "data").c_str(), O_CREAT | O_RDWR, 0600);
    std::vector<std::byte> data(1 << 20);
    for (std::size_t i = 0; i < data.size(); ++i)
      data[i] = std::byte(static_cast<unsigned char>(i * 7));
    spindle::pwrite(fd, data, 0);
    constexpr int kReaders = 32;
    std::vector<spindle::Fiber<bool>> readers;
    for (int r = 0; r < kReaders; ++r) {
      readers.push_back(spindle::spin([&, r] {
        std::vector<std::byte> buf(32768);
        std::uint64_t off = static_cast<std::uint64_t>(r) * buf.size();
        std::size_t n = spindle::pread(fd, buf, off);
        return n == buf.size() &&
               std::equal(buf.begin(), buf.end(), data.begin() + static_cast<std::ptrdiff_t>(off));
      }));
    }
    for (auto& f : readers) EXPECT_TRUE(f.join());
    spindle::close(fd);
    if (!io_test::on_uring()) {
      EXPECT_GT(spindle::io_metrics().ops_offloaded, 0u);
    }
  });
}

TEST(File, ReadIntoAGrowableBuffer) {
  spindle::run([] {
    spindle::Pipe p = spindle::make_pipe();
    std::string buf = "head:";
    spindle::write(p.write_end, bytes("abc"));
    EXPECT_EQ(spindle::read_into(p.read_end, buf), 3u);  // appends
    EXPECT_EQ(buf, "head:abc");
    spindle::write(p.write_end, bytes("XY"));
    EXPECT_EQ(spindle::read_into(p.read_end, buf, {.offset = 1}),
              2u);  // at an offset: the rest goes
    EXPECT_EQ(buf, "hXY");
    // Until end of file, within the limit.
    auto writer = spindle::spin([&] {
      for (int i = 0; i < 100; ++i) spindle::write(p.write_end, bytes("0123456789"));
      ::close(p.write_end);
    });
    std::string all;
    EXPECT_EQ(spindle::read_into(p.read_end, all, {.until_eof = true}), 1000u);
    EXPECT_EQ(all.size(), 1000u);
    writer.join();
    ::close(p.read_end);
    // The limit: an error when reached with more to read.
    spindle::Pipe q = spindle::make_pipe();
    spindle::write(q.write_end, bytes("0123456789"));
    std::vector<std::byte> small;
    io_test::expect_errno(
        EMSGSIZE, [&] { spindle::read_into(q.read_end, small, {.limit = 4, .until_eof = true}); },
        "read fd");
    EXPECT_EQ(small.size(), 4u);  // what fit is kept
    io_test::close_all({q.read_end, q.write_end});
  });
}

TEST(File, DeadlineAndCancellationOfFileOps) {
  spindle::run([] {
    io_test::TempDir dir;
    // Opening a FIFO for reading blocks until a writer comes: a file
    // operation that really waits (in an io_uring worker, or on the pool).
    std::string fifo = dir / "fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    std::atomic<bool> done{false};
    std::thread writer([&] {
      // Opens (and closes) the writing end whenever a reader is there.
      while (!done.load()) {
        std::this_thread::sleep_for(100ms);
        int w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (w >= 0) ::close(w);
      }
    });
    auto start = std::chrono::steady_clock::now();
    try {
      int fd = spindle::open(fifo.c_str(), O_RDONLY, 0, 20ms);
      // A pool thread blocked in open() cannot be interrupted (epoll): the
      // open ran until the writer came, and its result is reported, as for
      // any operation that completed. (io_uring opens a FIFO without
      // waiting for a writer.)
      spindle::close(fd);
    } catch (const spindle::TimedOut&) {
      // A kernel that cancels the blocked open.
      EXPECT_LT(std::chrono::steady_clock::now() - start, 90ms);
    }
    auto opener = spindle::spin([&] { return spindle::open(fifo.c_str(), O_RDONLY); });
    spindle::sleep(10ms);
    opener.cancel();
    try {
      spindle::close(opener.join());
    } catch (const spindle::Cancelled&) {
    }
    done = true;
    writer.join();
  });
}

}  // namespace
