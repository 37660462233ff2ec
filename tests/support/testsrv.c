#include "testsrv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <http_parser.h>

#define MAX_PATHS 1024 /* distinct paths counted by prefix; the total counts all */
#define MAX_KEYS 4096
#define MAX_VALUES 4

typedef struct {
  char name[64];
  unsigned seen;                     /* requests for this key */
  char request_ids[MAX_VALUES][64];  /* distinct X-Request-ID values */
  unsigned n_request_ids;
  char idem_keys[MAX_VALUES][64];    /* distinct Idempotency-Key values */
  unsigned n_idem_keys;
} key_t_;

typedef struct conn_s conn_t;

struct testsrv_s {
  uv_loop_t *loop;
  uv_tcp_t listener;
  int port;
  int closing;
  unsigned open_handles;
  unsigned connections;
  conn_t *conns;
  struct {
    char path[256];
    unsigned count;
  } paths[MAX_PATHS];
  unsigned npaths;
  unsigned total;
  key_t_ keys[MAX_KEYS];
  unsigned nkeys;
};

struct conn_s {
  uv_tcp_t tcp;
  uv_timer_t timer;
  testsrv_t *srv;
  conn_t *next, *prev;
  http_parser parser;
  char url[512];
  size_t url_len;
  size_t body_len;
  char headers[4096]; /* "name: value\n" lines as parsed, for /headers */
  char request_id[64];
  char idem_key[64];
  int field_is;      /* 1 X-Request-ID, 2 Idempotency-Key, 0 other */
  char field[64];
  size_t headers_len;
  int in_value;      /* parser is inside a header value */
  int stalled;   /* ignore everything from now on */
  int closing;
  int drip_left;
  int handles;   /* 2 while tcp and timer are open */
};

static void count_path(testsrv_t *srv, const char *path) {
  srv->total++;
  for (unsigned i = 0; i < srv->npaths; i++)
    if (strncmp(srv->paths[i].path, path, sizeof(srv->paths[0].path) - 1) == 0) {
      srv->paths[i].count++;
      return;
    }
  if (srv->npaths < MAX_PATHS) {
    size_t len = strnlen(path, sizeof(srv->paths[0].path) - 1); /* long paths are counted cut */
    memcpy(srv->paths[srv->npaths].path, path, len);
    srv->paths[srv->npaths].path[len] = '\0';
    srv->paths[srv->npaths++].count = 1;
  }
}

unsigned testsrv_count(const testsrv_t *srv, const char *prefix) {
  if (prefix[0] == '\0')
    return srv->total;
  unsigned n = 0;
  for (unsigned i = 0; i < srv->npaths; i++)
    if (strncmp(srv->paths[i].path, prefix, strlen(prefix)) == 0)
      n += srv->paths[i].count;
  return n;
}

unsigned testsrv_connections(const testsrv_t *srv) { return srv->connections; }
int testsrv_port(const testsrv_t *srv) { return srv->port; }

static void maybe_free(testsrv_t *srv) {
  if (srv->closing && srv->open_handles == 0)
    free(srv);
}

static void conn_handle_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  testsrv_t *srv = c->srv;
  if (--c->handles == 0) {
    free(c);
    srv->open_handles--;
    maybe_free(srv);
  }
}

static void conn_close(conn_t *c, int reset) {
  if (c->closing)
    return;
  c->closing = 1;
  if (c->prev)
    c->prev->next = c->next;
  else
    c->srv->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
  if (reset)
    uv_tcp_close_reset(&c->tcp, conn_handle_closed);
  else
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
}

typedef struct {
  uv_write_t req;
  char *buf;
  int close_after;
} write_t;

static void write_done(uv_write_t *req, int status) {
  write_t *w = (write_t *)req;
  conn_t *c = req->data;
  int close_after = w->close_after;
  free(w->buf);
  free(w);
  if ((status < 0 || close_after) && !c->closing)
    conn_close(c, 0);
}

static void send_bytes(conn_t *c, const char *data, size_t len, int close_after) {
  if (c->closing)
    return;
  write_t *w = calloc(1, sizeof(*w));
  w->buf = malloc(len ? len : 1);
  memcpy(w->buf, data, len);
  w->close_after = close_after;
  w->req.data = c;
  uv_buf_t b = uv_buf_init(w->buf, (unsigned)len);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, write_done) != 0) {
    free(w->buf);
    free(w);
    conn_close(c, 0);
  }
}

static void send_response(conn_t *c, int status, const char *body, size_t body_len) {
  char head[256];
  int n = snprintf(head, sizeof(head),
                   "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nX-Test: yes\r\nX-Test: last\r\n\r\n",
                   status, body_len);
  char *all = malloc((size_t)n + body_len);
  memcpy(all, head, (size_t)n);
  memcpy(all + n, body, body_len);
  send_bytes(c, all, (size_t)n + body_len, 0);
  free(all);
}

static void sleep_done(uv_timer_t *t) {
  conn_t *c = t->data;
  send_response(c, 200, "slept\n", 6);
}

static void drip_tick(uv_timer_t *t) {
  conn_t *c = t->data;
  send_bytes(c, "x", 1, 0);
  if (--c->drip_left <= 0)
    uv_timer_stop(t);
}

/* Value of ?name= in |url| copied to |out|, or "" */
static void query_param(const char *url, const char *name, char *out, size_t out_len) {
  out[0] = '\0';
  const char *q = strchr(url, '?');
  size_t n = strlen(name);
  while (q != NULL) {
    q++;
    if (strncmp(q, name, n) == 0 && q[n] == '=') {
      size_t len = strcspn(q + n + 1, "&");
      if (len >= out_len)
        len = out_len - 1;
      memcpy(out, q + n + 1, len);
      out[len] = '\0';
      /* %20 is the only escape the tests need (HTTP-dates have spaces) */
      for (char *pct; (pct = strstr(out, "%20")) != NULL;) {
        *pct = ' ';
        memmove(pct + 1, pct + 3, strlen(pct + 3) + 1);
      }
      return;
    }
    q = strchr(q, '&');
  }
}

static void remember(unsigned *n, char values[][64], const char *v) {
  if (v[0] == '\0')
    return;
  for (unsigned i = 0; i < *n; i++)
    if (strcmp(values[i], v) == 0)
      return;
  if (*n < MAX_VALUES)
    snprintf(values[(*n)++], 64, "%s", v);
}

static key_t_ *key_seen(testsrv_t *srv, const char *name, const conn_t *c) {
  key_t_ *k = NULL;
  for (unsigned i = 0; i < srv->nkeys && k == NULL; i++)
    if (strcmp(srv->keys[i].name, name) == 0)
      k = &srv->keys[i];
  if (k == NULL && srv->nkeys < MAX_KEYS) {
    k = &srv->keys[srv->nkeys++];
    snprintf(k->name, sizeof(k->name), "%s", name);
  }
  if (k == NULL)
    return NULL;
  k->seen++;
  remember(&k->n_request_ids, k->request_ids, c->request_id);
  remember(&k->n_idem_keys, k->idem_keys, c->idem_key);
  return k;
}

unsigned testsrv_key_count(const testsrv_t *srv, const char *key, unsigned *distinct_request_ids,
                           unsigned *distinct_idempotency_keys) {
  for (unsigned i = 0; i < srv->nkeys; i++)
    if (strcmp(srv->keys[i].name, key) == 0) {
      if (distinct_request_ids)
        *distinct_request_ids = srv->keys[i].n_request_ids;
      if (distinct_idempotency_keys)
        *distinct_idempotency_keys = srv->keys[i].n_idem_keys;
      return srv->keys[i].seen;
    }
  if (distinct_request_ids)
    *distinct_request_ids = 0;
  if (distinct_idempotency_keys)
    *distinct_idempotency_keys = 0;
  return 0;
}

static void send_status(conn_t *c, int status, const char *retry_after) {
  char head[512];
  int n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: 7\r\n%s%s%s\r\nstatus\n",
                   status, retry_after[0] ? "Retry-After: " : "", retry_after,
                   retry_after[0] ? "\r\n" : "");
  send_bytes(c, head, (size_t)n, 0);
}

static void handle_request(conn_t *c) {
  const char *path = c->url;
  count_path(c->srv, path);
  char ra[128], param[64];
  unsigned n_until = 0;
  char key[64];
  const char *method = http_method_str((enum http_method)c->parser.method);
  long arg = 0;
  if (strcmp(path, "/ok") == 0) {
    send_response(c, 200, "ok\n", 3);
  } else if (sscanf(path, "/bytes/%ld", &arg) == 1) {
    char *body = malloc((size_t)arg + 1);
    memset(body, 'x', (size_t)arg);
    send_response(c, 200, body, (size_t)arg);
    free(body);
  } else if (sscanf(path, "/status/%ld", &arg) == 1) {
    query_param(path, "retry-after", ra, sizeof(ra));
    send_status(c, (int)arg, ra);
  } else if (sscanf(path, "/fail-until/%u/%63[^?/]", &n_until, key) == 2) {
    /* Fails (status, or a fault) until the Nth request for KEY, then 200. */
    key_t_ *k = key_seen(c->srv, key, c);
    if (k != NULL && k->seen >= n_until) {
      send_response(c, 200, "ok\n", 3);
    } else {
      query_param(path, "fault", param, sizeof(param));
      if (strcmp(param, "reset") == 0) {
        conn_close(c, 1);
      } else if (strcmp(param, "close") == 0) {
        conn_close(c, 0);
      } else {
        query_param(path, "status", param, sizeof(param));
        query_param(path, "retry-after", ra, sizeof(ra));
        send_status(c, param[0] ? atoi(param) : 503, ra);
      }
    }
  } else if (sscanf(path, "/count/%63[^?/]", key) == 1) {
    /* counted under KEY, then answers like /reset */
    key_seen(c->srv, key, c);
    conn_close(c, 1);
  } else if (strcmp(path, "/headers") == 0) {
    send_response(c, 200, c->headers, c->headers_len);
  } else if (strcmp(path, "/echo") == 0) {
    char body[128];
    int n = snprintf(body, sizeof(body), "%s %zu", method, c->body_len);
    send_response(c, 200, body, (size_t)n);
  } else if (sscanf(path, "/sleep/%ld", &arg) == 1) {
    uv_timer_start(&c->timer, sleep_done, (uint64_t)arg, 0);
  } else if (strcmp(path, "/hang") == 0) {
    c->stalled = 1;
  } else if (strcmp(path, "/close") == 0) {
    conn_close(c, 0);
  } else if (strcmp(path, "/reset") == 0) {
    conn_close(c, 1);
  } else if (strcmp(path, "/headers-then-stall") == 0) {
    const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    send_bytes(c, h, strlen(h), 0);
    c->stalled = 1;
  } else if (sscanf(path, "/drip/%ld", &arg) == 1) {
    const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n";
    send_bytes(c, h, strlen(h), 0);
    c->drip_left = 100000;
    c->stalled = 1;
    uv_timer_start(&c->timer, drip_tick, (uint64_t)arg, (uint64_t)arg);
  } else if (strcmp(path, "/truncate") == 0) {
    const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
    send_bytes(c, h, strlen(h), 1);
  } else {
    send_response(c, 404, "not found\n", 10);
  }
}

static int on_message_begin(http_parser *p) {
  conn_t *c = p->data;
  c->url_len = 0;
  c->url[0] = '\0';
  c->body_len = 0;
  c->headers_len = 0;
  c->in_value = 0;
  c->field[0] = c->request_id[0] = c->idem_key[0] = '\0';
  return 0;
}

static void append_header_text(conn_t *c, const char *at, size_t len) {
  if (c->headers_len + len >= sizeof(c->headers))
    len = sizeof(c->headers) - 1 - c->headers_len;
  memcpy(c->headers + c->headers_len, at, len);
  c->headers_len += len;
}

/* http_parser may deliver a field or a value in several pieces. */
static int on_header_field(http_parser *p, const char *at, size_t len) {
  conn_t *c = p->data;
  if (c->in_value) {
    append_header_text(c, "\n", 1);
    c->in_value = 0;
    c->field[0] = '\0';
  }
  append_header_text(c, at, len);
  size_t have = strlen(c->field);
  if (have + len < sizeof(c->field)) {
    memcpy(c->field + have, at, len);
    c->field[have + len] = '\0';
  }
  c->field_is = strcasecmp(c->field, "X-Request-ID") == 0      ? 1
                : strcasecmp(c->field, "Idempotency-Key") == 0 ? 2
                                                               : 0;
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  conn_t *c = p->data;
  if (!c->in_value) {
    append_header_text(c, ": ", 2);
    c->in_value = 1;
  }
  append_header_text(c, at, len);
  char *dst = c->field_is == 1 ? c->request_id : c->field_is == 2 ? c->idem_key : NULL;
  if (dst != NULL) {
    size_t have = strlen(dst);
    if (have + len < 64) {
      memcpy(dst + have, at, len);
      dst[have + len] = '\0';
    }
  }
  return 0;
}

static int on_headers_complete(http_parser *p) {
  conn_t *c = p->data;
  if (c->in_value)
    append_header_text(c, "\n", 1);
  c->in_value = 0;
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  conn_t *c = p->data;
  if (c->url_len + len >= sizeof(c->url))
    len = sizeof(c->url) - 1 - c->url_len;
  memcpy(c->url + c->url_len, at, len);
  c->url_len += len;
  c->url[c->url_len] = '\0';
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  (void)at;
  ((conn_t *)p->data)->body_len += len;
  return 0;
}

static int on_message_complete(http_parser *p) {
  handle_request(p->data);
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  buf->base = malloc(suggested);
  buf->len = suggested;
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = stream->data;
  if (nread < 0) {
    conn_close(c, 0);
  } else if (nread > 0 && !c->stalled && !c->closing) {
    size_t used = http_parser_execute(&c->parser, &settings, buf->base, (size_t)nread);
    if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK || used != (size_t)nread)
      conn_close(c, 0);
  }
  free(buf->base);
}

static void on_connection(uv_stream_t *server, int status) {
  testsrv_t *srv = server->data;
  if (status < 0 || srv->closing)
    return;
  conn_t *c = calloc(1, sizeof(*c));
  c->srv = srv;
  uv_tcp_init(srv->loop, &c->tcp);
  uv_timer_init(srv->loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->handles = 2;
  srv->open_handles++;
  c->next = srv->conns;
  if (srv->conns)
    srv->conns->prev = c;
  srv->conns = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c, 0);
    return;
  }
  srv->connections++;
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

int testsrv_start(uv_loop_t *loop, testsrv_t **out) {
  testsrv_t *srv = calloc(1, sizeof(*srv));
  srv->loop = loop;
  uv_tcp_init(loop, &srv->listener);
  srv->listener.data = srv;
  srv->open_handles = 1;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  int rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&srv->listener, 1024, on_connection);
  if (rc != 0) {
    srv->closing = 1;
    uv_close((uv_handle_t *)&srv->listener, NULL);
    return rc;
  }
  struct sockaddr_storage bound;
  int len = sizeof(bound);
  uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &len);
  srv->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
  *out = srv;
  return 0;
}

static void listener_closed(uv_handle_t *h) {
  testsrv_t *srv = h->data;
  srv->open_handles--;
  maybe_free(srv);
}

void testsrv_close(testsrv_t *srv) {
  srv->closing = 1;
  while (srv->conns)
    conn_close(srv->conns, 0);
  uv_close((uv_handle_t *)&srv->listener, listener_closed);
}

static int bound_socket(int *port_out) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  socklen_t len = sizeof(a);
  getsockname(fd, (struct sockaddr *)&a, &len);
  *port_out = ntohs(a.sin_port);
  return fd;
}

int test_refused_port(void) {
  int port = 0;
  int fd = bound_socket(&port);
  close(fd); /* bound, never listened, now closed: nothing is there */
  return port;
}

int test_blackhole_port(int fds[4]) {
  int port = 0;
  fds[0] = bound_socket(&port);
  listen(fds[0], 0);
  /* Fill the accept queue (backlog 0 holds one) so later SYNs are dropped. */
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 1; i < 4; i++) {
    fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(fds[i], (struct sockaddr *)&a, sizeof(a));
  }
  usleep(50 * 1000);
  return port;
}

void test_close_fds(int fds[4]) {
  for (int i = 0; i < 4; i++)
    if (fds[i] >= 0)
      close(fds[i]);
}
