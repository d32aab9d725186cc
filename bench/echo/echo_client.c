/* The load generator of the echo benchmark, the same program for every
 * server: plain C (never spindle), one thread.
 *
 *   echo_client [--conns N] [--size B] [--warmup S] [--seconds S] [--windows W]
 *               [--server-cpu C|none] [--client-cpu C|none] [--engine uring|epoll]
 *               [--realtime 0|1] -- SERVER [ARGS...]
 *
 * It starts SERVER ARGS... --port P (P a free port on 127.0.0.1) pinned to
 * CPU --server-cpu (sched_setaffinity, what taskset does), pins itself to
 * --client-cpu ("none": no pinning), and waits for the server to print a
 * line starting with "ready" on its stdout ("ready io_uring": the backend it
 * runs on). Then it opens N TCP connections (TCP_NODELAY) and on each sends
 * a B-byte message, waits for all B bytes to come back, and sends the next
 * at once: one message in flight per connection, back to back. Every
 * echoed message is checked against what was sent.
 *
 * The client must cost less per message than the servers it measures, or
 * the figure is its own speed: on loopback each side's send also runs the
 * peer's TCP receive path, so a client doing what a plain epoll server does
 * (a recv and a send system call per message) is as slow as that server.
 * The default engine, io_uring, keeps a multishot receive with a
 * provided-buffer ring armed on every connection and sends with SQEs whose
 * successful completions are skipped, all submitted with one io_uring_enter
 * per turn of its loop (which also waits); the clock is read once per turn
 * (a message is sent at that turn's time, its echo arrives at the time of
 * the turn that reaps it). --engine epoll is the plain level-triggered
 * loop (a recv and a send system call per message), kept to show the
 * difference.
 *
 * --realtime 1 runs the client and the server (all its threads) under
 * SCHED_RR at priority 1, so that other work on a shared machine waits
 * while they run instead of taking turns with them (the kernel's RT
 * throttling still leaves that work 5 % of each second); without the
 * privilege (CAP_SYS_NICE) they run as usual and the JSON line says
 * "realtime": false.
 *
 * After --warmup seconds it counts for --seconds, cut into W windows (8):
 * per window the round trips per second, the server's CPU time (user +
 * system, all its threads, from /proc/PID/task/TID/schedstat) and its own
 * per round trip, how busy each was (CPU time / wall time) and how much of
 * the CPUs they run on went to other processes or to the hypervisor
 * (/proc/stat). Each figure is the median over the windows; the best
 * window's rate is given too. Round-trip times go to a histogram of 100 ns
 * buckets (p50, p99). At the end the server gets SIGTERM (SIGKILL after
 * 5 s).
 *
 * Output: one JSON line {"value": msgs_per_s, "best": .., "p50_us": ..,
 * "p99_us": .., "server_cpu_ns_per_msg": .., "server_user_ns_per_msg": ..,
 * "server_sys_ns_per_msg": .., "client_cpu_ns_per_msg": ..,
 * "server_busy": .., "client_busy": .., "others_busy": .., "backend": ..}
 * for bench/run.py. Exit status 1 on any failure. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
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
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZE 4096
#define MAX_WINDOWS 1000
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
  uint32_t sent;     /* epoll engine: bytes of the current message sent */
  uint32_t received; /* bytes of its echo received */
  uint64_t seq;
  int64_t sent_at;
  unsigned char out[MAX_SIZE];
  unsigned char in[MAX_SIZE];
};

static struct conn* conns;
static long conn_count;
static uint32_t msg_size;
static uint32_t* histogram;
static uint64_t counted;
static int counting;
/* The clock, read once per turn of the client's loop (after its wait). */
static int64_t turn_time;

static void fill(struct conn* c) {
  /* Different bytes per connection and message: a server that mixes up
   * buffers is caught. */
  uint64_t x = (c->seq * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)c->fd * 0xBF58476D1CE4E5B9ull);
  for (uint32_t i = 0; i < msg_size; i += 8) {
    uint64_t v = x + i;
    memcpy(c->out + i, &v, msg_size - i < 8 ? msg_size - i : 8);
  }
}

/* The next message of `c` is made and timed from this turn (the engine
 * sends it). */
static void next_message(struct conn* c) {
  ++c->seq;
  fill(c);
  c->sent = 0;
  c->received = 0;
  c->sent_at = turn_time;
}

/* `n` bytes of echo arrived for `c`; 1 when its message is complete (then
 * checked and counted). */
static int take_echo(struct conn* c, const unsigned char* data, size_t n) {
  if (n > msg_size - c->received) fail("more bytes came back than were sent");
  memcpy(c->in + c->received, data, n);
  c->received += (uint32_t)n;
  if (c->received < msg_size) return 0;
  if (memcmp(c->in, c->out, msg_size) != 0) fail("an echo differs from the message sent");
  if (counting) {
    uint64_t b = (uint64_t)(turn_time - c->sent_at) / BUCKET_NS;
    ++histogram[b < BUCKETS ? b : BUCKETS - 1];
    ++counted;
  }
  return 1;
}

/* --- the io_uring engine ------------------------------------------------ */

static struct io_uring ring;
static struct io_uring_buf_ring* buf_ring;
static unsigned char* buf_data;
static unsigned buf_count, buf_size;
#define BUF_GROUP 0
#define SEND_TAG 1u /* user_data: connection index << 1 | SEND_TAG */

static unsigned pow2_at_least(unsigned long n) {
  unsigned p = 1;
  while (p < n) p <<= 1;
  return p;
}

static struct io_uring_sqe* new_sqe(void) {
  struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  if (sqe == NULL) { /* the SQ is full: submit what is in it */
    int rc = io_uring_submit(&ring);
    if (rc < 0) fail("io_uring_submit: %s", strerror(-rc));
    sqe = io_uring_get_sqe(&ring);
    if (sqe == NULL) fail("no SQE after a submit");
  }
  return sqe;
}

static void arm_recv(long k) {
  struct io_uring_sqe* sqe = new_sqe();
  io_uring_prep_recv_multishot(sqe, conns[k].fd, NULL, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = BUF_GROUP;
  sqe->user_data = (uint64_t)k << 1;
}

/* MSG_WAITALL: io_uring completes a short send itself; only a failure
 * posts a CQE. */
static void queue_send(long k) {
  struct io_uring_sqe* sqe = new_sqe();
  io_uring_prep_send(sqe, conns[k].fd, conns[k].out, msg_size, MSG_NOSIGNAL | MSG_WAITALL);
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  sqe->user_data = (uint64_t)k << 1 | SEND_TAG;
}

static void uring_setup(void) {
  unsigned entries = pow2_at_least((unsigned long)conn_count + 16);
  if (entries > 4096) entries = 4096;
  unsigned setups[] = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
                       IORING_SETUP_COOP_TASKRUN, 0};
  int rc = -EINVAL;
  struct io_uring_params p;
  for (size_t i = 0; i < sizeof setups / sizeof setups[0] && rc == -EINVAL; ++i) {
    memset(&p, 0, sizeof p);
    p.flags = setups[i] | IORING_SETUP_CQSIZE;
    p.cq_entries = 2 * pow2_at_least((unsigned long)conn_count + 16);
    rc = io_uring_queue_init_params(entries, &ring, &p);
  }
  if (rc < 0) fail("io_uring_queue_init_params: %s (--engine epoll works without)", strerror(-rc));
  if ((p.features & IORING_FEAT_CQE_SKIP) == 0)
    fail("the kernel has no IOSQE_CQE_SKIP_SUCCESS (5.17): use --engine epoll");
  /* Twice as many buffers as connections: an echo in two pieces holds two
   * until they are handed back at the end of the turn. */
  buf_count = pow2_at_least(2 * (unsigned long)conn_count);
  if (buf_count > 32768) buf_count = 32768;
  buf_size = msg_size;
  size_t ring_bytes = buf_count * sizeof(struct io_uring_buf);
  buf_ring = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  buf_data = malloc((size_t)buf_count * buf_size);
  if (buf_ring == MAP_FAILED || buf_data == NULL) fail("out of memory");
  struct io_uring_buf_reg reg = {
      .ring_addr = (uint64_t)(uintptr_t)buf_ring, .ring_entries = buf_count, .bgid = BUF_GROUP};
  rc = io_uring_register_buf_ring(&ring, &reg, 0);
  if (rc < 0) fail("io_uring_register_buf_ring: %s (--engine epoll works without)", strerror(-rc));
  io_uring_buf_ring_init(buf_ring);
  int mask = io_uring_buf_ring_mask(buf_count);
  for (unsigned b = 0; b < buf_count; ++b)
    io_uring_buf_ring_add(buf_ring, buf_data + (size_t)b * buf_size, buf_size, (unsigned short)b,
                          mask, (int)b);
  io_uring_buf_ring_advance(buf_ring, (int)buf_count);
  for (long k = 0; k < conn_count; ++k) {
    arm_recv(k);
    next_message(&conns[k]);
    queue_send(k);
  }
}

static int spin; /* --spin 1: never sleep */
/* Turns that found nothing to do, and the time from the turn before:
 * the client's slack (--spin: the time it spent polling). */
static uint64_t idle_ns;

/* One turn: submits what the last turn queued, waits up to 100 ms for a
 * completion (--spin: only collects what has completed), handles them all. */
static void uring_turn(void) {
  struct io_uring_cqe* cqe;
  int rc;
  if (spin) {
    rc = io_uring_submit_and_get_events(&ring);
  } else {
    struct __kernel_timespec wait = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
    rc = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &wait, NULL);
  }
  if (rc < 0 && rc != -ETIME && rc != -EINTR) fail("io_uring_submit_and_wait: %s", strerror(-rc));
  int64_t before = turn_time;
  turn_time = now_ns();
  if (io_uring_cq_ready(&ring) == 0) idle_ns += (uint64_t)(turn_time - before);
  int mask = io_uring_buf_ring_mask(buf_count);
  unsigned head, seen = 0;
  int recycled = 0;
  io_uring_for_each_cqe(&ring, head, cqe) {
    ++seen;
    long k = (long)(cqe->user_data >> 1);
    if (cqe->user_data & SEND_TAG) { /* only failed sends complete */
      fail("send: %s", cqe->res < 0 ? strerror(-cqe->res) : "short");
    }
    if (cqe->res == -ENOBUFS) { /* every buffer in use (not expected): receive again */
      arm_recv(k);
      continue;
    }
    if (cqe->res < 0) fail("recv: %s", strerror(-cqe->res));
    if (cqe->res == 0) fail("the server closed a connection");
    if ((cqe->flags & IORING_CQE_F_BUFFER) == 0) fail("a receive without a buffer");
    unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    unsigned char* data = buf_data + (size_t)bid * buf_size;
    int done = take_echo(&conns[k], data, (size_t)cqe->res);
    io_uring_buf_ring_add(buf_ring, data, buf_size, (unsigned short)bid, mask, recycled++);
    if ((cqe->flags & IORING_CQE_F_MORE) == 0) arm_recv(k);
    if (done) {
      next_message(&conns[k]);
      queue_send(k);
    }
  }
  io_uring_cq_advance(&ring, seen);
  if (recycled > 0) io_uring_buf_ring_advance(buf_ring, recycled);
}

/* --- the epoll engine --------------------------------------------------- */

static int ep = -1;

static void want_write(struct conn* c, int on) {
  struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) fail("epoll_ctl: %m");
}

/* Sends what is left of the current message; 1 if all of it went out. */
static int push(struct conn* c) {
  while (c->sent < msg_size) {
    ssize_t n = send(c->fd, c->out + c->sent, msg_size - c->sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EAGAIN) {
      want_write(c, 1);
      return 0;
    }
    if (n < 0) fail("send: %m");
    c->sent += (uint32_t)n;
  }
  return 1;
}

static void epoll_setup(void) {
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) fail("epoll_create1: %m");
  for (long k = 0; k < conn_count; ++k) {
    struct conn* c = &conns[k];
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) fail("epoll_ctl: %m");
  }
  for (long k = 0; k < conn_count; ++k) {
    next_message(&conns[k]);
    push(&conns[k]);
  }
}

static void epoll_readable(struct conn* c) {
  for (;;) {
    unsigned char buf[MAX_SIZE];
    ssize_t n = recv(c->fd, buf, msg_size - c->received, 0);
    if (n < 0 && errno == EAGAIN) return;
    if (n < 0) fail("recv: %m");
    if (n == 0) fail("the server closed a connection");
    if (c->received + (uint32_t)n > c->sent) fail("more bytes came back than were sent");
    if (!take_echo(c, buf, (size_t)n)) continue;
    next_message(c);
    push(c);
    return; /* one message in flight: nothing more to read now */
  }
}

static void epoll_turn(void) {
  struct epoll_event events[256];
  int n = epoll_wait(ep, events, 256, spin ? 0 : 100);
  if (n < 0 && errno != EINTR) fail("epoll_wait: %m");
  int64_t before = turn_time;
  turn_time = now_ns();
  if (n <= 0) idle_ns += (uint64_t)(turn_time - before);
  for (int k = 0; k < n; ++k) {
    struct conn* c = events[k].data.ptr;
    if (events[k].events & (EPOLLERR | EPOLLHUP)) fail("a connection failed or was closed");
    if (events[k].events & EPOLLOUT) {
      if (push(c)) want_write(c, 0);
    }
    if (events[k].events & EPOLLIN) epoll_readable(c);
  }
}

/* --- measuring ---------------------------------------------------------- */

/* The server's threads (up to MAX_THREADS) and the CPU time each has used
 * so far, in seconds. */
#define MAX_THREADS 16
struct threads {
  int count;
  int tid[MAX_THREADS];
  double cpu[MAX_THREADS];
};

/* CPU time (user + system) the server's threads have used so far, in
 * seconds: the sum of the first field (nanoseconds on the CPU) of
 * /proc/PID/task/TID/schedstat; -1 if unreadable. Threads that ended are
 * not counted (the servers keep theirs). The first threads' own figures go
 * to `each`. */
static double server_cpu_s(struct threads* each) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", (int)server_pid);
  DIR* dir = opendir(path);
  if (dir == NULL) return -1;
  double total = 0;
  each->count = 0;
  struct dirent* e;
  while ((e = readdir(dir)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char file[400]; /* "/proc/PID/task" (< 64) + "/" + a name (< 256) + "/schedstat" */
    snprintf(file, sizeof file, "%s/%s/schedstat", path, e->d_name);
    FILE* f = fopen(file, "r");
    if (f == NULL) continue; /* the thread just ended */
    unsigned long long ns = 0;
    if (fscanf(f, "%llu", &ns) == 1) {
      total += (double)ns / 1e9;
      if (each->count < MAX_THREADS) {
        each->tid[each->count] = atoi(e->d_name);
        each->cpu[each->count++] = (double)ns / 1e9;
      }
    }
    fclose(f);
  }
  closedir(dir);
  return total;
}

/* The server's user and system CPU time so far, in seconds, all threads
 * (fields 14 and 15 of /proc/PID/stat, in clock ticks: the kernel splits
 * the exact run time between the two by sampling, so the split is good to
 * a tick or two); -1 if unreadable. */
static void server_user_sys_s(double* user, double* sys) {
  *user = *sys = -1;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)server_pid);
  FILE* f = fopen(path, "r");
  if (f == NULL) return;
  char line[1024];
  char* got = fgets(line, sizeof line, f);
  fclose(f);
  if (got == NULL) return;
  const char* rest = strrchr(line, ')'); /* the name in parentheses may hold spaces */
  unsigned long long utime, stime;
  if (rest == NULL || sscanf(rest + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                             &utime, &stime) != 2)
    return;
  *user = (double)utime / (double)sysconf(_SC_CLK_TCK);
  *sys = (double)stime / (double)sysconf(_SC_CLK_TCK);
}

static double own_cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time in seconds that CPUs `a` and `b` (-1: every CPU) spent busy
 * (everything but idle and iowait, steal included: time the hypervisor
 * gave to others), from /proc/stat; -1 if unreadable. */
static double cpus_busy_s(int a, int b) {
  FILE* f = fopen("/proc/stat", "r");
  if (f == NULL) return -1;
  char line[512];
  double total = 0;
  int found = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    int cpu = -1;
    const char* rest;
    if (strncmp(line, "cpu ", 4) == 0) {
      if (a >= 0) continue;
      rest = line + 4;
    } else if (sscanf(line, "cpu%d", &cpu) == 1 && (cpu == a || cpu == b) && a >= 0) {
      rest = strchr(line, ' ');
    } else {
      continue;
    }
    unsigned long long v[8] = {0};
    if (sscanf(rest, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7]) < 8)
      continue;
    total += (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]); /* all but idle, iowait */
    ++found;
  }
  fclose(f);
  return found > 0 ? total / (double)sysconf(_SC_CLK_TCK) : -1;
}

struct sample {
  int64_t t;
  uint64_t counted, idle_ns;
  double server_cpu, client_cpu, busy, server_user, server_sys;
  struct threads threads;
};

static struct sample take_sample(int cpu_a, int cpu_b) {
  struct sample s = {.t = now_ns(), .counted = counted, .idle_ns = idle_ns};
  s.server_cpu = server_cpu_s(&s.threads);
  server_user_sys_s(&s.server_user, &s.server_sys);
  s.client_cpu = own_cpu_s();
  s.busy = cpus_busy_s(cpu_a, cpu_b);
  return s;
}

static int by_value(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

/* The median of n values (sorted in place); -1 if n == 0. */
static double median(double* v, int n) {
  if (n == 0) return -1;
  qsort(v, (size_t)n, sizeof *v, by_value);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
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

static long cpu_flag(const char* flag, const char* text) {
  return strcmp(text, "none") == 0 ? -1 : num(flag, text);
}

int main(int argc, char** argv) {
  long conns_flag = 100, size = 64, server_cpu = 0, client_cpu = 1, windows = 8;
  double warmup = 0.5, seconds = 4.0;
  const char* engine = "uring";
  long realtime = 0;
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
      conns_flag = num(a, v);
    else if (strcmp(a, "--size") == 0)
      size = num(a, v);
    else if (strcmp(a, "--server-cpu") == 0)
      server_cpu = cpu_flag(a, v);
    else if (strcmp(a, "--client-cpu") == 0)
      client_cpu = cpu_flag(a, v);
    else if (strcmp(a, "--windows") == 0)
      windows = num(a, v);
    else if (strcmp(a, "--warmup") == 0)
      warmup = atof(v);
    else if (strcmp(a, "--seconds") == 0)
      seconds = atof(v);
    else if (strcmp(a, "--engine") == 0)
      engine = v;
    else if (strcmp(a, "--realtime") == 0)
      realtime = num(a, v);
    else if (strcmp(a, "--spin") == 0)
      spin = num(a, v) != 0;
    else
      fail("unknown flag %s", a);
  }
  if (i >= argc) fail("usage: echo_client [flags] -- SERVER [ARGS...]");
  int use_uring = strcmp(engine, "uring") == 0;
  if (!use_uring && strcmp(engine, "epoll") != 0) fail("--engine: uring or epoll, not %s", engine);
  if (conns_flag < 1 || conns_flag > 100000 || size < 1 || size > MAX_SIZE || seconds <= 0 ||
      windows < 1 || windows > MAX_WINDOWS)
    fail("bad --conns/--size/--seconds/--windows");
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) server_cpu = client_cpu = -1; /* nothing to pin apart */
  conn_count = conns_flag;
  msg_size = (uint32_t)size;

  raise_nofile(conn_count + 64); /* the server inherits the raised limit */
  histogram = calloc(BUCKETS, sizeof *histogram);
  conns = calloc((size_t)conn_count, sizeof *conns);
  if (histogram == NULL || conns == NULL) fail("out of memory");

  signal(SIGPIPE, SIG_IGN);
  if (realtime) { /* before the fork: the server inherits the policy */
    struct sched_param rr = {.sched_priority = 1};
    if (sched_setscheduler(0, SCHED_RR, &rr) != 0) {
      fprintf(stderr, "echo_client: SCHED_RR refused (%m): running at the usual priority\n");
      realtime = 0;
    }
  }
  int port = free_port();
  char backend[64] = "";
  start_server(argv + i, port, (int)server_cpu, backend, sizeof backend);
  pin(0, (int)client_cpu);

  struct sockaddr_in addr = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  for (long k = 0; k < conn_count; ++k) {
    struct conn* c = &conns[k];
    /* Blocking connect (the listen backlog may be shorter than --conns:
     * the server accepts as we go). */
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) fail("socket: %m");
    if (connect(c->fd, (struct sockaddr*)&addr, sizeof addr) != 0) fail("connect: %m");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  turn_time = now_ns();
  if (use_uring)
    uring_setup();
  else
    epoll_setup();

  /* Pinned apart, the two CPUs are the server's and the client's;
   * otherwise all of them are. */
  int cpu_a = server_cpu >= 0 && client_cpu >= 0 ? (int)server_cpu : -1;
  int cpu_b = (int)client_cpu;
  long cpus_watched =
      cpu_a >= 0 ? (server_cpu == client_cpu ? 1 : 2) : sysconf(_SC_NPROCESSORS_ONLN);
  int64_t count_from = turn_time + (int64_t)(warmup * 1e9);
  int64_t window_ns = (int64_t)(seconds * 1e9) / windows;
  int64_t next_window = count_from;
  int taken = 0;
  struct sample last = {0}, first = {0};
  static double rate[MAX_WINDOWS], server_per[MAX_WINDOWS], client_per[MAX_WINDOWS],
      server_busy[MAX_WINDOWS], client_busy[MAX_WINDOWS], others[MAX_WINDOWS],
      client_idle[MAX_WINDOWS];
  int n_rate = 0, n_server = 0, n_client = 0, n_busy = 0, n_others = 0;
  for (;;) {
    if (turn_time >= next_window) {
      struct sample s = take_sample(cpu_a, cpu_b);
      if (counting) {
        double wall = (double)(s.t - last.t) / 1e9;
        double msgs = (double)(s.counted - last.counted);
        rate[n_rate++] = msgs / wall;
        double server = s.server_cpu - last.server_cpu, client = s.client_cpu - last.client_cpu;
        if (msgs > 0) client_per[n_client++] = client * 1e9 / msgs;
        client_busy[n_busy] = client / wall;
        client_idle[n_busy] = (double)(s.idle_ns - last.idle_ns) / 1e9 / wall;
        if (s.server_cpu >= 0 && last.server_cpu >= 0) {
          if (msgs > 0) server_per[n_server++] = server * 1e9 / msgs;
          server_busy[n_busy] = server / wall;
          if (s.busy >= 0 && last.busy >= 0) {
            double other = (s.busy - last.busy - server - client) / (wall * (double)cpus_watched);
            others[n_others++] = other > 0 ? other : 0;
          }
        } else {
          server_busy[n_busy] = -1;
        }
        ++n_busy;
      }
      if (!counting) first = s;
      counting = ++taken <= windows;
      last = s;
      next_window += window_ns;
      if (!counting) break;
    }
    if (use_uring)
      uring_turn();
    else
      epoll_turn();
  }
  for (long k = 0; k < conn_count; ++k) close(conns[k].fd);
  stop_server();
  if (counted == 0) fail("no message came back while counting");
  double best = 0;
  for (int k = 0; k < n_rate; ++k)
    if (rate[k] > best) best = rate[k];
  printf(
      "{\"value\": %.1f, \"best\": %.1f, \"p50_us\": %.2f, \"p99_us\": %.2f, \"messages\": %llu, "
      "\"conns\": %ld, \"engine\": \"%s\"",
      median(rate, n_rate), best, percentile_us(0.50), percentile_us(0.99),
      (unsigned long long)counted, conn_count, engine);
  /* What the server spent per round trip: less disturbed by a busy
   * machine than the rate. */
  if (n_server > 0) printf(", \"server_cpu_ns_per_msg\": %.1f", median(server_per, n_server));
  /* Its split between user space (the server's own code) and the kernel,
   * over the whole counted time: the user share is what one server's code
   * costs more than another's; the rest is mostly the TCP stack. */
  if (first.server_user >= 0 && last.server_user >= 0 && last.counted > first.counted) {
    double msgs = (double)(last.counted - first.counted);
    printf(", \"server_user_ns_per_msg\": %.1f, \"server_sys_ns_per_msg\": %.1f",
           (last.server_user - first.server_user) * 1e9 / msgs,
           (last.server_sys - first.server_sys) * 1e9 / msgs);
  }
  if (n_client > 0) printf(", \"client_cpu_ns_per_msg\": %.1f", median(client_per, n_client));
  if (n_busy > 0 && server_busy[0] >= 0)
    printf(", \"server_busy\": %.3f", median(server_busy, n_busy));
  if (n_busy > 0) printf(", \"client_busy\": %.3f", median(client_busy, n_busy));
  if (n_busy > 0) printf(", \"client_idle\": %.3f", median(client_idle, n_busy));
  if (n_others > 0) printf(", \"others_busy\": %.3f", median(others, n_others));
  /* How busy each server thread was over the counted time (how a
   * multi-threaded server spread the work), the busiest first. */
  double share[MAX_THREADS];
  int shares = 0;
  for (int t = 0; t < last.threads.count; ++t) {
    for (int f = 0; f < first.threads.count; ++f) {
      if (first.threads.tid[f] != last.threads.tid[t]) continue;
      share[shares++] =
          (last.threads.cpu[t] - first.threads.cpu[f]) * 1e9 / (double)(last.t - first.t);
    }
  }
  qsort(share, (size_t)shares, sizeof *share, by_value);
  printf(", \"server_threads_busy\": [");
  for (int t = shares - 1; t >= 0; --t) printf("%s%.3f", t == shares - 1 ? "" : ", ", share[t]);
  printf("]");
  printf(", \"realtime\": %s, \"spin\": %s", realtime ? "true" : "false", spin ? "true" : "false");
  if (backend[0] != '\0') printf(", \"backend\": \"%s\"", backend);
  printf("}\n");
  return 0;
}
