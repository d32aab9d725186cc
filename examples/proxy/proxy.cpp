// proxy LISTEN UPSTREAM: a two-way TCP proxy. Each client connection is
// joined to a new connection to UPSTREAM (host:port, a name resolves with
// Happy Eyeballs), and bytes move both ways by splice(2), without passing
// through user space, until both sides have finished.
#include <cstdio>
#include <exception>
#include <string>

#include "../common/endpoint.hpp"
#include "spindle/spindle.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: proxy LISTEN_ADDRESS UPSTREAM_HOST:PORT\n");
    return 2;
  }
  const std::string upstream = argv[2];
  try {
    examples::split_host_port(upstream);  // bad arguments fail now, not per client
    return spindle::run([&] {
      auto listener = spindle::TcpListener::bind(spindle::SocketAddress::parse(argv[1]));
      examples::announce(listener);
      listener.accept_loop([&](spindle::TcpStream client) {
        spindle::spin([&upstream, client = std::move(client)]() mutable {
          using namespace std::chrono_literals;
          try {
            spindle::TcpStream server = examples::connect_to(upstream, 10s);
            spindle::two_way_proxy(client.fd(), server.fd());
          } catch (const std::system_error& e) {
            std::fprintf(stderr, "proxy: %s\n", e.what());
          } catch (const spindle::TimedOut&) {
            std::fprintf(stderr, "proxy: connect %s: timed out\n", upstream.c_str());
          }
        });
      });
      return 0;
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "proxy: %s\n", e.what());
    return 1;
  }
}
