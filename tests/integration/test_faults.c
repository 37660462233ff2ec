/* The fault matrix: every fault x method (GET, PUT, POST, POST with an
 * Idempotency-Key), over HTTP/1.1 and HTTP/2, against salvo-faultd. For each
 * request: the final outcome, the attempts salvo reports against what the
 * server counted, the deadline, and exactly one completion. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <salvo/salvo.h>

#include <jansson.h>

#include "faultd.h"
#include "harness.h"

#define H1 1
#define H2 2
#define BOTH 3

/* Expected outcome: an error class, or (error 0) a status. attempts_idem is
 * for GET, PUT and POST with a key; attempts_post for a bare POST. */
typedef struct {
  const char *path;        /* NULL: a by-port fault */
  faultd_port_t port;      /* for by-port faults */
  int protocols;
  int error;
  long status;
  unsigned attempts_idem;
  unsigned attempts_post;
  int server_counts;       /* 1: what the server counted must equal what salvo sent */
  int conn_level;          /* kills the connection: over HTTP/2 it would take the streams
                              sharing it down too, so these run one at a time */
  int alt_error;           /* a second acceptable class where timing decides, 0 = none */
  int post_error;          /* the class a bare POST ends with, if not |error| */
} fault_case_t;

/* max_attempts 3 */
static const fault_case_t cases[] = {
    {"/ok", 0, BOTH, 0, 200, 1, 1, 1, 0, 0, 0},
    {"/status/404", 0, BOTH, 0, 404, 1, 1, 1, 0, 0, 0},
    {"/status/503", 0, BOTH, 0, 503, 3, 3, 1, 0, 0, 0},
    {"/status/500", 0, BOTH, 0, 500, 3, 1, 1, 0, 0, 0},
    {"/status/429?retry-after=0", 0, BOTH, 0, 429, 3, 3, 1, 0, 0, 0},
    {"/status/503?retry-after=3600", 0, BOTH, SALVO_ERETRYAFTER, 503, 1, 1, 1, 0, 0, 0},
    {"/fail-until/3/KEY", 0, BOTH, 0, 200, 3, 3, 1, 0, 0, 0},
    {"/sleep/100", 0, BOTH, 0, 200, 1, 1, 1, 0, 0, 0},
    {"/hang", 0, BOTH, SALVO_EIDLE, 0, 3, 1, 1, 0, 0, 0},
    {"/headers-then-stall", 0, BOTH, SALVO_EIDLE, 200, 3, 1, 1, 0, 0, 0},
    {"/truncate-hang", 0, BOTH, SALVO_EIDLE, 200, 3, 1, 1, 0, 0, 0},
    {"/drip/100000/50", 0, BOTH, SALVO_EATTEMPT, 200, 3, 1, 1, 0, 0, 0},
    {"/truncate", 0, H1, SALVO_ETRUNCATED, 200, 3, 1, 1, 0, 0, 0},
    /* libcurl 7.88 drops the status of an HTTP/2 stream that fails: -1 = unchecked */
    /* ... and nghttp2 resets it for a Content-Length the body does not match */
    {"/truncate", 0, H2, SALVO_EPROTO, -1, 3, 1, 1, 0, SALVO_EHTTP2, 0},
    {"/overlong", 0, H1, 0, 200, 1, 1, 1, 0, 0, 0},
    {"/overlong", 0, H2, SALVO_EPROTO, -1, 3, 1, 1, 0, SALVO_EHTTP2, 0},
    /* Malformed responses are protocol_error, retried for idempotent requests only */
    {"/bad-chunk", 0, H1, SALVO_EPROTO, 200, 3, 1, 1, 0, 0, 0},
    {"/bad-chunk", 0, H2, SALVO_EPROTO, 0, 3, 1, 1, 0, 0, 0},
    {"/content-length-conflict", 0, BOTH, SALVO_EPROTO, -1, 3, 1, 1, 0, 0, 0},
    {"/content-length-conflict?one-field=1", 0, BOTH, SALVO_EPROTO, -1, 3, 1, 1, 0, 0, 0},
    {"/h2/hpack-garbage", 0, H2, SALVO_EPROTO, 0, 3, 1, 1, 1, 0, 0},
    {"/h2/continuation-flood", 0, H2, SALVO_EPROTO, 0, 3, 1, 1, 1, 0, 0},
    {"/h2/push-promise", 0, H2, SALVO_EPROTO, 0, 3, 1, 1, 1, 0, 0},
    /* a header block past max_header_size ends at once, over either protocol */
    {"/huge-headers/200", 0, H2, SALVO_EPROTO, -1, 3, 1, 1, 1, 0, 0},
    {"/h2/rst/internal", 0, H2, SALVO_EHTTP2, 0, 3, 1, 1, 0, 0, 0},
    {"/huge-headers/200", 0, H1, SALVO_EPROTO, 200, 3, 1, 1, 0, 0, 0},
    {"/huge-headers/50", 0, H1, 0, 200, 1, 1, 1, 0, 0, 0},
    /* Alone, a 50 KB header block works over HTTP/2; beside other streams on
     * the connection libcurl 7.88 fails it ("Received HTTP/0.9") and drops
     * the connection. So it runs alone. */
    {"/huge-headers/50", 0, H2, 0, 200, 1, 1, 1, 1, 0, 0},
    {"/h2/goaway-after/1", 0, H2, 0, 200, 1, 1, 1, 1, 0, 0},
    /* libcurl answers REFUSED_STREAM by sending again itself; a POST is never
     * sent twice, so it ends after its first send. */
    {"/h2/rst/refused", 0, H2, SALVO_ERESET, 0, 3, 1, 1, 0, SALVO_EHTTP2, SALVO_ECLOSED},
    {"/close", 0, BOTH, SALVO_ECLOSED, 0, 3, 1, 1, 1, 0, 0},
    {"/reset", 0, BOTH, SALVO_ERESET, 0, 3, 1, 1, 1, 0, 0},
    {"/garbage", 0, H1, SALVO_EPROTO, 0, 3, 1, 1, 1, 0, 0},
    {"/garbage", 0, H2, SALVO_ERESET, 0, 3, 1, 1, 1, SALVO_EHTTP2, 0},
    {NULL, FAULTD_PORT_REFUSED, BOTH, SALVO_ECONNREFUSED, 0, 3, 3, 0, 0, 0, 0},
    /* Over HTTP/2 the requests to one origin wait (PIPEWAIT) behind its first
     * connection, so some end by the attempt timer before any connect timer:
     * never reached the server either way. */
    {NULL, FAULTD_PORT_TLS_STALL, H2, SALVO_ECONNTIMEOUT, 0, 3, 3, 0, 0, SALVO_EATTEMPT, 0},
    {NULL, FAULTD_PORT_ACCEPT_SILENT, H1, SALVO_EIDLE, 0, 3, 1, 0, 0, 0, 0},
    {NULL, FAULTD_PORT_ACCEPT_SILENT, H2, SALVO_ECONNTIMEOUT, 0, 3, 3, 0, 0, SALVO_EATTEMPT, 0},
    {NULL, FAULTD_PORT_CLOSE_ON_ACCEPT, H1, SALVO_ECLOSED, 0, 3, 1, 0, 0, SALVO_ERESET, 0},
    /* RST during the handshake: ECONNRESET, not ECONNREFUSED */
    {NULL, FAULTD_PORT_RESET_ON_ACCEPT, H1, SALVO_ECONNECT, 0, 3, 3, 0, 0, 0, 0},
    /* garbage before the request was read: salvo cannot tell, so a POST is not retried */
    {NULL, FAULTD_PORT_GARBAGE_ON_ACCEPT, H1, SALVO_EPROTO, 0, 3, 1, 0, 0, 0, 0},
};

typedef struct {
  const char *method;
  int key;                 /* sends an Idempotency-Key */
} method_t;

static const method_t methods[] = {{"GET", 0}, {"PUT", 0}, {"POST", 0}, {"POST", 1}};

#define NCASES (sizeof(cases) / sizeof(cases[0]))
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

typedef struct {
  const fault_case_t *fc;
  const method_t *m;
  char url[256];
  char counted_as[256];    /* the path the server counts it under */
  salvo_request_t *req;
  outcome_t o;
} slot_t;

static uv_loop_t loop;
static faultd_t *srv;
static salvo_engine_t *engine;

static void on_closed(salvo_engine_t *e, void *ud) {
  (void)e;
  *(int *)ud = 1;
}

static void start(const salvo_engine_opts_t *given, const faultd_opts_t *fopts) {
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(faultd_start(&loop, fopts, &srv, NULL), 0);
  salvo_engine_opts_t opts;
  if (given)
    opts = *given;
  else
    salvo_engine_opts_init(&opts);
  opts.ca_file = faultd_cert_file(srv);
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
}

static void finish(void) {
  int closed = 0;
  salvo_engine_close(engine, on_closed, &closed);
  faultd_close(srv);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert(closed);
  cr_assert_eq(uv_loop_close(&loop), 0);
}

static void run_all(outcome_t *o, size_t n) {
  for (;;) {
    size_t done = 0;
    for (size_t i = 0; i < n; i++)
      done += o[i].calls > 0;
    if (done == n)
      return;
    uv_run(&loop, UV_RUN_ONCE);
  }
}

/* Under valgrind the loop runs 20-50 times slower, with the server in the
 * same process: the matrix's timeouts stretch by this much so that a 100 ms
 * sleep is still well inside an idle timeout. */
static unsigned time_scale(void) { return getenv("SALVO_UNDER_VALGRIND") != NULL ? 5 : 1; }

static void run_matrix(int protocol) {
  const unsigned k = time_scale();
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(faultd_start(&loop, NULL, &srv, NULL), 0);
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.ca_file = faultd_cert_file(srv);
  opts.max_in_flight = 256;
  opts.retry.max_attempts = 3;
  opts.retry.jitter = SALVO_JITTER_NONE;
  opts.retry.backoff_base_ms = 10;
  opts.timeouts.connect_ms = 300 * k;
  opts.timeouts.idle_ms = 300 * k;
  opts.timeouts.attempt_ms = 600 * k;
  opts.timeouts.deadline_ms = 4000 * k;
  /* One server plays every fault on its own path: the matrix checks each
   * request's own decisions, so host-wide pauses and the retry budget (tested
   * in the protect suite) stay out of it. */
  opts.hosts.pause_on_retry_after = 0;
  opts.hosts.budget = 0;
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);

  static slot_t slots[NCASES * NMETHODS];
  size_t n = 0;
  memset(slots, 0, sizeof(slots));
  for (size_t c = 0; c < NCASES; c++) {
    if (!(cases[c].protocols & protocol))
      continue;
    for (size_t m = 0; m < NMETHODS; m++) {
      slot_t *s = &slots[n];
      s->fc = &cases[c];
      s->m = &methods[m];
      const char *scheme = protocol == H2 ? "https" : "http";
      if (s->fc->path != NULL) {
        char path[200];
        /* a unique query (or key) per request, so the server counts it apart */
        if (strstr(s->fc->path, "KEY") != NULL)
          snprintf(path, sizeof(path), "/fail-until/3/k%zu", n);
        else
          snprintf(path, sizeof(path), "%s%cu=%zu", s->fc->path,
                   strchr(s->fc->path, '?') ? '&' : '?', n);
        snprintf(s->counted_as, sizeof(s->counted_as), "%s", path);
        snprintf(s->url, sizeof(s->url), "%s://127.0.0.1:%d%s", scheme,
                 faultd_port(srv, protocol == H2 ? FAULTD_PORT_TLS : FAULTD_PORT_HTTP), path);
      } else {
        snprintf(s->url, sizeof(s->url), "%s://127.0.0.1:%d/by-port?u=%zu", scheme,
                 faultd_port(srv, s->fc->port), n);
      }
      salvo_request_t *req;
      cr_assert_eq(salvo_request_new(engine, s->m->method, s->url, &req), 0);
      if (s->m->key) {
        char key[32];
        snprintf(key, sizeof(key), "key-%zu", n);
        cr_assert_eq(salvo_request_add_header(req, "Idempotency-Key", key), 0);
      }
      if (strcmp(s->m->method, "GET") != 0)
        cr_assert_eq(salvo_request_set_body(req, "{\"amount\":10}", 13), 0);
      s->req = req;
      n++;
    }
  }
  /* Phase 1: everything that keeps its connection, all at once. */
  for (size_t i = 0; i < n; i++)
    if (!slots[i].fc->conn_level)
      cr_assert_eq(salvo_request_submit(slots[i].req, record_cb, &slots[i].o), 0);
  uint64_t t0 = uv_hrtime();
  for (;;) {
    size_t done = 0, want = 0;
    for (size_t i = 0; i < n; i++) {
      want += !slots[i].fc->conn_level;
      done += !slots[i].fc->conn_level && slots[i].o.calls > 0;
    }
    if (done == want || ms_since(t0) > 30000 * k)
      break;
    uv_run(&loop, UV_RUN_ONCE);
  }
  /* Phase 2: faults that kill their connection, one at a time. */
  for (size_t i = 0; i < n; i++) {
    if (!slots[i].fc->conn_level)
      continue;
    cr_assert_eq(salvo_request_submit(slots[i].req, record_cb, &slots[i].o), 0);
    while (slots[i].o.calls == 0 && ms_since(t0) < 60000 * k)
      uv_run(&loop, UV_RUN_ONCE);
  }
  for (int i = 0; i < 10; i++)
    uv_run(&loop, UV_RUN_NOWAIT); /* a second completion would show here */

  int failures = 0;
  for (size_t i = 0; i < n; i++) {
    slot_t *s = &slots[i];
    const fault_case_t *fc = s->fc;
    int idem = strcmp(s->m->method, "POST") != 0 || s->m->key;
    unsigned want_attempts = idem ? fc->attempts_idem : fc->attempts_post;
    char what[400];
    snprintf(what, sizeof(what), "%s %s%s (%s)", s->m->method, s->url, s->m->key ? " +key" : "",
             protocol == H2 ? "h2" : "h1");
    cr_expect_eq(s->o.calls, 1, "%s: completed %d times", what, s->o.calls);
    int want_error = !idem && fc->post_error ? fc->post_error : fc->error;
    cr_expect(s->o.error == want_error || (fc->alt_error && s->o.error == fc->alt_error),
              "%s: error %s, want %s (%s)", what, salvo_err_name(s->o.error),
              salvo_err_name(want_error), s->o.detail);
    if ((fc->error == 0 || fc->status != 0) && fc->status >= 0)
      cr_expect_eq(s->o.status, fc->status, "%s: status %ld, want %ld", what, s->o.status,
                   fc->status);
    cr_expect_eq(s->o.attempts, want_attempts, "%s: %u attempts, want %u", what, s->o.attempts,
                 want_attempts);
    if (fc->server_counts) {
      /* what the server received is what salvo says it sent: its attempts,
       * plus the replays libcurl makes of idempotent requests, counted */
      unsigned counted = faultd_count(srv, s->counted_as);
      if (fc->conn_level && protocol == H2) {
        /* A fault that ends the HTTP/2 session may leave libcurl about to
         * open the next attempt's stream on that dead connection: the server
         * never reads it (its TCP acknowledges none of it), and libcurl sends
         * it again on a fresh connection. salvo counts both sends, so here the
         * server may count fewer, never more, and each attempt reached it
         * (found by CI under ASan: 2 runs in 20, before issue 16 too). */
        cr_expect_leq(counted, s->o.sends, "%s: server counted %u, salvo sent %u in %u attempts",
                      what, counted, s->o.sends, s->o.attempts);
        cr_expect_geq(counted, s->o.attempts, "%s: server counted %u for %u attempts", what,
                      counted, s->o.attempts);
      } else {
        cr_expect_eq(counted, s->o.sends, "%s: server counted %u, salvo sent %u in %u attempts",
                     what, counted, s->o.sends, s->o.attempts);
      }
      if (!idem) /* libcurl never replays it: one send per attempt at most */
        cr_expect_leq(s->o.sends, s->o.attempts, "%s: a POST without a key was sent %u times "
                      "in %u attempts", what, s->o.sends, s->o.attempts);
    }
    cr_expect_leq(s->o.elapsed_us / 1000, (4000 + 1500) * k, "%s: outlived its deadline (%lu ms)",
                  what, (unsigned long)(s->o.elapsed_us / 1000));
    failures += s->o.calls != 1;
  }
  cr_assert_eq(failures, 0);
  cr_assert_eq(faultd_count(srv, "/by-port"), 0, "by-port faults never read a request");
  finish();
}

Test(faults, matrix_over_http1, .timeout = 300) { run_matrix(H1); }
Test(faults, matrix_over_http2, .timeout = 300) { run_matrix(H2); }

/* libcurl replays a request by itself when a reused connection returns
 * nothing. For a POST that would be a second submission the server may act
 * on: salvo sends it once and reports what the first send got. */
static void replay_case(const char *method, int with_key, unsigned *counted, outcome_t *o) {
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(faultd_start(&loop, NULL, &srv, NULL), 0);
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.max_host_connections = 1; /* so the second request reuses the first's connection */
  opts.http_version = SALVO_HTTP_1_1;
  opts.retry.max_attempts = 1;
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
  char url[128];
  outcome_t warm = {0};
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", faultd_port(srv, FAULTD_PORT_HTTP));
  submit_to(engine, "GET", url, NULL, &warm);
  while (warm.calls == 0)
    uv_run(&loop, UV_RUN_ONCE);
  cr_assert_eq(warm.status, 200);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/close", faultd_port(srv, FAULTD_PORT_HTTP));
  salvo_request_t *req;
  cr_assert_eq(salvo_request_new(engine, method, url, &req), 0);
  if (with_key)
    cr_assert_eq(salvo_request_add_header(req, "Idempotency-Key", "k1"), 0);
  cr_assert_eq(salvo_request_set_body(req, "charge", 6), 0);
  cr_assert_eq(salvo_request_submit(req, record_cb, o), 0);
  while (o->calls == 0)
    uv_run(&loop, UV_RUN_ONCE);
  *counted = faultd_count(srv, "/close");
  finish();
}

Test(faults, a_post_is_never_replayed_on_a_reused_connection) {
  unsigned counted = 0;
  outcome_t o = {0};
  replay_case("POST", 0, &counted, &o);
  cr_assert_eq(counted, 1, "the server received the POST %u times", counted);
  cr_assert_eq(o.sends, 1);
  cr_assert_eq(o.attempts, 1);
  cr_assert_eq(o.error, SALVO_ECLOSED, "%s", salvo_err_name(o.error));
  cr_assert_eq(o.reached, 1);
}

Test(faults, an_idempotent_request_may_be_replayed_and_every_send_is_counted) {
  unsigned counted = 0;
  outcome_t o = {0};
  replay_case("PUT", 0, &counted, &o);
  cr_assert_eq(o.attempts, 1);
  cr_assert_eq(counted, o.sends, "salvo reports every send the server saw");
  cr_assert_eq(o.sends, 2, "libcurl replayed it once on a fresh connection");
}

/* ---------------------------------------------------------------- more */

static unsigned random_failures(void) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.retry.max_attempts = 1;
  start(&opts, NULL);
  static outcome_t o[400];
  memset(o, 0, sizeof(o));
  char url[128];
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/random/20/7?status=500",
           faultd_port(srv, FAULTD_PORT_HTTP));
  for (int i = 0; i < 400; i++)
    submit_to(engine, "GET", url, NULL, &o[i]);
  run_all(o, 400);
  unsigned failed = 0;
  for (int i = 0; i < 400; i++)
    failed += o[i].status == 500;
  finish();
  return failed;
}

Test(faults, random_fails_its_share_the_same_way_for_a_seed) {
  unsigned a = random_failures(), b = random_failures();
  cr_assert(a >= 48 && a <= 112, "20%% of 400 failed: %u", a);
  cr_assert_eq(a, b, "same seed, same failures");
}

Test(faults, an_h2_stream_stalls_while_the_others_flow) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.max_host_connections = 1;
  opts.retry.max_attempts = 1;
  opts.timeouts.idle_ms = 700;
  start(&opts, NULL);
  char base[96];
  snprintf(base, sizeof(base), "https://127.0.0.1:%d", faultd_port(srv, FAULTD_PORT_TLS));
  outcome_t stall = {0};
  static outcome_t ok[50];
  memset(ok, 0, sizeof(ok));
  char url[160];
  snprintf(url, sizeof(url), "%s/h2/stall", base);
  submit_to(engine, "GET", url, NULL, &stall);
  snprintf(url, sizeof(url), "%s/ok", base);
  for (int i = 0; i < 50; i++)
    submit_to(engine, "GET", url, NULL, &ok[i]);
  run_all(ok, 50);
  cr_assert_eq(stall.calls, 0, "the stalled stream is still waiting");
  for (int i = 0; i < 50; i++) {
    cr_assert_eq(ok[i].status, 200);
    cr_assert_eq(ok[i].http_version, 20);
  }
  run_all(&stall, 1);
  cr_assert_eq(stall.error, SALVO_EIDLE, "%s", salvo_err_name(stall.error));
  cr_assert_eq(stall.status, 200);
  cr_assert_eq(faultd_connections(srv), 1, "all on one connection, not %u",
               faultd_connections(srv));
  finish();
}

/* The server allows 2 streams per connection; salvo allows one connection
 * and knows nothing of the server's limit (libcurl 7.88 does not say it).
 * The streams past the server's limit wait inside libcurl or are refused
 * (REFUSED_STREAM) and sent again; salvo's admission keeps libcurl to the one
 * connection (alone, libcurl 7.88 opened more). Every request still gets its
 * 200, the ten 150 ms answers took at least five rounds, and every send the
 * server saw is one salvo reports. */
Test(faults, h2_max_streams_limits_streams_per_connection) {
  faultd_opts_t fopts;
  faultd_opts_init(&fopts);
  fopts.h2_max_streams = 2;
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.max_host_connections = 1;
  start(&opts, &fopts);
  static outcome_t o[10];
  memset(o, 0, sizeof(o));
  char url[128];
  snprintf(url, sizeof(url), "https://127.0.0.1:%d/sleep/150", faultd_port(srv, FAULTD_PORT_TLS));
  uint64_t t0 = uv_hrtime();
  for (int i = 0; i < 10; i++)
    submit_to(engine, "GET", url, NULL, &o[i]);
  run_all(o, 10);
  uint64_t took_ms = (uv_hrtime() - t0) / 1000000;
  unsigned sends = 0;
  for (int i = 0; i < 10; i++) {
    cr_assert_eq(o[i].status, 200);
    cr_assert_eq(o[i].http_version, 20);
    cr_assert_leq(o[i].sends, 2 * o[i].attempts, "libcurl resends at most once per attempt: "
                  "%u sends in %u attempts", o[i].sends, o[i].attempts);
    sends += o[i].sends;
  }
  cr_assert_eq(faultd_connections(srv), 1, "10 streams to a host capped at 1 connection took %u",
               faultd_connections(srv));
  cr_assert_geq(took_ms, 5 * 150 - 50, "10 x 150 ms at 2 streams at once took only %lu ms",
                (unsigned long)took_ms);
  /* the server's HTTP/2 layer refused the streams past its limit before its
   * application saw them: those are sends it did not count */
  cr_assert_geq(sends, faultd_count(srv, "/sleep/150"), "the server saw %u requests, salvo reports "
                "%u sends", faultd_count(srv, "/sleep/150"), sends);
  finish();
}

Test(faults, counters_report_keys_ids_and_bodies) {
  start(NULL, NULL);
  char url[128];
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo", faultd_port(srv, FAULTD_PORT_HTTP));
  outcome_t o = {0};
  salvo_request_t *req;
  cr_assert_eq(salvo_request_new(engine, "POST", url, &req), 0);
  cr_assert_eq(salvo_request_add_header(req, "Idempotency-Key", "pay-\"7\""), 0);
  cr_assert_eq(salvo_request_set_body(req, "x", 1), 0);
  cr_assert_eq(salvo_request_submit(req, record_cb, &o), 0);
  run_all(&o, 1);
  char *doc = faultd_counters_json(srv);
  json_error_t jerr;
  json_t *j = json_loads(doc, 0, &jerr);
  cr_assert_not_null(j, "not JSON: %s", doc);
  cr_assert_eq(json_integer_value(json_object_get(j, "requests")), 1);
  cr_assert_eq(json_integer_value(json_object_get(j, "bodies_received")), 1);
  cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "methods"), "POST")), 1);
  cr_assert_eq(json_integer_value(
                   json_object_get(json_object_get(j, "idempotency_keys"), "pay-\"7\"")),
               1, "the key, quotes and all: %s", doc);
  cr_assert_eq(json_object_size(json_object_get(j, "request_ids")), 1);
  json_decref(j);
  free(doc);
  finish();
}

/* One GET over TLS (h2 by ALPN) to |path|, run to its end. */
static void get_tls(const char *path, outcome_t *o) {
  char url[128];
  snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", faultd_port(srv, FAULTD_PORT_TLS), path);
  submit_to(engine, "GET", url, NULL, o);
  run_all(o, 1);
}

/* A header block past the caps ends the attempt at once over HTTP/2 too: it
 * waited for the idle timeout (salvo-faultd's nghttp2 never sent blocks over
 * 64 KB, and the client waited). */
Test(faults, an_oversized_http2_header_block_ends_at_once) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.retry.max_attempts = 1;
  opts.timeouts.idle_ms = 20000;
  start(&opts, NULL);
  outcome_t o = {0};
  get_tls("/huge-headers/200", &o);
  cr_assert_eq(o.error, SALVO_EPROTO, "%s (%s)", salvo_err_name(o.error), o.detail);
  cr_assert_lt(o.elapsed_us / 1000, 5000, "took %lu ms: it waited", (unsigned long)(o.elapsed_us / 1000));
  finish();
}

/* libcurl answers REFUSED_STREAM by sending again by itself, up to 5 times
 * per transfer: one GET reached the server 24 times over 4 attempts. salvo
 * allows one such resend per attempt, counts it, and charges the host's retry
 * budget for it. */
Test(faults, refused_streams_are_resent_once_per_attempt_and_counted) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.retry.max_attempts = 4;
  opts.retry.backoff_base_ms = 1;
  opts.retry.jitter = SALVO_JITTER_NONE;
  start(&opts, NULL);
  outcome_t o = {0};
  get_tls("/h2/rst/refused", &o);
  unsigned arrived = faultd_count(srv, "/h2/rst/refused");
  cr_assert_eq(o.attempts, 4, "%u attempts (%s)", o.attempts, o.detail);
  cr_assert_leq(arrived, 2 * o.attempts, "the server saw %u sends for %u attempts", arrived,
                o.attempts);
  cr_assert_eq(arrived, o.sends, "the server saw %u, salvo reports %u", arrived, o.sends);
  salvo_host_stats_t st;
  cr_assert_eq(salvo_engine_host_stats(engine, 0, &st), 0);
  cr_assert_eq(st.resends, o.sends - o.attempts, "host stats: %llu resends",
               (unsigned long long)st.resends);
  salvo_engine_stats_t es;
  salvo_engine_stats(engine, &es);
  cr_assert_eq(es.resends, st.resends);
  finish();
}

/* libcurl's own resend of a refused stream is a retry as far as the host is
 * concerned: it spends the host's retry budget like one, so a host that
 * refuses everything gets about a fifth more sends, not twice the load. */
Test(faults, refused_stream_resends_spend_the_hosts_retry_budget) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.retry.max_attempts = 1; /* only libcurl's resends, no retries of salvo's */
  opts.hosts.budget_floor = 0; /* 20% of the requests, nothing more */
  start(&opts, NULL);
  enum { N = 50 };
  static outcome_t o[N];
  memset(o, 0, sizeof(o));
  char url[128];
  for (int i = 0; i < N; i++) {
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/h2/rst/refused?u=%d",
             faultd_port(srv, FAULTD_PORT_TLS), i);
    submit_to(engine, "GET", url, NULL, &o[i]);
    run_all(&o[i], 1); /* one at a time: the budget sees each request before its resend */
  }
  unsigned arrived = faultd_count(srv, "/h2/rst/refused");
  unsigned sends = 0;
  for (int i = 0; i < N; i++)
    sends += o[i].sends;
  cr_assert_eq(arrived, sends, "the server saw %u, salvo reports %u", arrived, sends);
  cr_assert_gt(arrived, N, "some resends were allowed (%u sends)", arrived);
  cr_assert_leq(arrived, N + N / 5 + 1, "%u sends for %d requests: the resends spent no budget",
                arrived, N);
  finish();
}

/* Content-Length values that disagree end the attempt with salvo's reason,
 * not libcurl's "Failed writing header" from the aborted write. */
Test(faults, a_content_length_conflict_says_why) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.retry.max_attempts = 1;
  start(&opts, NULL);
  char url[128];
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/content-length-conflict", faultd_port(srv, FAULTD_PORT_HTTP));
  outcome_t o = {0};
  submit_to(engine, "GET", url, NULL, &o);
  run_all(&o, 1);
  cr_assert_eq(o.error, SALVO_EPROTO, "%s", salvo_err_name(o.error));
  cr_assert_str_eq(o.detail, "Content-Length values that disagree (RFC 9112 6.3)");
  finish();
}
