// The shape of the pipe and socketpair benchmarks, shared by the C++
// programs: `groups` independent groups, each a reader and a writer on one
// pipe (--kind pipe) or one AF_UNIX stream socketpair (--kind socketpair).
// The writer writes `messages` messages of `size` bytes, each completely;
// the reader reads with a buffer of `size` bytes (one read takes at most one
// message's worth) until it has them all. The figures are messages per
// second and MiB per second over all groups, the best of `reps` after a
// warm-up of a tenth of the messages. Message i is made of the byte
// uint8(i); the reader checks the first and last byte of every read.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "common/bench_util.hpp"

namespace bench {

struct PipeShape {
  std::string kind;
  std::uint64_t groups, size, messages, reps;

  static PipeShape parse(int argc, char** argv) {
    Args args(argc, argv, {"kind", "groups", "size", "messages", "reps"});
    PipeShape s{args.str("kind", "pipe"), args.num("groups", 10), args.num("size", 64),
                args.num("messages", 20000), args.num("reps", 3)};
    if (s.kind != "pipe" && s.kind != "socketpair") {
      std::fprintf(stderr, "--kind pipe|socketpair\n");
      std::exit(2);
    }
    if (s.groups == 0 || s.size == 0 || s.size > (1u << 20) || s.messages < 10) {
      std::fprintf(stderr, "bad --groups, --size (1 B .. 1 MiB) or --messages (at least 10)\n");
      std::exit(2);
    }
    return s;
  }
  bool socketpair() const { return kind == "socketpair"; }

  // A new connected pair: {read end, write end}, O_CLOEXEC, and O_NONBLOCK
  // when asked (the event-loop programs).
  std::pair<int, int> make(bool nonblocking) const {
    int fds[2];
    int rc =
        socketpair()
            ? ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0),
                           0, fds)
            : ::pipe2(fds, O_CLOEXEC | (nonblocking ? O_NONBLOCK : 0));
    if (rc != 0) {
      std::perror(kind.c_str());
      std::exit(1);
    }
    return {fds[0], fds[1]};
  }

  // Message i of a writer.
  static void fill(std::vector<unsigned char>& message, std::uint64_t i) {
    std::fill(message.begin(), message.end(), static_cast<unsigned char>(i));
  }
  // What a reader checks after reading n bytes at stream offset `at`.
  bool valid(const unsigned char* data, std::size_t n, std::uint64_t at) const {
    return n > 0 && data[0] == static_cast<unsigned char>(at / size) &&
           data[n - 1] == static_cast<unsigned char>((at + n - 1) / size);
  }

  // One measurement of `messages` messages per group between threads or
  // fibers: makes the pairs (non-blocking when asked), then, timed, starts
  // a reader and a writer per pair, each by `start(fn)` (a thread or a
  // fiber running fn, returned to be joined), and joins them all. The
  // reader reads with `read_some(fd, buffer)` (returning what read(2)
  // returns) and checks each piece; the writer writes each message with
  // `write_all(fd, message)`. Messages per second.
  template <class Start, class ReadSome, class WriteAll>
  double measure_pairs(std::uint64_t messages, bool nonblocking, Start&& start,
                       ReadSome&& read_some, WriteAll&& write_all) const {
    std::vector<std::pair<int, int>> pairs;
    for (std::uint64_t g = 0; g < groups; ++g) pairs.push_back(make(nonblocking));
    const std::uint64_t total = messages * size;
    auto t0 = Clock::now();
    std::vector<decltype(start([] {}))> workers;
    for (auto [r, w] : pairs) {
      workers.push_back(start([this, r = r, total, &read_some] {
        std::vector<unsigned char> buffer(size);
        std::uint64_t got = 0;
        while (got < total) {
          ssize_t n = read_some(r, buffer);
          check(n > 0 && valid(buffer.data(), static_cast<std::size_t>(n), got), "read");
          got += static_cast<std::uint64_t>(n);
        }
      }));
      workers.push_back(start([this, w = w, messages, &write_all] {
        std::vector<unsigned char> message(size);
        for (std::uint64_t i = 0; i < messages; ++i) {
          fill(message, i);
          write_all(w, message);
        }
      }));
    }
    for (auto& w : workers) w.join();
    double rate = ops_per_second(t0, groups * messages);
    close_all(pairs);
    return rate;
  }

  static void close_all(const std::vector<std::pair<int, int>>& pairs) {
    for (auto [r, w] : pairs) {
      ::close(r);
      ::close(w);
    }
  }

  // The figure: once(messages) (returning messages per second) run with a
  // tenth of the messages as a warm-up, then `reps` times; the best.
  template <class Once>
  double best(Once&& once) const {
    return warm_best_rate(reps, messages, once);
  }

  // The JSON members of the result line, given the best messages/s.
  std::string json(double msgs_per_s) const {
    double mib = msgs_per_s * static_cast<double>(size) / (1024.0 * 1024.0);
    return "\"mib_s\": " + std::to_string(mib) + ", \"kind\": " + json_string(kind) +
           ", \"groups\": " + std::to_string(groups) + ", \"size\": " + std::to_string(size) +
           ", \"messages\": " + std::to_string(messages);
  }
};

}  // namespace bench
