// What the examples share: splitting "host:port" and printing where a
// server listens.
#pragma once

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "spindle/spindle.hpp"

namespace examples {

// "example.test:80", "10.0.0.1:80", "[::1]:80" -> host and port. Throws
// std::invalid_argument naming the text.
inline std::pair<std::string, std::uint16_t> split_host_port(std::string_view text) {
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) {
    throw std::invalid_argument("\"" + std::string(text) + "\": expected host:port");
  }
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  std::string_view digits = text.substr(colon + 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (ec != std::errc() || end != digits.data() + digits.size() || port > 65535) {
    throw std::invalid_argument("\"" + std::string(text) + "\": bad port");
  }
  return {std::string(host), static_cast<std::uint16_t>(port)};
}

// Connects to "host:port" (a name or a literal), Happy Eyeballs included.
inline spindle::TcpStream connect_to(std::string_view endpoint, std::chrono::milliseconds timeout) {
  auto [host, port] = split_host_port(endpoint);
  return spindle::TcpStream::connect(host, port, {.deadline = timeout});
}

// The line the tests wait for before they connect: "listening on ADDR".
inline void announce(const spindle::Socket& listener) {
  std::printf("listening on %s\n", listener.local_address().to_string().c_str());
  std::fflush(stdout);
}

inline std::span<const std::byte> bytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

}  // namespace examples
