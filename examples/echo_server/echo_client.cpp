// echo_client HOST:PORT [MESSAGE...]: sends each message (or, without any,
// each line of standard input) as a line to an echo server and prints the
// line that comes back.
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "../common/endpoint.hpp"
#include "spindle/spindle.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: echo_client HOST:PORT [MESSAGE...]\n");
    return 2;
  }
  std::vector<std::string> messages(argv + 2, argv + argc);
  if (messages.empty()) {
    for (std::string line; std::getline(std::cin, line);) messages.push_back(line);
  }
  try {
    return spindle::run([&] {
      using namespace std::chrono_literals;
      spindle::TcpStream conn = examples::connect_to(argv[1], 10s);
      spindle::BufferedReader in(conn);
      for (const std::string& m : messages) {
        conn.write_all(examples::bytes(m + "\n"));
        std::optional<std::string_view> back = in.read_line();
        if (!back) {
          std::fprintf(stderr, "echo_client: the server closed the connection\n");
          return 1;
        }
        std::printf("%.*s\n", static_cast<int>(back->size()), back->data());
      }
      conn.shutdown();
      return in.eof() ? 0 : 1;  // the server echoes our end of stream
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "echo_client: %s\n", e.what());
    return 1;
  }
}
