/* A server with a capacity (salvo-faultd's /capacity/N/MS) against salvo as
 * the client: at most N requests in service at once, the rest queued (their
 * latency grows), a full queue answered 503 at once, and a client that goes
 * away gives its place back. Over HTTP/1.1, HTTP/2 and HTTP/1.1 over TLS.
 * Time bounds are lower bounds the server's timers guarantee, or generous
 * upper ones: never a speed test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <salvo/salvo.h>

#include <jansson.h>

#include "fixture.h"
#include "harness.h"

TestSuite(capacity, .init = fixture_setup, .fini = fixture_teardown, .timeout = 120);

typedef struct {
  int calls;              /* times the done callback ran */
  int error;
  long status;
  int http_version;
  unsigned attempts;
  uint64_t elapsed_ms;
  long queue_ms;          /* X-Queue-Ms, -1 if absent */
  char retry_after[16];   /* Retry-After, "" if absent */
} cout_t;

/* Under valgrind the loop runs 20-50 times slower: service times stretch by
 * this much so that requests sent together still arrive together. */
static unsigned time_scale(void) { return getenv("SALVO_UNDER_VALGRIND") != NULL ? 5 : 1; }

static void done_cb(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  cout_t *o = ud;
  o->calls++;
  o->error = r->error;
  o->status = r->status;
  o->http_version = r->http_version;
  o->attempts = r->attempts;
  o->elapsed_ms = r->elapsed_us / 1000;
  const char *q = salvo_response_header(req, "x-queue-ms");
  o->queue_ms = q != NULL ? atol(q) : -1;
  const char *ra = salvo_response_header(req, "retry-after");
  snprintf(o->retry_after, sizeof(o->retry_after), "%s", ra != NULL ? ra : "");
}

/* No retries: a 503 shows as a 503, not as a later success. */
static void start_engine(size_t max_in_flight, salvo_http_version_t version) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.ca_file = faultd_cert_file(srv);
  opts.max_in_flight = max_in_flight;
  opts.http_version = version;
  opts.retry.max_attempts = 1;
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
}

static salvo_request_t *submit(const char *url, cout_t *o) {
  salvo_request_t *req;
  cr_assert_eq(salvo_request_new(engine, "GET", url, &req), 0, "%s", url);
  cr_assert_eq(salvo_request_submit(req, done_cb, o), 0);
  return req;
}

static void run_all(cout_t *o, size_t n) {
  for (;;) {
    size_t done = 0;
    for (size_t i = 0; i < n; i++) {
      cr_assert_leq(o[i].calls, 1, "request %zu completed %d times", i, o[i].calls);
      done += o[i].calls;
    }
    if (done == n)
      return;
    uv_run(&loop, UV_RUN_ONCE);
  }
}

static faultd_capacity_t pool(const char *name) {
  faultd_capacity_t s;
  cr_assert_eq(faultd_capacity(srv, name, &s), 0, "no pool %s", name);
  return s;
}

static void tick(uv_timer_t *t) { (void)t; }
static void ticker_closed(uv_handle_t *h) { *(int *)h->data = 1; }

/* Runs the loop until pool |name| has |in_service| and |queued| (and
 * |canceled|, unless -1). A ticking timer wakes the loop: a request in
 * service makes no event until it is answered. */
static void wait_pool(const char *name, unsigned in_service, unsigned queued, int canceled) {
  uv_timer_t ticker;
  uv_timer_init(&loop, &ticker);
  uv_timer_start(&ticker, tick, 5, 5);
  uint64_t t0 = uv_hrtime();
  for (;;) {
    faultd_capacity_t s;
    if (faultd_capacity(srv, name, &s) == 0 && s.in_service == in_service && s.queued == queued &&
        (canceled < 0 || s.canceled == (unsigned)canceled))
      break;
    cr_assert_lt(ms_since(t0), 20000, "pool %s never had %u in service and %u queued",
                 name, in_service, queued);
    uv_run(&loop, UV_RUN_ONCE);
  }
  int closed = 0;
  ticker.data = &closed;
  uv_close((uv_handle_t *)&ticker, ticker_closed);
  while (!closed) /* it lives on this stack */
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* |n| GETs at once to a pool of |limit| x |ms| ms whose queue of |q| holds
 * them all: every one is answered 200, never more than |limit| at a time,
 * and the last ones waited their turn. */
static void all_served(const char *origin, salvo_http_version_t version, int want_version,
                       unsigned n, unsigned limit, unsigned q) {
  const unsigned ms = 200 * time_scale();
  start_engine(n, version);
  char url[256], name[64];
  snprintf(name, sizeof(name), "%u/%u/%u", limit, ms, q);
  cout_t o[16];
  cr_assert_leq(n, 16);
  memset(o, 0, sizeof(o));
  for (unsigned i = 0; i < n; i++) {
    snprintf(url, sizeof(url), "%s/capacity/%u/%u?q=%u&u=%u", origin, limit, ms, q, i);
    submit(url, &o[i]);
  }
  run_all(o, n);
  uint64_t slowest = 0;
  long longest_wait = 0;
  for (unsigned i = 0; i < n; i++) {
    cr_assert_eq(o[i].error, 0, "request %u: %s", i, salvo_err_name(o[i].error));
    cr_assert_eq(o[i].status, 200, "request %u: status %ld", i, o[i].status);
    cr_assert_eq(o[i].http_version, want_version, "request %u: HTTP %d", i, o[i].http_version);
    cr_assert_geq(o[i].queue_ms, 0, "request %u: no X-Queue-Ms", i);
    cr_assert_geq(o[i].elapsed_ms + 5, ms, "request %u answered in %lu ms, before its service "
                  "time", i, (unsigned long)o[i].elapsed_ms);
    slowest = o[i].elapsed_ms > slowest ? o[i].elapsed_ms : slowest;
    longest_wait = o[i].queue_ms > longest_wait ? o[i].queue_ms : longest_wait;
  }
  const unsigned rounds = (n + limit - 1) / limit;
  cr_assert_geq(slowest, (uint64_t)(rounds - 1) * ms, "%u requests in %u rounds of %u ms: the "
                "slowest took %lu ms", n, rounds, ms, (unsigned long)slowest);
  cr_assert_leq(slowest, 10000 * time_scale(), "the slowest took %lu ms", (unsigned long)slowest);
  cr_assert_geq(longest_wait, (long)ms - 20, "nobody waited a round: longest wait %ld ms",
                longest_wait);
  faultd_capacity_t s = pool(name);
  cr_assert_eq(s.max_in_service, limit, "at most %u in service at once, saw %u", limit,
               s.max_in_service);
  cr_assert_eq(s.served, n);
  cr_assert_eq(s.rejected, 0);
  cr_assert_eq(s.canceled, 0);
  cr_assert_eq(s.in_service + s.queued, 0, "places still held: %u in service, %u queued",
               s.in_service, s.queued);
}

Test(capacity, twelve_at_once_are_served_three_at_a_time_over_http1) {
  all_served(base, SALVO_HTTP_AUTO, 11, 12, 3, 20);
  /* the same numbers in /counters */
  char *doc = faultd_counters_json(srv);
  json_error_t jerr;
  json_t *j = json_loads(doc, 0, &jerr);
  cr_assert_not_null(j, "not JSON: %s", doc);
  char name[64];
  snprintf(name, sizeof(name), "3/%u/20", 200 * time_scale());
  json_t *p = json_object_get(json_object_get(j, "capacity"), name);
  cr_assert_not_null(p, "no pool %s in %s", name, doc);
  cr_assert_eq(json_integer_value(json_object_get(p, "served")), 12, "%s", doc);
  cr_assert_eq(json_integer_value(json_object_get(p, "max_in_service")), 3, "%s", doc);
  cr_assert_eq(json_integer_value(json_object_get(p, "rejected")), 0, "%s", doc);
  cr_assert_eq(json_integer_value(json_object_get(p, "in_service")), 0, "%s", doc);
  cr_assert_eq(json_integer_value(json_object_get(p, "queued")), 0, "%s", doc);
  cr_assert_eq(json_integer_value(json_object_get(p, "n")), 3, "%s", doc);
  json_decref(j);
  free(doc);
  /* a reset forgets pools that hold nobody */
  faultd_counters_reset(srv);
  faultd_capacity_t s;
  cr_assert_eq(faultd_capacity(srv, name, &s), -1);
}

Test(capacity, six_at_once_are_served_two_at_a_time_over_http2) {
  all_served(tls_base, SALVO_HTTP_AUTO, 20, 6, 2, 10);
}

Test(capacity, six_at_once_are_served_two_at_a_time_over_http1_on_tls) {
  all_served(tls_base, SALVO_HTTP_1_1, 11, 6, 2, 10);
}

/* 10 at once to N = 2, Q = 3: 2 served, 3 wait, 5 turned away at once. */
Test(capacity, a_full_queue_answers_503_at_once) {
  const unsigned ms = 300 * time_scale();
  start_engine(64, SALVO_HTTP_AUTO);
  cout_t o[10];
  memset(o, 0, sizeof(o));
  char url[256];
  for (int i = 0; i < 10; i++) {
    snprintf(url, sizeof(url), "%s/capacity/2/%u?q=3&name=x&u=%d", base, ms, i);
    submit(url, &o[i]);
  }
  run_all(o, 10);
  unsigned ok = 0, full = 0;
  for (int i = 0; i < 10; i++) {
    cr_assert_eq(o[i].attempts, 1);
    if (o[i].status == 200) {
      ok++;
      cr_assert_geq(o[i].queue_ms, 0, "a 200 without X-Queue-Ms");
      cr_assert_str_eq(o[i].retry_after, "");
    } else if (o[i].status == 503) {
      full++;
      cr_assert_str_eq(o[i].retry_after, "1", "Retry-After '%s'", o[i].retry_after);
      cr_assert_eq(o[i].queue_ms, -1, "a 503 never waited");
      cr_assert_lt(o[i].elapsed_ms, ms, "a 503 waited %lu ms", (unsigned long)o[i].elapsed_ms);
    }
  }
  cr_assert_eq(ok, 5, "%u served, want 2 in service + 3 queued", ok);
  cr_assert_eq(full, 5, "%u turned away, want 5", full);
  faultd_capacity_t s = pool("x");
  cr_assert_eq(s.served, 5);
  cr_assert_eq(s.rejected, 5);
  cr_assert_eq(s.max_in_service, 2);
  cr_assert_eq(s.max_queued, 3);
  cr_assert_eq(s.in_service + s.queued, 0);
}

/* q=0: no queue at all; retry-after=none: the 503 names no time. */
Test(capacity, without_a_queue_a_busy_pool_turns_away_at_once) {
  const unsigned ms = 300 * time_scale();
  start_engine(64, SALVO_HTTP_AUTO);
  cout_t o[3];
  memset(o, 0, sizeof(o));
  char url[256];
  for (int i = 0; i < 3; i++) {
    snprintf(url, sizeof(url), "%s/capacity/1/%u?q=0&retry-after=none&name=q0&u=%d", base, ms, i);
    submit(url, &o[i]);
  }
  run_all(o, 3);
  unsigned ok = 0;
  for (int i = 0; i < 3; i++) {
    ok += o[i].status == 200;
    if (o[i].status != 200) {
      cr_assert_eq(o[i].status, 503);
      cr_assert_str_eq(o[i].retry_after, "", "Retry-After '%s'", o[i].retry_after);
    }
  }
  cr_assert_eq(ok, 1);
  faultd_capacity_t s = pool("q0");
  cr_assert_eq(s.max_queued, 0);
  cr_assert_eq(s.rejected, 2);
}

/* A named pool takes the numbers of its latest request: raising N starts
 * the waiting requests at once. */
Test(capacity, raising_a_named_pools_capacity_starts_the_waiting) {
  const unsigned ms = 300 * time_scale();
  start_engine(64, SALVO_HTTP_AUTO);
  cout_t o[4];
  memset(o, 0, sizeof(o));
  char url[256];
  for (int i = 0; i < 3; i++) {
    snprintf(url, sizeof(url), "%s/capacity/1/%u?name=g&u=%d", base, ms, i);
    submit(url, &o[i]);
  }
  wait_pool("g", 1, 2, -1);
  snprintf(url, sizeof(url), "%s/capacity/4/%u?name=g&u=3", base, ms);
  submit(url, &o[3]);
  run_all(o, 4);
  for (int i = 0; i < 4; i++) {
    cr_assert_eq(o[i].status, 200);
    cr_assert_lt(o[i].queue_ms, (long)ms, "request %d waited %ld ms: for a whole service", i,
                 o[i].queue_ms);
  }
  faultd_capacity_t s = pool("g");
  cr_assert_eq(s.max_in_service, 4);
  cr_assert_eq(s.limit, 4);
  cr_assert_eq(s.served, 4);
}

/* libcurl 7.88 sends the RST_STREAM of an HTTP/2 transfer salvo removed
 * only when it next works that connection, not at once (measured here:
 * without this, the server heard of a canceled stream only when another
 * stream on the connection was answered, 400 ms later). Over HTTP/1.1 the
 * connection closes at once. Another request on the connection sends it. */
static void nudge(const char *origin) {
  char url[128];
  cout_t o = {0};
  snprintf(url, sizeof(url), "%s/ok", origin);
  submit(url, &o);
  run_all(&o, 1);
  cr_assert_eq(o.status, 200);
}

/* A request canceled while it waits, and one canceled in service, give
 * their places back: the next request is served at once, and served +
 * rejected + canceled is every request the pool saw. */
static void cancel_frees_places(const char *origin, int over_http2) {
  const int want_version = over_http2 ? 20 : 11;
  const unsigned ms = 400 * time_scale();
  start_engine(64, SALVO_HTTP_AUTO);
  char url[256];
  cout_t a = {0}, b = {0}, c = {0}, e = {0}, f = {0};
  snprintf(url, sizeof(url), "%s/capacity/1/%u?name=d&u=a", origin, ms);
  submit(url, &a);
  wait_pool("d", 1, 0, -1);
  snprintf(url, sizeof(url), "%s/capacity/1/%u?name=d&u=b", origin, ms);
  salvo_request_t *waiting = submit(url, &b);
  wait_pool("d", 1, 1, -1);
  snprintf(url, sizeof(url), "%s/capacity/1/%u?name=d&u=c", origin, ms);
  submit(url, &c);
  wait_pool("d", 1, 2, -1);
  cr_assert_eq(salvo_request_cancel(waiting), 0);
  if (over_http2)
    nudge(origin);
  wait_pool("d", 1, 1, 1); /* b's place is free while a is still in service */
  cr_assert_eq(a.calls, 0, "a answered before b's place came back");
  run_all(&a, 1);
  run_all(&b, 1);
  run_all(&c, 1);
  cr_assert_eq(a.status, 200);
  cr_assert_eq(a.http_version, want_version);
  cr_assert_eq(b.error, SALVO_ECANCELED, "%s", salvo_err_name(b.error));
  cr_assert_eq(c.status, 200);
  /* c waited for a's service only (all of it, if everything arrived within
   * one millisecond), not for b's too */
  cr_assert_lt(c.queue_ms, (long)(ms + ms / 2), "c waited %ld ms", c.queue_ms);

  snprintf(url, sizeof(url), "%s/capacity/1/%u?name=d&u=e", origin, ms);
  salvo_request_t *serving = submit(url, &e);
  wait_pool("d", 1, 0, 1);
  cr_assert_eq(salvo_request_cancel(serving), 0);
  if (over_http2)
    nudge(origin);
  wait_pool("d", 0, 0, 2); /* e's place is free before its service would have ended */
  run_all(&e, 1);
  cr_assert_eq(e.error, SALVO_ECANCELED, "%s", salvo_err_name(e.error));
  snprintf(url, sizeof(url), "%s/capacity/1/%u?name=d&u=f", origin, ms);
  submit(url, &f);
  run_all(&f, 1);
  cr_assert_eq(f.status, 200);
  cr_assert_eq(f.queue_ms, 0, "f waited %ld ms for a free pool", f.queue_ms);

  faultd_capacity_t s = pool("d");
  cr_assert_eq(s.served, 3, "a, c and f served, not %u", s.served);
  cr_assert_eq(s.canceled, 2, "b and e canceled, not %u", s.canceled);
  cr_assert_eq(s.rejected, 0);
  cr_assert_eq(s.served + s.rejected + s.canceled, faultd_count(srv, "/capacity/"),
               "every request the pool saw is accounted for");
  cr_assert_eq(s.in_service + s.queued, 0);
  cr_assert_eq(s.max_in_service, 1);
}

Test(capacity, a_client_that_cancels_gives_its_place_back_over_http1) {
  cancel_frees_places(base, 0);
}

Test(capacity, a_client_that_cancels_gives_its_place_back_over_http2) {
  cancel_frees_places(tls_base, 1);
}
