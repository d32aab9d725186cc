// dns_lookup [-4|-6] [--server ADDR]... [--no-hosts] [--timeout MS] NAME...
// resolves each name concurrently (one fiber each) and prints
// "NAME ADDRESS..." per name, in the order given. A name that fails prints
// the error on stderr and makes the exit status 1.
#include <sys/socket.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "spindle/spindle.hpp"

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: dns_lookup [-4|-6] [--server IP[:PORT]]... [--no-hosts] [--timeout MS] "
               "NAME...\n");
  return 2;
}

struct Answer {
  std::string line;   // "name addr addr"
  std::string error;  // or what went wrong
};

}  // namespace

int main(int argc, char** argv) {
  spindle::Resolver resolver;
  int family = AF_UNSPEC;
  std::chrono::milliseconds timeout{10000};
  std::vector<std::string> names;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-4") {
      family = AF_INET;
    } else if (a == "-6") {
      family = AF_INET6;
    } else if (a == "--no-hosts") {
      resolver.use_hosts_file = false;
    } else if (a == "--server" && i + 1 < argc) {
      resolver.servers.push_back(argv[++i]);
    } else if (a == "--timeout" && i + 1 < argc) {
      timeout = std::chrono::milliseconds(std::atol(argv[++i]));
    } else if (a.empty() || a[0] == '-') {
      return usage();
    } else {
      names.push_back(a);
    }
  }
  if (names.empty()) return usage();
  std::vector<Answer> answers(names.size());
  spindle::run([&] {
    std::vector<spindle::Fiber<void>> lookups;
    for (std::size_t i = 0; i < names.size(); ++i) {
      lookups.push_back(spindle::spin([&, i] {
        try {
          std::string line = names[i];
          for (const spindle::SocketAddress& a : resolver.resolve(names[i], 0, timeout, family)) {
            line += ' ';
            line += a.ip_string();
          }
          answers[i].line = line;
        } catch (const std::system_error& e) {
          answers[i].error = e.what();
        } catch (const spindle::TimedOut&) {
          answers[i].error = "resolve \"" + names[i] + "\": no answer within the timeout";
        }
      }));
    }
    for (auto& f : lookups) f.join();
  });
  int status = 0;
  for (const Answer& a : answers) {
    if (a.error.empty()) {
      std::printf("%s\n", a.line.c_str());
    } else {
      std::fprintf(stderr, "dns_lookup: %s\n", a.error.c_str());
      status = 1;
    }
  }
  return status;
}
