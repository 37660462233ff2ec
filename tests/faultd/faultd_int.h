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
  F_CAPACITY,              /* a place in a capacity pool, then 200 after ms (faultd_capacity.c) */
  F_REPEAT,                /* 200 with repeat.head, body x repeat.count, repeat.tail: a body too
                              long to hold, made up as it is sent (faultd_enc.c) */
  F_FILE,                  /* /file/SIZE/SEED: status (200, 206, 416) and validators in file,
                              the body made up as it is sent (faultd_file.c) */
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
  int chunked;            /* no Content-Length: HTTP/1.1 chunked, HTTP/2 DATA up to END_STREAM */
  char queue_ms[16];      /* X-Queue-Ms value, "" = none */
  struct {
    unsigned limit;       /* N: requests of the pool served at once */
    unsigned queue_max;   /* Q: requests that may wait for service; 0 = none */
    char pool[128];       /* the pool's key: ?name=, else "N/MS/Q" */
    char retry_after[64]; /* Retry-After of the 503 when the queue is full, "" = none */
    int keep;             /* ?keep=1: a request whose client went away keeps its place */
  } capacity;             /* F_CAPACITY; ms is the service time */
  const char *content_encoding; /* Content-Encoding value (static), NULL = none */
  struct {
    unsigned char head[16], tail[16];
    size_t head_len, tail_len;
    uint64_t count;       /* times body repeats between head and tail */
  } repeat;               /* F_REPEAT */
  struct {
    uint64_t size;        /* SIZE: the whole file */
    uint32_t seed;
    uint64_t first;       /* the file's offset of the body's first byte */
    uint64_t length;      /* the body's length: SIZE, a range's, or 0 (416) */
    uint64_t corrupt_at;  /* the body's offset of the byte sent xor 0xff; UINT64_MAX = none */
    uint64_t rate;        /* bytes per second; 0 = as fast as the socket drains */
    uint64_t started_ms;  /* loop time of the answer, for the rate */
    int accept_ranges;    /* send Accept-Ranges: bytes (ranges=0: no, and Range is ignored) */
    const char *last_modified; /* Last-Modified (static), NULL = none */
    char etag[132];       /* ETag value with its quotes, "" = none */
    char content_range[80]; /* Content-Range value, "" = none (a 200) */
  } file;                 /* F_FILE */
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
  int headers_truncated;  /* headers[] could not hold them all */
  int proxied;            /* asked in absolute form, as of a proxy */
} freq_t;

typedef struct conn_s conn_t;
typedef struct faultd_pool_s faultd_pool_t;
typedef struct faultd_slot_s faultd_slot_t;

/* A request's place in a capacity pool, held by its transport (an HTTP/1.1
 * connection, an HTTP/2 stream), which times the service with its own loop
 * timer once start_cb says its turn came. */
struct faultd_slot_s {
  faultd_pool_t *pool;      /* NULL = holds no place */
  faultd_slot_t *next, *prev; /* in the pool's queue while waiting */
  int in_service;           /* 0 = waiting in the queue */
  uint64_t arrived_ms;      /* loop time it asked for a place */
  unsigned queue_ms;        /* how long it waited, set when its service starts */
  unsigned service_ms;      /* how long its service takes, set when it starts */
  void (*start_cb)(faultd_slot_t *slot); /* its turn: answer after service_ms */
  void *data;               /* the transport's */
};

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
  uint64_t body_bytes;    /* request body bytes of every request read to its end */
  unsigned proxied;       /* requests asked of it as a proxy (absolute-form URL) */
  unsigned ranges_served; /* 206 answers of /file */
  faultd_pool_t *pools;   /* /capacity pools, in order of creation */
  struct faultd_ghost_s *ghosts; /* keep=1 work whose clients went away (faultd_capacity.c) */
};

/* faultd.c */
void faultd__handle_closed(faultd_t *fd); /* a uv handle counted in open_handles closed */
void faultd__record(faultd_t *fd, const freq_t *req);
/* Fills *plan for |req|; the caller frees plan->body. */
void faultd__plan(faultd_t *fd, const freq_t *req, fault_plan_t *plan);
/* Replaces plan->body with a copy of |data|. */
void faultd__plan_body(fault_plan_t *plan, const char *data, size_t len);
/* Value of ?name= in |url| into |out|, "" if absent (cut to fit; %20 decoded). */
void faultd__query_param(const char *url, const char *name, char *out, size_t out_len);
/* Counts |req| under "keys" -> KEY in /counters; returns KEY's requests so far, this one included. */
unsigned faultd__record_key(faultd_t *fd, const char *key, const freq_t *req);
void faultd__conn_write(conn_t *c, const void *data, size_t len);
void faultd__conn_close(conn_t *c, int reset);
uv_loop_t *faultd__conn_loop(conn_t *c);
faultd_t *faultd__conn_server(conn_t *c);
/* Bytes of the connection's writes still held in memory (their callbacks
 * have not run: the socket may or may not have taken them). */
size_t faultd__conn_held(conn_t *c);

/* faultd_capacity.c */
/* Asks for a place in the pool |plan| names (made on first use; a pool takes
 * the numbers of its latest request). Returns 0 if |slot| holds a place: its
 * start_cb runs now or once its turn comes, the transport then answers with
 * faultd__capacity_answer() after slot->service_ms and gives the place back
 * with faultd__capacity_leave(). Returns -1 if the queue is full: *plan is
 * then the 503 to send as it is, and |slot| holds nothing. */
int faultd__capacity_enter(faultd_t *fd, fault_plan_t *plan, faultd_slot_t *slot);
/* Gives the place back: |served| 1 once answered, 0 when the client went
 * away (or the server closes). The next waiting request starts. A slot that
 * holds no place is left alone. */
void faultd__capacity_leave(faultd_t *fd, faultd_slot_t *slot, int served);
/* Turns *plan into the 200 for |slot|: "ok\n" and X-Queue-Ms. */
void faultd__capacity_answer(const faultd_slot_t *slot, fault_plan_t *plan);
json_t *faultd__capacity_json(const faultd_t *fd);
/* Zeroes the pools' counts; pools that hold nobody are forgotten. */
void faultd__capacity_reset(faultd_t *fd);
void faultd__capacity_free(faultd_t *fd);
/* The server is closing: work left by clients that went away (?keep=1) stops. */
void faultd__capacity_close(faultd_t *fd);

/* faultd_enc.c */
/* Plans /gzip/BYTES, /br/BYTES, /gzip-bomb/GB and /bad-gzip into *plan;
 * returns 0 (plan untouched) if |path| is none of them. */
int faultd__enc_plan(const char *path, fault_plan_t *plan);
/* The length of a plan's body: body_len, or all of an F_REPEAT or F_FILE body. */
uint64_t faultd__body_size(const fault_plan_t *plan);
/* Copies up to |cap| bytes of an F_REPEAT or F_FILE body (a body made up as
 * it is sent) from |offset| into |buf|; returns how many (0 at the end). */
size_t faultd__body_read(const fault_plan_t *plan, uint64_t offset, void *buf, size_t cap);

/* faultd_file.c */
/* Plans /file/SIZE/SEED (|rest| is "SIZE/SEED", |url| has the query): an
 * F_FILE plan, or a 400 for a malformed path or option. */
void faultd__file_plan(faultd_t *fd, const freq_t *req, const char *url, const char *rest,
                       fault_plan_t *plan);
/* Copies up to |cap| bytes of an F_FILE body from |offset| into |buf|;
 * returns how many (0 at the end). */
size_t faultd__file_read(const fault_plan_t *plan, uint64_t offset, void *buf, size_t cap);
/* How many bytes of an F_FILE body its ?rate= allows sent by |now_ms| (loop
 * time); UINT64_MAX without a rate. */
uint64_t faultd__file_allowed(const fault_plan_t *plan, uint64_t now_ms);

/* faultd_h2.c */
typedef struct h2_s h2_t;
h2_t *faultd__h2_new(conn_t *c, unsigned max_streams);
/* Feeds received plaintext; returns -1 if the connection must close. */
int faultd__h2_recv(h2_t *h, const unsigned char *data, size_t len);
/* The socket took a write: sends what waited for room (see send_cb). */
void faultd__h2_drained(h2_t *h);
void faultd__h2_free(h2_t *h);

#endif
