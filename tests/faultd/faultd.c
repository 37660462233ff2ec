/* salvo-faultd core: listeners, TLS (memory BIOs over libuv), HTTP/1.1,
 * faults by path and by port, counters. HTTP/2 is in faultd_h2.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "faultd_int.h"

struct conn_s {
  uv_tcp_t tcp;
  uv_timer_t timer;       /* HTTP/1.1 sleep and drip */
  faultd_t *fd;
  faultd_port_t kind;
  conn_t *next, *prev;
  int handles;            /* open uv handles (tcp, timer) */
  int closing;
  SSL *ssl;               /* TLS port only */
  BIO *rbio, *wbio;       /* ciphertext in, out */
  int tls_ready;
  h2_t *h2;               /* set once ALPN chose h2 */
  http_parser parser;
  freq_t req;
  int in_value;
  int field_is;           /* 1 X-Request-ID, 2 Idempotency-Key */
  char field[64];
  int stalled;            /* HTTP/1.1: ignore input from now on */
  int reset_after;        /* end_after_answer(): RST rather than FIN */
  unsigned drip_left;
  faultd_slot_t slot;     /* HTTP/1.1: the request's place in a /capacity pool */
  fault_plan_t *held;     /* HTTP/1.1: a plan held for later, NULL = none: an answer after a
                             sleep (F_SLEEP), or a body being sent (F_REPEAT, F_FILE) */
  uint64_t held_sent;     /* its body bytes written so far */
  size_t write_held;      /* bytes of writes whose callback has not run: the socket may have
                             taken them, but their buffers are still held */
};

static const char *port_names[FAULTD_PORTS] = {
    "http", "tls", "refused", "accept_silent", "close_on_accept", "reset_on_accept",
    "garbage_on_accept", "tls_stall"};

const char *faultd_port_name(faultd_port_t which) { return port_names[which]; }
int faultd_port(const faultd_t *fd, faultd_port_t which) { return fd->port[which]; }
const char *faultd_cert_file(const faultd_t *fd) { return fd->cert_file; }
unsigned faultd_connections(const faultd_t *fd) { return fd->connections; }

unsigned faultd_tls_handshakes(const faultd_t *fd, unsigned *resumed) {
  if (resumed != NULL)
    *resumed = fd->tls_resumed;
  return fd->tls_handshakes;
}
uv_loop_t *faultd__conn_loop(conn_t *c) { return c->fd->loop; }
faultd_t *faultd__conn_server(conn_t *c) { return c->fd; }
size_t faultd__conn_held(conn_t *c) { return c->write_held; }

void faultd_opts_init(faultd_opts_t *opts) {
  memset(opts, 0, sizeof(*opts));
  opts->host = "127.0.0.1";
  opts->h2_max_streams = 100;
}

/* ------------------------------------------------------------ counters */

static void bump(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  json_object_set_new(obj, key, json_integer(v ? json_integer_value(v) + 1 : 1));
}

static json_t *key_entry(faultd_t *fd, const char *key) {
  json_t *k = json_object_get(fd->keys, key);
  if (k == NULL) {
    k = json_pack("{s:i, s:{}, s:{}}", "requests", 0, "request_ids", "idempotency_keys");
    json_object_set_new(fd->keys, key, k);
  }
  return k;
}

unsigned faultd__record_key(faultd_t *fd, const char *key, const freq_t *req) {
  json_t *k = key_entry(fd, key);
  json_int_t requests = json_integer_value(json_object_get(k, "requests")) + 1;
  json_object_set_new(k, "requests", json_integer(requests));
  if (req->request_id[0])
    bump(json_object_get(k, "request_ids"), req->request_id);
  if (req->idem_key[0])
    bump(json_object_get(k, "idempotency_keys"), req->idem_key);
  return (unsigned)requests;
}

void faultd__record(faultd_t *fd, const freq_t *req) {
  fd->total++;
  bump(fd->paths, req->url);
  bump(fd->methods, req->method);
  if (req->request_id[0])
    bump(fd->request_ids, req->request_id);
  if (req->idem_key[0])
    bump(fd->idempotency_keys, req->idem_key);
  if (req->body_len > 0)
    fd->bodies++;
  fd->body_bytes += req->body_len;
  if (req->proxied)
    fd->proxied++;
}

unsigned faultd_proxied(const faultd_t *fd) { return fd->proxied; }
unsigned faultd_ranges_served(const faultd_t *fd) { return fd->ranges_served; }
uint64_t faultd_body_bytes(const faultd_t *fd) { return fd->body_bytes; }

unsigned faultd_count(const faultd_t *fd, const char *prefix) {
  if (prefix[0] == '\0')
    return fd->total;
  unsigned n = 0;
  const char *path;
  json_t *v;
  size_t len = strlen(prefix);
  json_object_foreach(fd->paths, path, v) {
    if (strncmp(path, prefix, len) == 0)
      n += (unsigned)json_integer_value(v);
  }
  return n;
}

unsigned faultd_key_limited(const faultd_t *fd, const char *key) {
  json_t *k = json_object_get(fd->keys, key);
  return k ? (unsigned)json_integer_value(json_object_get(k, "limited")) : 0;
}

unsigned faultd_key_count(const faultd_t *fd, const char *key, unsigned *ids, unsigned *keys) {
  json_t *k = json_object_get(fd->keys, key);
  if (ids)
    *ids = k ? (unsigned)json_object_size(json_object_get(k, "request_ids")) : 0;
  if (keys)
    *keys = k ? (unsigned)json_object_size(json_object_get(k, "idempotency_keys")) : 0;
  return k ? (unsigned)json_integer_value(json_object_get(k, "requests")) : 0;
}

char *faultd_counters_json(const faultd_t *fd) {
  json_t *doc = json_pack("{s:i, s:i, s:i, s:i, s:i, s:I, s:i, s:i, s:O, s:O, s:O, s:O, s:O, s:o}",
                          "requests", fd->total, "connections", fd->connections,
                          "tls_handshakes", fd->tls_handshakes, "tls_resumed", fd->tls_resumed,
                          "bodies_received", fd->bodies, "body_bytes", (json_int_t)fd->body_bytes,
                          "proxied", fd->proxied, "ranges_served", fd->ranges_served, "paths",
                          fd->paths, "methods", fd->methods, "keys", fd->keys, "request_ids",
                          fd->request_ids, "idempotency_keys", fd->idempotency_keys, "capacity",
                          faultd__capacity_json(fd));
  char *s = json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT);
  json_decref(doc);
  return s;
}

void faultd_counters_reset(faultd_t *fd) {
  json_object_clear(fd->paths);
  json_object_clear(fd->methods);
  json_object_clear(fd->keys);
  json_object_clear(fd->request_ids);
  json_object_clear(fd->idempotency_keys);
  fd->total = fd->bodies = fd->proxied = fd->ranges_served = 0;
  fd->body_bytes = 0;
  faultd__capacity_reset(fd);
}

/* ------------------------------------------------------------ plans */

/* Value of ?name= in |url|, "" if absent. %20 is decoded (HTTP-dates). */
void faultd__query_param(const char *url, const char *name, char *out, size_t out_len) {
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
      for (char *pct; (pct = strstr(out, "%20")) != NULL;) {
        *pct = ' ';
        memmove(pct + 1, pct + 3, strlen(pct + 3) + 1);
      }
      return;
    }
    q = strchr(q, '&');
  }
}

#define FAULTD_MAX_BYTES (256u * 1024 * 1024)

static void set_body(fault_plan_t *p, const char *data, size_t len) {
  p->body = malloc(len + 1);
  memcpy(p->body, data, len);
  p->body_len = len;
}

void faultd__plan_body(fault_plan_t *p, const char *data, size_t len) {
  free(p->body);
  set_body(p, data, len);
}

#define CAPACITY_MAX_N 100000u
#define CAPACITY_MAX_Q 1000000u

/* /capacity/N/MS?q=Q&name=NAME&retry-after=V: which pool, and its numbers.
 * The place in the pool is taken by the transport (faultd_capacity.c). */
static void capacity_plan(fault_plan_t *p, const char *url, unsigned limit, unsigned ms) {
  char q[16], *end = NULL;
  faultd__query_param(url, "q", q, sizeof(q));
  unsigned long queue_max = q[0] ? strtoul(q, &end, 10) : 4ul * limit;
  if (limit == 0 || limit > CAPACITY_MAX_N || (q[0] && (*end != '\0' || q[0] == '-')) ||
      queue_max > CAPACITY_MAX_Q) {
    p->status = 400;
    set_body(p, "N must be 1..100000 and q 0..1000000\n", 37);
    return;
  }
  p->kind = F_CAPACITY;
  p->ms = ms;
  p->capacity.limit = limit;
  p->capacity.queue_max = (unsigned)queue_max;
  faultd__query_param(url, "name", p->capacity.pool, sizeof(p->capacity.pool));
  if (p->capacity.pool[0] == '\0')
    snprintf(p->capacity.pool, sizeof(p->capacity.pool), "%u/%u/%u", limit, ms,
             p->capacity.queue_max);
  char *retry_after = p->capacity.retry_after;
  faultd__query_param(url, "retry-after", retry_after, sizeof(p->capacity.retry_after));
  if (retry_after[0] == '\0')
    strcpy(retry_after, "1");
  else if (strcmp(retry_after, "none") == 0)
    retry_after[0] = '\0';
  char keep[4];
  faultd__query_param(url, "keep", keep, sizeof(keep));
  p->capacity.keep = strcmp(keep, "1") == 0;
}

/* splitmix64 of (seed, n): the same requests fail for the same seed. */
static uint64_t mix(uint64_t x) {
  x += UINT64_C(0x9e3779b97f4a7c15);
  x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
  return x ^ (x >> 31);
}

static void fail_plan(fault_plan_t *p, const char *url) {
  char param[64];
  faultd__query_param(url, "fault", param, sizeof(param));
  if (strcmp(param, "reset") == 0) {
    p->kind = F_RESET;
  } else if (strcmp(param, "close") == 0) {
    p->kind = F_CLOSE;
  } else if (strcmp(param, "hang") == 0) {
    p->kind = F_HANG;
  } else {
    faultd__query_param(url, "status", param, sizeof(param));
    p->status = param[0] ? atoi(param) : 503;
    faultd__query_param(url, "retry-after", p->retry_after, sizeof(p->retry_after));
    set_body(p, "failed\n", 7);
  }
}

#define KEYED_MAX_MS 600000u

/* /keyed/KEY?ms=MS&status=S: counted under KEY, then S (200) "ok" after MS (0). */
static void keyed_plan(faultd_t *fd, const freq_t *req, const char *url, const char *key,
                       fault_plan_t *p) {
  char ms[32], status[32], *ms_end = NULL, *status_end = NULL;
  faultd__query_param(url, "ms", ms, sizeof(ms));
  faultd__query_param(url, "status", status, sizeof(status));
  unsigned long wait = ms[0] ? strtoul(ms, &ms_end, 10) : 0;
  unsigned long code = status[0] ? strtoul(status, &status_end, 10) : 200;
  size_t key_len = strlen(key);
  if (key_len == 0 || key_len > 127 || strchr(key, '/') != NULL || strlen(ms) >= sizeof(ms) - 1 ||
      strlen(status) >= sizeof(status) - 1 ||
      (ms[0] && (ms[0] < '0' || ms[0] > '9' || *ms_end != '\0' || wait > KEYED_MAX_MS)) ||
      (status[0] && (status[0] < '0' || status[0] > '9' || *status_end != '\0' || code < 100 ||
                     code > 999))) {
    p->status = 400;
    set_body(p, "/keyed/KEY: KEY 1..127 bytes, ms 0..600000, status 100..999\n", 60);
    return;
  }
  faultd__record_key(fd, key, req);
  p->status = (int)code;
  p->kind = wait > 0 ? F_SLEEP : F_RESPOND;
  p->ms = (unsigned)wait;
  set_body(p, "ok\n", 3);
}

void faultd__plan(faultd_t *fd, const freq_t *req, fault_plan_t *p) {
  memset(p, 0, sizeof(*p));
  p->kind = F_RESPOND;
  p->status = 200;
  p->content_type = "text/plain";
  const char *url = req->url;
  char path[1024], key[128];
  size_t plen = strcspn(url, "?");
  if (plen >= sizeof(path))
    plen = sizeof(path) - 1;
  memcpy(path, url, plen);
  path[plen] = '\0';
  unsigned a = 0, b = 0, c = 0;
  char tail;

  if (strcmp(req->method, "CONNECT") == 0) {
    /* as a proxy it forwards nothing and opens no tunnel */
    p->status = 403;
    p->end_after = 1;
    p->announce_close = 1;
    set_body(p, "no tunnels\n", 11);
  } else if (strcmp(path, "/ok") == 0) {
    set_body(p, "ok\n", 3);
  } else if (sscanf(path, "/status/%u%c", &a, &tail) == 1) {
    p->status = (int)a;
    faultd__query_param(url, "retry-after", p->retry_after, sizeof(p->retry_after));
    faultd__query_param(url, "reset", p->ratelimit_reset, sizeof(p->ratelimit_reset));
    set_body(p, "status\n", 7);
  } else if (sscanf(path, "/sleep/%u%c", &a, &tail) == 1) {
    p->kind = F_SLEEP;
    p->ms = a;
    set_body(p, "slept\n", 6);
  } else if (strcmp(path, "/close-after-answer") == 0 || strcmp(path, "/reset-after-answer") == 0) {
    /* Servers that end kept-alive connections: the answer, then a close (or
     * an RST), with "Connection: close" only when ?announce=1. */
    char param[8];
    faultd__query_param(url, "announce", param, sizeof(param));
    p->end_after = path[1] == 'c' ? 1 : 2;
    p->announce_close = strcmp(param, "1") == 0;
    set_body(p, "ok\n", 3);
  } else if (strcmp(path, "/hang") == 0) {
    p->kind = F_HANG;
  } else if (strcmp(path, "/close") == 0) {
    p->kind = F_CLOSE;
  } else if (strcmp(path, "/reset") == 0) {
    p->kind = F_RESET;
  } else if (strcmp(path, "/garbage") == 0) {
    p->kind = F_GARBAGE;
  } else if (strcmp(path, "/headers-then-stall") == 0) {
    p->kind = F_HEADERS_STALL;
  } else if (sscanf(path, "/drip/%u/%u%c", &a, &b, &tail) == 2) {
    p->kind = F_DRIP;
    p->bytes = a;
    p->ms = b ? b : 1;
  } else if (strcmp(path, "/truncate") == 0) {
    p->kind = F_TRUNCATE;
  } else if (strcmp(path, "/truncate-hang") == 0) {
    p->kind = F_TRUNCATE_HANG;
  } else if (strcmp(path, "/overlong") == 0) {
    p->kind = F_OVERLONG;
  } else if (sscanf(path, "/huge-headers/%u%c", &a, &tail) == 1 && a > 4096) {
    p->status = 400; /* the same overflow as /bytes, for KB * 1024 */
    set_body(p, "at most 4096 KB\n", 16);
  } else if (sscanf(path, "/huge-headers/%u%c", &a, &tail) == 1) {
    p->huge_header_kb = a;
    set_body(p, "ok\n", 3);
  } else if (strcmp(path, "/bad-chunk") == 0) {
    p->kind = F_BAD_CHUNK;
  } else if (sscanf(path, "/bytes/%u%c", &a, &tail) == 1 && a > FAULTD_MAX_BYTES) {
    /* found by fuzz_faultd_plan: /bytes/4294967295 wrapped malloc(a + 1) to 1 byte */
    p->status = 400;
    set_body(p, "at most 256 MiB\n", 16);
  } else if (sscanf(path, "/bytes/%u%c", &a, &tail) == 1) {
    p->body = malloc((size_t)a + 1);
    if (p->body == NULL) {
      p->status = 503;
      set_body(p, "out of memory\n", 14);
    } else {
      memset(p->body, 'x', a);
      p->body_len = a;
      char param[8];
      faultd__query_param(url, "chunked", param, sizeof(param));
      p->chunked = strcmp(param, "1") == 0;
    }
  } else if (strcmp(path, "/headers") == 0) {
    set_body(p, req->headers, req->headers_len);
  } else if (strcmp(path, "/echo") == 0) {
    char body[160];
    int n = snprintf(body, sizeof(body), "%s %zu", req->method, req->body_len);
    set_body(p, body, (size_t)n);
  } else if (sscanf(path, "/fail-until/%u/%127[^/]%c", &a, key, &tail) == 2) {
    faultd__record_key(fd, key, req);
    unsigned seen = (unsigned)json_integer_value(json_object_get(key_entry(fd, key), "requests"));
    char drip[16];
    faultd__query_param(url, "drip", drip, sizeof(drip));
    if (seen >= a && drip[0] != '\0') { /* the answer: N bytes, one each 10 ms */
      p->kind = F_DRIP;
      p->bytes = (unsigned)strtoul(drip, NULL, 10) % 100001;
      p->ms = 10;
    } else if (seen >= a) {
      set_body(p, "ok\n", 3);
    } else {
      fail_plan(p, url);
    }
  } else if (sscanf(path, "/ratelimit/%u/%127[^/]%c", &a, key, &tail) == 2) {
    /* A server-side token bucket per KEY: A requests per second, bursts of
     * A/5 (at least 1). Over it: 429, with Retry-After when asked. */
    faultd__record_key(fd, key, req);
    json_t *k = key_entry(fd, key);
    double rate = a ? (double)a : 1.0, burst = rate / 5 >= 1 ? rate / 5 : 1;
    uint64_t now = uv_now(fd->loop);
    json_t *t = json_object_get(k, "tokens"), *at = json_object_get(k, "at_ms");
    double tokens = t ? json_real_value(t) : burst;
    if (at != NULL)
      tokens += rate * (double)(now - (uint64_t)json_integer_value(at)) / 1000.0;
    if (tokens > burst)
      tokens = burst;
    if (tokens >= 1) {
      tokens -= 1;
      set_body(p, "ok\n", 3);
    } else {
      p->status = 429;
      faultd__query_param(url, "retry-after", p->retry_after, sizeof(p->retry_after));
      set_body(p, "slow down\n", 10);
      bump(k, "limited");
    }
    json_object_set_new(k, "tokens", json_real(tokens));
    json_object_set_new(k, "at_ms", json_integer((json_int_t)now));
  } else if (sscanf(path, "/slow-some/%u/%u/%u%c", &a, &b, &c, &tail) == 3) {
    /* the nth request to this path waits B ms iff mix(seed, n) % 100 < A */
    unsigned n = (unsigned)json_integer_value(json_object_get(fd->paths, url));
    if (mix(((uint64_t)c << 32) ^ n) % 100 < a) {
      p->kind = F_SLEEP;
      p->ms = b;
    }
    set_body(p, "ok\n", 3);
  } else if (sscanf(path, "/capacity/%u/%u%c", &a, &b, &tail) == 2) {
    capacity_plan(p, url, a, b);
  } else if (sscanf(path, "/redirect/%u%c", &a, &tail) == 1) {
    p->status = (int)a;
    faultd__query_param(url, "to", p->location, sizeof(p->location));
    set_body(p, "moved\n", 6);
  } else if (sscanf(path, "/redirect-chain/%u%c", &a, &tail) == 1) {
    if (a == 0) {
      set_body(p, "ok\n", 3);
    } else {
      p->status = 302;
      snprintf(p->location, sizeof(p->location), "/redirect-chain/%u", a - 1);
      set_body(p, "moved\n", 6);
    }
  } else if (sscanf(path, "/count/%127[^/]%c", key, &tail) == 1) {
    faultd__record_key(fd, key, req);
    p->kind = F_RESET;
  } else if (sscanf(path, "/random/%u/%u%c", &a, &b, &tail) == 2) {
    /* the nth request to this path fails iff mix(seed, n) % 100 < PERCENT */
    unsigned n = (unsigned)json_integer_value(json_object_get(fd->paths, url));
    if (mix(((uint64_t)b << 32) ^ n) % 100 < a)
      fail_plan(p, url);
    else
      set_body(p, "ok\n", 3);
  } else if (sscanf(path, "/h2/goaway-after/%u%c", &a, &tail) == 1) {
    p->goaway_after = a ? a : 1;
    set_body(p, "ok\n", 3);
  } else if (strcmp(path, "/h2/rst/refused") == 0) {
    p->kind = F_H2_RST_REFUSED;
  } else if (strcmp(path, "/h2/rst/internal") == 0) {
    p->kind = F_H2_RST_INTERNAL;
  } else if (strcmp(path, "/h2/hpack-garbage") == 0) {
    p->kind = F_H2_HPACK_GARBAGE;
  } else if (strcmp(path, "/h2/continuation-flood") == 0) {
    p->kind = F_H2_CONTINUATION_FLOOD;
  } else if (strcmp(path, "/h2/push-promise") == 0) {
    p->kind = F_H2_PUSH_PROMISE;
  } else if (strcmp(path, "/content-length-conflict") == 0) {
    char param[8];
    faultd__query_param(url, "one-field", param, sizeof(param));
    p->kind = F_CL_CONFLICT;
    p->bytes = strcmp(param, "1") == 0; /* 1: both values in one field */
    set_body(p, "hello", 5);
  } else if (strcmp(path, "/h2/stall") == 0) {
    p->kind = F_HEADERS_STALL;
  } else if (strcmp(path, "/counters") == 0) {
    char *doc = faultd_counters_json(fd);
    set_body(p, doc, strlen(doc));
    free(doc);
    p->content_type = "application/json";
  } else if (strcmp(path, "/counters/reset") == 0) {
    faultd_counters_reset(fd);
    set_body(p, "{}", 2);
    p->content_type = "application/json";
  } else if (strncmp(path, "/file/", 6) == 0) {
    faultd__file_plan(fd, req, url, path + 6, p);
    if (p->kind == F_FILE && p->status == 206)
      fd->ranges_served++;
  } else if (strncmp(path, "/keyed/", 7) == 0) {
    keyed_plan(fd, req, url, path + 7, p);
  } else if (faultd__enc_plan(path, p)) {
    /* /gzip, /br, /gzip-bomb, /bad-gzip: faultd_enc.c */
  } else {
    p->status = 404;
    set_body(p, "no such fault\n", 14);
  }
  if (p->status < 100 || p->status > 999) {
    /* found by fuzz_faultd_plan (/status/5, ?status=5020, /redirect/32): a
     * status line no client can read. Refuse the request instead. */
    p->kind = F_RESPOND;
    p->status = 400;
    free(p->body);
    set_body(p, "status must be 100..999\n", 24);
  }
  if (!req->is_h2 && (p->kind == F_H2_RST_REFUSED || p->kind == F_H2_RST_INTERNAL ||
                      p->kind == F_H2_HPACK_GARBAGE || p->kind == F_H2_CONTINUATION_FLOOD ||
                      p->kind == F_H2_PUSH_PROMISE)) {
    p->kind = F_RESPOND; /* HTTP/2-only faults answer 400 on HTTP/1.1 */
    p->status = 400;
    free(p->body);
    set_body(p, "HTTP/2 only\n", 12);
  }
}

/* ------------------------------------------------------------ transport */

static void maybe_free(faultd_t *fd) {
  if (fd->closing && fd->open_handles == 0) {
    json_decref(fd->paths);
    json_decref(fd->methods);
    json_decref(fd->keys);
    json_decref(fd->request_ids);
    json_decref(fd->idempotency_keys);
    faultd__capacity_free(fd);
    if (fd->ssl_ctx)
      SSL_CTX_free(fd->ssl_ctx);
    if (fd->cert_is_temp)
      unlink(fd->cert_file);
    if (fd->refused_fd >= 0)
      close(fd->refused_fd);
    free(fd);
  }
}

void faultd__handle_closed(faultd_t *fd) {
  fd->open_handles--;
  maybe_free(fd);
}

static void h1_held_free(conn_t *c);

static void conn_handle_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  faultd_t *fd = c->fd;
  if (--c->handles == 0) {
    if (c->ssl)
      SSL_free(c->ssl); /* frees the BIOs too */
    faultd__h2_free(c->h2);
    h1_held_free(c);
    free(c);
    fd->open_handles--;
    maybe_free(fd);
  }
}

void faultd__conn_close(conn_t *c, int reset) {
  if (c->closing)
    return;
  c->closing = 1;
  faultd__capacity_leave(c->fd, &c->slot, 0); /* the client went away: its place is free */
  if (c->prev)
    c->prev->next = c->next;
  else
    c->fd->conns = c->next;
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
  size_t len;
} write_t;

static void write_done(uv_write_t *req, int status) {
  write_t *w = (write_t *)req;
  conn_t *c = req->data;
  c->write_held -= w->len;
  free(w->buf);
  free(w);
  if (status < 0 && !c->closing)
    faultd__conn_close(c, 0);
  else if (c->h2 != NULL && !c->closing)
    faultd__h2_drained(c->h2);
}

static void raw_write(conn_t *c, const void *data, size_t len) {
  if (c->closing || len == 0)
    return;
  write_t *w = malloc(sizeof(*w));
  w->buf = malloc(len);
  w->len = len;
  memcpy(w->buf, data, len);
  w->req.data = c;
  uv_buf_t b = uv_buf_init(w->buf, (unsigned)len);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, write_done) != 0) {
    free(w->buf);
    free(w);
    faultd__conn_close(c, 0);
    return;
  }
  c->write_held += len;
}

static void flush_tls(conn_t *c) {
  char buf[16384];
  int n;
  while ((n = BIO_read(c->wbio, buf, sizeof(buf))) > 0)
    raw_write(c, buf, (size_t)n);
}

void faultd__conn_write(conn_t *c, const void *data, size_t len) {
  if (c->closing)
    return;
  if (c->ssl == NULL) {
    raw_write(c, data, len);
    return;
  }
  const char *p = data;
  while (len > 0) {
    int n = SSL_write(c->ssl, p, len > 65536 ? 65536 : (int)len);
    if (n <= 0)
      break;
    p += n;
    len -= (size_t)n;
  }
  flush_tls(c);
}

/* ------------------------------------------------------------ HTTP/1.1 */

static void h1_head(conn_t *c, int status, const char *content_length, const char *extra) {
  /* Sized to fit: |extra| may hold a header of megabytes (/huge-headers). */
  const char *fmt = "HTTP/1.1 %d %s\r\n%s%s%s%s\r\n";
  const char *reason = status < 400 ? "OK" : "Fault";
  const char *cl_name = content_length ? "Content-Length: " : "";
  const char *cl = content_length ? content_length : "";
  const char *cl_end = content_length ? "\r\n" : "";
  int n = snprintf(NULL, 0, fmt, status, reason, cl_name, cl, cl_end, extra);
  char *head = malloc((size_t)n + 1);
  snprintf(head, (size_t)n + 1, fmt, status, reason, cl_name, cl, cl_end, extra);
  faultd__conn_write(c, head, (size_t)n);
  free(head);
}

/* A /file answer's validators and range, as header lines; returns their length. */
static size_t h1_file_headers(const fault_plan_t *p, char *out, size_t cap) {
  int n = snprintf(out, cap, "%s", p->file.accept_ranges ? "Accept-Ranges: bytes\r\n" : "");
  if (p->file.etag[0] && (size_t)n < cap)
    n += snprintf(out + n, cap - (size_t)n, "ETag: %s\r\n", p->file.etag);
  if (p->file.last_modified != NULL && (size_t)n < cap)
    n += snprintf(out + n, cap - (size_t)n, "Last-Modified: %s\r\n", p->file.last_modified);
  if (p->file.content_range[0] && (size_t)n < cap)
    n += snprintf(out + n, cap - (size_t)n, "Content-Range: %s\r\n", p->file.content_range);
  return (size_t)n;
}

static void h1_respond(conn_t *c, const fault_plan_t *p) {
  char cl[32], extra[1536] = "";
  snprintf(cl, sizeof(cl), "%llu", (unsigned long long)faultd__body_size(p));
  size_t n = (size_t)snprintf(extra, sizeof(extra), "Content-Type: %s\r\nX-Test: yes\r\nX-Test: last\r\n",
                              p->content_type);
  if (p->content_encoding != NULL)
    n += (size_t)snprintf(extra + n, sizeof(extra) - n, "Content-Encoding: %s\r\n",
                          p->content_encoding);
  if (p->retry_after[0])
    n += (size_t)snprintf(extra + n, sizeof(extra) - n, "Retry-After: %s\r\n", p->retry_after);
  if (p->ratelimit_reset[0] && n < sizeof(extra))
    n += (size_t)snprintf(extra + n, sizeof(extra) - n, "RateLimit-Reset: %s\r\n", p->ratelimit_reset);
  if (p->location[0] && n < sizeof(extra))
    n += (size_t)snprintf(extra + n, sizeof(extra) - n, "Location: %s\r\n", p->location);
  if (p->queue_ms[0] && n < sizeof(extra))
    n += (size_t)snprintf(extra + n, sizeof(extra) - n, "X-Queue-Ms: %s\r\n", p->queue_ms);
  if (p->kind == F_FILE && n < sizeof(extra))
    n += h1_file_headers(p, extra + n, sizeof(extra) - n);
  if (p->announce_close && n < sizeof(extra))
    snprintf(extra + n, sizeof(extra) - n, "Connection: close\r\n");
  if (p->huge_header_kb > 0) {
    size_t hl = p->huge_header_kb * 1024;
    char *huge = malloc(hl + 16);
    memcpy(huge, "X-Huge: ", 8);
    memset(huge + 8, 'h', hl);
    memcpy(huge + 8 + hl, "\r\n", 3);
    char *all = malloc(strlen(extra) + hl + 16);
    sprintf(all, "%s%s", extra, huge);
    h1_head(c, p->status, cl, all);
    free(all);
    free(huge);
  } else if (p->chunked) {
    size_t used = strlen(extra);
    snprintf(extra + used, sizeof(extra) - used, "Transfer-Encoding: chunked\r\n");
    h1_head(c, p->status, NULL, extra);
  } else {
    h1_head(c, p->status, cl, extra);
  }
  /* A response to HEAD has no body (RFC 9110 9.3.2). Sending one left the
   * bytes in front of the next response on the connection, which the soak
   * test met as protocol_error on a later request. */
  if (strcmp(c->req.method, "HEAD") == 0 || p->kind == F_REPEAT || p->kind == F_FILE)
    return; /* a body made up as it is sent: h1_stream_start() */
  if (!p->chunked) {
    faultd__conn_write(c, p->body, p->body_len);
    return;
  }
  for (size_t off = 0; off < p->body_len; off += 4096) { /* chunks of 4 KiB */
    size_t n = p->body_len - off < 4096 ? p->body_len - off : 4096;
    char size[24];
    int sl = snprintf(size, sizeof(size), "%zx\r\n", n);
    faultd__conn_write(c, size, (size_t)sl);
    faultd__conn_write(c, p->body + off, n);
    faultd__conn_write(c, "\r\n", 2);
  }
  faultd__conn_write(c, "0\r\n\r\n", 5);
}

/* Keeps the plan (and its body) for later: *p is left without a body. */
static void h1_hold(conn_t *c, fault_plan_t *p) {
  c->held = malloc(sizeof(*c->held));
  *c->held = *p;
  p->body = NULL;
  c->held_sent = 0;
}

static void h1_held_free(conn_t *c) {
  if (c->held != NULL)
    free(c->held->body);
  free(c->held);
  c->held = NULL;
}

static void h1_sleep_done(uv_timer_t *t) {
  conn_t *c = t->data;
  h1_respond(c, c->held);
  h1_held_free(c);
  c->stalled = 0; /* answered: the connection takes the next request */
  http_parser_init(&c->parser, HTTP_REQUEST);
}

static void h1_capacity_done(uv_timer_t *t) {
  conn_t *c = t->data;
  fault_plan_t p = {.content_type = "text/plain"};
  faultd__capacity_answer(&c->slot, &p);
  h1_respond(c, &p);
  free(p.body);
  faultd__capacity_leave(c->fd, &c->slot, 1);
  c->stalled = 0; /* answered: the connection takes the next request */
  http_parser_init(&c->parser, HTTP_REQUEST);
}

static void h1_capacity_start(faultd_slot_t *slot) {
  conn_t *c = slot->data;
  uv_timer_start(&c->timer, h1_capacity_done, slot->service_ms, 0);
}

static void h1_drip_tick(uv_timer_t *t) {
  conn_t *c = t->data;
  faultd__conn_write(c, "x", 1);
  if (--c->drip_left == 0) {
    uv_timer_stop(t);
    c->stalled = 0; /* answered: the connection takes the next request (found by a new user:
                       after a /drip the next request on the connection was never answered) */
    http_parser_init(&c->parser, HTTP_REQUEST);
  }
}

static void end_after_answer_cb(uv_write_t *req, int status) {
  conn_t *c = req->data;
  (void)status;
  free(req);
  faultd__conn_close(c, c->reset_after);
}

/* Ends the connection once the answer is on the wire: an RST sent while the
 * answer still waited in libuv's queue would drop it. */
static void end_after_answer(conn_t *c, int reset) {
  c->stalled = 1; /* nothing after this answer is read */
  c->reset_after = reset;
  if (c->ssl == NULL && c->tcp.write_queue_size == 0) {
    faultd__conn_close(c, reset);
    return;
  }
  /* An empty write completes after every write queued before it. */
  uv_write_t *w = malloc(sizeof(*w));
  w->data = c;
  uv_buf_t b = uv_buf_init(NULL, 0);
  if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, end_after_answer_cb) != 0) {
    free(w);
    faultd__conn_close(c, reset);
  }
}

static void h1_stream_more(conn_t *c);

static void h1_stream_written(uv_write_t *w, int status) {
  conn_t *c = w->data;
  (void)status;
  free(w);
  if (!c->closing)
    h1_stream_more(c);
}

/* Calls h1_stream_more() once everything queued so far is written. */
static void h1_stream_after_writes(conn_t *c) {
  uv_write_t *w = malloc(sizeof(*w)); /* an empty write completes after the others */
  w->data = c;
  uv_buf_t b = uv_buf_init(NULL, 0);
  if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, h1_stream_written) != 0) {
    free(w);
    faultd__conn_close(c, 0);
  }
}

static void h1_stream_tick(uv_timer_t *t) { h1_stream_more(t->data); }

/* The next 64 KiB of a body made up as it is sent (F_REPEAT, F_FILE), once
 * the last are written: the server holds no more of it than that, however
 * long it is. A paced body (/file ?rate=) sends what its rate allows so far,
 * and waits for more on the connection's timer, a slice each 10 ms. */
static void h1_stream_more(conn_t *c) {
  unsigned char buf[65536];
  size_t cap = sizeof(buf);
  if (c->held->kind == F_FILE) {
    uint64_t allowed = faultd__file_allowed(c->held, uv_now(c->fd->loop));
    if (allowed <= c->held_sent) {
      uv_timer_start(&c->timer, h1_stream_tick, 10, 0);
      return;
    }
    if (allowed - c->held_sent < cap)
      cap = (size_t)(allowed - c->held_sent);
  }
  size_t n = faultd__body_read(c->held, c->held_sent, buf, cap);
  faultd__conn_write(c, buf, n);
  c->held_sent += n;
  if (c->held_sent < faultd__body_size(c->held)) {
    h1_stream_after_writes(c);
    return;
  }
  h1_held_free(c);
  c->stalled = 0; /* answered: the connection takes the next request */
  http_parser_init(&c->parser, HTTP_REQUEST);
}

/* Takes the plan and its body and sends the body from the loop. */
static void h1_stream_start(conn_t *c, fault_plan_t *p) {
  h1_hold(c, p);
  c->stalled = 1; /* one request at a time: nothing else until it is sent */
  h1_stream_after_writes(c);
}

static void h1_execute(conn_t *c, fault_plan_t *p) {
  char cl[32];
  switch (p->kind) {
  case F_RESPOND:
    h1_respond(c, p);
    if (p->end_after != 0)
      end_after_answer(c, p->end_after == 2);
    break;
  case F_SLEEP:
    h1_hold(c, p); /* its answer, after p->ms */
    c->stalled = 1; /* one request at a time: nothing else until it answers */
    uv_timer_start(&c->timer, h1_sleep_done, p->ms, 0);
    break;
  case F_HANG:
    c->stalled = 1;
    break;
  case F_CAPACITY:
    c->slot.start_cb = h1_capacity_start;
    c->slot.data = c;
    if (faultd__capacity_enter(c->fd, p, &c->slot) != 0) {
      h1_respond(c, p); /* the queue is full: 503 at once */
      break;
    }
    c->stalled = 1; /* one request at a time: nothing else until it answers */
    break;
  case F_CLOSE:
    faultd__conn_close(c, 0);
    break;
  case F_RESET:
    faultd__conn_close(c, 1);
    break;
  case F_GARBAGE:
    faultd__conn_write(c, "SURPRISE \x01\x02\x03 this is not HTTP\r\n\r\n", 34);
    faultd__conn_close(c, 0);
    break;
  case F_HEADERS_STALL:
    h1_head(c, 200, "100", "");
    c->stalled = 1;
    break;
  case F_DRIP:
    snprintf(cl, sizeof(cl), "%u", p->bytes);
    h1_head(c, 200, cl, "");
    c->stalled = 1;
    c->drip_left = p->bytes;
    if (p->bytes > 0)
      uv_timer_start(&c->timer, h1_drip_tick, p->ms, p->ms);
    break;
  case F_TRUNCATE:
  case F_TRUNCATE_HANG:
    h1_head(c, 200, "100", "");
    faultd__conn_write(c, "0123456789", 10);
    if (p->kind == F_TRUNCATE)
      faultd__conn_close(c, 0);
    else
      c->stalled = 1;
    break;
  case F_OVERLONG: {
    char body[100];
    memset(body, 'o', sizeof(body));
    h1_head(c, 200, "10", "");
    faultd__conn_write(c, body, sizeof(body));
    break;
  }
  case F_BAD_CHUNK:
    h1_head(c, 200, NULL, "Transfer-Encoding: chunked\r\n");
    faultd__conn_write(c, "5\r\nhello\r\nZZZ\r\nnot a chunk\r\n", 27);
    c->stalled = 1;
    break;
  case F_CL_CONFLICT:
    h1_head(c, 200, NULL,
            p->bytes ? "Content-Length: 5, 2\r\n" : "Content-Length: 5\r\nContent-Length: 2\r\n");
    faultd__conn_write(c, p->body, p->body_len);
    break;
  case F_REPEAT:
  case F_FILE:
    h1_respond(c, p); /* the head */
    if (strcmp(c->req.method, "HEAD") != 0 && faultd__body_size(p) > 0)
      h1_stream_start(c, p);
    break;
  case F_H2_RST_REFUSED:
  case F_H2_RST_INTERNAL:
  case F_H2_HPACK_GARBAGE:
  case F_H2_CONTINUATION_FLOOD:
  case F_H2_PUSH_PROMISE:
    break; /* made a 400 by faultd__plan */
  }
}

static int on_message_begin(http_parser *hp) {
  conn_t *c = hp->data;
  memset(&c->req, 0, sizeof(c->req));
  c->in_value = 0;
  c->field[0] = '\0';
  return 0;
}

/* Returns 1 if |src| was cut to fit, else 0. */
static int append(char *dst, size_t cap, size_t *len, const char *src, size_t n) {
  int cut = *len + n >= cap;
  if (cut)
    n = cap - 1 - *len;
  memcpy(dst + *len, src, n);
  *len += n;
  dst[*len] = '\0';
  return cut;
}

static void append_header_text(conn_t *c, const char *src, size_t n) {
  c->req.headers_truncated |= append(c->req.headers, sizeof(c->req.headers), &c->req.headers_len,
                                     src, n);
}

static int on_url(http_parser *hp, const char *at, size_t len) {
  conn_t *c = hp->data;
  size_t have = strlen(c->req.url);
  append(c->req.url, sizeof(c->req.url), &have, at, len);
  return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t len) {
  conn_t *c = hp->data;
  if (c->in_value) {
    append_header_text(c, "\n", 1);
    c->in_value = 0;
    c->field[0] = '\0';
  }
  append_header_text(c, at, len);
  size_t have = strlen(c->field);
  append(c->field, sizeof(c->field), &have, at, len);
  c->field_is = strcasecmp(c->field, "X-Request-ID") == 0      ? 1
                : strcasecmp(c->field, "Idempotency-Key") == 0 ? 2
                                                               : 0;
  return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t len) {
  conn_t *c = hp->data;
  if (!c->in_value) {
    append_header_text(c, ": ", 2);
    c->in_value = 1;
  }
  append_header_text(c, at, len);
  char *dst = c->field_is == 1 ? c->req.request_id : c->field_is == 2 ? c->req.idem_key : NULL;
  if (dst != NULL) {
    size_t have = strlen(dst);
    append(dst, sizeof(c->req.request_id), &have, at, len);
  }
  return 0;
}

static int on_headers_complete(http_parser *hp) {
  conn_t *c = hp->data;
  if (c->in_value)
    append_header_text(c, "\n", 1);
  c->in_value = 0;
  return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len) {
  (void)at;
  ((conn_t *)hp->data)->req.body_len += len;
  return 0;
}

static int on_message_complete(http_parser *hp) {
  conn_t *c = hp->data;
  snprintf(c->req.method, sizeof(c->req.method), "%s",
           http_method_str((enum http_method)hp->method));
  /* "GET http://host:port/path" is a request to a proxy: serve the path as
   * if asked directly, and count it as proxied. */
  if (strncasecmp(c->req.url, "http://", 7) == 0 || strncasecmp(c->req.url, "https://", 8) == 0) {
    char *slash = strchr(strstr(c->req.url, "://") + 3, '/');
    if (slash != NULL)
      memmove(c->req.url, slash, strlen(slash) + 1);
    else
      strcpy(c->req.url, "/");
    c->req.proxied = 1;
  }
  faultd__record(c->fd, &c->req);
  fault_plan_t plan;
  faultd__plan(c->fd, &c->req, &plan);
  h1_execute(c, &plan);
  free(plan.body);
  return c->stalled || c->closing ? -1 : 0; /* stop parsing: nothing else is answered */
}

static const http_parser_settings h1_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Plaintext from the peer, for whichever protocol the connection speaks. */
static void deliver(conn_t *c, const char *data, size_t len) {
  if (c->h2 != NULL) {
    if (faultd__h2_recv(c->h2, (const unsigned char *)data, len) != 0)
      faultd__conn_close(c, 0);
    return;
  }
  if (c->stalled || c->closing)
    return;
  size_t used = http_parser_execute(&c->parser, &h1_settings, data, len);
  if (!c->stalled && !c->closing &&
      (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK || used != len)) {
    static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    faultd__conn_write(c, bad, sizeof(bad) - 1);
    faultd__conn_close(c, 0);
  }
}

static void tls_input(conn_t *c, const char *data, size_t len) {
  BIO_write(c->rbio, data, (int)len);
  if (!c->tls_ready) {
    int r = SSL_do_handshake(c->ssl);
    flush_tls(c);
    if (r != 1) {
      int e = SSL_get_error(c->ssl, r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
        faultd__conn_close(c, 0);
      return;
    }
    c->tls_ready = 1;
    c->fd->tls_handshakes++;
    if (SSL_session_reused(c->ssl))
      c->fd->tls_resumed++;
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
    if (alpn_len == 2 && memcmp(alpn, "h2", 2) == 0)
      c->h2 = faultd__h2_new(c, c->fd->h2_max_streams);
  }
  char buf[16384];
  for (;;) {
    int n = SSL_read(c->ssl, buf, sizeof(buf));
    if (n > 0) {
      deliver(c, buf, (size_t)n);
      if (c->closing)
        return;
      continue;
    }
    int e = SSL_get_error(c->ssl, n);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
      faultd__conn_close(c, 0);
    break;
  }
  flush_tls(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  buf->base = malloc(suggested);
  buf->len = suggested;
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = stream->data;
  if (nread < 0) {
    faultd__conn_close(c, 0);
  } else if (nread > 0 && !c->closing) {
    switch (c->kind) {
    case FAULTD_PORT_TLS:
      tls_input(c, buf->base, (size_t)nread);
      break;
    case FAULTD_PORT_HTTP:
      deliver(c, buf->base, (size_t)nread);
      break;
    default: /* tls_stall: read and drop */
      break;
    }
  }
  free(buf->base);
}

static void on_connection(uv_stream_t *server, int status) {
  faultd_t *fd = server->data;
  if (status < 0 || fd->closing)
    return;
  faultd_port_t kind = (faultd_port_t)((uv_tcp_t *)server - fd->listeners);
  conn_t *c = calloc(1, sizeof(*c));
  c->fd = fd;
  c->kind = kind;
  uv_tcp_init(fd->loop, &c->tcp);
  uv_timer_init(fd->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->handles = 2;
  fd->open_handles++;
  c->next = fd->conns;
  if (fd->conns)
    fd->conns->prev = c;
  fd->conns = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    faultd__conn_close(c, 0);
    return;
  }
  fd->connections++;
  uv_tcp_nodelay(&c->tcp, 1);
  switch (kind) {
  case FAULTD_PORT_HTTP:
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    break;
  case FAULTD_PORT_TLS:
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->ssl = SSL_new(fd->ssl_ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_accept_state(c->ssl);
    break;
  case FAULTD_PORT_ACCEPT_SILENT:
    return; /* never read, never write */
  case FAULTD_PORT_CLOSE_ON_ACCEPT:
    faultd__conn_close(c, 0);
    return;
  case FAULTD_PORT_RESET_ON_ACCEPT:
    faultd__conn_close(c, 1);
    return;
  case FAULTD_PORT_GARBAGE_ON_ACCEPT:
    /* Garbage, then read and drop until the client gives up: closing here
     * would race the client's request into a reset. */
    raw_write(c, "GARBAGE\x00\xff garbage garbage\r\n\r\n", 28);
    break;
  default:
    break; /* tls_stall: read and drop */
  }
  uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

/* ------------------------------------------------------------ TLS setup */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg) {
  (void)ssl;
  static const unsigned char both[] = "\x02h2\x08http/1.1";
  static const unsigned char h1[] = "\x08http/1.1";
  int h1_only = arg != NULL; /* --no-h2: a TLS server that speaks HTTP/1.1 only */
  if (SSL_select_next_proto((unsigned char **)out, outlen, h1_only ? h1 : both,
                            h1_only ? sizeof(h1) - 1 : sizeof(both) - 1, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_OK;
  return SSL_TLSEXT_ERR_NOACK; /* no ALPN match: HTTP/1.1 */
}

/* A self-signed P-256 certificate for |names| (a subjectAltName value):
 * localhost, 127.0.0.1 and ::1 unless a test asks for others. */
static int make_certificate(SSL_CTX *ctx, const char *out_path, const char *names) {
  EVP_PKEY *key = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  int ok = 0;
  if (key == NULL || x == NULL)
    goto out;
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(uv_hrtime() & 0x7fffffff));
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 7L * 24 * 3600);
  X509_set_pubkey(x, key);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
  const char *exts[][2] = {{"subjectAltName", names ? names : "DNS:localhost,IP:127.0.0.1,IP:::1"},
                           {"basicConstraints", "critical,CA:TRUE"},
                           {"keyUsage", "critical,digitalSignature,keyCertSign"}};
  for (size_t i = 0; i < 3; i++) {
    X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v3, exts[i][0], exts[i][1]);
    if (e == NULL)
      goto out;
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
  }
  if (X509_sign(x, key, EVP_sha256()) == 0)
    goto out;
  FILE *f = fopen(out_path, "w");
  if (f == NULL)
    goto out;
  PEM_write_X509(f, x);
  fclose(f);
  ok = SSL_CTX_use_certificate(ctx, x) == 1 && SSL_CTX_use_PrivateKey(ctx, key) == 1;
out:
  X509_free(x);
  EVP_PKEY_free(key);
  return ok ? 0 : -1;
}

/* ------------------------------------------------------------ life */

static int is_loopback(const char *host, struct sockaddr_storage *ss) {
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  memset(ss, 0, sizeof(*ss));
  if (strcmp(host, "localhost") == 0)
    host = "127.0.0.1";
  if (uv_ip4_addr(host, 0, a4) == 0)
    return (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
  if (uv_ip6_addr(host, 0, a6) == 0)
    return IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
  return 0;
}

static void set_port(struct sockaddr_storage *ss, int port) {
  if (ss->ss_family == AF_INET)
    ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
  else
    ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

static int get_port(const struct sockaddr_storage *ss) {
  return ntohs(ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
                                        : ((const struct sockaddr_in6 *)ss)->sin6_port);
}

static void listener_closed(uv_handle_t *h) {
  faultd_t *fd = h->data;
  fd->open_handles--;
  maybe_free(fd);
}

void faultd_close(faultd_t *fd) {
  if (fd->closing)
    return;
  fd->closing = 1;
  faultd__capacity_close(fd);
  while (fd->conns)
    faultd__conn_close(fd->conns, 0);
  for (int i = 0; i < FAULTD_PORTS; i++)
    if (fd->listening[i])
      uv_close((uv_handle_t *)&fd->listeners[i], listener_closed);
  maybe_free(fd);
}

int faultd_start(uv_loop_t *loop, const faultd_opts_t *opts, faultd_t **out, const char **error) {
  faultd_opts_t defaults;
  if (opts == NULL) {
    faultd_opts_init(&defaults);
    opts = &defaults;
  }
  const char *dummy;
  if (error == NULL)
    error = &dummy;
  struct sockaddr_storage ss;
  if (opts->host == NULL || !is_loopback(opts->host, &ss)) {
    *error = "faultd listens on loopback only (127.0.0.1 or ::1)";
    return -EINVAL;
  }
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
    signal(SIGPIPE, SIG_IGN); /* a peer's close must not kill the server's process */
  faultd_t *fd = calloc(1, sizeof(*fd));
  fd->loop = loop;
  fd->refused_fd = -1;
  fd->h2_max_streams = opts->h2_max_streams ? opts->h2_max_streams : 100;
  fd->paths = json_object();
  fd->methods = json_object();
  fd->keys = json_object();
  fd->request_ids = json_object();
  fd->idempotency_keys = json_object();
  int rc = 0;

  if (opts->port[FAULTD_PORT_TLS] >= 0) {
    fd->ssl_ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_alpn_select_cb(fd->ssl_ctx, alpn_select, opts->no_h2 ? (void *)fd : NULL);
    if (opts->cert_file != NULL) {
      snprintf(fd->cert_file, sizeof(fd->cert_file), "%s", opts->cert_file);
      if (SSL_CTX_use_certificate_chain_file(fd->ssl_ctx, opts->cert_file) != 1 ||
          SSL_CTX_use_PrivateKey_file(fd->ssl_ctx, opts->key_file ? opts->key_file : opts->cert_file,
                                      SSL_FILETYPE_PEM) != 1) {
        *error = "cannot load the certificate or key";
        rc = -EINVAL;
        goto fail;
      }
    } else {
      if (opts->cert_out != NULL) {
        snprintf(fd->cert_file, sizeof(fd->cert_file), "%s", opts->cert_out);
      } else {
        snprintf(fd->cert_file, sizeof(fd->cert_file), "/tmp/salvo-faultd-cert-XXXXXX");
        int tmp = mkstemp(fd->cert_file);
        if (tmp < 0) {
          *error = "cannot create a temporary file for the certificate";
          rc = -errno;
          goto fail;
        }
        close(tmp);
        fd->cert_is_temp = 1;
      }
      if (make_certificate(fd->ssl_ctx, fd->cert_file, opts->cert_names) != 0) {
        *error = "cannot make a self-signed certificate";
        rc = -EIO;
        goto fail;
      }
    }
  }

  for (int i = 0; i < FAULTD_PORTS; i++) {
    if (opts->port[i] < 0)
      continue;
    set_port(&ss, opts->port[i]);
    if (i == FAULTD_PORT_REFUSED) {
      /* Bound and never listening: the kernel refuses connections, and the
       * port stays ours so nothing else takes it. */
      fd->refused_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      socklen_t len = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                              : sizeof(struct sockaddr_in6);
      if (fd->refused_fd < 0 || bind(fd->refused_fd, (struct sockaddr *)&ss, len) != 0) {
        *error = "cannot bind the refused port";
        rc = -errno;
        goto fail;
      }
      struct sockaddr_storage bound;
      len = sizeof(bound);
      getsockname(fd->refused_fd, (struct sockaddr *)&bound, &len);
      fd->port[i] = get_port(&bound);
      continue;
    }
    uv_tcp_init(loop, &fd->listeners[i]);
    fd->listeners[i].data = fd;
    fd->listening[i] = 1;
    fd->open_handles++;
    rc = uv_tcp_bind(&fd->listeners[i], (const struct sockaddr *)&ss, 0);
    if (rc == 0)
      rc = uv_listen((uv_stream_t *)&fd->listeners[i], 4096, on_connection);
    if (rc != 0) {
      *error = "cannot listen (port taken?)";
      goto fail;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&fd->listeners[i], (struct sockaddr *)&bound, &len);
    fd->port[i] = get_port(&bound);
  }
  *out = fd;
  return 0;
fail:
  faultd_close(fd);
  return rc ? rc : -EIO;
}

/* ------------------------------------------------------------ helpers */

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
