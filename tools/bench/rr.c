// Latency peers for tools/bench: a 1 KiB echo server and two timing clients.
// Written in C so that the client and server add as little as possible to the
// round trip (a Python loop adds tens of microseconds and flattens the ratios).
//
//   rr serve PORT                    echo server on 0.0.0.0:PORT (epoll, one thread)
//   rr pingpong HOST PORT SECONDS    1 KiB request, 1 KiB reply, on one connection
//   rr crr HOST PORT SECONDS         connect, 1 KiB request, 1 KiB reply, close; repeat
//   rr conns HOST PORT N [RATE]      open N connections (at most RATE per second) and hold
//                                    them; steps driven by stdin
//
// The clients print one JSON object: sample count, percentiles in microseconds,
// and for crr the connections per second (one client, one connection at a time).
// conns prints one JSON line per step and waits for a line on stdin before the
// next one, so that the harness can sample memory in between: "open" (N
// connections established and idle), "traffic" (1 KiB written on every
// connection, then every 1 KiB echo read), "closed" (all closed; it exits).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { kMsg = 1024, kWarmup = 200 };

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Writes all of buf; on a non-blocking socket waits for room with poll().
static int write_all(int fd, const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      poll(&p, 1, 1000);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    buf += w;
    n -= (size_t)w;
  }
  return 0;
}

static int read_exact(int fd, char *buf, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, buf, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    buf += r;
    n -= (size_t)r;
  }
  return 0;
}

// Raises the open file limit to at least want (as root, past the hard limit).
static void raise_nofile(rlim_t want) {
  struct rlimit l;
  if (getrlimit(RLIMIT_NOFILE, &l) != 0 || l.rlim_cur >= want) return;
  struct rlimit up = {.rlim_cur = want, .rlim_max = l.rlim_max > want ? l.rlim_max : want};
  if (setrlimit(RLIMIT_NOFILE, &up) == 0) return;
  l.rlim_cur = l.rlim_max;
  setrlimit(RLIMIT_NOFILE, &l);
}

__attribute__((noreturn)) static void serve(int port) {
  raise_nofile(1 << 16);
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  if (listen(ls, 4096) < 0) die("listen");
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  static char buf[65536];
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == ls) {
        int c;
        while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          nodelay(c);
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      ssize_t r = read(fd, buf, sizeof buf);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r <= 0 || write_all(fd, buf, (size_t)r) < 0) close(fd);  // close also removes it from epoll
    }
  }
}

static int connect_to(const char *host, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  nodelay(fd);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, host, &a.sin_addr);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

typedef struct {
  double *v;
  size_t n, cap;
} Samples;

static void push(Samples *s, double x) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 1 << 16;
    s->v = realloc(s->v, s->cap * sizeof *s->v);
    if (!s->v) die("realloc");
  }
  s->v[s->n++] = x;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

// Nearest-rank percentile of sorted samples, in microseconds.
static double pct(const Samples *s, double p) {
  if (s->n == 0) return -1;
  size_t i = (size_t)(p / 100.0 * (double)s->n);
  if (i >= s->n) i = s->n - 1;
  return s->v[i] * 1e6;
}

static int one_exchange(int fd, char *buf) {
  return write_all(fd, buf, kMsg) < 0 || read_exact(fd, buf, kMsg) < 0 ? -1 : 0;
}

static int pingpong(const char *host, int port, double seconds) {
  char buf[kMsg];
  memset(buf, 'x', sizeof buf);
  int fd = connect_to(host, port);
  if (fd < 0) die("connect");
  for (int i = 0; i < kWarmup; i++)
    if (one_exchange(fd, buf) < 0) die("warmup exchange");
  Samples s = {0};
  double end = now_s() + seconds;
  for (;;) {
    double t0 = now_s();
    if (t0 >= end) break;
    if (one_exchange(fd, buf) < 0) die("exchange");
    push(&s, now_s() - t0);
  }
  close(fd);
  qsort(s.v, s.n, sizeof *s.v, cmp);
  printf("{\"n\": %zu, \"p50_us\": %.2f, \"p90_us\": %.2f, \"p99_us\": %.2f}\n", s.n,
         pct(&s, 50), pct(&s, 90), pct(&s, 99));
  return 0;
}

static int crr(const char *host, int port, double seconds) {
  char buf[kMsg];
  memset(buf, 'x', sizeof buf);
  Samples s = {0};
  size_t errors = 0;
  double start = now_s(), end = start + seconds, t0;
  while ((t0 = now_s()) < end) {
    int fd = connect_to(host, port);
    int ok = fd >= 0 && one_exchange(fd, buf) == 0;
    if (fd >= 0) close(fd);
    if (ok) {
      push(&s, now_s() - t0);
    } else if (++errors > 1000) {
      break;
    }
  }
  double elapsed = now_s() - start;
  qsort(s.v, s.n, sizeof *s.v, cmp);
  printf("{\"n\": %zu, \"errors\": %zu, \"p50_us\": %.2f, \"p99_us\": %.2f, \"conn_per_s\": %.1f}\n",
         s.n, errors, pct(&s, 50), pct(&s, 99), (double)s.n / elapsed);
  return 0;
}

static void wait_line(void) {
  char line[64];
  if (!fgets(line, sizeof line, stdin)) exit(0);  // the harness went away
}

static int conns(const char *host, int port, int n, double rate) {
  raise_nofile((rlim_t)n + 64);
  int *fds = calloc((size_t)n, sizeof *fds);
  if (!fds) die("calloc");
  int open_n = 0, errors = 0;
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    if (rate > 0) {
      double due = t0 + (double)i / rate;
      for (double t; (t = now_s()) < due;) {
        struct timespec ts = {.tv_nsec = (long)((due - t) * 1e9)};
        nanosleep(&ts, NULL);
      }
    }
    int fd = connect_to(host, port);
    if (fd < 0) {
      errors++;
      continue;
    }
    // A reply that never comes must not hang the run.
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    fds[open_n++] = fd;
  }
  printf("{\"step\": \"open\", \"n\": %d, \"errors\": %d, \"seconds\": %.3f}\n", open_n, errors,
         now_s() - t0);
  fflush(stdout);
  wait_line();

  char buf[kMsg];
  memset(buf, 'x', sizeof buf);
  int ok = 0;
  t0 = now_s();
  // Every request first, then every reply: all N connections carry data at once.
  for (int i = 0; i < open_n; i++)
    if (write_all(fds[i], buf, kMsg) < 0) fds[i] = -fds[i] - 1;
  for (int i = 0; i < open_n; i++)
    if (fds[i] >= 0 && read_exact(fds[i], buf, kMsg) == 0) ok++;
  printf("{\"step\": \"traffic\", \"ok\": %d, \"seconds\": %.3f}\n", ok, now_s() - t0);
  fflush(stdout);
  wait_line();

  for (int i = 0; i < open_n; i++) close(fds[i] >= 0 ? fds[i] : -fds[i] - 1);
  printf("{\"step\": \"closed\"}\n");
  fflush(stdout);
  free(fds);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "serve") == 0) serve(atoi(argv[2]));
  if (argc == 5 && strcmp(argv[1], "pingpong") == 0)
    return pingpong(argv[2], atoi(argv[3]), atof(argv[4]));
  if (argc == 5 && strcmp(argv[1], "crr") == 0) return crr(argv[2], atoi(argv[3]), atof(argv[4]));
  if ((argc == 5 || argc == 6) && strcmp(argv[1], "conns") == 0)
    return conns(argv[2], atoi(argv[3]), atoi(argv[4]), argc == 6 ? atof(argv[5]) : 0);
  fprintf(stderr, "usage: rr serve PORT | rr pingpong|crr HOST PORT SECONDS | rr conns HOST PORT N [RATE]\n");
  return 2;
}
