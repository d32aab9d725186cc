/* The reference echo server of the echo benchmark: a minimal hand-written
 * epoll loop in C, one thread. Level-triggered; each readable connection
 * gets one recv and its bytes are sent straight back (what the socket does
 * not take waits for EPOLLOUT, and reading pauses until it is gone).
 *
 *   c_epoll_echo --port P      prints "ready" once it listens on 127.0.0.1:P
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 4096

struct conn {
  int fd;
  unsigned pending; /* bytes of buf not sent yet, from offset `off` */
  unsigned off;
  char buf[BUF];
};

static void die(const char* what) {
  fprintf(stderr, "c_epoll_echo: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void drop(struct conn* c) {
  close(c->fd); /* also removes it from the epoll set */
  free(c);
}

static int set_events(int ep, struct conn* c, unsigned events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends what is pending; -1: the connection is gone. */
static int flush(int ep, struct conn* c) {
  while (c->pending > 0) {
    ssize_t n = send(c->fd, c->buf + c->off, c->pending, MSG_NOSIGNAL);
    if (n < 0 && errno == EAGAIN) return set_events(ep, c, EPOLLOUT);
    if (n <= 0) return -1;
    c->off += (unsigned)n;
    c->pending -= (unsigned)n;
  }
  return 0;
}

int main(int argc, char** argv) {
  int port = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
  }
  if (port < 0) {
    fprintf(stderr, "usage: c_epoll_echo --port P\n");
    return 2;
  }
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((unsigned short)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(lfd, (struct sockaddr*)&a, sizeof a) != 0) die("bind");
  if (listen(lfd, SOMAXCONN) != 0) die("listen");
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) != 0) die("epoll_ctl");
  printf("ready\n");
  fflush(stdout);

  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      struct conn* c = events[i].data.ptr;
      if (c == NULL) {
        for (;;) {
          int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct conn* nc = malloc(sizeof *nc);
          if (nc == NULL) die("malloc");
          nc->fd = fd;
          nc->pending = nc->off = 0;
          struct epoll_event ev = {.events = EPOLLIN, .data.ptr = nc};
          if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
        }
        continue;
      }
      if (c->pending > 0) { /* EPOLLOUT: finish the send, then read again */
        if (flush(ep, c) < 0) {
          drop(c);
        } else if (c->pending == 0 && set_events(ep, c, EPOLLIN) != 0) {
          drop(c);
        }
        continue;
      }
      ssize_t got = recv(c->fd, c->buf, BUF, 0);
      if (got < 0 && errno == EAGAIN) continue;
      if (got <= 0) {
        drop(c);
        continue;
      }
      c->off = 0;
      c->pending = (unsigned)got;
      if (flush(ep, c) < 0) drop(c);
    }
  }
}
