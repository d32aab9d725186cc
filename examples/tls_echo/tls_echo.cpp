// tls_echo: a TLS echo server, and a client for it.
//
//   tls_echo server ADDRESS --cert CHAIN.pem --key KEY.pem
//   tls_echo client HOST:PORT [--ca CA.pem] [--name NAME] [MESSAGE...]
//
// The server sends every byte it receives back over TLS, one fiber per
// connection (port 0: the kernel picks one; the first line of output says
// which). The client verifies the server's certificate (against --ca, or
// else the system's CAs) and that it names NAME (default: HOST), sends each
// message (or each line of standard input) as a line and prints the line
// that comes back. Both print TLS errors as they are, e.g.
// "TLS handshake with localhost: certificate verify failed (...)".
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "../common/endpoint.hpp"
#include "spindle/spindle.hpp"

namespace {

using namespace std::chrono_literals;

int usage() {
  std::fprintf(stderr,
               "usage: tls_echo server ADDRESS --cert CHAIN.pem --key KEY.pem\n"
               "       tls_echo client HOST:PORT [--ca CA.pem] [--name NAME] [MESSAGE...]\n");
  return 2;
}

// One connection: the handshake (10 s at most), then echo until the client
// sends close_notify, then ours.
void serve(const spindle::TlsContext& context, spindle::TcpStream conn) {
  try {
    spindle::TlsStream tls = spindle::TlsStream::accept(context, std::move(conn), 10s);
    std::byte buf[16 * 1024];
    while (std::size_t n = tls.read_some(buf)) tls.write_all({buf, n});
    tls.close();
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "tls_echo: %s\n", e.what());
  } catch (const spindle::TimedOut&) {
    std::fprintf(stderr, "tls_echo: TLS handshake (server): no handshake within 10 s\n");
  }
}

int server(const std::string& where, const std::string& cert, const std::string& key) {
  spindle::TlsContext context = spindle::TlsContext::server();
  context.certificate_file(cert, key);
  return spindle::run([&] {
    auto listener = spindle::TcpListener::bind(spindle::SocketAddress::parse(where));
    examples::announce(listener);
    listener.accept_loop([&](spindle::TcpStream conn) {
      spindle::spin(
          [&context, conn = std::move(conn)]() mutable { serve(context, std::move(conn)); });
    });
    return 0;
  });
}

int client(const std::string& endpoint, const std::optional<std::string>& ca,
           std::optional<std::string> name, std::vector<std::string> messages) {
  if (messages.empty()) {
    for (std::string line; std::getline(std::cin, line);) messages.push_back(line);
  }
  spindle::TlsContext context = spindle::TlsContext::client();
  if (ca) context.ca_file(*ca);
  if (!name) name = examples::split_host_port(endpoint).first;
  return spindle::run([&] {
    spindle::TlsStream tls =
        spindle::TlsStream::connect(context, examples::connect_to(endpoint, 10s), *name, 10s);
    spindle::BufferedReader in(tls);
    for (const std::string& m : messages) {
      tls.write_all(examples::bytes(m + "\n"));
      std::optional<std::string_view> back = in.read_line();
      if (!back) {
        std::fprintf(stderr, "tls_echo: the server closed the connection\n");
        return 1;
      }
      std::printf("%.*s\n", static_cast<int>(back->size()), back->data());
    }
    tls.shutdown_write();  // close_notify: the server echoes it
    int status = in.eof() ? 0 : 1;
    tls.close();
    return status;
  });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  std::string mode = argv[1];
  std::string where = argv[2];
  std::optional<std::string> cert, key, ca, name;
  std::vector<std::string> messages;
  for (int i = 3; i < argc; ++i) {
    auto option = [&](const char* flag, std::optional<std::string>& into) {
      if (std::strcmp(argv[i], flag) != 0 || i + 1 >= argc) return false;
      into = argv[++i];
      return true;
    };
    if (option("--cert", cert) || option("--key", key) || option("--ca", ca) ||
        option("--name", name)) {
      continue;
    }
    messages.emplace_back(argv[i]);
  }
  try {
    if (mode == "server" && cert && key && messages.empty()) return server(where, *cert, *key);
    if (mode == "client" && !cert && !key) return client(where, ca, name, messages);
    return usage();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tls_echo: %s\n", e.what());
    return 1;
  }
}
