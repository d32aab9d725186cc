/* The load generator of the echo benchmark, the same program for every
 * server: plain C over epoll (never spindle), one thread.
 *
 *   echo_client [--conns N] [--size B] [--warmup S] [--seconds S] [--windows W]
 *               [--server-cpu C] [--client-cpu C] -- SERVER [ARGS...]
 *
 * It starts SERVER ARGS... --port P (P a free port on 127.0.0.1) pinned to
 * CPU --server-cpu (sched_setaffinity, what taskset does), pins itself to
 * --client-cpu, and waits for the server to print a line starting with
 * "ready" on its stdout ("ready io_uring": the backend it runs on). Then it
 * opens N TCP connections (TCP_NODELAY) and on each sends a B-byte message,
 * waits for all B bytes to come back, and sends the next at once: one
 * message in flight per connection, back to back. After --warmup seconds it
 * counts for --seconds: the round trips completed (messages/s) and the
 * round-trip time of each (send to last byte back, CLOCK_MONOTONIC) in a
 * histogram of 100 ns buckets, from which p50 and p99 come. The counted
 * time is cut into W windows (4): the rate is the best window's, and so is
 * the server's CPU time (user + system, all its threads, from
 * /proc/PID/task/TID/schedstat) per round trip. Every echoed message is
 * checked against what was sent. At the end the server gets
 * SIGTERM (SIGKILL after 5 s).
 *
 * Output: one JSON line {"value": msgs_per_s, "p50_us": .., "p99_us": ..,
 * "server_cpu_ns_per_msg": .., "backend": ..} for bench/run.py. Exit status 1 on any failure. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZE 4096
#define BUCKET_NS 100
#define BUCKETS (10 * 1000 * 1000) /* 100 ns buckets up to 1 s; beyond: the last */

static pid_t server_pid = -1;

static void stop_server(void) {
  if (server_pid <= 0) return;
  kill(server_pid, SIGTERM);
  for (int i = 0; i < 500; ++i) {
    if (waitpid(server_pid, NULL, WNOHANG) == server_pid) {
      server_pid = -1;
      return;
    }
    usleep(10000);
  }
  kill(server_pid, SIGKILL);
  waitpid(server_pid, NULL, 0);
  server_pid = -1;
}

static void fail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("echo_client: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  stop_server();
  exit(1);
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void pin(pid_t pid, int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(pid, sizeof set, &set) != 0) fail("sched_setaffinity cpu %d: %m", cpu);
}

/* A port nobody listens on now (the server binds it right after). */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr*)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr*)&a, &len) != 0) {
    fail("finding a free port: %m");
  }
  close(fd);
  return ntohs(a.sin_port);
}

/* Starts the server and returns once it printed "ready ...": the backend it
 * named (or "") is copied into `backend`. */
static void start_server(char** argv, int port, int cpu, char* backend, size_t backend_size) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) fail("pipe2: %m");
  int argc = 0;
  while (argv[argc] != NULL) ++argc;
  char port_text[16];
  snprintf(port_text, sizeof port_text, "%d", port);
  char** args = calloc((size_t)argc + 3, sizeof *args);
  if (args == NULL) fail("out of memory");
  memcpy(args, argv, (size_t)argc * sizeof *args);
  args[argc] = "--port";
  args[argc + 1] = port_text;
  server_pid = fork();
  if (server_pid < 0) fail("fork: %m");
  if (server_pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    pin(0, cpu);
    execv(args[0], args);
    fprintf(stderr, "echo_client: exec %s: %m\n", args[0]);
    _exit(127);
  }
  free(args);
  close(out[1]);
  char line[256];
  size_t used = 0;
  int64_t deadline = now_ns() + 30 * 1000000000LL;
  for (;;) {
    struct pollfd p = {.fd = out[0], .events = POLLIN};
    int left_ms = (int)((deadline - now_ns()) / 1000000);
    if (left_ms <= 0) fail("the server did not say \"ready\" within 30 s");
    if (poll(&p, 1, left_ms) < 0 && errno != EINTR) fail("poll: %m");
    if (p.revents == 0) continue;
    ssize_t n = read(out[0], line + used, sizeof line - 1 - used);
    if (n <= 0) fail("the server exited before it was ready");
    used += (size_t)n;
    line[used] = '\0';
    char* nl = strchr(line, '\n');
    if (nl == NULL && used < sizeof line - 1) continue;
    if (nl != NULL) *nl = '\0';
    if (strncmp(line, "ready", 5) != 0) fail("the server said \"%s\", not \"ready\"", line);
    const char* name = line + 5;
    while (*name == ' ') ++name;
    size_t len = strlen(name);
    if (len >= backend_size) len = backend_size - 1;
    memcpy(backend, name, len);
    backend[len] = '\0';
    break;
  }
  /* The server's later output (if any) is discarded: keep reading it would
   * cost this thread; closing it means a server that prints gets EPIPE. */
  close(out[0]);
}

struct conn {
  int fd;
  uint32_t size;
  uint32_t sent;     /* bytes of the current message sent */
  uint32_t received; /* bytes of its echo received */
  uint64_t seq;
  int64_t sent_at;
  unsigned char out[MAX_SIZE];
  unsigned char in[MAX_SIZE];
};

static uint32_t* histogram;
static uint64_t counted;
static int counting;

static void fill(struct conn* c) {
  /* Different bytes per connection and message: a server that mixes up
   * buffers is caught. */
  uint64_t x = c->seq * 0x9E3779B97F4A7C15ull ^ (uint64_t)c->fd;
  for (uint32_t i = 0; i < c->size; ++i)
    c->out[i] = (unsigned char)(x >> ((i % 8) * 8)) + (unsigned char)i;
}

static void want_write(int ep, struct conn* c, int on) {
  struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) fail("epoll_ctl: %m");
}

/* Sends what is left of the current message; 1 if all of it went out. */
static int push(int ep, struct conn* c) {
  while (c->sent < c->size) {
    ssize_t n = send(c->fd, c->out + c->sent, c->size - c->sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EAGAIN) {
      want_write(ep, c, 1);
      return 0;
    }
    if (n < 0) fail("send: %m");
    c->sent += (uint32_t)n;
  }
  return 1;
}

static void next_message(int ep, struct conn* c) {
  ++c->seq;
  fill(c);
  c->sent = 0;
  c->received = 0;
  c->sent_at = now_ns();
  push(ep, c);
}

static void on_readable(int ep, struct conn* c) {
  for (;;) {
    ssize_t n = recv(c->fd, c->in + c->received, c->size - c->received, 0);
    if (n < 0 && errno == EAGAIN) return;
    if (n < 0) fail("recv: %m");
    if (n == 0) fail("the server closed a connection");
    c->received += (uint32_t)n;
    if (c->received > c->sent) fail("more bytes came back than were sent");
    if (c->received < c->size) continue;
    if (memcmp(c->in, c->out, c->size) != 0) fail("an echo differs from the message sent");
    if (counting) {
      int64_t rtt = now_ns() - c->sent_at;
      uint64_t b = (uint64_t)rtt / BUCKET_NS;
      ++histogram[b < BUCKETS ? b : BUCKETS - 1];
      ++counted;
    }
    next_message(ep, c);
    return; /* one message in flight: nothing more to read now */
  }
}

/* CPU time (user + system) the server's threads have used so far, in
 * seconds: the sum of the first field (nanoseconds on the CPU) of
 * /proc/PID/task/TID/schedstat; -1 if unreadable. Threads that ended are
 * not counted (the servers keep theirs). */
static double server_cpu_s(void) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", (int)server_pid);
  DIR* dir = opendir(path);
  if (dir == NULL) return -1;
  double total = 0;
  struct dirent* e;
  while ((e = readdir(dir)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char file[400]; /* "/proc/PID/task" (< 64) + "/" + a name (< 256) + "/schedstat" */
    snprintf(file, sizeof file, "%s/%s/schedstat", path, e->d_name);
    FILE* f = fopen(file, "r");
    if (f == NULL) continue; /* the thread just ended */
    unsigned long long ns = 0;
    if (fscanf(f, "%llu", &ns) == 1) total += (double)ns / 1e9;
    fclose(f);
  }
  closedir(dir);
  return total;
}

static double percentile_us(double p) {
  uint64_t rank = (uint64_t)(p * (double)counted);
  if (rank >= counted) rank = counted - 1;
  uint64_t seen = 0;
  for (uint64_t b = 0; b < BUCKETS; ++b) {
    seen += histogram[b];
    if (seen > rank) return (double)(b * BUCKET_NS + BUCKET_NS / 2) / 1000.0;
  }
  return (double)BUCKETS * BUCKET_NS / 1000.0;
}

static void raise_nofile(long needed) {
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return;
  if (r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
  if (r.rlim_cur != RLIM_INFINITY && (long)r.rlim_cur < needed) {
    fail("RLIMIT_NOFILE is %ld, %ld descriptors are needed (ulimit -n)", (long)r.rlim_cur, needed);
  }
}

static long num(const char* flag, const char* text) {
  char* end = NULL;
  long v = strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < 0) fail("%s: not a number: %s", flag, text);
  return v;
}

int main(int argc, char** argv) {
  long conns = 100, size = 64, server_cpu = 0, client_cpu = 1, windows = 4;
  double warmup = 0.5, seconds = 2.0;
  int i = 1;
  for (; i < argc; ++i) {
    const char* a = argv[i];
    if (strcmp(a, "--") == 0) {
      ++i;
      break;
    }
    if (i + 1 >= argc) fail("%s needs a value", a);
    const char* v = argv[++i];
    if (strcmp(a, "--conns") == 0)
      conns = num(a, v);
    else if (strcmp(a, "--size") == 0)
      size = num(a, v);
    else if (strcmp(a, "--server-cpu") == 0)
      server_cpu = num(a, v);
    else if (strcmp(a, "--client-cpu") == 0)
      client_cpu = num(a, v);
    else if (strcmp(a, "--windows") == 0)
      windows = num(a, v);
    else if (strcmp(a, "--warmup") == 0)
      warmup = atof(v);
    else if (strcmp(a, "--seconds") == 0)
      seconds = atof(v);
    else
      fail("unknown flag %s", a);
  }
  if (i >= argc) fail("usage: echo_client [flags] -- SERVER [ARGS...]");
  if (conns < 1 || size < 1 || size > MAX_SIZE || seconds <= 0 || windows < 1)
    fail("bad --conns/--size/--seconds/--windows");
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) server_cpu = client_cpu = -1; /* nothing to pin apart */

  raise_nofile(conns + 64); /* the server inherits the raised limit */
  histogram = calloc(BUCKETS, sizeof *histogram);
  struct conn* cs = calloc((size_t)conns, sizeof *cs);
  if (histogram == NULL || cs == NULL) fail("out of memory");

  signal(SIGPIPE, SIG_IGN);
  int port = free_port();
  char backend[64] = "";
  start_server(argv + i, port, (int)server_cpu, backend, sizeof backend);
  pin(0, (int)client_cpu);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) fail("epoll_create1: %m");
  struct sockaddr_in addr = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  for (long k = 0; k < conns; ++k) {
    struct conn* c = &cs[k];
    c->size = (uint32_t)size;
    /* Blocking connect (the listen backlog may be shorter than --conns:
     * the server accepts as we go), then non-blocking I/O. */
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) fail("socket: %m");
    if (connect(c->fd, (struct sockaddr*)&addr, sizeof addr) != 0) fail("connect: %m");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) fail("epoll_ctl: %m");
  }
  for (long k = 0; k < conns; ++k) next_message(ep, &cs[k]);

  struct epoll_event events[256];
  int64_t start = now_ns();
  int64_t count_from = start + (int64_t)(warmup * 1e9);
  int64_t window_ns = (int64_t)(seconds * 1e9) / windows;
  int64_t end = count_from + window_ns * windows;
  /* The counted time is cut into windows; the figures are the best
   * window's (a busy machine takes the CPUs away now and then). */
  int64_t window_start = 0, next_window = count_from;
  uint64_t window_counted = 0;
  double window_cpu = -1, best_rate = 0, best_cpu_ns = -1;
  for (;;) {
    int64_t t = now_ns();
    if (t >= next_window) {
      double cpu = server_cpu_s();
      if (counting) {
        double rate = (double)(counted - window_counted) * 1e9 / (double)(t - window_start);
        if (rate > best_rate) best_rate = rate;
        if (cpu >= 0 && window_cpu >= 0 && counted > window_counted) {
          double per = (cpu - window_cpu) * 1e9 / (double)(counted - window_counted);
          if (best_cpu_ns < 0 || per < best_cpu_ns) best_cpu_ns = per;
        }
      }
      counting = 1;
      window_start = t;
      window_counted = counted;
      window_cpu = cpu;
      next_window += window_ns;
    }
    if (t >= end) break;
    int n = epoll_wait(ep, events, 256, 100);
    if (n < 0 && errno != EINTR) fail("epoll_wait: %m");
    for (int k = 0; k < n; ++k) {
      struct conn* c = events[k].data.ptr;
      if (events[k].events & (EPOLLERR | EPOLLHUP)) fail("a connection failed or was closed");
      if (events[k].events & EPOLLOUT) {
        if (push(ep, c)) want_write(ep, c, 0);
      }
      if (events[k].events & EPOLLIN) on_readable(ep, c);
    }
  }
  for (long k = 0; k < conns; ++k) close(cs[k].fd);
  stop_server();
  if (counted == 0) fail("no message came back while counting");
  printf("{\"value\": %.1f, \"p50_us\": %.2f, \"p99_us\": %.2f, \"messages\": %llu, \"conns\": %ld",
         best_rate, percentile_us(0.50), percentile_us(0.99), (unsigned long long)counted, conns);
  /* What the server spent per round trip: less disturbed by a busy
   * machine than the rate. */
  if (best_cpu_ns >= 0) printf(", \"server_cpu_ns_per_msg\": %.1f", best_cpu_ns);
  if (backend[0] != '\0') printf(", \"backend\": \"%s\"", backend);
  printf("}\n");
  return 0;
}
