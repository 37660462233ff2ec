/* Options as they enter the engine: timeouts that cannot wrap, per-request
 * overrides that inherit, the engine's settings read back, NULL and
 * lifetime rules, and the log callback. Against salvo-faultd in-process. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <salvo/salvo.h>

#include "fixture.h"
#include "harness.h"

static unsigned host_hedges(void) {
  salvo_host_stats_t st;
  cr_assert_eq(salvo_engine_host_stats(engine, 0, &st), 0);
  return (unsigned)st.hedges;
}

TestSuite(opts, .init = fixture_setup, .fini = fixture_teardown, .timeout = 60);

/* ------------------------------------------------------------ timeouts */

/* Every "forever" spelling: none may expire at once by wrapping around. */
static const uint64_t forever[] = {SALVO_TIMEOUT_NEVER, (uint64_t)-1, (uint64_t)-5,
                                   SALVO_TIMEOUT_MAX_MS + 1};

Test(opts, never_and_minus_one_timeouts_wait_forever) {
  for (size_t i = 0; i < sizeof(forever) / sizeof(forever[0]); i++) {
    salvo_engine_opts_t opts;
    salvo_engine_opts_init(&opts);
    opts.retry.max_attempts = 1;
    opts.timeouts.connect_ms = forever[i];
    opts.timeouts.idle_ms = forever[i];
    opts.timeouts.attempt_ms = forever[i];
    opts.timeouts.deadline_ms = forever[i];
    opts.timeouts.queue_ms = forever[i];
    cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
    salvo_timeouts_t kept;
    cr_assert_eq(salvo_engine_get_timeouts(engine, &kept), 0);
    cr_assert(kept.connect_ms == 0 && kept.idle_ms == 0 && kept.attempt_ms == 0 &&
                  kept.deadline_ms == 0 && kept.queue_ms == 0,
              "[%zu] every one reads back as off", i);
    outcome_t o[2] = {{0}};
    submit_to(engine, "GET", fixture_url("/ok"), NULL, &o[0]);
    uint64_t t0 = uv_hrtime();
    submit_to(engine, "GET", fixture_url("/sleep/300"), NULL, &o[1]);
    outcomes_run(&loop, o, 2);
    cr_assert_eq(o[0].error, 0, "[%zu] /ok: %s (%s)", i, salvo_err_name(o[0].error), o[0].detail);
    cr_assert_eq(o[0].status, 200);
    cr_assert_eq(o[1].error, 0, "[%zu] /sleep/300 cut short: %s (%s)", i,
                 salvo_err_name(o[1].error), o[1].detail);
    cr_assert_eq(o[1].status, 200);
    cr_assert_geq(ms_since(t0), 290, "[%zu] the server's 300 ms were waited for", i);
    fixture_close_engine();
  }
  engine = NULL;
}

/* The same through the request's setters. */
Test(opts, a_request_may_wait_forever_too) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.retry.max_attempts = 1;
  opts.timeouts.deadline_ms = 100;
  opts.timeouts.idle_ms = 100;
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
  outcome_t o[2] = {{0}};
  salvo_timeouts_t t;
  salvo_timeouts_inherit(&t);
  t.idle_ms = (uint64_t)-1;
  t.attempt_ms = SALVO_TIMEOUT_NEVER;
  t.deadline_ms = SALVO_TIMEOUT_NEVER;
  submit_to(engine, "GET", fixture_url("/sleep/300"), &t, &o[0]);
  salvo_request_t *req;
  cr_assert_eq(salvo_request_new(engine, "GET", fixture_url("/sleep/300"), &req), 0);
  cr_assert_eq(salvo_request_set_timeouts(req, &t), 0);
  cr_assert_eq(salvo_request_set_deadline(req, (uint64_t)-1), 0);
  cr_assert_eq(salvo_request_submit(req, record_cb, &o[1]), 0);
  outcomes_run(&loop, o, 2);
  for (int i = 0; i < 2; i++) {
    cr_assert_eq(o[i].error, 0, "[%d] %s (%s)", i, salvo_err_name(o[i].error), o[i].detail);
    cr_assert_eq(o[i].status, 200);
  }
}

Test(opts, a_request_that_sets_only_connect_keeps_the_engine_deadline) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.retry.max_attempts = 1;
  opts.timeouts.deadline_ms = 200;
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
  salvo_timeouts_t t;
  salvo_timeouts_inherit(&t);
  t.connect_ms = 1000;
  outcome_t o = {0};
  uint64_t t0 = uv_hrtime();
  submit_to(engine, "GET", fixture_url("/sleep/10000"), &t, &o);
  outcomes_run(&loop, &o, 1);
  uint64_t took = ms_since(t0);
  cr_assert_eq(o.error, SALVO_EDEADLINE, "got %s (%s)", salvo_err_name(o.error), o.detail);
  cr_assert_geq(took, 150, "the engine's 200 ms deadline, not an instant one (%llu ms)",
                (unsigned long long)took);
  cr_assert_lt(took, 8000, "the engine's 200 ms deadline, not the default 30 s (%llu ms)",
               (unsigned long long)took);
}

Test(opts, set_deadline_changes_the_deadline_alone) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.retry.max_attempts = 1;
  opts.timeouts.idle_ms = 150;
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
  outcome_t o[2] = {{0}};
  salvo_request_t *req;
  /* 1: a deadline shorter than the engine's idle timeout ends it */
  cr_assert_eq(salvo_request_new(engine, "GET", fixture_url("/sleep/10000"), &req), 0);
  cr_assert_eq(salvo_request_set_deadline(req, 60), 0);
  cr_assert_eq(salvo_request_set_deadline(req, SALVO_TIMEOUT_INHERIT), 0, "changes nothing");
  cr_assert_eq(salvo_request_submit(req, record_cb, &o[0]), 0);
  /* 2: a deadline of its own leaves the engine's idle timeout in place */
  cr_assert_eq(salvo_request_new(engine, "GET", fixture_url("/sleep/10000"), &req), 0);
  cr_assert_eq(salvo_request_set_deadline(req, 10000), 0);
  cr_assert_eq(salvo_request_submit(req, record_cb, &o[1]), 0);
  outcomes_run(&loop, o, 2);
  cr_assert_eq(o[0].error, SALVO_EDEADLINE, "got %s", salvo_err_name(o[0].error));
  cr_assert_eq(o[1].error, SALVO_EIDLE, "got %s", salvo_err_name(o[1].error));
  cr_assert_lt(o[1].elapsed_us, 8000000, "the engine's 150 ms idle timeout, kept");
}

static salvo_decision_t wait_forever(salvo_request_t *req, const salvo_attempt_info_t *info,
                                     salvo_decision_t def, uint64_t *wait_ms, void *ud) {
  (void)req;
  (void)info;
  (void)def;
  (void)ud;
  *wait_ms = UINT64_MAX;
  return SALVO_DECIDE_RETRY;
}

Test(opts, a_wait_of_uint64_max_ends_at_the_deadline_not_at_once) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.timeouts.deadline_ms = 2000;
  opts.retry.decide_cb = wait_forever;
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
  outcome_t o = {0};
  submit_to(engine, "GET", fixture_url("/status/500"), NULL, &o);
  outcomes_run(&loop, &o, 1);
  cr_assert_eq(o.error, SALVO_EDEADLINE, "got %s (%s)", salvo_err_name(o.error), o.detail);
  cr_assert_eq(o.attempts, 1, "no retry went out (%u)", o.attempts);
  cr_assert_eq(faultd_count(srv, "/status/500"), 1);
  cr_assert_lt(o.elapsed_us, 1000000, "given up when decided, not at the deadline");
}

Test(opts, a_hedge_delay_of_never_sends_no_hedge) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.retry.max_attempts = 1;
  opts.hosts.hedge_delay_ms = SALVO_TIMEOUT_NEVER;
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
  outcome_t o = {0};
  submit_to(engine, "GET", fixture_url("/sleep/300"), NULL, &o);
  outcomes_run(&loop, &o, 1);
  cr_assert_eq(o.status, 200, "got %s", salvo_err_name(o.error));
  cr_assert_eq(o.attempts, 1);
  cr_assert_eq(host_hedges(), 0);
  cr_assert_eq(faultd_count(srv, "/sleep/300"), 1, "the server saw one request");
}

Test(opts, the_engine_settings_read_back) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.timeouts.connect_ms = 1234;
  opts.timeouts.idle_ms = SALVO_TIMEOUT_INHERIT;
  opts.timeouts.attempt_ms = 777;
  opts.timeouts.deadline_ms = SALVO_TIMEOUT_MAX_MS;
  opts.timeouts.queue_ms = SALVO_TIMEOUT_NEVER;
  opts.retry.max_attempts = 7;
  opts.retry.backoff_max_ms = UINT64_MAX;
  opts.retry.seed = 99;
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
  salvo_timeouts_t t, defaults;
  salvo_timeouts_init(&defaults);
  cr_assert_eq(salvo_engine_get_timeouts(engine, &t), 0);
  cr_assert_eq(t.connect_ms, 1234);
  cr_assert_eq(t.idle_ms, defaults.idle_ms, "inherit in the engine is the library default");
  cr_assert_eq(t.attempt_ms, 777);
  cr_assert_eq(t.deadline_ms, SALVO_TIMEOUT_MAX_MS, "the maximum is kept as given");
  cr_assert_eq(t.queue_ms, 0, "never reads back as off");
  salvo_retry_policy_t p;
  cr_assert_eq(salvo_engine_get_retry_policy(engine, &p), 0);
  cr_assert_eq(memcmp(&p, &opts.retry, sizeof(p)), 0, "the policy as given");
  cr_assert_eq(salvo_engine_get_timeouts(NULL, &t), SALVO_EINVAL);
  cr_assert_eq(salvo_engine_get_timeouts(engine, NULL), SALVO_EINVAL);
  cr_assert_eq(salvo_engine_get_retry_policy(NULL, &p), SALVO_EINVAL);
  cr_assert_eq(salvo_engine_get_retry_policy(engine, NULL), SALVO_EINVAL);
}

/* ------------------------------------------------------------ lifetimes */

Test(opts, a_closing_engine_makes_no_new_request) {
  cr_assert_eq(salvo_engine_new(&loop, NULL, &engine), 0);
  salvo_request_t *before;
  cr_assert_eq(salvo_request_new(engine, "GET", fixture_url("/ok"), &before), 0);
  salvo_engine_close(engine, on_closed, NULL);
  salvo_request_t *req = (salvo_request_t *)&req; /* untouched on error */
  cr_assert_eq(salvo_request_new(engine, "GET", fixture_url("/ok"), &req), SALVO_ECLOSING);
  cr_assert_eq(req, (salvo_request_t *)&req);
  outcome_t o = {0};
  cr_assert_eq(salvo_request_submit(before, record_cb, &o), SALVO_ECLOSING);
  salvo_host_policy_t hp;
  salvo_host_policy_init(&hp);
  cr_assert_eq(salvo_engine_set_host_policy(engine, fixture_url("/"), &hp), SALVO_ECLOSING);
  cr_assert_eq(salvo_engine_host_count(engine), 0, "no host made for it");
  while (!engine_closed)
    uv_run(&loop, UV_RUN_ONCE);
  salvo_request_free(before); /* allowed after the close: it does not touch the engine */
  cr_assert_eq(o.calls, 0);
  cr_assert_eq(faultd_count(srv, "/ok"), 0);
}

/* ------------------------------------------------------------ receive cap */

/* GETs /bytes/|n| with a cap of its own (|own| 1) or the engine's, and
 * returns how long it took, in ms. */
static uint64_t timed_get(size_t n, int own, uint64_t bytes_per_second, outcome_t *o) {
  char path[48];
  snprintf(path, sizeof(path), "/bytes/%zu", n);
  salvo_request_t *req;
  cr_assert_eq(salvo_request_new(engine, "GET", fixture_url(path), &req), 0);
  if (own)
    cr_assert_eq(salvo_request_set_max_recv_speed(req, bytes_per_second), 0);
  uint64_t t0 = uv_hrtime();
  cr_assert_eq(salvo_request_submit(req, record_cb, o), 0);
  outcomes_run(&loop, o, 1);
  cr_assert_eq(o->error, 0, "got %s (%s)", salvo_err_name(o->error), o->detail);
  cr_assert_eq(o->status, 200);
  cr_assert_eq(o->body_len, n, "the body whole: %zu of %zu bytes", o->body_len, n);
  return ms_since(t0);
}

/* One easy handle for every request, so each runs on the previous one's. */
static void start_one_slot(uint64_t max_recv_speed) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.retry.max_attempts = 1;
  opts.max_in_flight = 1;
  opts.max_recv_speed = max_recv_speed;
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
}

/* 400,000 bytes at 100,000 B/s: about 3 s (libcurl reads bursts of about
 * 100 KB and waits for the average, the first at no wait). A request with a
 * cap of 0 on the same handle then runs uncapped: 4 MB, more than libcurl's
 * first burst with 16 KB reads (1.6 MB), so a cap left on the handle would
 * hold it for 16 s. */
Test(opts, max_recv_speed_paces_a_transfer_and_0_per_request_lifts_it) {
  start_one_slot(100000);
  outcome_t o[2] = {{0}};
  uint64_t capped = timed_get(400000, 0, 0, &o[0]);
  uint64_t lifted = timed_get(4000000, 1, 0, &o[1]);
  cr_assert_geq(capped, 2500, "400 KB at 100 KB/s took %llu ms", (unsigned long long)capped);
  cr_assert_lt(capped, 20000, "400 KB at 100 KB/s took %llu ms", (unsigned long long)capped);
  cr_assert_lt(lifted, 8000, "uncapped, 4 MB on loopback took %llu ms",
               (unsigned long long)lifted);
}

/* A request's own cap ends with it: the next request on the same handle
 * is not held to it (4 MB, as above). */
Test(opts, a_request_cap_does_not_stay_on_the_handle) {
  start_one_slot(0);
  outcome_t o[2] = {{0}};
  uint64_t capped = timed_get(400000, 1, 100000, &o[0]);
  uint64_t next = timed_get(4000000, 0, 0, &o[1]);
  cr_assert_geq(capped, 2500, "400 KB at 100 KB/s took %llu ms", (unsigned long long)capped);
  cr_assert_lt(capped, 20000, "400 KB at 100 KB/s took %llu ms", (unsigned long long)capped);
  cr_assert_lt(next, 8000, "the next request, uncapped, took %llu ms", (unsigned long long)next);
}

/* Over HTTP/2 libcurl 7.88 reads the rest of a body off the socket into its
 * HTTP/2 layer while the cap holds the transfer, and then waits for the
 * socket forever (salvo looks again when the attempt goes silent). */
Test(opts, max_recv_speed_over_http2) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.retry.max_attempts = 1;
  opts.ca_file = faultd_cert_file(srv);
  opts.max_recv_speed = 100000;
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
  char url[96];
  snprintf(url, sizeof(url), "%s/bytes/400000", tls_base);
  outcome_t o = {0};
  uint64_t t0 = uv_hrtime();
  submit_to(engine, "GET", url, NULL, &o);
  outcomes_run(&loop, &o, 1);
  uint64_t took = ms_since(t0);
  cr_assert_eq(o.error, 0, "got %s (%s) after %llu ms", salvo_err_name(o.error), o.detail,
               (unsigned long long)took);
  cr_assert_eq(o.http_version, 20);
  cr_assert_eq(o.body_len, 400000, "the body whole: %zu bytes", o.body_len);
  cr_assert_geq(took, 2500, "400 KB at 100 KB/s took %llu ms", (unsigned long long)took);
  cr_assert_lt(took, 20000, "400 KB at 100 KB/s took %llu ms", (unsigned long long)took);
}

/* libcurl 7.88 reads up to 101 buffers at once while data waits, then
 * holds the transfer until the average is back under the cap: at 50,000 B/s
 * salvo's 1 KB reads make bursts of about 100 KB and holds of about 2 s,
 * longer than this idle timeout of 1 s. The idle timeout allows for the
 * hold: the transfer is paced, and whole. */
Test(opts, the_idle_timeout_allows_for_the_holds_of_a_cap) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.retry.max_attempts = 1;
  opts.max_recv_speed = 50000;
  opts.timeouts.idle_ms = 1000;
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
  outcome_t o = {0};
  uint64_t took = timed_get(150000, 0, 0, &o);
  cr_assert_geq(took, 1500, "150 KB at 50 KB/s took %llu ms", (unsigned long long)took);
  cr_assert_lt(took, 20000, "150 KB at 50 KB/s took %llu ms", (unsigned long long)took);
}

/* Without a loop or a server. */
TestSuite(opts_api, .timeout = 30);

/* libcurl takes a curl_off_t: above INT64_MAX is refused, INT64_MAX is not. */
Test(opts_api, max_recv_speed_limits) {
  uv_loop_t l;
  cr_assert_eq(uv_loop_init(&l), 0);
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  cr_assert_eq(opts.max_recv_speed, 0, "no cap by default");
  cr_assert_null(opts.resolve);
  cr_assert_null(opts.connect_to);
  salvo_engine_t *e = NULL;
  opts.max_recv_speed = (uint64_t)INT64_MAX + 1;
  cr_assert_eq(salvo_engine_new(&l, &opts, &e), SALVO_EINVAL);
  cr_assert_null(e);
  opts.max_recv_speed = UINT64_MAX;
  cr_assert_eq(salvo_engine_new(&l, &opts, &e), SALVO_EINVAL);
  opts.max_recv_speed = INT64_MAX;
  cr_assert_eq(salvo_engine_new(&l, &opts, &e), 0);
  salvo_request_t *req;
  cr_assert_eq(salvo_request_new(e, "GET", "http://127.0.0.1:9/", &req), 0);
  cr_assert_eq(salvo_request_set_max_recv_speed(req, (uint64_t)INT64_MAX + 1), SALVO_EINVAL);
  cr_assert_eq(salvo_request_set_max_recv_speed(req, UINT64_MAX), SALVO_EINVAL);
  cr_assert_eq(salvo_request_set_max_recv_speed(req, INT64_MAX), 0);
  cr_assert_eq(salvo_request_set_max_recv_speed(req, 0), 0);
  outcome_t o = {0};
  cr_assert_eq(salvo_request_submit(req, record_cb, &o), 0);
  cr_assert_eq(salvo_request_set_max_recv_speed(req, 1000), SALVO_EINVAL, "after submit");
  salvo_engine_close(e, NULL, NULL); /* the request ends canceled, before its connect */
  uv_run(&l, UV_RUN_DEFAULT);
  cr_assert_eq(o.calls, 1);
  cr_assert_eq(o.error, SALVO_ECANCELED);
  cr_assert_eq(uv_loop_close(&l), 0);
}

/* recv_buffer_size: libcurl reads that much at a time (fewer system calls:
 * salvo-fetch's fetch_batch counts them), and every body still arrives
 * whole, over HTTP/1.1 and HTTP/2. */
static int count_chunk(salvo_request_t *req, const char *data, size_t len, void *ud) {
  (void)data;
  (void)ud;
  size_t *bytes = salvo_request_data(req);
  *bytes += len;
  return 0;
}

Test(opts, recv_buffer_size_bodies_arrive_whole) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.recv_buffer_size = 131072;
  opts.ca_file = faultd_cert_file(srv);
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
  char tls[128];
  snprintf(tls, sizeof(tls), "https://127.0.0.1:%d/file/8000000/5", faultd_port(srv, FAULTD_PORT_TLS));
  const char *urls[] = {fixture_url("/file/8000000/5"), tls, fixture_url("/bytes/3000000")};
  size_t bytes[3] = {0};
  outcome_t o[3] = {{0}};
  for (int i = 0; i < 3; i++) {
    salvo_request_t *req;
    cr_assert_eq(salvo_request_new(engine, "GET", urls[i], &req), 0);
    if (i < 2) {
      cr_assert_eq(salvo_request_set_data_cb(req, count_chunk), 0);
      cr_assert_eq(salvo_request_set_data(req, &bytes[i]), 0);
    }
    cr_assert_eq(salvo_request_submit(req, record_cb, &o[i]), 0);
  }
  outcomes_run(&loop, o, 3);
  for (int i = 0; i < 3; i++)
    cr_assert_eq(o[i].error, 0, "[%d] %s", i, salvo_err_name(o[i].error));
  cr_assert_eq(bytes[0], 8000000);
  cr_assert_eq(bytes[1], 8000000);
  cr_assert_eq(o[1].http_version, 20, "over HTTP/2");
  cr_assert_eq(o[2].body_len, 3000000);
}

Test(opts_api, recv_buffer_size_limits) {
  uv_loop_t l;
  cr_assert_eq(uv_loop_init(&l), 0);
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  cr_assert_eq(opts.recv_buffer_size, 0, "libcurl's by default");
  salvo_engine_t *e = NULL;
  size_t bad[] = {1, 1023, 524289, SIZE_MAX};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    opts.recv_buffer_size = bad[i];
    cr_assert_eq(salvo_engine_new(&l, &opts, &e), SALVO_EINVAL, "%zu", bad[i]);
    cr_assert_null(e);
  }
  size_t good[] = {1024, 524288};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    opts.recv_buffer_size = good[i];
    cr_assert_eq(salvo_engine_new(&l, &opts, &e), 0, "%zu", good[i]);
    salvo_engine_close(e, NULL, NULL);
    uv_run(&l, UV_RUN_DEFAULT);
    e = NULL;
  }
  cr_assert_eq(uv_loop_close(&l), 0);
}

#ifndef NDEBUG
static void use_in_close_cb(salvo_engine_t *e, void *ud) {
  (void)ud;
  salvo_request_t *req = NULL;
  salvo_request_new(e, "GET", "http://127.0.0.1:9/", &req); /* the engine's close completed */
  _exit(0); /* reached only if nothing caught it */
}

Test(opts_api, an_engine_used_after_its_close_aborts_in_debug_builds, .signal = SIGABRT) {
  uv_loop_t l;
  cr_assert_eq(uv_loop_init(&l), 0);
  salvo_engine_t *e;
  cr_assert_eq(salvo_engine_new(&l, NULL, &e), 0);
  salvo_engine_close(e, use_in_close_cb, NULL);
  uv_run(&l, UV_RUN_DEFAULT);
}
#endif

Test(opts_api, null_follows_one_rule) {
  /* int: SALVO_EINVAL */
  salvo_request_t *req = NULL;
  uv_loop_t l;
  cr_assert_eq(uv_loop_init(&l), 0);
  cr_assert_eq(salvo_engine_new(NULL, NULL, NULL), SALVO_EINVAL);
  cr_assert_eq(salvo_request_new(NULL, "GET", "http://127.0.0.1/", &req), SALVO_EINVAL);
  cr_assert_eq(salvo_request_add_header(NULL, "A", "b"), SALVO_EINVAL);
  cr_assert_eq(salvo_request_add_header_line(NULL, "A: b"), SALVO_EINVAL);
  cr_assert_eq(salvo_request_set_body(NULL, "", 0), SALVO_EINVAL);
  cr_assert_eq(salvo_request_set_timeouts(NULL, NULL), SALVO_EINVAL);
  cr_assert_eq(salvo_request_set_deadline(NULL, 1), SALVO_EINVAL);
  cr_assert_eq(salvo_request_set_data_cb(NULL, NULL), SALVO_EINVAL);
  cr_assert_eq(salvo_request_set_retry_policy(NULL, NULL), SALVO_EINVAL);
  cr_assert_eq(salvo_request_set_max_body_size(NULL, 1), SALVO_EINVAL);
  cr_assert_eq(salvo_request_set_max_recv_speed(NULL, 1), SALVO_EINVAL);
  cr_assert_eq(salvo_request_set_follow_redirects(NULL, 1), SALVO_EINVAL);
  cr_assert_eq(salvo_request_submit(NULL, record_cb, NULL), SALVO_EINVAL);
  cr_assert_eq(salvo_request_cancel(NULL), SALVO_EINVAL);
  cr_assert_eq(salvo_engine_set_host_policy(NULL, "http://127.0.0.1/", NULL), SALVO_EINVAL);
  cr_assert_eq(salvo_engine_host_stats(NULL, 0, NULL), SALVO_EINVAL);
  cr_assert_eq(salvo_engine_get_timeouts(NULL, NULL), SALVO_EINVAL);
  cr_assert_eq(salvo_engine_get_retry_policy(NULL, NULL), SALVO_EINVAL);
  const char *n = "x", *v = "y";
  cr_assert_eq(salvo_response_header_at(NULL, 0, &n, &v), SALVO_EINVAL);
  cr_assert_str_eq(n, "x", "outputs untouched");
  /* pointer: NULL */
  cr_assert_null(salvo_request_engine(NULL));
  cr_assert_null(salvo_request_method(NULL));
  cr_assert_null(salvo_request_url(NULL));
  cr_assert_null(salvo_response_header(NULL, "a"));
  cr_assert_null(salvo_response_take_body(NULL));
  cr_assert_null(salvo_header_reserved(NULL));
  /* count: 0 */
  cr_assert_eq(salvo_engine_host_count(NULL), 0);
  /* void: nothing, and stats zero-filled */
  salvo_engine_stats_t st;
  memset(&st, 0xff, sizeof(st));
  salvo_engine_stats(NULL, &st);
  salvo_engine_stats_t zero;
  memset(&zero, 0, sizeof(zero));
  cr_assert_eq(memcmp(&st, &zero, sizeof(st)), 0, "salvo_engine_stats(NULL, st) zero-fills st");
  salvo_engine_stats(NULL, NULL);
  salvo_timeouts_init(NULL);
  salvo_timeouts_inherit(NULL);
  salvo_retry_policy_init(NULL);
  salvo_host_policy_init(NULL);
  salvo_engine_opts_init(NULL);
  salvo_request_free(NULL);
  salvo_engine_close(NULL, NULL, NULL);
  /* a live engine with NULL outputs */
  salvo_engine_t *e;
  cr_assert_eq(salvo_engine_new(&l, NULL, &e), 0);
  salvo_engine_stats(e, NULL);
  cr_assert_eq(salvo_engine_host_stats(e, 0, NULL), SALVO_EINVAL);
  cr_assert_eq(salvo_request_new(e, "GET", "http://127.0.0.1/", NULL), SALVO_EINVAL);
  cr_assert_eq(salvo_request_new(e, NULL, "http://127.0.0.1/", &req), SALVO_EINVAL);
  cr_assert_eq(salvo_request_new(e, "GET", NULL, &req), SALVO_EINVAL);
  cr_assert_eq(salvo_request_new(e, "GET", "http://127.0.0.1/", &req), 0);
  cr_assert_eq(salvo_request_submit(req, NULL, NULL), SALVO_EINVAL);
  cr_assert_eq(salvo_request_set_timeouts(req, NULL), SALVO_EINVAL);
  cr_assert_eq(salvo_request_engine(req), e);
  salvo_request_free(req);
  salvo_engine_close(e, NULL, NULL);
  uv_run(&l, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&l), 0);
}

Test(opts_api, a_url_without_a_host_is_refused_before_any_lookup) {
  static const char *const no_host[] = {"http:///ok", "https:///ok", "http://:80/", "http://@/",
                                        "http://[]/", "http://user@/", "http://u:p@:80/",
                                        "http:///", "HTTP:///ok"};
  uv_loop_t l;
  cr_assert_eq(uv_loop_init(&l), 0);
  salvo_engine_t *e;
  cr_assert_eq(salvo_engine_new(&l, NULL, &e), 0);
  for (size_t i = 0; i < sizeof(no_host) / sizeof(no_host[0]); i++) {
    salvo_request_t *req = NULL;
    cr_assert_eq(salvo_request_new(e, "GET", no_host[i], &req), SALVO_EINVAL, "%s", no_host[i]);
    cr_assert_null(req);
  }
  salvo_engine_close(e, NULL, NULL);
  uv_run(&l, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&l), 0);
}

/* ------------------------------------------------------------ log */

typedef struct {
  int count;
  int level[4];
  int engine_set[4];
  char text[4][256];
} logbook_t;

static void log_into(salvo_engine_t *e, salvo_log_level_t level, const char *message, void *ud) {
  logbook_t *b = ud;
  if (b->count < 4) {
    b->level[b->count] = (int)level;
    b->engine_set[b->count] = e != NULL;
    snprintf(b->text[b->count], sizeof(b->text[b->count]), "%s", message);
  }
  b->count++;
}

static void new_and_close(int insecure, salvo_log_cb cb, void *data) {
  uv_loop_t l;
  cr_assert_eq(uv_loop_init(&l), 0);
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.insecure_skip_verify = insecure;
  opts.log_cb = cb;
  opts.log_data = data;
  salvo_engine_t *e;
  cr_assert_eq(salvo_engine_new(&l, &opts, &e), 0);
  salvo_engine_close(e, NULL, NULL);
  uv_run(&l, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&l), 0);
}

Test(opts_api, warnings_go_to_the_log_callback) {
  unsetenv("SSLKEYLOGFILE");
  logbook_t b = {0};
  new_and_close(1, log_into, &b);
  cr_assert_eq(b.count, 1, "one message, got %d", b.count);
  cr_assert_eq(b.level[0], SALVO_LOG_WARN);
  cr_assert_not_null(strstr(b.text[0], "verification"), "names verification: %s", b.text[0]);
  cr_assert_eq(b.engine_set[0], 0, "salvo_engine_new's messages come with a NULL engine");
  cr_assert_null(strchr(b.text[0], '\n'), "one line, no newline");
  /* libcurl's TLS set-up read the environment at the first engine: it is safe to set now */
  setenv("SSLKEYLOGFILE", "/dev/null", 1);
  memset(&b, 0, sizeof(b));
  new_and_close(0, log_into, &b);
  unsetenv("SSLKEYLOGFILE");
  cr_assert_eq(b.count, 1, "one message, got %d", b.count);
  cr_assert_eq(b.level[0], SALVO_LOG_WARN);
  cr_assert_not_null(strstr(b.text[0], "SSLKEYLOGFILE"), "%s", b.text[0]);
  memset(&b, 0, sizeof(b));
  new_and_close(0, log_into, &b);
  cr_assert_eq(b.count, 0, "nothing to say about a safe engine: %s", b.text[0]);
  cr_assert_str_eq(salvo_log_level_name(SALVO_LOG_WARN), "warn");
  cr_assert_str_eq(salvo_log_level_name(SALVO_LOG_ERROR), "error");
  cr_assert_str_eq(salvo_log_level_name((salvo_log_level_t)42), "unknown");
}

Test(opts_api, without_a_log_callback_nothing_reaches_stderr) {
  new_and_close(0, NULL, NULL); /* libcurl's global set-up, before the capture */
  FILE *capture = tmpfile();
  cr_assert_not_null(capture);
  fflush(stderr);
  int saved = dup(2);
  cr_assert_geq(saved, 0);
  cr_assert_eq(dup2(fileno(capture), 2), 2);
  setenv("SSLKEYLOGFILE", "/dev/null", 1);
  new_and_close(1, NULL, NULL);
  unsetenv("SSLKEYLOGFILE");
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  char got[256] = "";
  rewind(capture);
  size_t n = fread(got, 1, sizeof(got) - 1, capture);
  fclose(capture);
  cr_assert_eq(n, 0, "the library wrote to stderr: %s", got);
}
