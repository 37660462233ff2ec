/* Retries against a loopback server that counts what it received. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <salvo/salvo.h>

#include "fixture.h"
#include "harness.h"

typedef struct {
  outcome_t o;
  salvo_stop_reason_t stop;
  int64_t retry_after_ms;
  size_t history_len;
  salvo_attempt_record_t history[8];
  char body[512];
} retry_outcome_t;

TestSuite(retry, .init = fixture_setup, .fini = fixture_teardown, .timeout = 60);

/* Engine with a fast, reproducible policy: no jitter, 20 ms base. */
static void start_engine(void (*tweak)(salvo_engine_opts_t *)) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.retry.jitter = SALVO_JITTER_NONE;
  opts.retry.backoff_base_ms = 20;
  opts.retry.seed = 1;
  if (tweak)
    tweak(&opts);
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
}

static void retry_cb(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  retry_outcome_t *x = ud;
  record_cb(req, r, &x->o);
  x->stop = r->stop_reason;
  x->retry_after_ms = r->retry_after_ms;
  x->history_len = r->history_len;
  for (size_t i = 0; i < r->history_len && i < 8; i++)
    x->history[i] = r->history[i];
  snprintf(x->body, sizeof(x->body), "%s", r->body ? r->body : "");
}

static salvo_request_t *make(const char *method, const char *path) {
  char u[256];
  if (strncmp(path, "http", 4) == 0)
    snprintf(u, sizeof(u), "%s", path);
  else
    snprintf(u, sizeof(u), "%s%s", base, path);
  salvo_request_t *req;
  cr_assert_eq(salvo_request_new(engine, method, u, &req), 0, "%s", u);
  return req;
}

static void submit(salvo_request_t *req, retry_outcome_t *x) {
  cr_assert_eq(salvo_request_submit(req, retry_cb, x), 0);
}

static void wait_for(retry_outcome_t *x, size_t n) {
  for (;;) {
    size_t done = 0;
    for (size_t i = 0; i < n; i++)
      done += x[i].o.calls > 0;
    if (done == n)
      return;
    uv_run(&loop, UV_RUN_ONCE);
  }
}

Test(retry, a_503_then_200_succeeds_on_the_third_attempt) {
  start_engine(NULL);
  retry_outcome_t x = {0};
  submit(make("GET", "/fail-until/3/a?status=503"), &x);
  wait_for(&x, 1);
  cr_assert_eq(x.o.status, 200);
  cr_assert_eq(x.o.error, 0);
  cr_assert_eq(x.o.attempts, 3);
  cr_assert_eq(x.stop, SALVO_STOP_SUCCESS);
  unsigned ids = 0;
  cr_assert_eq(faultd_key_count(srv, "a", &ids, NULL), 3, "the server saw three requests");
  cr_assert_eq(ids, 1, "one X-Request-ID on every attempt");
  cr_assert_eq(x.history_len, 3);
  cr_assert_eq(x.history[0].status, 503);
  cr_assert_eq(x.history[0].decision, SALVO_DECIDE_RETRY);
  cr_assert_eq(x.history[0].wait_ms, 20);
  cr_assert_eq(x.history[1].wait_ms, 40, "exponential without jitter");
  cr_assert_eq(x.history[2].decision, SALVO_DECIDE_STOP);
  cr_assert_str_eq(x.history[2].reason, "success: status 200");
}

Test(retry, a_post_after_a_reset_is_not_retried) {
  start_engine(NULL);
  retry_outcome_t x = {0};
  salvo_request_t *req = make("POST", "/count/b");
  cr_assert_eq(salvo_request_set_body(req, "pay 10 EUR", 10), 0);
  submit(req, &x);
  wait_for(&x, 1);
  cr_assert_eq(x.o.error, SALVO_ERESET, "%s", salvo_err_name(x.o.error));
  cr_assert_eq(x.o.attempts, 1);
  cr_assert_eq(x.stop, SALVO_STOP_NOT_RETRYABLE);
  cr_assert_eq(faultd_key_count(srv, "b", NULL, NULL), 1, "the server saw exactly one POST");
  cr_assert(strstr(x.history[0].reason, "POST reached the server") != NULL, "%s",
            x.history[0].reason);
}

Test(retry, a_post_to_a_refused_port_is_retried) {
  start_engine(NULL);
  retry_outcome_t x = {0};
  char u[64];
  snprintf(u, sizeof(u), "http://127.0.0.1:%d/pay", test_refused_port());
  submit(make("POST", u), &x);
  wait_for(&x, 1);
  cr_assert_eq(x.o.error, SALVO_ECONNREFUSED);
  cr_assert_eq(x.o.attempts, 4);
  cr_assert_eq(x.stop, SALVO_STOP_EXHAUSTED);
  for (int i = 0; i < 4; i++)
    cr_assert_eq(x.history[i].reached_server, 0);
  cr_assert_eq(x.history[3].decision, SALVO_DECIDE_STOP);
}

Test(retry, a_429_with_retry_after_1_waits_about_a_second) {
  start_engine(NULL);
  retry_outcome_t x = {0};
  submit(make("POST", "/fail-until/2/c?status=429&retry-after=1"), &x);
  wait_for(&x, 1);
  cr_assert_eq(x.o.status, 200);
  cr_assert_eq(x.o.attempts, 2, "429 is retried for any method");
  cr_assert_eq(x.history[0].retry_after_ms, 1000);
  cr_assert_eq(x.history[0].wait_ms, 1000, "Retry-After replaces the backoff");
  cr_assert_geq(x.o.elapsed_us / 1000, 950);
  cr_assert_leq(x.o.elapsed_us / 1000, 3000);
}

Test(retry, a_retry_after_http_date_is_honoured) {
  start_engine(NULL);
  char date[96], path[256];
  time_t when = time(NULL) + 2;
  /* IMF-fixdate, spaces as %20 for the query string; built by hand so the
   * day and month names do not depend on the locale. */
  struct tm *tm = gmtime(&when);
  static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  snprintf(date, sizeof(date), "%s,%%20%02d%%20%s%%20%d%%20%02d:%02d:%02d%%20GMT",
           days[tm->tm_wday], tm->tm_mday, months[tm->tm_mon], tm->tm_year + 1900, tm->tm_hour,
           tm->tm_min, tm->tm_sec);
  snprintf(path, sizeof(path), "/fail-until/2/date?status=503&retry-after=%s", date);
  retry_outcome_t x = {0};
  submit(make("GET", path), &x);
  wait_for(&x, 1);
  cr_assert_eq(x.o.status, 200);
  cr_assert_eq(x.o.attempts, 2);
  cr_assert_gt(x.history[0].retry_after_ms, 0, "the date was understood");
  cr_assert_geq(x.o.elapsed_us / 1000, 900, "waited for the date (1 s resolution)");
  cr_assert_leq(x.o.elapsed_us / 1000, 4000);
}

Test(retry, retry_after_3600_ends_at_once_with_its_own_class) {
  start_engine(NULL);
  retry_outcome_t x = {0};
  submit(make("GET", "/status/503?retry-after=3600"), &x);
  wait_for(&x, 1);
  cr_assert_eq(x.o.error, SALVO_ERETRYAFTER, "%s", salvo_err_name(x.o.error));
  cr_assert_eq(x.o.status, 503);
  cr_assert_eq(x.stop, SALVO_STOP_RETRY_AFTER);
  cr_assert_eq(x.retry_after_ms, 3600 * 1000, "the caller learns when to come back");
  cr_assert_eq(x.o.attempts, 1);
  cr_assert_lt(x.o.elapsed_us / 1000, 1000, "no sleeping");
}

Test(retry, garbage_retry_after_falls_back_to_backoff) {
  start_engine(NULL);
  retry_outcome_t x = {0};
  submit(make("GET", "/fail-until/2/g?status=503&retry-after=soon"), &x);
  wait_for(&x, 1);
  cr_assert_eq(x.o.status, 200);
  cr_assert_eq(x.history[0].retry_after_ms, -1);
  cr_assert_eq(x.history[0].wait_ms, 20);
}

static void idempotency_auto(salvo_engine_opts_t *o) { o->retry.idempotency_key_auto = 1; }

/* POST and PATCH get one key for all their sends, which makes them safe to
 * send again; the methods that are idempotent already (PUT, GET) carry none. */
Test(retry, an_automatic_idempotency_key_makes_a_post_retryable_with_one_key) {
  start_engine(idempotency_auto);
  const struct {
    const char *method;
    const char *key;
    unsigned keys;
  } cases[] = {{"POST", "d", 1}, {"PATCH", "dp", 1}, {"PUT", "du", 0}, {"GET", "dg", 0}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    retry_outcome_t x = {0};
    char path[64];
    snprintf(path, sizeof(path), "/fail-until/2/%s?fault=reset", cases[i].key);
    submit(make(cases[i].method, path), &x);
    wait_for(&x, 1);
    cr_assert_eq(x.o.status, 200, "%s: %s", cases[i].method, salvo_err_name(x.o.error));
    /* sent twice: as salvo's retry, or, on a connection the last one left
     * open, as libcurl's own resend (an idempotent request may be replayed) */
    cr_assert_eq(x.o.sends, 2, "%s: sent again after the reset: %u sends in %u attempts, %s",
                 cases[i].method, x.o.sends, x.o.attempts, salvo_err_name(x.o.error));
    unsigned ids = 0, keys = 0;
    cr_assert_eq(faultd_key_count(srv, cases[i].key, &ids, &keys), 2, "%s", cases[i].method);
    cr_assert_eq(keys, cases[i].keys, "%s: %u distinct Idempotency-Keys over both attempts, want %u",
                 cases[i].method, keys, cases[i].keys);
    cr_assert_eq(ids, 1, "%s: the same X-Request-ID on both attempts", cases[i].method);
  }
}

/* Every request has an X-Request-ID and every automatic key of its own: a
 * server that dedupes by them must never see two requests as one. */
Test(retry, each_request_gets_its_own_request_id_and_key) {
  start_engine(idempotency_auto);
  enum { N = 40 };
  static retry_outcome_t x[N];
  memset(x, 0, sizeof(x));
  for (int i = 0; i < N; i++) {
    salvo_request_t *req = make("POST", "/echo");
    cr_assert_eq(salvo_request_set_body(req, "b", 1), 0);
    submit(req, &x[i]);
  }
  wait_for(x, N);
  char *counters = faultd_counters_json(srv);
  json_t *doc = json_loads(counters, 0, NULL);
  free(counters);
  cr_assert_not_null(doc);
  size_t ids = json_object_size(json_object_get(doc, "request_ids"));
  size_t keys = json_object_size(json_object_get(doc, "idempotency_keys"));
  json_decref(doc);
  cr_assert_eq(ids, N, "%zu distinct request ids for %d requests", ids, N);
  cr_assert_eq(keys, N, "%zu distinct Idempotency-Keys for %d POSTs", keys, N);
}

Test(retry, a_callers_idempotency_key_makes_a_post_retryable) {
  start_engine(NULL);
  retry_outcome_t x = {0};
  salvo_request_t *req = make("POST", "/fail-until/2/e?fault=close");
  cr_assert_eq(salvo_request_add_header(req, "Idempotency-Key", "order-77"), 0);
  submit(req, &x);
  wait_for(&x, 1);
  cr_assert_eq(x.o.status, 200, "%s", salvo_err_name(x.o.error));
  cr_assert_eq(x.o.attempts, 2);
}

/* The queue timeout bounds each wait for a slot: a retry that must queue
 * behind another request gets the whole of it again, counted from its
 * backoff's end, not what is left from the submit. */
static void one_slot_slow_backoff(salvo_engine_opts_t *o) {
  o->max_in_flight = 1;
  o->retry.backoff_base_ms = 800;
  o->timeouts.queue_ms = 1000;
}

/* ... and it goes ahead of requests not yet tried, which queued before it. */
Test(retry, a_retry_that_waits_for_a_slot_gets_a_fresh_queue_timeout_and_goes_first) {
  start_engine(one_slot_slow_backoff);
  retry_outcome_t flaky = {0}, busy = {0}, fresh[3];
  memset(fresh, 0, sizeof(fresh));
  submit(make("GET", "/fail-until/2/q"), &flaky); /* 503, then 200 */
  submit(make("GET", "/sleep/1500"), &busy);       /* takes the slot during the backoff */
  /* the slow one reached the server: the first attempt is over and its retry
   * waits out its 800 ms backoff */
  uint64_t t0 = uv_hrtime();
  while (faultd_count(srv, "/sleep/1500") == 0 && ms_since(t0) < 10000)
    uv_run(&loop, UV_RUN_ONCE);
  cr_assert_eq(flaky.o.calls, 0);
  for (int i = 0; i < 3; i++) { /* queued before the retry (at 800 ms), served after it */
    salvo_request_t *req = make("GET", "/ok");
    salvo_timeouts_t t;
    salvo_timeouts_init(&t);
    t.queue_ms = 10000; /* they may wait as long as it takes: only the order is checked */
    cr_assert_eq(salvo_request_set_timeouts(req, &t), 0);
    submit(req, &fresh[i]);
  }
  wait_for(&flaky, 1);
  /* the retry queues at 800 ms until the slot frees at about 1500 ms: within
   * its own 1000 ms, though 1000 ms after the submit have long passed */
  cr_assert_eq(flaky.o.status, 200, "%s: %s", salvo_err_name(flaky.o.error), flaky.o.detail);
  cr_assert_eq(flaky.o.attempts, 2);
  cr_assert_geq(flaky.o.elapsed_us / 1000, 1300, "it waited for the slow one (%lu ms)",
                (unsigned long)(flaky.o.elapsed_us / 1000));
  for (int i = 0; i < 3; i++)
    cr_assert_eq(fresh[i].o.calls, 0, "request %d, not yet tried, went before the retry", i);
  wait_for(fresh, 3);
  wait_for(&busy, 1);
  cr_assert_eq(busy.o.status, 200);
  for (int i = 0; i < 3; i++)
    cr_assert_eq(fresh[i].o.status, 200, "%s", salvo_err_name(fresh[i].o.error));
}

static void tight_deadline(salvo_engine_opts_t *o) {
  o->retry.backoff_base_ms = 400;
  o->timeouts.deadline_ms = 1100;
}

Test(retry, the_deadline_bounds_every_retry) {
  start_engine(tight_deadline);
  retry_outcome_t x = {0};
  submit(make("GET", "/status/503"), &x);
  wait_for(&x, 1);
  /* attempt 1, wait 400, attempt 2, next wait 800 would pass 1100: stop now,
   * about 400 ms in (the bound leaves 600 ms of slack and is still short of
   * the deadline) */
  cr_assert_eq(x.o.error, SALVO_EDEADLINE, "%s", salvo_err_name(x.o.error));
  cr_assert_eq(x.stop, SALVO_STOP_DEADLINE);
  cr_assert_eq(x.o.attempts, 2);
  cr_assert_eq(x.o.status, 503, "the last status is kept");
  cr_assert_lt(x.o.elapsed_us / 1000, 1000, "ended at once, not at the deadline (%lu ms)",
               (unsigned long)(x.o.elapsed_us / 1000));
  cr_assert(strstr(x.history[1].reason, "deadline") != NULL, "%s", x.history[1].reason);
}

static salvo_decision_t stop_everything(salvo_request_t *req, const salvo_attempt_info_t *info,
                                        salvo_decision_t def, uint64_t *wait, void *ud) {
  (void)req;
  (void)info;
  (void)def;
  (void)wait;
  (*(int *)ud)++;
  return SALVO_DECIDE_STOP;
}

static salvo_decision_t retry_posts(salvo_request_t *req, const salvo_attempt_info_t *info,
                                    salvo_decision_t def, uint64_t *wait, void *ud) {
  (void)req;
  (void)ud;
  if (info->error == SALVO_ERESET && strcmp(info->method, "POST") == 0 && !info->idempotent) {
    *wait = 5;
    return SALVO_DECIDE_RETRY;
  }
  return def;
}

static int events;
static char last_event_reason[128];

static void count_events(salvo_request_t *req, const salvo_attempt_record_t *rec, void *ud) {
  (void)req;
  (void)ud;
  events++;
  snprintf(last_event_reason, sizeof(last_event_reason), "%s", rec->reason);
}

Test(retry, callbacks_can_override_and_observe) {
  start_engine(NULL);
  int asked = 0;
  salvo_retry_policy_t p;
  salvo_retry_policy_init(&p);
  p.decide_cb = stop_everything;
  p.decide_data = &asked;
  retry_outcome_t x[2];
  memset(x, 0, sizeof(x));
  salvo_request_t *req = make("GET", "/status/503");
  cr_assert_eq(salvo_request_set_retry_policy(req, &p), 0);
  submit(req, &x[0]);

  salvo_retry_policy_init(&p);
  p.backoff_base_ms = 5;
  p.decide_cb = retry_posts;
  p.event_cb = count_events;
  events = 0;
  req = make("POST", "/fail-until/2/f?fault=reset");
  cr_assert_eq(salvo_request_set_retry_policy(req, &p), 0);
  submit(req, &x[1]);
  wait_for(x, 2);
  cr_assert_eq(asked, 1);
  cr_assert_eq(x[0].o.attempts, 1);
  cr_assert_eq(x[0].stop, SALVO_STOP_BY_CALLBACK);
  cr_assert_eq(x[1].o.status, 200, "%s", salvo_err_name(x[1].o.error));
  cr_assert_eq(x[1].o.attempts, 2);
  cr_assert_str_eq(x[1].history[0].reason, "retried by the decision callback");
  cr_assert_eq(x[1].history[0].wait_ms, 5);
  cr_assert_eq(events, 2, "one event per attempt");
  cr_assert_str_eq(last_event_reason, "success: status 200");
}

static salvo_decision_t once_more(salvo_request_t *req, const salvo_attempt_info_t *info,
                                  salvo_decision_t def, uint64_t *wait, void *ud) {
  (void)req;
  (void)ud;
  *wait = 0;
  return info->attempt == 1 ? SALVO_DECIDE_RETRY : def;
}

Test(retry, attempt_header_and_request_id_on_the_wire) {
  start_engine(NULL);
  salvo_retry_policy_t p;
  salvo_retry_policy_init(&p);
  snprintf(p.attempt_header, sizeof(p.attempt_header), "X-Attempt");
  p.decide_cb = once_more;
  retry_outcome_t x[2];
  memset(x, 0, sizeof(x));
  salvo_request_t *req = make("GET", "/headers");
  cr_assert_eq(salvo_request_set_retry_policy(req, &p), 0);
  submit(req, &x[0]);
  req = make("GET", "/headers");
  cr_assert_eq(salvo_request_add_header(req, "x-request-id", "mine-42"), 0);
  submit(req, &x[1]);
  wait_for(x, 2);
  cr_assert_eq(x[0].o.attempts, 2);
  cr_assert(strstr(x[0].body, "X-Attempt: 2\n") != NULL, "%s", x[0].body);
  cr_assert(strstr(x[0].body, "X-Request-ID: ") != NULL, "%s", x[0].body);
  cr_assert(strstr(x[1].body, "x-request-id: mine-42\n") != NULL, "%s", x[1].body);
  cr_assert(strstr(x[1].body, "X-Request-ID") == NULL, "the caller's id is kept: %s", x[1].body);
  cr_assert(strstr(x[1].body, "X-Attempt") == NULL, "attempt header is off by default");
}

static void slow_backoff(salvo_engine_opts_t *o) { o->retry.backoff_base_ms = 5000; }

Test(retry, cancel_and_close_during_backoff) {
  start_engine(slow_backoff);
  retry_outcome_t x[3];
  memset(x, 0, sizeof(x));
  salvo_request_t *first = make("GET", "/status/503");
  submit(first, &x[0]);
  submit(make("GET", "/status/503"), &x[1]);
  submit(make("GET", "/status/503"), &x[2]);
  uint64_t t0 = uv_hrtime();
  while (faultd_count(srv, "/status/503") < 3)
    uv_run(&loop, UV_RUN_ONCE);
  for (int i = 0; i < 5; i++)
    uv_run(&loop, UV_RUN_NOWAIT); /* let the decisions land */
  cr_assert_eq(salvo_request_cancel(first), 0);
  wait_for(x, 1);
  cr_assert_eq(x[0].o.error, SALVO_ECANCELED);
  cr_assert_eq(x[0].stop, SALVO_STOP_CANCELED);
  cr_assert_eq(x[0].o.attempts, 1);
  cr_assert_eq(x[0].history[0].decision, SALVO_DECIDE_RETRY, "it was waiting to retry");
  salvo_engine_close(engine, on_closed, NULL);
  while (!engine_closed)
    uv_run(&loop, UV_RUN_ONCE);
  cr_assert_lt(ms_since(t0), 2000, "nobody waited out the 5 s backoff");
  for (int i = 1; i < 3; i++) {
    cr_assert_eq(x[i].o.calls, 1);
    cr_assert_eq(x[i].o.error, SALVO_ECANCELED);
  }
}

static int streamed;

static int stream_it(salvo_request_t *req, const char *data, size_t len, void *ud) {
  (void)req;
  (void)data;
  (void)ud;
  streamed += (int)len;
  return 0;
}

Test(retry, an_attempt_that_streamed_bytes_is_not_retried) {
  start_engine(NULL);
  retry_outcome_t x = {0};
  salvo_request_t *req = make("GET", "/truncate");
  cr_assert_eq(salvo_request_set_data_cb(req, stream_it), 0);
  streamed = 0;
  submit(req, &x);
  wait_for(&x, 1);
  cr_assert_eq(x.o.error, SALVO_ETRUNCATED);
  cr_assert_eq(x.o.attempts, 1);
  cr_assert_eq(streamed, 10, "the caller saw the bytes once");
  cr_assert_eq(faultd_count(srv, "/truncate"), 1);
}

static void backoff_one_second(salvo_engine_opts_t *o) {
  o->retry.backoff_base_ms = 1000;
  o->retry.max_attempts = 2;
  o->max_in_flight = 256;
  o->hosts.budget = 0; /* 1000 retries at once to one host: what the budget exists to refuse */
}

static int ok_done, backoff_done;
static uint64_t last_ok_at, first_backoff_done_at;

static void ok_cb(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  (void)req;
  (void)ud;
  if (r->status == 200)
    ok_done++;
  last_ok_at = uv_hrtime();
}

static void backoff_cb(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  (void)req;
  (void)ud;
  if (r->attempts == 2 && r->status == 503 && r->stop_reason == SALVO_STOP_EXHAUSTED)
    backoff_done++;
  if (first_backoff_done_at == 0)
    first_backoff_done_at = uv_hrtime();
}

Test(retry, a_thousand_requests_in_backoff_while_others_flow) {
  if (getenv("SALVO_UNDER_VALGRIND") != NULL)
    cr_skip_test("compares throughput against a 1 s backoff: not meaningful 20x slower");
  start_engine(backoff_one_second);
  ok_done = backoff_done = 0;
  last_ok_at = first_backoff_done_at = 0;
  uint64_t t0 = uv_hrtime();
  for (int i = 0; i < 1000; i++) {
    salvo_request_t *req = make("GET", "/status/503");
    cr_assert_eq(salvo_request_submit(req, backoff_cb, NULL), 0);
  }
  salvo_engine_stats_t st;
  do {
    uv_run(&loop, UV_RUN_ONCE);
    salvo_engine_stats(engine, &st);
  } while (st.retries < 1000 && ms_since(t0) < 900);
  cr_assert_eq(st.waiting, 1000, "all 1000 are in backoff (%zu)", st.waiting);
  cr_assert_eq(st.in_flight, 0, "and none holds a slot");
  for (int i = 0; i < 2000; i++) {
    salvo_request_t *req = make("GET", "/ok");
    cr_assert_eq(salvo_request_submit(req, ok_cb, NULL), 0);
  }
  while (ok_done + backoff_done < 3000 && ms_since(t0) < 10000)
    uv_run(&loop, UV_RUN_ONCE);
  cr_assert_eq(ok_done, 2000);
  cr_assert_eq(backoff_done, 1000);
  cr_assert_lt(last_ok_at, first_backoff_done_at,
               "the 2000 other requests finished while the 1000 were still waiting");
  uint64_t took = ms_since(t0);
  cr_assert_geq(took, 1000, "the backoff was waited");
  cr_assert_leq(took, 5000, "and not much longer (%lu ms)", (unsigned long)took);
  cr_assert_eq(faultd_count(srv, "/status/503"), 2000);
  salvo_engine_stats(engine, &st);
  cr_assert_eq(st.retries, 1000);
}

static salvo_decision_t close_then_retry(salvo_request_t *req, const salvo_attempt_info_t *info,
                                         salvo_decision_t def, uint64_t *wait, void *ud) {
  (void)info;
  (void)def;
  (void)wait;
  (void)ud;
  salvo_engine_close(salvo_request_engine(req), on_closed, NULL);
  return SALVO_DECIDE_RETRY;
}

/* A retry that falls due while the engine closes is not made: the request
 * ends as canceled, with a record that says so. It once ended with stop
 * reason "success" and a record claiming a retry that never went out. */
Test(retry, a_retry_due_while_the_engine_closes_ends_as_canceled) {
  start_engine(NULL);
  salvo_retry_policy_t p;
  salvo_retry_policy_init(&p);
  p.decide_cb = close_then_retry;
  retry_outcome_t x = {0};
  salvo_request_t *req = make("GET", "/status/503");
  cr_assert_eq(salvo_request_set_retry_policy(req, &p), 0);
  submit(req, &x);
  wait_for(&x, 1);
  cr_assert_eq(x.o.status, 503);
  cr_assert_eq(x.o.attempts, 1);
  cr_assert_eq(x.stop, SALVO_STOP_CANCELED, "%s", salvo_stop_reason_name(x.stop));
  cr_assert_eq(x.history_len, 1);
  cr_assert_eq(x.history[0].decision, SALVO_DECIDE_STOP);
  cr_assert_str_eq(x.history[0].reason, "not retried: the engine is closing");
  cr_assert_eq(faultd_count(srv, "/status/503"), 1, "nothing more went out");
  while (!engine_closed)
    uv_run(&loop, UV_RUN_ONCE);
}
