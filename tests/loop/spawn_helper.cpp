// A child for spawn_test: does what its arguments say.
//   list-fds            print the open descriptors, e.g. "0 1 2"
//   bytes N             write N bytes of a known pattern to stdout
//   both                write "out" to stdout and "err" to stderr
//   echo                copy stdin to stdout until EOF
//   sleep-echo MS       sleep, then echo
//   exit N              exit with code N
//   sleep MS            sleep
//   ignore-term MS      ignore SIGTERM, then sleep
//   sigstate            print the blocked-signal mask (hex) and SIGPIPE's disposition
//   env NAME            print $NAME
//   cwd                 print the working directory
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

void write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w <= 0) std::exit(3);
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

void say(const std::string& s) {
  write_all(1, s.data(), s.size());
}

void sleep_ms(long ms) {
  ::usleep(static_cast<useconds_t>(ms * 1000));
}

void echo() {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(0, buf, sizeof(buf));
    if (n <= 0) return;
    write_all(1, buf, static_cast<std::size_t>(n));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 100;
  std::string mode = argv[1];
  long arg = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 0;
  if (mode == "list-fds") {
    DIR* d = ::opendir("/proc/self/fd");
    std::string out;
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.' || std::atoi(e->d_name) == ::dirfd(d)) continue;
      if (!out.empty()) out += ' ';
      out += e->d_name;
    }
    ::closedir(d);
    say(out);
  } else if (mode == "bytes") {
    std::string chunk(65536, '\0');
    for (long done = 0; done < arg;) {
      long n = std::min<long>(arg - done, static_cast<long>(chunk.size()));
      for (long i = 0; i < n; ++i)
        chunk[static_cast<std::size_t>(i)] = static_cast<char>((done + i) % 251);
      write_all(1, chunk.data(), static_cast<std::size_t>(n));
      done += n;
    }
  } else if (mode == "both") {
    say("out");
    write_all(2, "err", 3);
  } else if (mode == "echo") {
    echo();
  } else if (mode == "sleep-echo") {
    sleep_ms(arg);
    echo();
  } else if (mode == "exit") {
    return static_cast<int>(arg);
  } else if (mode == "sleep") {
    sleep_ms(arg);
  } else if (mode == "ignore-term") {
    ::signal(SIGTERM, SIG_IGN);
    sleep_ms(arg);
  } else if (mode == "sigstate") {
    sigset_t mask;
    ::sigprocmask(SIG_SETMASK, nullptr, &mask);
    unsigned long long bits = 0;
    for (int s = 1; s < 64; ++s) {
      if (::sigismember(&mask, s) == 1) bits |= 1ull << (s - 1);
    }
    struct sigaction sa {};
    ::sigaction(SIGPIPE, nullptr, &sa);
    char text[64];
    std::snprintf(text, sizeof(text), "%llx %s", bits,
                  sa.sa_handler == SIG_IGN   ? "ignored"
                  : sa.sa_handler == SIG_DFL ? "default"
                                             : "handled");
    say(text);
  } else if (mode == "env") {
    const char* v = std::getenv(argv[2]);
    say(v != nullptr ? v : "(unset)");
  } else if (mode == "cwd") {
    char buf[4096];
    say(::getcwd(buf, sizeof(buf)) != nullptr ? buf : "?");
  } else {
    return 101;
  }
  return 0;
}
