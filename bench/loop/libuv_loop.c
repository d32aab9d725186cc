/* loop-dispatch-ns and loop-timers-ns peer: libuv (which waits through
 * epoll on Linux). The work is in loop_work.h, shared with spindle's and
 * libev's programs.
 *
 *   --mode dispatch: uv_poll_t handles (uv_poll_start(UV_READABLE), level-
 *                    triggered epoll) on --fds socketpairs; a turn is
 *                    uv_run(loop, UV_RUN_ONCE).
 *   --mode timers:   uv_timer_start (relative delay in milliseconds, one-
 *                    shot), then uv_timer_stop. The handles are the caller's
 *                    memory, allocated and uv_timer_init'ed once.
 */
#include <uv.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "loop/loop_work.h"

static uint64_t dispatched;
static uint64_t fired;

static void check(int rc, const char* what) {
  if (rc != 0) {
    fprintf(stderr, "%s: %s\n", what, uv_strerror(rc));
    exit(1);
  }
}

static void on_read(uv_poll_t* handle, int status, int events) {
  check(status, "uv_poll callback");
  if ((events & UV_READABLE) == 0) lw_die("uv_poll callback without UV_READABLE");
  lw_drain(*(const int*)handle->data);
  ++dispatched;
}

static void on_timer(uv_timer_t* handle) {
  (void)handle;
  ++fired;
}

static void turn(void* loop) { uv_run((uv_loop_t*)loop, UV_RUN_ONCE); }

/* The JSON members naming the library, its version and what was called. */
static void note_member(char* out, size_t size, const char* what) {
  snprintf(out, size, "\"backend\": \"epoll\", \"note\": \"libuv %s: %s\"",
           uv_version_string(), what);
}

static void close_all(uv_loop_t* loop, uv_handle_t* first, size_t stride, uint32_t n) {
  for (uint32_t i = 0; i < n; ++i) uv_close((uv_handle_t*)((char*)first + stride * i), NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  check(uv_loop_close(loop), "uv_loop_close");
}

static int dispatch(const struct lw_args* a) {
  lw_raise_nofile(a->fds);
  int* watched = malloc(sizeof(int) * a->fds);
  int* peer = malloc(sizeof(int) * a->fds);
  uv_poll_t* polls = malloc(sizeof(uv_poll_t) * a->fds);
  if (watched == NULL || peer == NULL || polls == NULL) lw_die("out of memory");
  lw_socketpairs(a->fds, watched, peer);
  uv_loop_t loop;
  check(uv_loop_init(&loop), "uv_loop_init");
  for (uint32_t i = 0; i < a->fds; ++i) {
    check(uv_poll_init(&loop, &polls[i], watched[i]), "uv_poll_init");
    polls[i].data = &watched[i];
    check(uv_poll_start(&polls[i], UV_READABLE, on_read), "uv_poll_start");
  }
  struct lw_dispatch_result r = lw_dispatch(a, peer, &dispatched, turn, &loop);
  char member[200];
  note_member(member, sizeof member,
              "epoll, uv_poll_start(UV_READABLE) (level-triggered), uv_run(UV_RUN_ONCE)");
  lw_print_dispatch(&r, member);
  close_all(&loop, (uv_handle_t*)polls, sizeof(uv_poll_t), a->fds);
  lw_close_socketpairs(a->fds, watched, peer);
  free(polls);
  free(peer);
  free(watched);
  return 0;
}

static double timers_once(uv_timer_t* t, const uint64_t* delays, uint32_t n) {
  int64_t start = lw_now_ns();
  for (uint32_t i = 0; i < n; ++i) check(uv_timer_start(&t[i], on_timer, delays[i], 0), "uv_timer_start");
  for (uint32_t i = 0; i < n; ++i) uv_timer_stop(&t[i]);
  double ns = (double)(lw_now_ns() - start) / n;
  for (uint32_t i = 0; i < n; ++i) {
    if (uv_is_active((uv_handle_t*)&t[i])) lw_die("uv_timer_stop left a timer active");
  }
  if (fired != 0) lw_die("a timer fired");
  return ns;
}

static int timers(const struct lw_args* a) {
  uv_loop_t loop;
  check(uv_loop_init(&loop), "uv_loop_init");
  int64_t* ns = lw_delays(a->timers);
  uint64_t* delays = malloc(sizeof(uint64_t) * a->timers);
  uv_timer_t* t = malloc(sizeof(uv_timer_t) * a->timers);
  if (delays == NULL || t == NULL) lw_die("out of memory");
  for (uint32_t i = 0; i < a->timers; ++i) {
    delays[i] = (uint64_t)(ns[i] / 1000000); /* libuv takes milliseconds */
    check(uv_timer_init(&loop, &t[i]), "uv_timer_init");
  }
  uv_update_time(&loop);
  timers_once(t, delays, a->timers); /* warm-up, as for the others */
  double best = 0;
  for (uint32_t rep = 0; rep < a->reps; ++rep) {
    double v = timers_once(t, delays, a->timers);
    if (rep == 0 || v < best) best = v;
  }
  char member[200];
  note_member(member, sizeof member,
              "uv_timer_start (relative, whole milliseconds) + uv_timer_stop");
  lw_print(best, member);
  close_all(&loop, (uv_handle_t*)t, sizeof(uv_timer_t), a->timers);
  free(t);
  free(delays);
  free(ns);
  return 0;
}

int main(int argc, char** argv) {
  struct lw_args a = lw_parse(argc, argv);
  return a.mode == LW_DISPATCH ? dispatch(&a) : timers(&a);
}
