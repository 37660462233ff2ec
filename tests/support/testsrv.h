/* An in-process HTTP/1.1 server on 127.0.0.1 (OS-chosen port) that runs on
 * the test's own libuv loop and misbehaves on request, by path:
 *   /ok                200, body "ok\n"
 *   /bytes/N           200, N bytes of 'x'
 *   /status/N          status N, small body
 *   /echo              200, body "METHOD BODYLEN"
 *   /headers           200, body: the request headers, one "name: value" a line
 *   /sleep/MS          200 after MS
 *   /hang              read the request, never answer
 *   /close             read the request, close without a response
 *   /reset             read the request, close with RST
 *   /headers-then-stall 200 with Content-Length 100, then nothing
 *   /drip/MS           200 with Content-Length 100000, one byte every MS
 *   /truncate          Content-Length 100, 10 bytes, close
 *   /status/N?retry-after=V      status N, Retry-After V sent verbatim (%20 = space)
 *   /fail-until/N/KEY?status=S&retry-after=V&fault=reset|close
 *                      fails until the Nth request for KEY (status S, default
 *                      503, or the fault), then 200
 *   /count/KEY         counted under KEY, then reset
 * It counts requests per path and connections accepted. */
#ifndef SALVO_TESTSRV_H
#define SALVO_TESTSRV_H

#include <uv.h>

typedef struct testsrv_s testsrv_t;

int testsrv_start(uv_loop_t *loop, testsrv_t **out);
int testsrv_port(const testsrv_t *srv);
/* Requests received whose path starts with |prefix| ("" = all). */
unsigned testsrv_count(const testsrv_t *srv, const char *prefix);
unsigned testsrv_connections(const testsrv_t *srv);
/* Requests seen for a /fail-until or /count KEY, and how many distinct
 * X-Request-ID and Idempotency-Key values they carried. */
unsigned testsrv_key_count(const testsrv_t *srv, const char *key, unsigned *distinct_request_ids,
                           unsigned *distinct_idempotency_keys);
/* Closes the listener and every connection; frees itself once closed. */
void testsrv_close(testsrv_t *srv);

/* A port on 127.0.0.1 that nothing listens on (connection refused). */
int test_refused_port(void);

/* A listening socket whose accept queue is full, so new SYNs are dropped and
 * connects hang until the client's connect timeout. Returns the port and
 * fills fds[0..3] with sockets to close with test_close_fds(). */
int test_blackhole_port(int fds[4]);
void test_close_fds(int fds[4]);

#endif
