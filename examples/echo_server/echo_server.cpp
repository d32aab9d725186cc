// echo_server [ADDRESS]: sends every byte it receives back, one fiber per
// connection. ADDRESS defaults to 127.0.0.1:7007; port 0 lets the kernel
// pick one (the first line of output says which).
#include <cstdio>
#include <exception>
#include <string>

#include "../common/endpoint.hpp"
#include "spindle/spindle.hpp"

int main(int argc, char** argv) {
  const std::string where = argc > 1 ? argv[1] : "127.0.0.1:7007";
  try {
    return spindle::run([&] {
      auto listener = spindle::TcpListener::bind(spindle::SocketAddress::parse(where));
      examples::announce(listener);
      listener.accept_loop([](spindle::TcpStream conn) {
        spindle::spin([conn = std::move(conn)]() mutable {
          try {
            std::byte buf[16 * 1024];
            while (std::size_t n = conn.read_some(buf)) conn.write_all({buf, n});
            conn.shutdown();  // the client closed its side: close ours
          } catch (const std::system_error& e) {
            std::fprintf(stderr, "echo_server: %s\n", e.what());
          }
        });
      });
      return 0;
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "echo_server: %s\n", e.what());
    return 1;
  }
}
