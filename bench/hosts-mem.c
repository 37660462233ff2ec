/* hosts-mem: what per-host state costs a batch over many hosts, with and
 * without the engine's max_hosts cap.
 *
 *   hosts-mem HOSTS MAX_HOSTS
 *
 * Opens HOSTS listeners on 127.0.0.1 (ports the OS picks), each its own host
 * to salvo, each answering one fixed 200 and closing. Then sends one GET to
 * every host, 64 at a time, through one engine with opts.max_hosts =
 * MAX_HOSTS (0 = no cap), and prints the RSS the engine grew by, the hosts
 * it keeps and the hosts it forgot. Needs HOSTS + ~100 file descriptors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <salvo/salvo.h>
#include <uv.h>

#include "rss.h"

#define WAVE 64

typedef struct {
  uv_tcp_t tcp;
  int port;
} listener_t;

typedef struct {
  uv_tcp_t tcp;
  uv_write_t wr;
  char tail[4]; /* the last bytes read, to find the blank line */
} conn_t;

static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

static void conn_closed(uv_handle_t *h) { free(h->data); }

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  static char scratch[4096];
  (void)suggested;
  *buf = uv_buf_init(scratch, sizeof(scratch));
}

static void written(uv_write_t *w, int status) {
  (void)status;
  conn_t *c = w->data;
  uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  conn_t *c = s->data;
  if (n < 0) {
    uv_close((uv_handle_t *)s, conn_closed);
    return;
  }
  for (ssize_t i = 0; i < n; i++) {
    memmove(c->tail, c->tail + 1, 3);
    c->tail[3] = buf->base[i];
    if (memcmp(c->tail, "\r\n\r\n", 4) == 0) {
      uv_read_stop(s);
      uv_buf_t b = uv_buf_init((char *)reply, sizeof(reply) - 1);
      c->wr.data = c;
      uv_write(&c->wr, s, &b, 1, written);
      return;
    }
  }
}

static void on_connection(uv_stream_t *server, int status) {
  if (status != 0)
    return;
  conn_t *c = calloc(1, sizeof(*c));
  uv_tcp_init(server->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
    return;
  }
  uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

static size_t done, ok;

static void done_cb(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  (void)req;
  (void)ud;
  done++;
  ok += r->error == 0 && r->status == 200;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: hosts-mem HOSTS MAX_HOSTS\n");
    return 2;
  }
  size_t nhosts = strtoul(argv[1], NULL, 10);
  size_t max_hosts = strtoul(argv[2], NULL, 10);
  uv_loop_t loop;
  uv_loop_init(&loop);
  listener_t *ls = calloc(nhosts, sizeof(*ls));
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", 0, &sa);
  for (size_t i = 0; i < nhosts; i++) {
    uv_tcp_init(&loop, &ls[i].tcp);
    if (uv_tcp_bind(&ls[i].tcp, (const struct sockaddr *)&sa, 0) != 0 ||
        uv_listen((uv_stream_t *)&ls[i].tcp, 128, on_connection) != 0) {
      fprintf(stderr, "hosts-mem: cannot listen (%zu listeners; ulimit -n?)\n", i);
      return 1;
    }
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uv_tcp_getsockname(&ls[i].tcp, (struct sockaddr *)&ss, &len);
    ls[i].port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  }
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.max_hosts = max_hosts;
  opts.http_version = SALVO_HTTP_1_1;
  salvo_engine_t *engine;
  if (salvo_engine_new(&loop, &opts, &engine) != 0)
    return 1;
  /* warm the engine up on one host, then measure from there */
  char url[64];
  for (int i = 0; i < 2; i++) {
    salvo_request_t *req;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ls[0].port);
    salvo_request_new(engine, "GET", url, &req);
    salvo_request_submit(req, done_cb, NULL);
    while (done < (size_t)i + 1)
      uv_run(&loop, UV_RUN_ONCE);
  }
  done = ok = 0;
  long before = salvo_tool_rss_kb();
  uint64_t t0 = uv_hrtime();
  for (size_t w = 0; w < nhosts; w += WAVE) {
    size_t end = w + WAVE < nhosts ? w + WAVE : nhosts;
    for (size_t i = w; i < end; i++) {
      salvo_request_t *req;
      snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ls[i].port);
      if (salvo_request_new(engine, "GET", url, &req) != 0 ||
          salvo_request_submit(req, done_cb, NULL) != 0)
        return 1;
    }
    while (done < end)
      uv_run(&loop, UV_RUN_ONCE);
  }
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  long after = salvo_tool_rss_kb();
  salvo_engine_stats_t es;
  salvo_engine_stats(engine, &es);
  printf("hosts %zu  max_hosts %zu  ok %zu  %.0f req/s  rss +%.1f MB (%.2f KB per host)  kept %zu  "
         "forgotten %llu\n",
         nhosts, max_hosts, ok, (double)done / secs, (after - before) / 1024.0,
         (double)(after - before) / (double)nhosts, es.hosts, (unsigned long long)es.hosts_evicted);
  salvo_engine_close(engine, NULL, NULL);
  for (size_t i = 0; i < nhosts; i++)
    uv_close((uv_handle_t *)&ls[i].tcp, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  free(ls);
  return ok == nhosts ? 0 : 1;
}
