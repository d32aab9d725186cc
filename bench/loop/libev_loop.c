/* loop-dispatch-ns and loop-timers-ns peer: libev, on its epoll backend
 * (ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV); the program fails if it runs
 * on anything else). The work is in loop_work.h, shared with spindle's and
 * libuv's programs.
 *
 *   --mode dispatch: level-triggered ev_io watchers (EV_READ) on --fds
 *                    socketpairs; a turn is ev_run(loop, EVRUN_ONCE).
 *   --mode timers:   ev_timer_set + ev_timer_start (relative delay, one-shot),
 *                    then ev_timer_stop. The ev_timer structs are the
 *                    caller's memory, allocated once.
 */
#include <ev.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "loop/loop_work.h"

static uint64_t dispatched;
static uint64_t fired;

static void on_read(struct ev_loop* loop, ev_io* w, int revents) {
  (void)loop;
  (void)revents;
  lw_drain(w->fd);
  ++dispatched;
}

static void on_timer(struct ev_loop* loop, ev_timer* w, int revents) {
  (void)loop;
  (void)w;
  (void)revents;
  ++fired;
}

static void turn(void* loop) { ev_run((struct ev_loop*)loop, EVRUN_ONCE); }

static struct ev_loop* new_loop(void) {
  struct ev_loop* loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
  if (loop == NULL) lw_die("ev_loop_new(EVBACKEND_EPOLL) failed");
  if (ev_backend(loop) != EVBACKEND_EPOLL) lw_die("libev is not on its epoll backend");
  return loop;
}

/* The JSON members naming the library, its version and what was called. */
static void note_member(char* out, size_t size, const char* what) {
  snprintf(out, size, "\"backend\": \"epoll\", \"note\": \"libev %d.%d: %s\"",
           ev_version_major(), ev_version_minor(), what);
}

static int dispatch(const struct lw_args* a) {
  lw_raise_nofile(a->fds);
  int* watched = malloc(sizeof(int) * a->fds);
  int* peer = malloc(sizeof(int) * a->fds);
  ev_io* io = malloc(sizeof(ev_io) * a->fds);
  if (watched == NULL || peer == NULL || io == NULL) lw_die("out of memory");
  lw_socketpairs(a->fds, watched, peer);
  struct ev_loop* loop = new_loop();
  for (uint32_t i = 0; i < a->fds; ++i) {
    ev_io_init(&io[i], on_read, watched[i], EV_READ);
    ev_io_start(loop, &io[i]);
  }
  struct lw_dispatch_result r = lw_dispatch(a, peer, &dispatched, turn, loop);
  char member[200];
  note_member(member, sizeof member,
              "EVBACKEND_EPOLL, ev_io (EV_READ, level-triggered), ev_run(EVRUN_ONCE)");
  lw_print_dispatch(&r, member);
  for (uint32_t i = 0; i < a->fds; ++i) ev_io_stop(loop, &io[i]);
  ev_loop_destroy(loop);
  lw_close_socketpairs(a->fds, watched, peer);
  free(io);
  free(peer);
  free(watched);
  return 0;
}

static double timers_once(struct ev_loop* loop, ev_timer* t, const double* delays, uint32_t n) {
  int64_t start = lw_now_ns();
  for (uint32_t i = 0; i < n; ++i) {
    ev_timer_set(&t[i], delays[i], 0.);
    ev_timer_start(loop, &t[i]);
  }
  for (uint32_t i = 0; i < n; ++i) ev_timer_stop(loop, &t[i]);
  double ns = (double)(lw_now_ns() - start) / n;
  for (uint32_t i = 0; i < n; ++i) {
    if (ev_is_active(&t[i]) || ev_is_pending(&t[i])) lw_die("ev_timer_stop left a timer active");
  }
  if (fired != 0) lw_die("a timer fired");
  return ns;
}

static int timers(const struct lw_args* a) {
  struct ev_loop* loop = new_loop();
  int64_t* ns = lw_delays(a->timers);
  double* delays = malloc(sizeof(double) * a->timers);
  ev_timer* t = malloc(sizeof(ev_timer) * a->timers);
  if (delays == NULL || t == NULL) lw_die("out of memory");
  for (uint32_t i = 0; i < a->timers; ++i) {
    delays[i] = (double)ns[i] * 1e-9; /* libev takes seconds as a double */
    ev_init(&t[i], on_timer);
  }
  ev_now_update(loop);
  timers_once(loop, t, delays, a->timers); /* warm-up: libev's heap reaches its size */
  double best = 0;
  for (uint32_t rep = 0; rep < a->reps; ++rep) {
    double v = timers_once(loop, t, delays, a->timers);
    if (rep == 0 || v < best) best = v;
  }
  char member[200];
  note_member(member, sizeof member,
              "ev_timer_start (relative, seconds as a double) + ev_timer_stop");
  lw_print(best, member);
  ev_loop_destroy(loop);
  free(t);
  free(delays);
  free(ns);
  return 0;
}

int main(int argc, char** argv) {
  struct lw_args a = lw_parse(argc, argv);
  return a.mode == LW_DISPATCH ? dispatch(&a) : timers(&a);
}
