/* The work of the `loop` benchmark, shared by its three programs (spindle,
 * libev, libuv) so that each does exactly the same thing: the same flags, the
 * same socketpairs, the same pseudo-random choice of active descriptors per
 * round, the same timer delays, the same timing and the same JSON line.
 * Plain C (the libev and libuv programs are C), header-only.
 *
 * dispatch: --fds socketpairs (AF_UNIX, SOCK_STREAM, non-blocking); end [0]
 *   of each is watched for reading, level-triggered. A round writes 1 byte
 *   into the peer end [1] of --active distinct socketpairs (chosen by
 *   lw_plan from a fixed seed), then runs loop turns (one, unless a loop
 *   needs more) until the --active read callbacks have run, each reading its
 *   byte back. The figure is the whole time of --rounds rounds (writes,
 *   turns, callbacks, reads) / (rounds * active); best of --reps after
 *   --warmup untimed rounds.
 * timers: --timers timers with delays from lw_delays (1 s to 2 s, pseudo-
 *   random) are set, then all cancelled in the order they were set. The
 *   figure is the time of both passes / timers (ns per insert + cancel);
 *   best of --reps after one untimed pass.
 */
#ifndef SPINDLE_BENCH_LOOP_WORK_H
#define SPINDLE_BENCH_LOOP_WORK_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum lw_mode { LW_DISPATCH, LW_TIMERS };

struct lw_args {
  enum lw_mode mode;
  uint32_t fds;     /* watched socketpairs */
  uint32_t active;  /* socketpairs written per round */
  uint32_t rounds;  /* timed rounds per repetition */
  uint32_t warmup;  /* untimed rounds before the repetitions */
  uint32_t reps;    /* repetitions: the best one counts */
  uint32_t timers;  /* timers set and cancelled per repetition */
};

static inline void lw_die(const char* what) {
  fprintf(stderr, "%s\n", what);
  exit(1);
}

static inline void lw_die_errno(const char* what) {
  fprintf(stderr, "%s: %s\n", what, strerror(errno));
  exit(1);
}

static inline uint32_t lw_number(const char* flag, const char* text) {
  char* end = NULL;
  unsigned long long n = strtoull(text, &end, 10);
  if (end == text || *end != '\0' || n == 0 || n > 100000000ull) {
    fprintf(stderr, "%s: not a positive number: %s\n", flag, text);
    exit(2);
  }
  return (uint32_t)n;
}

/* --name value or --name=value. */
static inline struct lw_args lw_parse(int argc, char** argv) {
  struct lw_args a = {LW_DISPATCH, 10000, 100, 2000, 300, 5, 1000000};
  for (int i = 1; i < argc; ++i) {
    const char* arg = argv[i];
    const char* eq = strchr(arg, '=');
    char name[32];
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    if (len >= sizeof name || strncmp(arg, "--", 2) != 0) {
      fprintf(stderr, "unexpected argument %s\n", arg);
      exit(2);
    }
    memcpy(name, arg, len);
    name[len] = '\0';
    const char* value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : "");
    if (strcmp(name, "--mode") == 0) {
      if (strcmp(value, "dispatch") == 0) {
        a.mode = LW_DISPATCH;
      } else if (strcmp(value, "timers") == 0) {
        a.mode = LW_TIMERS;
      } else {
        fprintf(stderr, "--mode: dispatch or timers, not %s\n", value);
        exit(2);
      }
    } else if (strcmp(name, "--fds") == 0) {
      a.fds = lw_number(name, value);
    } else if (strcmp(name, "--active") == 0) {
      a.active = lw_number(name, value);
    } else if (strcmp(name, "--rounds") == 0) {
      a.rounds = lw_number(name, value);
    } else if (strcmp(name, "--warmup") == 0) {
      a.warmup = lw_number(name, value);
    } else if (strcmp(name, "--reps") == 0) {
      a.reps = lw_number(name, value);
    } else if (strcmp(name, "--timers") == 0) {
      a.timers = lw_number(name, value);
    } else {
      fprintf(stderr, "unknown flag %s\n", name);
      exit(2);
    }
  }
  if (a.active > a.fds) lw_die("--active must not exceed --fds");
  return a;
}

static inline int64_t lw_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* splitmix64: the same sequence in every program. */
static inline uint64_t lw_next(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Raises RLIMIT_NOFILE so that `fds` socketpairs (2 descriptors each) and
 * the loop's own descriptors fit: the soft limit up to the hard limit, and
 * the hard limit too when that is not enough and the process may (root,
 * CAP_SYS_RESOURCE). Exits with a message saying what to do otherwise. */
static inline void lw_raise_nofile(uint32_t fds) {
  const rlim_t needed = (rlim_t)fds * 2 + 64;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) lw_die_errno("getrlimit(RLIMIT_NOFILE)");
  if (rl.rlim_cur >= needed) return;
  if (rl.rlim_max >= needed) {
    struct rlimit soft = {rl.rlim_max, rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &soft) != 0) lw_die_errno("setrlimit(RLIMIT_NOFILE)");
    return;
  }
  struct rlimit both = {needed, needed}; /* above the hard limit: needs CAP_SYS_RESOURCE */
  if (setrlimit(RLIMIT_NOFILE, &both) == 0) return;
  fprintf(stderr,
          "RLIMIT_NOFILE: %u socketpairs need %llu descriptors (2 each + 64 for the loop), "
          "but the hard limit is %llu and only root can raise it; raise it (ulimit -Hn, "
          "/etc/security/limits.conf, systemd LimitNOFILE=) or pass a smaller --fds\n",
          (unsigned)fds, (unsigned long long)needed, (unsigned long long)rl.rlim_max);
  exit(1);
}

/* fds socketpairs: watched[i] is read by the loop, peer[i] is written to. */
static inline void lw_socketpairs(uint32_t fds, int* watched, int* peer) {
  for (uint32_t i = 0; i < fds; ++i) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
      lw_die_errno("socketpair");
    }
    watched[i] = sv[0];
    peer[i] = sv[1];
  }
}

static inline void lw_close_socketpairs(uint32_t fds, const int* watched, const int* peer) {
  for (uint32_t i = 0; i < fds; ++i) {
    close(watched[i]);
    close(peer[i]);
  }
}

/* The socketpairs each round writes to: rounds * active indices below fds,
 * distinct within a round (a partial Fisher-Yates shuffle per round). The
 * caller frees the result. */
static inline uint32_t* lw_plan(const struct lw_args* a, uint32_t rounds) {
  uint32_t* perm = (uint32_t*)malloc(sizeof(uint32_t) * a->fds);
  uint32_t* plan = (uint32_t*)malloc(sizeof(uint32_t) * (size_t)rounds * a->active);
  if (perm == NULL || plan == NULL) lw_die("out of memory");
  for (uint32_t i = 0; i < a->fds; ++i) perm[i] = i;
  uint64_t rng = 1;
  for (uint32_t r = 0; r < rounds; ++r) {
    for (uint32_t k = 0; k < a->active; ++k) {
      uint32_t j = k + (uint32_t)(lw_next(&rng) % (a->fds - k));
      uint32_t t = perm[k];
      perm[k] = perm[j];
      perm[j] = t;
      plan[(size_t)r * a->active + k] = perm[k];
    }
  }
  free(perm);
  return plan;
}

/* Writes the byte that makes watched[i] readable. */
static inline void lw_poke(int peer_fd) {
  char byte = 'x';
  if (write(peer_fd, &byte, 1) != 1) lw_die_errno("write(peer)");
}

/* What a read callback does: reads the byte back. */
static inline void lw_drain(int fd) {
  char byte;
  if (read(fd, &byte, 1) != 1) lw_die_errno("read(watched): a callback without its byte");
}

/* Timer delays in nanoseconds, 1 s to 2 s, the same in every program. The
 * caller frees the result. */
static inline int64_t* lw_delays(uint32_t n) {
  int64_t* d = (int64_t*)malloc(sizeof(int64_t) * n);
  if (d == NULL) lw_die("out of memory");
  uint64_t rng = 2;
  for (uint32_t i = 0; i < n; ++i) d[i] = 1000000000 + (int64_t)(lw_next(&rng) % 1000000000);
  return d;
}

/* Timing of the dispatch rounds: the figure, and where it went. */
struct lw_dispatch_result {
  double ns_per_event;    /* everything: the figure */
  double write_ns;        /* of which the writes, per event */
  double turn_ns;         /* of which the loop turns with their callbacks, per event */
  double turns_per_round; /* 1 unless a loop needed more than one turn */
};

/* One loop turn that blocks until something is ready (EV_RUN_ONCE,
 * UV_RUN_ONCE, Loop::run_once()). */
typedef void (*lw_turn_fn)(void* loop);

/* Runs rounds [first, first + count) of `plan`: each writes into the peers
 * of the round's `active` socketpairs, then runs turns until the callbacks
 * (which add 1 to *dispatched each) have seen all of them. */
static inline struct lw_dispatch_result lw_rounds(const struct lw_args* a, const uint32_t* plan,
                                           uint32_t first, uint32_t count, const int* peer,
                                           uint64_t* dispatched, lw_turn_fn turn, void* loop) {
  int64_t writing = 0, turning = 0;
  uint64_t turns = 0;
  int64_t t0 = lw_now_ns();
  for (uint32_t r = first; r < first + count; ++r) {
    const uint32_t* chosen = plan + (size_t)r * a->active;
    for (uint32_t k = 0; k < a->active; ++k) lw_poke(peer[chosen[k]]);
    const uint64_t target = *dispatched + a->active;
    int64_t t1 = lw_now_ns();
    while (*dispatched < target) {
      turn(loop);
      ++turns;
    }
    if (*dispatched != target) lw_die("more callbacks than readable descriptors");
    int64_t t2 = lw_now_ns();
    writing += t1 - t0;
    turning += t2 - t1;
    t0 = t2;
  }
  const double events = (double)count * a->active;
  struct lw_dispatch_result res;
  res.write_ns = (double)writing / events;
  res.turn_ns = (double)turning / events;
  res.ns_per_event = res.write_ns + res.turn_ns;
  res.turns_per_round = (double)turns / count;
  return res;
}

/* The dispatch benchmark around a loop's turn: the warm-up, then the best
 * of the repetitions. */
static inline struct lw_dispatch_result lw_dispatch(const struct lw_args* a, const int* peer,
                                             uint64_t* dispatched, lw_turn_fn turn, void* loop) {
  uint32_t* plan = lw_plan(a, a->warmup + a->rounds);
  lw_rounds(a, plan, 0, a->warmup, peer, dispatched, turn, loop);
  struct lw_dispatch_result best = {0, 0, 0, 0};
  for (uint32_t rep = 0; rep < a->reps; ++rep) {
    struct lw_dispatch_result r =
        lw_rounds(a, plan, a->warmup, a->rounds, peer, dispatched, turn, loop);
    if (rep == 0 || r.ns_per_event < best.ns_per_event) best = r;
  }
  free(plan);
  return best;
}

/* The JSON members that go with a dispatch figure, after `prefix`. */
static inline void lw_print_dispatch(const struct lw_dispatch_result* r, const char* prefix) {
  printf("{\"value\": %.4f, %s%s\"write_ns\": %.2f, \"turn_ns\": %.2f, "
         "\"turns_per_round\": %.3f}\n",
         r->ns_per_event, prefix, prefix[0] ? ", " : "", r->write_ns, r->turn_ns,
         r->turns_per_round);
  fflush(stdout);
}

/* The JSON line; `extra` is already-formatted members (may be empty). */
static inline void lw_print(double value, const char* extra) {
  printf("{\"value\": %.4f%s%s}\n", value, extra[0] ? ", " : "", extra);
  fflush(stdout);
}

#endif
