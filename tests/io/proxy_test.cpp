// 1 GiB through a splice proxy between TCP connections, checksums equal.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

#include "io_test_util.hpp"
#include "spindle/spindle.hpp"

namespace {

// Sanitizer builds move less: the point there is the checks, not the volume.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr std::size_t kBytes = std::size_t{256} << 20;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr std::size_t kBytes = std::size_t{256} << 20;
#else
constexpr std::size_t kBytes = std::size_t{1} << 30;
#endif
#else
constexpr std::size_t kBytes = std::size_t{1} << 30;
#endif

// A position-dependent checksum over 64-bit words (FNV-1a style mixing);
// chunk boundaries do not matter, since the words are taken across them.
struct Checksum {
  std::uint64_t h = 1469598103934665603ull;
  std::uint64_t word = 0;
  unsigned have = 0;
  void add(std::span<const std::byte> b) {
    std::size_t i = 0;
    while (i < b.size() && have != 0) push_byte(b[i++]);
    for (; i + 8 <= b.size(); i += 8) {
      std::uint64_t w;
      std::memcpy(&w, b.data() + i, 8);
      h = (h ^ w) * 1099511628211ull;
    }
    while (i < b.size()) push_byte(b[i++]);
  }
  void push_byte(std::byte x) {
    word |= static_cast<std::uint64_t>(x) << (8 * have);
    if (++have == 8) {
      h = (h ^ word) * 1099511628211ull;
      word = 0;
      have = 0;
    }
  }
};

TEST(Proxy, OneGibibyteThroughASpliceProxy) {
  spindle::run([] {
    // client -> [proxy: accept, connect upstream, two_way_proxy] -> server
    io_test::Listener server = io_test::tcp_listener();
    io_test::Listener front = io_test::tcp_listener();
    auto proxy = spindle::spin([&] {
      int downstream = spindle::accept(front.fd);
      int upstream = io_test::tcp_connect(server.address);
      auto moved = spindle::two_way_proxy(downstream, upstream);
      spindle::close(downstream);
      spindle::close(upstream);
      return moved;
    });
    auto sink = spindle::spin([&] {
      int c = spindle::accept(server.fd);
      Checksum sum;
      std::size_t total = 0;
      spindle::BufferRing ring(16, 64 * 1024);
      spindle::recv_loop(c, ring, [&](std::span<const std::byte> chunk) {
        sum.add(chunk);
        total += chunk.size();
      });
      spindle::close(c);
      return std::pair(total, sum.h);
    });
    int client = io_test::tcp_connect(front.address);
    std::vector<std::byte> block(1 << 20);
    for (std::size_t i = 0; i < block.size(); ++i)
      block[i] = std::byte(static_cast<unsigned char>(i * 2654435761u >> 13));
    Checksum sent;
    auto t0 = std::chrono::steady_clock::now();
    for (std::size_t done = 0; done < kBytes; done += block.size()) {
      block[0] = std::byte(static_cast<unsigned char>(done >> 20));  // every block differs
      sent.add(block);
      spindle::send(client, block);
    }
    spindle::shutdown(client, SHUT_WR);
    auto [received, sum] = sink.join();
    auto [up, down] = proxy.join();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(received, kBytes);
    EXPECT_EQ(sum, sent.h);
    EXPECT_EQ(up, kBytes);
    EXPECT_EQ(down, 0u);
    std::printf("moved %zu MiB through the proxy in %.2f s (%.0f MiB/s)\n", kBytes >> 20, seconds,
                static_cast<double>(kBytes >> 20) / seconds);
    spindle::close(client);
    spindle::close(server.fd);
    spindle::close(front.fd);
  });
}

}  // namespace
