// BufferedReader over pipes (FdStream) and over a memory stream that hands
// out a byte at a time.
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

std::vector<std::string> all_lines(spindle::BufferedReader& r) {
  std::vector<std::string> out;
  while (auto line = r.read_line()) out.emplace_back(*line);
  return out;
}

TEST(BufferedReader, LinesStripNewlineAndCarriageReturn) {
  spindle::run([] {
    for (std::size_t chunk : {std::size_t{1}, std::size_t{3}, std::size_t{1000}}) {
      MemoryStream s{.data = "one\ntwo\r\n\n\r\nlast", .chunk = chunk};
      spindle::BufferedReader r(s, {.buffer_size = 16});
      EXPECT_EQ(all_lines(r), (std::vector<std::string>{"one", "two", "", "", "last"}))
          << "chunk " << chunk;
      EXPECT_TRUE(r.eof());
      EXPECT_FALSE(r.read_line());
    }
    MemoryStream ends_with_newline{.data = "a\nb\n", .chunk = 2};
    spindle::BufferedReader r(ends_with_newline);
    EXPECT_EQ(all_lines(r), (std::vector<std::string>{"a", "b"}));
  });
}

TEST(BufferedReader, LinesOverAPipeWrittenInPieces) {
  spindle::run([] {
    auto pipe = spindle::open_pipe();
    std::string expected;
    for (int i = 0; i < 2000; ++i)
      expected += std::string(static_cast<std::size_t>(i % 97), 'x') + "\n";
    auto writer = spindle::spin([&] {
      std::string_view rest = expected;
      while (!rest.empty()) {
        std::size_t n = std::min<std::size_t>(rest.size(), 777);
        pipe.write_end.write_all(bytes(rest.substr(0, n)));
        rest.remove_prefix(n);
        spindle::yield();
      }
      pipe.write_end.close();
    });
    spindle::BufferedReader r(pipe.read_end, {.buffer_size = 64});
    std::size_t count = 0;
    for (std::string_view line : r.lines()) {
      EXPECT_EQ(line.size(), count % 97);
      ++count;
    }
    EXPECT_EQ(count, 2000u);
    writer.join();
  });
}

TEST(BufferedReader, LongLineGrowsTheBufferUpToTheLimit) {
  spindle::run([] {
    std::string long_line(5000, 'y');
    MemoryStream s{.data = "short\n" + long_line + "\nafter\n", .chunk = 100};
    spindle::BufferedReader r(s, {.buffer_size = 64, .max_line = 5000});
    EXPECT_EQ(r.read_line(), "short");
    EXPECT_EQ(r.read_line(), long_line);  // exactly max_line bytes: accepted
    EXPECT_LE(r.capacity(), 5001u);
    EXPECT_EQ(r.read_line(), "after");
    EXPECT_FALSE(r.read_line());
  });
}

TEST(BufferedReader, LineLongerThanTheLimitIsAnErrorThatLosesNothing) {
  spindle::run([] {
    std::string long_line(5001, 'z');
    MemoryStream s{.data = long_line + "\nnext\n", .chunk = 700};
    spindle::BufferedReader r(s, {.buffer_size = 64, .max_line = 5000});
    expect_errno(
        EMSGSIZE, [&] { (void)r.read_line(); }, "read_line: line longer than 5000 bytes");
    EXPECT_LE(r.capacity(), 5001u);  // memory stayed bounded
    // Nothing was consumed: the bytes can still be read otherwise.
    EXPECT_EQ(r.read_exact(5001), long_line);
    EXPECT_EQ(r.read_line(), "");
    EXPECT_EQ(r.read_line(), "next");
  });
}

TEST(BufferedReader, LineLimitWhenTheBufferIsLargerThanTheLimit) {
  spindle::run([] {
    MemoryStream s{.data = "0123456789\n01234567890\n" + std::string(100, 'w') + "|",
                   .chunk = 4096};
    spindle::BufferedReader r(s, {.buffer_size = 1024, .max_line = 10});
    EXPECT_EQ(r.read_line(), "0123456789");
    expect_errno(
        EMSGSIZE, [&] { (void)r.read_line(); }, "read_line: line longer than 10 bytes");
    EXPECT_EQ(r.read_exact(12), "01234567890\n");
    expect_errno(
        EMSGSIZE, [&] { (void)r.read_until('|'); }, "read_until");
    expect_errno(
        EMSGSIZE, [&] { (void)r.read_line(); }, "read_line");  // no newline at all
  });
}

TEST(BufferedReader, LineLimitOnAnEndlessPipe) {
  spindle::run([] {
    auto pipe = spindle::open_pipe();
    auto writer = spindle::spin([&] {
      std::string junk(4096, 'j');
      try {
        for (;;) pipe.write_end.write_all(bytes(junk));
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EPIPE) << e.what();
      }
    });
    {
      spindle::BufferedReader r(pipe.read_end, {.max_line = 100 * 1024});
      expect_errno(
          EMSGSIZE, [&] { (void)r.read_line(); }, "read_line");
      EXPECT_LE(r.capacity(), 100u * 1024 + 1);
    }
    pipe.read_end.close();
    writer.join();
  });
}

TEST(BufferedReader, ReadUntilByteAndString) {
  spindle::run([] {
    MemoryStream s{.data = "a,b,,c|--|d|-|-e|--|tail", .chunk = 1};
    spindle::BufferedReader r(s, {.buffer_size = 16});
    EXPECT_EQ(r.read_until(','), "a,");
    EXPECT_EQ(r.read_until(','), "b,");
    EXPECT_EQ(r.read_until(','), ",");
    // A delimiter that straddles reads (one byte each) is found.
    EXPECT_EQ(r.read_until("|--|"), "c|--|");
    EXPECT_EQ(r.read_until("|--|"), "d|-|-e|--|");
    EXPECT_EQ(r.read_until("|--|"), "tail");  // the end, without the delimiter
    EXPECT_FALSE(r.read_until("|--|"));
    expect_errno(
        EINVAL, [&] { (void)r.read_until(""); }, "read_until");
  });
}

TEST(BufferedReader, ReadUntilLimit) {
  spindle::run([] {
    MemoryStream s{.data = std::string(300, 'q') + "END", .chunk = 50};
    spindle::BufferedReader r(s, {.buffer_size = 32, .max_line = 299});
    expect_errno(
        EMSGSIZE, [&] { (void)r.read_until("END"); }, "read_until");
    MemoryStream ok{.data = std::string(299, 'q') + "END", .chunk = 50};
    spindle::BufferedReader r2(ok, {.buffer_size = 32, .max_line = 299});
    EXPECT_EQ(r2.read_until("END")->size(), 302u);
  });
}

TEST(BufferedReader, ReadExact) {
  spindle::run([] {
    MemoryStream s{.data = "0123456789abcdefghij", .chunk = 3};
    spindle::BufferedReader r(s, {.buffer_size = 16});
    EXPECT_EQ(r.read_exact(4), "0123");
    EXPECT_EQ(r.read_line(), "456789abcdefghij");
    MemoryStream s2{.data = std::string(100000, 'k') + "tail", .chunk = 4096};
    spindle::BufferedReader r2(s2, {.buffer_size = 1024});
    std::string big = r2.read_exact(100000);  // mostly straight from the stream
    EXPECT_EQ(big, std::string(100000, 'k'));
    std::byte small[2];
    r2.read_exact(small);
    EXPECT_EQ(static_cast<char>(small[0]), 't');
    expect_errno(
        ENODATA, [&] { (void)r2.read_exact(5); }, "read_exact: end of stream after 2 of 5");
  });
}

TEST(BufferedReader, ReadToEndWithALimit) {
  spindle::run([] {
    MemoryStream s{.data = std::string(1000, 'r'), .chunk = 77};
    spindle::BufferedReader r(s, {.buffer_size = 64});
    EXPECT_EQ(r.read_exact(10), std::string(10, 'r'));
    EXPECT_EQ(r.read_to_end(990), std::string(990, 'r'));  // exactly the limit
    EXPECT_TRUE(r.eof());

    MemoryStream over{.data = "0123456789", .chunk = 3};
    spindle::BufferedReader r2(over, {.buffer_size = 16});
    std::string out = "prefix:";
    expect_errno(
        EMSGSIZE, [&] { r2.read_to_end(out, 6); }, "read_to_end: more than 6 bytes");
    EXPECT_EQ(out, "prefix:012345");      // what fit is kept
    EXPECT_EQ(r2.read_to_end(), "6789");  // the rest was not lost
  });
}

TEST(BufferedReader, ReadToEndOverAPipe) {
  spindle::run([] {
    auto pipe = spindle::open_pipe();
    std::string payload(3 * 1024 * 1024 + 17, 'p');
    auto writer = spindle::spin([&] {
      pipe.write_end.write_all(bytes(payload));
      pipe.write_end.close();
    });
    spindle::BufferedReader r(pipe.read_end);
    EXPECT_EQ(r.read_to_end(), payload);
    writer.join();
  });
}

TEST(BufferedReader, EachLineStopsEarlyAndTheRestStays) {
  spindle::run([] {
    MemoryStream s{.data = "1\n2\n3\n4\n5\n", .chunk = 4};
    spindle::BufferedReader r(s);
    std::vector<std::string> seen;
    std::size_t n = r.each_line([&](std::string_view line) {
      seen.emplace_back(line);
      return line != "2";
    });
    EXPECT_EQ(n, 2u);
    EXPECT_EQ(r.read_line(), "3");
    n = r.each_line([&](std::string_view line) {
      if (line == "4") spindle::break_loop();
    });
    EXPECT_EQ(n, 1u);
    for (std::string_view line : r.lines()) {
      EXPECT_EQ(line, "5");
      break;
    }
    EXPECT_FALSE(r.read_line());
    EXPECT_EQ(r.each_line([](std::string_view) {}), 0u);
  });
}

TEST(BufferedReader, EofKeepsWhatItRead) {
  spindle::run([] {
    auto pipe = spindle::open_pipe();
    spindle::BufferedReader r(pipe.read_end);
    pipe.write_end.write_all(bytes("x"));
    EXPECT_FALSE(r.eof());  // reads "x" to find out, and keeps it
    EXPECT_EQ(r.buffered().size(), 1u);
    pipe.write_end.close();
    EXPECT_EQ(r.read_line(), "x");
    EXPECT_TRUE(r.eof());
  });
}

TEST(BufferedReader, CancelledReadLosesNothing) {
  spindle::run([] {
    auto pipe = spindle::open_pipe();
    spindle::BufferedReader r(pipe.read_end);
    pipe.write_end.write_all(bytes("first half, "));
    auto timed_out = spindle::move_on_after(50ms, [&] { return r.read_line(); });
    EXPECT_FALSE(timed_out);
    pipe.write_end.write_all(bytes("second half\n"));
    EXPECT_EQ(r.read_line(), "first half, second half");
  });
}

TEST(BufferedReader, StreamErrorsPropagate) {
  spindle::run([] {
    spindle::FdStream closed;
    spindle::BufferedReader r(closed);
    expect_errno(
        EBADF, [&] { (void)r.read_line(); }, "read fd -1");
  });
}

TEST(Copy, FdStreamsSplice) {
  spindle::run([] {
    auto in = spindle::open_pipe();
    auto out = spindle::open_pipe();
    std::string payload(1024 * 1024 + 3, 'c');
    auto producer = spindle::spin([&] {
      in.write_end.write_all(bytes(payload));
      in.write_end.close();
    });
    auto consumer = spindle::spin([&] {
      spindle::BufferedReader r(out.read_end);
      return r.read_to_end();
    });
    EXPECT_EQ(spindle::copy(in.read_end, out.write_end), payload.size());
    out.write_end.close();
    EXPECT_EQ(consumer.join(), payload);
    producer.join();
  });
}

TEST(Copy, ThroughAReaderAndWriter) {
  spindle::run([] {
    MemoryStream src{.data = "buffered first\nthen the rest", .chunk = 5};
    MemoryStream dst{.write_chunk = 3};
    spindle::BufferedReader r(src);
    EXPECT_EQ(r.read_line(), "buffered first");
    EXPECT_EQ(spindle::copy(r, dst), 13u);
    EXPECT_EQ(dst.written, "then the rest");
  });
}

}  // namespace
