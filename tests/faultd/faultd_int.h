/* Internals shared by faultd.c (transport, HTTP/1.1, counters) and
 * faultd_h2.c (HTTP/2). */
#ifndef SALVO_FAULTD_INT_H
#define SALVO_FAULTD_INT_H

#include <http_parser.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "faultd.h"

/* What a request asks the server to do. Protocol-independent: each
 * transport (HTTP/1.1, HTTP/2) carries it out its own way. */
typedef enum {
  F_RESPOND,         /* status, headers, body */
  F_SLEEP,           /* respond after ms */
  F_HANG,
  F_CLOSE,
  F_RESET,
  F_GARBAGE,
  F_HEADERS_STALL,
  F_DRIP,            /* bytes, one per ms */
  F_TRUNCATE,
  F_TRUNCATE_HANG,
  F_OVERLONG,
  F_BAD_CHUNK,
  F_H2_RST_REFUSED,
  F_H2_RST_INTERNAL,
  F_H2_HPACK_GARBAGE,      /* a HEADERS frame whose block does not decode */
  F_H2_CONTINUATION_FLOOD, /* HEADERS, then CONTINUATION frames that never end the block */
  F_H2_PUSH_PROMISE,       /* a PUSH_PROMISE, which the client disabled */
  F_CL_CONFLICT,           /* Content-Length 5 and 2 (two fields, or "5, 2" in one) */
} fault_kind_t;

typedef struct {
  fault_kind_t kind;
  int status;
  unsigned ms;
  unsigned bytes;
  char retry_after[128];  /* "" = none */
  char ratelimit_reset[64]; /* RateLimit-Reset value, "" = none */
  char location[512];     /* Location value, "" = none */
  size_t huge_header_kb;  /* 0 = none */
  char *body;             /* malloc()ed, or NULL */
  size_t body_len;
  const char *content_type;
  unsigned goaway_after;  /* /h2/goaway-after/N: 0 = no */
  int end_after;          /* HTTP/1.1: after the answer, 1 = close, 2 = reset (RST) */
  int announce_close;     /* send "Connection: close" with the answer */
} fault_plan_t;

/* One request as read off the wire. */
typedef struct {
  char method[24];
  char url[1024];
  size_t body_len;
  char request_id[128];
  char idem_key[128];
  char headers[4096];     /* "name: value\n" lines, for /headers */
  size_t headers_len;
  int is_h2;
  int proxied;            /* asked in absolute form, as of a proxy */
} freq_t;

typedef struct conn_s conn_t;

struct faultd_s {
  uv_loop_t *loop;
  uv_tcp_t listeners[FAULTD_PORTS];
  int listening[FAULTD_PORTS];
  int refused_fd;
  int port[FAULTD_PORTS];
  SSL_CTX *ssl_ctx;
  char cert_file[512];
  int cert_is_temp;
  unsigned h2_max_streams;
  int closing;
  unsigned open_handles;
  unsigned connections;
  unsigned tls_handshakes;    /* TLS handshakes completed */
  unsigned tls_resumed;       /* of them, resuming a session (no full handshake) */
  conn_t *conns;
  /* counters */
  json_t *paths;          /* url -> count */
  json_t *methods;        /* method -> count */
  json_t *keys;           /* KEY -> {"requests": n, "request_ids": {...}, "idempotency_keys": {...}} */
  json_t *request_ids;    /* X-Request-ID -> count */
  json_t *idempotency_keys;
  unsigned total;
  unsigned bodies;        /* requests that carried a body */
  unsigned proxied;       /* requests asked of it as a proxy (absolute-form URL) */
};

/* faultd.c */
void faultd__handle_closed(faultd_t *fd); /* a uv handle counted in open_handles closed */
void faultd__record(faultd_t *fd, const freq_t *req);
/* Fills *plan for |req|; the caller frees plan->body. */
void faultd__plan(faultd_t *fd, const freq_t *req, fault_plan_t *plan);
void faultd__conn_write(conn_t *c, const void *data, size_t len);
void faultd__conn_close(conn_t *c, int reset);
uv_loop_t *faultd__conn_loop(conn_t *c);
faultd_t *faultd__conn_server(conn_t *c);

/* faultd_h2.c */
typedef struct h2_s h2_t;
h2_t *faultd__h2_new(conn_t *c, unsigned max_streams);
/* Feeds received plaintext; returns -1 if the connection must close. */
int faultd__h2_recv(h2_t *h, const unsigned char *data, size_t len);
void faultd__h2_free(h2_t *h);

#endif
