/* bare-loop: the floor salvo's engine is measured against. A libuv loop
 * drives curl_multi through socket callbacks with reused easy handles,
 * NOSIGNAL and PIPEWAIT, and nothing else: no queue, no timeouts of its own,
 * no classification, no retries. Closed loop, like salvo-bench.
 *
 * --salvo-headers makes it send the request bytes salvo sends by default: a
 * User-Agent line and an X-Request-ID with a fresh UUID per request. The
 * ratio against that run is the cost of the engine alone, since libcurl
 * formats every custom header line byte by byte (~3.5k instructions each).
 *
 *   bare-loop -n TOTAL -c CONCURRENCY [--http1.1] [--connections N] [--cacert FILE]
 *             [--salvo-headers] URL
 */
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <salvo/version.h>
#include <uv.h>

typedef struct {
  uv_poll_t poll;
  curl_socket_t fd;
  int armed;
} sock_t;

static uv_loop_t *loop;
static CURLM *multi;
static uv_timer_t timer;
static uv_idle_t now_idle; /* libcurl's 0 ms timeouts (see lib/engine.c: libuv #4245) */
static long total = 100000, started, completed, ok;
static const char *url, *cacert;
static long http_version = CURL_HTTP_VERSION_2TLS;
static int salvo_headers;
static uint64_t rng = 0x9e3779b97f4a7c15u;

typedef struct { /* per easy handle: the header list salvo would send */
  struct curl_slist nodes[2];
  char ua[32];
  char rid[64];
} hdrs_t;

static void fill_headers(hdrs_t *h) {
  static const char hex[] = "0123456789abcdef";
  unsigned char b[16];
  for (int i = 0; i < 16; i += 8) { /* xorshift64: the id's bytes, not its quality */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    memcpy(b + i, &rng, 8);
  }
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
  char *o = h->rid + strlen("X-Request-ID: ");
  memcpy(h->rid, "X-Request-ID: ", 14);
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      *o++ = '-';
    *o++ = hex[b[i] >> 4];
    *o++ = hex[b[i] & 15];
  }
  *o = '\0';
  snprintf(h->ua, sizeof(h->ua), "User-Agent: salvo/%s", SALVO_VERSION_STRING);
  h->nodes[0].data = h->ua;
  h->nodes[0].next = &h->nodes[1];
  h->nodes[1].data = h->rid;
  h->nodes[1].next = NULL;
}

static size_t sink(char *p, size_t s, size_t n, void *u) {
  (void)p;
  (void)u;
  return s * n;
}

static void start_one(CURL *e) {
  curl_easy_reset(e);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, http_version);
  curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  if (salvo_headers) {
    static hdrs_t none;
    hdrs_t *h = &none;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&h);
    if (h == &none || h == NULL) {
      h = calloc(1, sizeof(*h));
      if (h == NULL)
        abort();
    }
    fill_headers(h);
    curl_easy_setopt(e, CURLOPT_PRIVATE, h);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, &h->nodes[0]);
  }
  if (cacert)
    curl_easy_setopt(e, CURLOPT_CAINFO, cacert);
  curl_multi_add_handle(multi, e);
  started++;
}

static void check_info(void) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE)
      continue;
    CURL *e = m->easy_handle;
    long status = 0;
    if (m->data.result == CURLE_OK)
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    ok += status == 200;
    completed++;
    curl_multi_remove_handle(multi, e);
    if (started < total)
      start_one(e);
    else
      curl_easy_cleanup(e);
  }
}

static void action(curl_socket_t fd, int flags) {
  int running;
  curl_multi_socket_action(multi, fd, flags, &running);
  check_info();
}

static void poll_cb(uv_poll_t *h, int status, int events) {
  sock_t *s = (sock_t *)h;
  int flags = status < 0 ? CURL_CSELECT_ERR
                         : ((events & UV_READABLE) ? CURL_CSELECT_IN : 0) |
                               ((events & UV_WRITABLE) ? CURL_CSELECT_OUT : 0);
  action(s->fd, flags);
}

static void closed(uv_handle_t *h) { free(h); }

static int socket_cb(CURL *e, curl_socket_t fd, int what, void *up, void *sp) {
  (void)e;
  (void)up;
  sock_t *s = sp;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      uv_close((uv_handle_t *)&s->poll, closed);
      curl_multi_assign(multi, fd, NULL);
    }
    return 0;
  }
  if (s == NULL) {
    s = calloc(1, sizeof(*s));
    s->fd = fd;
    uv_poll_init_socket(loop, &s->poll, fd);
    curl_multi_assign(multi, fd, s);
  }
  int ev = ((what & CURL_POLL_IN) ? UV_READABLE : 0) | ((what & CURL_POLL_OUT) ? UV_WRITABLE : 0);
  if (ev != s->armed) {
    uv_poll_start(&s->poll, ev, poll_cb);
    s->armed = ev;
  }
  return 0;
}

static void timer_fired(uv_timer_t *t) {
  (void)t;
  action(CURL_SOCKET_TIMEOUT, 0);
}

static void idle_fired(uv_idle_t *i) {
  uv_idle_stop(i);
  action(CURL_SOCKET_TIMEOUT, 0);
}

static int timer_cb(CURLM *m, long ms, void *u) {
  (void)m;
  (void)u;
  if (ms < 0) {
    uv_timer_stop(&timer);
  } else if (ms == 0) {
    uv_timer_stop(&timer);
    uv_idle_start(&now_idle, idle_fired);
  } else {
    uv_timer_start(&timer, timer_fired, (uint64_t)ms, 0);
  }
  return 0;
}

int main(int argc, char **argv) {
  long concurrency = 64, connections = 0;
  static const struct option lo[] = {{"http1.1", no_argument, NULL, '1'},
                                     {"connections", required_argument, NULL, 'C'},
                                     {"cacert", required_argument, NULL, 'A'},
                                     {"salvo-headers", no_argument, NULL, 'S'},
                                     {NULL, 0, NULL, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "n:c:", lo, NULL)) != -1) {
    if (o == 'n')
      total = atol(optarg);
    else if (o == 'c')
      concurrency = atol(optarg);
    else if (o == '1')
      http_version = CURL_HTTP_VERSION_1_1;
    else if (o == 'C')
      connections = atol(optarg);
    else if (o == 'A')
      cacert = optarg;
    else if (o == 'S')
      salvo_headers = 1;
    else
      return 2;
  }
  if (optind != argc - 1 || total < 1 || concurrency < 1) {
    fprintf(stderr, "usage: bare-loop -n TOTAL -c CONCURRENCY [--http1.1] [--connections N] "
                    "[--cacert FILE] [--salvo-headers] URL\n");
    return 2;
  }
  url = argv[optind];
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  loop = uv_default_loop();
  uv_timer_init(loop, &timer);
  uv_idle_init(loop, &now_idle);
  multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                    connections ? connections : (http_version == CURL_HTTP_VERSION_1_1 ? concurrency : 4));
  uint64_t t0 = uv_hrtime();
  for (long i = 0; i < concurrency && i < total; i++)
    start_one(curl_easy_init());
  while (completed < total)
    uv_run(loop, UV_RUN_ONCE);
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  printf("requests       %ld in %.3f s, concurrency %ld\n", completed, secs, concurrency);
  printf("throughput     %.0f req/s\n", (double)completed / secs);
  printf("ok             %ld\n", ok);
  curl_multi_cleanup(multi);
  return ok == total ? 0 : 1;
}
