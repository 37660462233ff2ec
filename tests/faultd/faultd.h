/* salvo-faultd: an HTTP server that fails in every way the network fails.
 * Runs on a libuv loop: in-process for tests (faultd_start) or as the
 * salvo-faultd program. Listens on loopback only.
 *
 * Faults by path (HTTP/1.1 port, and the TLS port with h2 or http/1.1 by ALPN):
 *   /ok                            200, body "ok\n"
 *   /status/CODE?retry-after=V     status CODE, Retry-After V sent verbatim (%20 = space)
 *   /sleep/MS                      200 after MS
 *   /close-after-answer?announce=1 200 "ok", then close the connection (FIN); with announce=1
 *                                  the answer says "Connection: close", without it nothing warns
 *   /reset-after-answer?announce=1 the same, ending with an RST (HTTP/1.1; HTTP/2 answers 200)
 *   /hang                          read the request, never answer
 *   /close                         read the request, close without a response
 *   /reset                         read the request, close with RST
 *   /garbage                       a reply that is not HTTP
 *   /headers-then-stall            200 with Content-Length 100, then nothing
 *   /drip/BYTES/INTERVAL_MS        headers at once, then one byte per interval
 *   /truncate                      Content-Length 100, 10 bytes, close
 *   /truncate-hang                 Content-Length 100, 10 bytes, then nothing
 *   /overlong                      Content-Length 10, 100 bytes
 *   /huge-headers/KB               a response header of KB kilobytes
 *   /bad-chunk                     broken chunked encoding (HTTP/2: RST_STREAM PROTOCOL_ERROR)
 *   /bytes/N                       200, N bytes
 *   /headers                       200, the request's headers as the body
 *   /echo                          200, body "METHOD BODYLEN"
 *   /gzip/BYTES, /br/BYTES         200, Content-Encoding gzip / br, whatever the request's
 *                                  Accept-Encoding: BYTES (at most 256 MiB) of "abc...z" again
 *                                  and again, compressed
 *   /gzip-bomb/GB                  200, Content-Encoding gzip: about GB x 1 MB of gzip that decodes
 *                                  to GB GiB of zeros (GB 1..1024), made up as it is sent
 *   /bad-gzip                      200, Content-Encoding gzip, a body that is not gzip
 *   /fail-until/N/KEY?status=S&retry-after=V&fault=reset|close
 *                                  fails until the Nth request for KEY (status S, 503 by
 *                                  default, or the fault), then 200
 *   /random/PERCENT/SEED?status=S  fails PERCENT of requests (status S, 503 by default),
 *                                  the same ones for the same SEED
 *   /capacity/N/MS?q=Q&name=NAME&retry-after=V&keep=1
 *                                  a server with a capacity: at most N requests of the pool
 *                                  in service at once, each answered 200 "ok" MS after its
 *                                  service starts, with X-Queue-Ms: how long it waited for
 *                                  it. The rest wait in a FIFO queue of at most Q (4 x N by
 *                                  default; q=0: none); past that, 503 at once with
 *                                  Retry-After V (1 by default; retry-after=none: no header).
 *                                  Pools are keyed by NAME (up to 127 bytes), else by
 *                                  "N/MS/Q"; a pool takes the numbers of its latest request,
 *                                  so a test can change a named pool's capacity as it runs.
 *                                  A client that goes away, waiting or in service, gives its
 *                                  place back; with keep=1 it does not, as a server that never
 *                                  notices: the work is done for no one (counted as wasted). N is 1..100000, Q 0..1000000 (else 400)
 *   /h2/goaway-after/N             HTTP/2: GOAWAY after N requests on the connection
 *   /h2/rst/refused, /h2/rst/internal  HTTP/2: RST_STREAM with that code
 *   /h2/stall                      HTTP/2: this stream stalls, the others flow
 *   /h2/hpack-garbage              HTTP/2: a HEADERS frame whose header block does not decode
 *   /h2/continuation-flood         HTTP/2: HEADERS, then 2,000 CONTINUATION frames, never ending
 *   /h2/push-promise               HTTP/2: a PUSH_PROMISE (the client disabled push)
 *   /content-length-conflict?one-field=1  200 with Content-Length 5 and 2 (two fields, or one
 *                                  field "5, 2"), body "hello"; over HTTP/2 two fields
 *   /file/SIZE/SEED?ranges=0&etag=none|TEXT&lastmod=none&rate=BYTES&corrupt=N&key=KEY
 *                                  a file of SIZE bytes (0..64 GiB) made up as it is sent (the
 *                                  server holds 64 KiB of it at a time), over HTTP/1.1 and
 *                                  HTTP/2. Byte i of it is
 *                                      (i * 7 + (i >> 16) * 13 + SEED) & 0xff
 *                                  (SEED 0..4294967295): within each 64 KiB block a 256-byte
 *                                  pattern repeats. Headers: Content-Length, Accept-Ranges:
 *                                  bytes, ETag: "SIZE-SEED" (strong; SIZE and SEED in decimal),
 *                                  Last-Modified: Wed, 21 Oct 2026 07:28:00 GMT, Content-Type:
 *                                  application/octet-stream. One "Range: bytes=A-" or
 *                                  "bytes=A-B" (B clamped to SIZE-1) gets 206 with
 *                                  Content-Range: bytes A-B/SIZE and those bytes; A >= SIZE gets
 *                                  416, no body, with "Content-Range: bytes *" then "/SIZE";
 *                                  any other Range (several ranges, a suffix bytes=-N,
 *                                  malformed, two Range fields) gets 200 and the whole file. An
 *                                  If-Range that is not exactly the ETag (a W/ one never is) nor
 *                                  exactly the Last-Modified date gets 200 and the whole file,
 *                                  as does a Range in more than 4 KiB of request headers. 206
 *                                  answers (HEAD too) count as "ranges_served". HEAD: headers
 *                                  only. Options (400 when malformed):
 *                                    ranges=0   no Accept-Ranges, Range is ignored (200)
 *                                    etag=none, lastmod=none  no such header
 *                                    etag=TEXT  ETag: "TEXT" (a changed file; TEXT is 1..128
 *                                               of ! and #..~)
 *                                    rate=BYTES about BYTES (1..2^40) per second, a slice
 *                                               each 10 ms
 *                                    corrupt=N&key=KEY  the first N-1 requests for KEY (counted
 *                                               under "keys", as /fail-until) get the middle
 *                                               byte of the body they are sent (byte
 *                                               (B-A+1)/2 of it, SIZE/2 of a 200) xor 0xff,
 *                                               the same length. N 1..1000000, KEY 1..127
 *                                               bytes; key=KEY alone only counts
 *   /keyed/KEY?ms=MS&status=S      counted under "keys" -> KEY (requests, request_ids,
 *                                  idempotency_keys), then status S (200) with "ok\n" after
 *                                  MS ms (0; at most 600000); any method, its body read.
 *                                  KEY is 1..127 bytes without '/'
 *   /counters, /counters/reset     what was received, as JSON (with each capacity pool)
 * As a proxy (HTTP/1.1 port): "GET http://any/PATH" is served as PATH and counted as
 * proxied; CONNECT is refused with 403 and a close.
 * Faults by port, before any request is read: see faultd_port_t. */
#ifndef SALVO_FAULTD_H
#define SALVO_FAULTD_H

#include <uv.h>

typedef struct faultd_s faultd_t;

typedef enum {
  FAULTD_PORT_HTTP = 0,      /* plain HTTP/1.1 */
  FAULTD_PORT_TLS,           /* TLS: h2 or http/1.1 by ALPN */
  FAULTD_PORT_REFUSED,       /* bound, never listening: connections are refused */
  FAULTD_PORT_ACCEPT_SILENT, /* accepts, never reads or writes */
  FAULTD_PORT_CLOSE_ON_ACCEPT,
  FAULTD_PORT_RESET_ON_ACCEPT,
  FAULTD_PORT_GARBAGE_ON_ACCEPT,
  FAULTD_PORT_TLS_STALL,     /* accepts and reads, never finishes a TLS handshake */
  FAULTD_PORTS
} faultd_port_t;

typedef struct {
  const char *host;       /* "127.0.0.1" (default) or "::1"; nothing else */
  int port[FAULTD_PORTS]; /* 0 = the OS picks (default), -1 = off */
  const char *cert_file;  /* PEM certificate and key; NULL = a self-signed one made at start */
  const char *key_file;
  const char *cert_out;   /* where to write the generated certificate (PEM); NULL = a temp file */
  unsigned h2_max_streams;/* SETTINGS_MAX_CONCURRENT_STREAMS (100) */
  int no_h2;              /* the TLS port offers http/1.1 only by ALPN (0) */
  const char *cert_names; /* the generated certificate's subjectAltName
                             (NULL: "DNS:localhost,IP:127.0.0.1,IP:::1") */
} faultd_opts_t;

void faultd_opts_init(faultd_opts_t *opts);
/* Returns 0, or a negative errno-style code; *error names the problem.
 * If SIGPIPE still has its default action, it is set to ignored: a client
 * that closes while a reply is being written would otherwise kill the
 * process that runs the server (a test's own process, in-process). */
int faultd_start(uv_loop_t *loop, const faultd_opts_t *opts, faultd_t **out, const char **error);
int faultd_port(const faultd_t *fd, faultd_port_t which);
const char *faultd_port_name(faultd_port_t which);
/* The certificate clients should trust for the TLS port. */
const char *faultd_cert_file(const faultd_t *fd);
/* Requests received whose path starts with |prefix| ("" = all). */
unsigned faultd_count(const faultd_t *fd, const char *prefix);
unsigned faultd_connections(const faultd_t *fd);
/* TLS handshakes completed, and how many of them resumed a session. */
unsigned faultd_tls_handshakes(const faultd_t *fd, unsigned *resumed);
/* Requests asked of it as a proxy (absolute-form URL). */
unsigned faultd_proxied(const faultd_t *fd);
/* 206 answers of /file (since start or /counters/reset). */
unsigned faultd_ranges_served(const faultd_t *fd);
/* Request body bytes of every request read to its end (since start or /counters/reset). */
uint64_t faultd_body_bytes(const faultd_t *fd);
/* 429s /ratelimit/RATE/KEY answered for KEY. */
unsigned faultd_key_limited(const faultd_t *fd, const char *key);
/* Requests seen for a /fail-until or /count KEY, and how many distinct
 * X-Request-ID and Idempotency-Key values they carried. */
unsigned faultd_key_count(const faultd_t *fd, const char *key, unsigned *distinct_request_ids,
                          unsigned *distinct_idempotency_keys);
/* A /capacity pool as /counters shows it under "capacity". */
typedef struct {
  unsigned limit;          /* N, as its latest request asked */
  unsigned service_ms;     /* MS, as its latest request asked */
  unsigned queue_max;      /* Q, as its latest request asked */
  unsigned in_service;     /* now */
  unsigned queued;         /* now */
  unsigned served;         /* answered 200 after their service */
  unsigned rejected;       /* answered 503: the queue was full */
  unsigned canceled;       /* the client went away, waiting or in service */
  unsigned wasted;         /* keep=1: served after its client went away */
  unsigned max_in_service; /* most in service at once (never above N while N stays put) */
  unsigned max_queued;     /* most waiting at once */
} faultd_capacity_t;
/* Fills *out for the pool keyed |name|; returns 0, or -1 if there is none. */
int faultd_capacity(const faultd_t *fd, const char *name, faultd_capacity_t *out);
/* The /counters document; free() it. */
char *faultd_counters_json(const faultd_t *fd);
void faultd_counters_reset(faultd_t *fd);
/* Closes every listener and connection; frees itself once closed. */
void faultd_close(faultd_t *fd);

/* Helpers for tests that need a port without faultd. */
int test_refused_port(void);
int test_blackhole_port(int fds[4]);
void test_close_fds(int fds[4]);

#endif
