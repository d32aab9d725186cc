// BufferedWriter: gathering, owned chunks, flush on destruction, broken
// pipes, and a slow reader (memory stays bounded).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "io/io_test_util.hpp"
#include "spindle/spindle.hpp"
#include "stream/stream_test_util.hpp"

namespace {

using namespace std::chrono_literals;
using io_test::expect_errno;
using stream_test::bytes;
using stream_test::MemoryStream;

TEST(BufferedWriter, SmallWritesWaitForFlush) {
  spindle::run([] {
    MemoryStream s;
    spindle::BufferedWriter w(s, {.buffer_size = 64});
    w.write("hello");
    w.write(std::string_view(", "));
    w.write(bytes("world"));
    EXPECT_EQ(s.writes, 0u);
    EXPECT_EQ(w.pending(), 12u);
    w.flush();
    EXPECT_EQ(s.written, "hello, world");
    EXPECT_EQ(s.writes, 1u);
    EXPECT_EQ(w.pending(), 0u);
    w.flush();  // nothing queued: no write
    EXPECT_EQ(s.writes, 1u);
  });
}

TEST(BufferedWriter, FullBufferFlushesAndLargeWritesSkipIt) {
  spindle::run([] {
    MemoryStream s;
    spindle::BufferedWriter w(s, {.buffer_size = 16});
    w.write("0123456789");
    w.write("abcdefghij");  // does not fit: the first ten go out
    EXPECT_EQ(s.written, "0123456789");
    w.write(std::string(40, 'L'));  // at least buffer_size: at once, after what is queued
    EXPECT_EQ(s.written, "0123456789abcdefghij" + std::string(40, 'L'));
    EXPECT_EQ(w.pending(), 0u);
  });
}

TEST(BufferedWriter, OwnedChunksKeepTheirOrderAndShortWritesComplete) {
  spindle::run([] {
    MemoryStream s{.write_chunk = 1000};  // every write is short
    std::string expected;
    {
      spindle::BufferedWriter w(s, {.buffer_size = 256});
      for (int i = 0; i < 20; ++i) {
        std::string small = std::to_string(i);
        small += ';';
        std::string big(5000 + static_cast<std::size_t>(i), static_cast<char>('a' + i));
        expected += small + big;
        w.write(small);
        w.write(std::move(big));  // queued without a copy
      }
      EXPECT_EQ(w.pending(), expected.size());
      w.flush();
      EXPECT_EQ(s.written, expected);
      w.write("tail");
      expected += "tail";
    }  // the destructor flushes
    EXPECT_EQ(s.written, expected);
  });
}

TEST(BufferedWriter, GatherWriteToAPipeIsOneSystemCall) {
  spindle::run([] {
    auto pipe = spindle::open_pipe();
    {
      spindle::BufferedWriter w(pipe.write_end);
      w.write("a");
      w.write(std::string(8000, 'b'));
      w.write("c");
      w.write(std::string(8000, 'd'));
      std::uint64_t before = spindle::io_metrics().ops_started;
      w.flush();
      EXPECT_EQ(spindle::io_metrics().ops_started - before, 1u);
    }
    pipe.write_end.close();
    spindle::BufferedReader r(pipe.read_end);
    std::string all = r.read_to_end();
    EXPECT_EQ(all, "a" + std::string(8000, 'b') + "c" + std::string(8000, 'd'));
  });
}

TEST(BufferedWriter, BrokenPipe) {
  spindle::run([] {
    auto pipe = spindle::open_pipe();
    pipe.read_end.close();
    spindle::BufferedWriter w(pipe.write_end, {.on_drop_error = [](const std::system_error&) {}});
    w.write("into the void");
    expect_errno(
        EPIPE, [&] { w.flush(); }, "fd");
    EXPECT_EQ(w.pending(), 13u);  // nothing was taken: still queued
    // The destructor's flush fails again: reported, not thrown.
    std::vector<int> errors;
    {
      spindle::BufferedWriter w2(pipe.write_end, {.on_drop_error = [&](const std::system_error& e) {
                                   errors.push_back(e.code().value());
                                 }});
      w2.write("lost");
    }
    EXPECT_EQ(errors, std::vector<int>{EPIPE});
    // Without a handler: one line on stderr.
    testing::internal::CaptureStderr();
    { spindle::BufferedWriter(pipe.write_end).write("12345"); }
    std::string printed = testing::internal::GetCapturedStderr();
    EXPECT_NE(printed.find("BufferedWriter dropped 5 bytes"), std::string::npos) << printed;
  });
}

TEST(BufferedWriter, DestroyedInACancelledFiberReports) {
  spindle::run([] {
    auto pipe = spindle::open_pipe();
    // Fill the pipe so that the flush has to wait.
    std::string junk(4096, 'j');
    while (spindle::nothrow::write(pipe.write_end.fd(), bytes(junk), 1ms)) {
    }
    std::vector<int> errors;
    auto f = spindle::spin([&] {
      spindle::BufferedWriter w(pipe.write_end, {.on_drop_error = [&](const std::system_error& e) {
                                  errors.push_back(e.code().value());
                                }});
      w.write("more");
      spindle::sleep(10s);
    });
    spindle::sleep(20ms);
    f.cancel();
    EXPECT_THROW(f.join(), spindle::Cancelled);
    EXPECT_EQ(errors, std::vector<int>{ECANCELED});
  });
}

TEST(BufferedWriter, SlowReaderKeepsMemoryBounded) {
  spindle::run([] {
    auto pipe = spindle::open_pipe();
    constexpr std::size_t kTotal = 32 * 1024 * 1024;
    spindle::WriterOptions options{.buffer_size = 16 * 1024, .max_queued = 64 * 1024};
    std::size_t most_pending = 0;
    auto writer = spindle::spin([&] {
      spindle::BufferedWriter w(pipe.write_end, options);
      std::size_t sent = 0;
      int i = 0;
      while (sent < kTotal) {
        if (++i % 3 == 0) {
          std::string chunk(20000, 'c');
          sent += chunk.size();
          w.write(std::move(chunk));
        } else {
          w.write("line of text that is small\n");
          sent += 27;
        }
        most_pending = std::max(most_pending, w.pending());
      }
      w.flush();
      pipe.write_end.close();
      return sent;
    });
    // The reader is slow: it sleeps now and then.
    spindle::BufferedReader r(pipe.read_end, {.buffer_size = 4096});
    std::size_t received = 0;
    std::byte buf[4096];
    int reads = 0;
    while (std::size_t n = r.read_some(buf)) {
      received += n;
      if (++reads % 512 == 0) spindle::sleep(1ms);
    }
    EXPECT_EQ(received, writer.join());
    EXPECT_LE(most_pending, options.buffer_size + options.max_queued);
  });
}

}  // namespace
