// capture(): output, status, input, limits and timeouts.
#include <gtest/gtest.h>
#include <signal.h>

#include <string>

#include "io/io_test_util.hpp"
#include "spindle/spindle.hpp"

namespace {

using namespace std::chrono_literals;
using io_test::expect_errno;

TEST(Capture, OutputErrorsAndStatus) {
  spindle::run([] {
    spindle::CaptureResult r = spindle::capture({"sh", "-c", "echo hi; echo oops >&2; exit 2"});
    EXPECT_EQ(r.out, "hi\n");
    EXPECT_EQ(r.err, "oops\n");
    EXPECT_TRUE(r.status.exited);
    EXPECT_EQ(r.status.code, 2);
    EXPECT_FALSE(r.status.timed_out);

    r = spindle::capture({"sh", "-c", "echo a; echo b >&2"}, {.merge_stderr = true});
    EXPECT_EQ(r.out, "a\nb\n");
    EXPECT_EQ(r.err, "");
  });
}

TEST(Capture, LargeInputAndOutputAtOnce) {
  spindle::run([] {
    // More than a pipe holds each way: input must be fed while output is read.
    std::string input;
    for (int i = 0; i < 100000; ++i) input += std::to_string(i) + "\n";
    spindle::CaptureResult r = spindle::capture({"cat"}, {.input = input});
    EXPECT_TRUE(r.status.success());
    EXPECT_EQ(r.out, input);
    // A child that reads nothing of its input is not an error.
    r = spindle::capture({"true"}, {.input = input});
    EXPECT_TRUE(r.status.success());
  });
}

TEST(Capture, OutputOverTheLimit) {
  spindle::run([] {
    expect_errno(
        EMSGSIZE,
        [] {
          spindle::capture({"sh", "-c", "yes | head -c 1000000"}, {.limit = 1000});
        },
        "capture sh: stdout longer than 1000 bytes");
    auto r = spindle::capture({"sh", "-c", "printf 1234567890"}, {.limit = 10});
    EXPECT_EQ(r.out, "1234567890");
  });
}

TEST(Capture, Timeout) {
  spindle::run([] {
    auto r = spindle::capture({"sh", "-c", "echo started; exec sleep 100"},
                              {.timeout = 300ms, .kill_grace = 10s});
    EXPECT_TRUE(r.status.timed_out);
    EXPECT_EQ(r.status.term_signal, SIGTERM);
    EXPECT_TRUE(r.out.empty() || r.out == "started\n") << r.out;
  });
}

TEST(Capture, ProgramThatCannotRun) {
  spindle::run([] {
    expect_errno(
        ENOENT, [] { spindle::capture({"/nonexistent/program"}); }, "execve");
  });
}

}  // namespace
