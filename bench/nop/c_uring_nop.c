/* nop-ops peer, the ceiling: a bare liburing loop in C with no fibers. Each
 * round prepares --batch NOP SQEs, submits them and waits for their CQEs in
 * one io_uring_submit_and_wait, and reaps them; --ops NOPs in all. The ring
 * has the flags spindle asks for (SINGLE_ISSUER | DEFER_TASKRUN, without
 * them where the kernel refuses). Round trips per second, the best of --reps
 * after a warm-up. */
#define _GNU_SOURCE
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char* what, int err) {
  fprintf(stderr, "c_uring_nop: %s: %s\n", what, strerror(err));
  exit(1);
}

static double once(struct io_uring* ring, unsigned long ops, unsigned batch) {
  double start = now_s();
  unsigned long done = 0;
  while (done < ops) {
    for (unsigned i = 0; i < batch; ++i) {
      struct io_uring_sqe* sqe = io_uring_get_sqe(ring);
      io_uring_prep_nop(sqe);
      sqe->user_data = i + 1;
    }
    int rc = io_uring_submit_and_wait(ring, batch);
    if (rc < 0) die("io_uring_submit_and_wait", -rc);
    unsigned head, seen = 0;
    struct io_uring_cqe* cqe;
    io_uring_for_each_cqe(ring, head, cqe) {
      if (cqe->res != 0 || cqe->user_data == 0) die("a NOP failed", cqe->res < 0 ? -cqe->res : 0);
      ++seen;
    }
    io_uring_cq_advance(ring, seen);
    done += seen;
  }
  return (double)done / (now_s() - start);
}

int main(int argc, char** argv) {
  unsigned long ops = 1000000, reps = 3, batch = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--ops") == 0)
      ops = strtoul(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--reps") == 0)
      reps = strtoul(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--batch") == 0)
      batch = strtoul(argv[i + 1], NULL, 10);
    else {
      fprintf(stderr, "c_uring_nop: unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (batch == 0 || batch > 256 || ops < batch) {
    fprintf(stderr, "c_uring_nop: --batch 1..256, --ops >= --batch\n");
    return 2;
  }
  struct io_uring ring;
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int rc = io_uring_queue_init_params(256, &ring, &p);
  if (rc == -EINVAL) {
    memset(&p, 0, sizeof p);
    rc = io_uring_queue_init_params(256, &ring, &p);
  }
  if (rc < 0) die("io_uring_queue_init_params", -rc);
  ops -= ops % batch;
  once(&ring, ops / 10 - (ops / 10) % batch + batch, (unsigned)batch); /* warm-up */
  double best = 0;
  for (unsigned long r = 0; r < reps; ++r) {
    double v = once(&ring, ops, (unsigned)batch);
    if (v > best) best = v;
  }
  printf("{\"value\": %.1f, \"batch\": %lu}\n", best, batch);
  io_uring_queue_exit(&ring);
  return 0;
}
