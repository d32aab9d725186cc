// file_server ROOT [ADDRESS]: serves the files under ROOT over TCP.
//
// The protocol, one request per line, as many as the client likes:
//   client: a path, relative to ROOT ("docs/a.txt"; a leading '/' is ROOT)
//   server: "OK <size>\n" and then exactly <size> bytes of the file, or
//           "ERR <reason>\n"
// The file's bytes go out with sendfile (spliced on io_uring): they never
// pass through the server's memory. Paths that would leave ROOT ("..", or a
// symbolic link pointing outside) are refused.
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <string>

#include "../common/endpoint.hpp"
#include "spindle/spindle.hpp"

namespace {

constexpr std::size_t kMaxPath = 4096;

// The request as a path relative to the root, or nullopt if it would
// climb out of it. Symbolic links are checked after opening.
std::optional<std::string> relative_path(std::string_view request) {
  std::string out;
  while (!request.empty()) {
    std::size_t slash = request.find('/');
    std::string_view part = request.substr(0, slash);
    request = slash == std::string_view::npos ? std::string_view() : request.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == ".." || part.find('\0') != std::string_view::npos) return std::nullopt;
    if (!out.empty()) out += '/';
    out += part;
  }
  if (out.empty()) return std::nullopt;
  return out;
}

// Where descriptor `fd` really is (symbolic links resolved).
std::string real_path_of(int fd) {
  char link[64];
  std::snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  char target[PATH_MAX + 1];
  ssize_t n = ::readlink(link, target, PATH_MAX);
  return n < 0 ? std::string() : std::string(target, static_cast<std::size_t>(n));
}

class Root {
 public:
  explicit Root(const char* path) : fd_(spindle::open(path, O_PATH | O_DIRECTORY)) {
    real_ = real_path_of(fd_.fd());
    if (real_.empty()) throw std::runtime_error(std::string("cannot resolve ") + path);
    if (real_.back() != '/') real_ += '/';
  }

  // Sends the reply to one request.
  void serve(spindle::TcpStream& conn, std::string_view request) const {
    std::optional<std::string> rel = relative_path(request);
    if (!rel) return fail(conn, "path leaves the served directory");
    spindle::Result<int> file = spindle::nothrow::openat(
        fd_.fd(), rel->c_str(), O_RDONLY | O_NONBLOCK);  // a FIFO must not block the open
    if (!file) return fail(conn, std::strerror(file.error()));
    spindle::FdStream owned(*file);
    if (real_path_of(*file).rfind(real_, 0) != 0) {
      return fail(conn, "path leaves the served directory");  // through a symbolic link
    }
    struct ::statx st = spindle::fstatx(*file);
    if (!S_ISREG(st.stx_mode)) return fail(conn, "not a regular file");
    conn.write_all(examples::bytes("OK " + std::to_string(st.stx_size) + "\n"));
    std::size_t sent = spindle::sendfile(conn.fd(), *file, 0, st.stx_size);
    if (sent != st.stx_size) {
      // The file shrank while being sent: the reply cannot be framed any
      // more, so the connection ends.
      throw std::runtime_error("file changed while being sent: " + *rel);
    }
  }

 private:
  static void fail(spindle::TcpStream& conn, std::string_view why) {
    conn.write_all(examples::bytes("ERR " + std::string(why) + "\n"));
  }
  spindle::FdStream fd_;
  std::string real_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: file_server ROOT [ADDRESS]\n");
    return 2;
  }
  const std::string where = argc > 2 ? argv[2] : "127.0.0.1:7009";
  try {
    return spindle::run([&] {
      const Root root(argv[1]);
      auto listener = spindle::TcpListener::bind(spindle::SocketAddress::parse(where));
      examples::announce(listener);
      listener.accept_loop([&root](spindle::TcpStream conn) {
        spindle::spin([&root, conn = std::move(conn)]() mutable {
          try {
            spindle::BufferedReader in(conn, {.buffer_size = kMaxPath, .max_line = kMaxPath});
            while (std::optional<std::string_view> line = in.read_line()) {
              root.serve(conn, *line);
            }
          } catch (const std::exception& e) {
            std::fprintf(stderr, "file_server: %s\n", e.what());
          }
        });
      });
      return 0;
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "file_server: %s\n", e.what());
    return 1;
  }
}
