/* Redirects against salvo-faultd: off by default; when on, the hop limit, the
 * method rules of RFC 9110, credentials dropped on an origin change (for
 * every later hop, whatever the case of their names, from default headers
 * and the URL too), no https-to-http downgrade, http(s) only; hops do not
 * use up or add retries, and each gets its record in the history. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <salvo/salvo.h>

#include "fixture.h"
#include "harness.h"


typedef struct {
  int calls;
  int error;
  long status;
  unsigned attempts, redirects;
  size_t history_len;
  salvo_attempt_record_t history[12];
  salvo_stop_reason_t stop;
  char url[512];
  char body[2048];
  char detail[256];
} rout_t;

/* A second salvo-faultd (plain HTTP only) on its own port of 127.0.0.1:
 * another origin than base. Closed by the suite's teardown if a test ends
 * early, else the loop would never run dry. */
static faultd_t *other;
static char other_base[64];

static void teardown(void) {
  if (other != NULL)
    faultd_close(other);
  other = NULL;
  fixture_teardown();
}

TestSuite(redirect, .init = fixture_setup, .fini = teardown, .timeout = 60);

static void start_other(void) {
  faultd_opts_t fo;
  faultd_opts_init(&fo);
  for (int p = 0; p < FAULTD_PORTS; p++)
    fo.port[p] = p == FAULTD_PORT_HTTP ? 0 : -1;
  cr_assert_eq(faultd_start(&loop, &fo, &other, NULL), 0);
  snprintf(other_base, sizeof(other_base), "http://127.0.0.1:%d",
           faultd_port(other, FAULTD_PORT_HTTP));
}

static void start(int follow, int allow_downgrade) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.ca_file = faultd_cert_file(srv);
  opts.follow_redirects = follow;
  opts.redirect_allow_downgrade = allow_downgrade;
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
}

static void done_cb(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  rout_t *o = ud;
  o->calls++;
  o->error = r->error;
  o->status = r->status;
  o->attempts = r->attempts;
  o->redirects = r->redirects;
  o->history_len = r->history_len;
  o->stop = r->stop_reason;
  for (size_t i = 0; i < r->history_len && i < 12; i++)
    o->history[i] = r->history[i];
  snprintf(o->url, sizeof(o->url), "%s", salvo_request_url(req));
  snprintf(o->body, sizeof(o->body), "%.*s", (int)(r->body_len < 2000 ? r->body_len : 2000),
           r->body ? r->body : "");
  snprintf(o->detail, sizeof(o->detail), "%s", r->detail);
}

static rout_t fetch(const char *method, const char *url, const char *body, const char *const *headers) {
  rout_t o;
  memset(&o, 0, sizeof(o));
  salvo_request_t *req;
  cr_assert_eq(salvo_request_new(engine, method, url, &req), 0, "%s", url);
  for (; headers != NULL && *headers != NULL; headers += 2)
    cr_assert_eq(salvo_request_add_header(req, headers[0], headers[1]), 0);
  if (body != NULL)
    cr_assert_eq(salvo_request_set_body(req, body, strlen(body)), 0);
  cr_assert_eq(salvo_request_submit(req, done_cb, &o), 0);
  while (o.calls == 0)
    uv_run(&loop, UV_RUN_ONCE);
  cr_assert_eq(o.calls, 1);
  return o;
}

static char url[600];
static const char *at(const char *b, const char *path) {
  snprintf(url, sizeof(url), "%s%s", b, path);
  return url;
}

Test(redirect, off_by_default) {
  start(0, 0);
  rout_t o = fetch("GET", at(base, "/redirect/302?to=/ok"), NULL, NULL);
  cr_assert_eq(o.status, 302);
  cr_assert_eq(o.attempts, 1);
  cr_assert_eq(o.redirects, 0);
  cr_assert_eq(faultd_count(srv, "/ok"), 0);
}

Test(redirect, follows_a_chain_and_reports_each_hop) {
  start(1, 0);
  rout_t o = fetch("GET", at(base, "/redirect-chain/3"), NULL, NULL);
  cr_assert_eq(o.status, 200, "%s %s", salvo_err_name(o.error), o.detail);
  cr_assert_eq(o.redirects, 3);
  cr_assert_eq(o.attempts, 4, "each hop is an attempt");
  cr_assert_eq(o.history_len, 4);
  cr_assert(strstr(o.url, "/redirect-chain/0") != NULL, "salvo_request_url() is the final URL: %s", o.url);
  cr_assert_eq(faultd_count(srv, "/redirect-chain/"), 4);
  /* one request: the same X-Request-ID on every hop, so the server can tie them */
  char *counters = faultd_counters_json(srv);
  json_t *doc = json_loads(counters, 0, NULL);
  free(counters);
  cr_assert_not_null(doc);
  json_t *ids = json_object_get(doc, "request_ids");
  cr_assert_eq(json_object_size(ids), 1, "%zu request ids over the 4 hops", json_object_size(ids));
  const char *id;
  json_t *n;
  json_object_foreach(ids, id, n)
    cr_assert_eq(json_integer_value(n), 4, "id %s seen %lld times", id, (long long)json_integer_value(n));
  json_decref(doc);
}

Test(redirect, stops_after_max_redirects) {
  start(1, 0);
  rout_t o = fetch("GET", at(base, "/redirect-chain/9"), NULL, NULL);
  cr_assert_eq(o.error, SALVO_EREDIRECT, "%s", salvo_err_name(o.error));
  cr_assert(strstr(o.detail, "more than 5 hops") != NULL, "%s", o.detail);
  cr_assert_eq(faultd_count(srv, "/redirect-chain/"), 6, "5 hops followed, the 6th refused");
}

Test(redirect, method_and_body_follow_rfc_9110) {
  start(1, 0);
  struct {
    const char *method, *code, *want;
  } rows[] = {
      {"POST", "303", "GET 0"}, {"POST", "302", "GET 0"}, {"POST", "301", "GET 0"},
      {"POST", "307", "POST 5"}, {"POST", "308", "POST 5"}, {"PUT", "302", "PUT 5"},
      {"PUT", "303", "GET 0"},   {"PATCH", "307", "PATCH 5"}, {"DELETE", "303", "GET 0"},
  };
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    char path[64];
    snprintf(path, sizeof(path), "/redirect/%s?to=/echo", rows[i].code);
    rout_t o = fetch(rows[i].method, at(base, path), "hello", NULL);
    cr_assert_eq(o.status, 200, "%s %s: %s", rows[i].method, rows[i].code, salvo_err_name(o.error));
    cr_assert_str_eq(o.body, rows[i].want, "%s then %s", rows[i].method, rows[i].code);
  }
  rout_t head = fetch("HEAD", at(base, "/redirect/303?to=/ok"), NULL, NULL);
  cr_assert_eq(head.status, 200);
  cr_assert_eq(head.body[0], '\0', "HEAD stays HEAD");
}

static const char *const secrets[] = {"Authorization", "Bearer tok",     "Cookie", "sid=1",
                                      "Proxy-Authorization", "Basic pp", "X-Other", "kept",
                                      NULL};

Test(redirect, credentials_stay_with_their_origin) {
  start(1, 0);
  rout_t same = fetch("GET", at(base, "/redirect/302?to=/headers"), NULL, secrets);
  cr_assert_eq(same.status, 200);
  cr_assert(strstr(same.body, "Bearer tok") && strstr(same.body, "sid=1") && strstr(same.body, "Basic pp"),
            "same origin keeps them: %s", same.body);
  char path[128];
  snprintf(path, sizeof(path), "/redirect/302?to=http://localhost:%d/headers",
           faultd_port(srv, FAULTD_PORT_HTTP));
  rout_t other = fetch("GET", at(base, path), NULL, secrets);
  cr_assert_eq(other.status, 200, "%s %s", salvo_err_name(other.error), other.detail);
  cr_assert_null(strstr(other.body, "Bearer tok"), "Authorization crossed origins: %s", other.body);
  cr_assert_null(strstr(other.body, "sid=1"), "Cookie crossed origins");
  cr_assert_null(strstr(other.body, "Basic pp"), "Proxy-Authorization crossed origins");
  cr_assert(strstr(other.body, "kept") != NULL, "other headers go on: %s", other.body);
}

Test(redirect, https_to_http_is_refused_unless_allowed) {
  char path[128];
  snprintf(path, sizeof(path), "/redirect/302?to=http://127.0.0.1:%d/ok",
           faultd_port(srv, FAULTD_PORT_HTTP));
  start(1, 0);
  rout_t o = fetch("GET", at(tls_base, path), NULL, NULL);
  cr_assert_eq(o.error, SALVO_EREDIRECT);
  cr_assert(strstr(o.detail, "https to http") != NULL, "%s", o.detail);
  cr_assert_eq(faultd_count(srv, "/ok"), 0);
  fixture_close_engine();
  start(1, 1);
  o = fetch("GET", at(tls_base, path), NULL, NULL);
  cr_assert_eq(o.status, 200, "allowed: %s", salvo_err_name(o.error));
}

Test(redirect, only_http_and_https) {
  start(1, 0);
  rout_t o = fetch("GET", at(base, "/redirect/302?to=ftp://127.0.0.1/x"), NULL, NULL);
  cr_assert_eq(o.error, SALVO_EREDIRECT);
  cr_assert(strstr(o.detail, "only http and https") != NULL, "%s", o.detail);
  o = fetch("GET", at(base, "/redirect/302?to=file:///etc/passwd"), NULL, NULL);
  cr_assert_eq(o.error, SALVO_EREDIRECT);
}

Test(redirect, a_3xx_without_location_is_the_answer) {
  start(1, 0);
  rout_t o = fetch("GET", at(base, "/status/302"), NULL, NULL);
  cr_assert_eq(o.status, 302);
  cr_assert_eq(o.redirects, 0);
}

/* Not a redirect, but the same family of limits: the header block is capped. */
Test(redirect, response_header_block_is_capped) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  cr_assert_eq(opts.max_header_size, 64 * 1024);
  opts.max_header_size = 16 * 1024;
  opts.retry.max_attempts = 1;
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
  rout_t o = fetch("GET", at(base, "/huge-headers/32"), NULL, NULL);
  cr_assert_eq(o.error, SALVO_EPROTO, "%s", salvo_err_name(o.error));
  cr_assert(strstr(o.detail, "max_header_size") != NULL, "%s", o.detail);
  o = fetch("GET", at(base, "/huge-headers/8"), NULL, NULL);
  cr_assert_eq(o.status, 200);
}

/* ------------------------------------------- credentials over several hops */

/* Engine with redirects on and the caller's tweaks. */
static void start_with(void (*tweak)(salvo_engine_opts_t *)) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.ca_file = faultd_cert_file(srv);
  opts.follow_redirects = 1;
  opts.retry.seed = 1;
  if (tweak != NULL)
    tweak(&opts);
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
}

/* Salvo promises (salvo.h, README): once a hop leaves the first origin, the
 * credentials are not sent again "for the rest of the hops", so a chain that
 * comes back to their own origin does not bring them back. */
Test(redirect, credentials_stay_dropped_for_every_later_hop_even_back_at_their_origin) {
  start_other();
  start(1, 0);
  char path[512];
  /* A -> B (another port of 127.0.0.1) -> A/headers */
  snprintf(path, sizeof(path), "%s/redirect/302?to=%s/redirect/302?to=%s/headers", base,
           other_base, base);
  rout_t o = fetch("GET", path, NULL, secrets);
  cr_assert_eq(o.status, 200, "%s %s", salvo_err_name(o.error), o.detail);
  cr_assert_eq(o.redirects, 2);
  cr_assert_eq(faultd_count(other, "/redirect/302"), 1, "the chain went through B");
  cr_assert_eq(faultd_count(srv, "/headers"), 1, "and ended at A");
  cr_assert_null(strstr(o.body, "Bearer tok"), "Authorization came back with the origin: %s", o.body);
  cr_assert_null(strstr(o.body, "sid=1"), "Cookie came back with the origin: %s", o.body);
  cr_assert_null(strstr(o.body, "Basic pp"), "Proxy-Authorization came back with the origin");
  cr_assert(strstr(o.body, "kept") != NULL, "other headers go on: %s", o.body);
  /* A -> B -> B/headers: the second hop stays on B, where they must not go either */
  snprintf(path, sizeof(path), "%s/redirect/302?to=%s/redirect/302?to=/headers", base, other_base);
  o = fetch("GET", path, NULL, secrets);
  cr_assert_eq(o.status, 200, "%s %s", salvo_err_name(o.error), o.detail);
  cr_assert_eq(o.redirects, 2);
  cr_assert_eq(faultd_count(other, "/headers"), 1, "the chain ended at B");
  cr_assert_null(strstr(o.body, "Bearer tok"), "Authorization reached B on its second hop: %s", o.body);
  cr_assert_null(strstr(o.body, "sid=1"), "Cookie reached B on its second hop: %s", o.body);
  cr_assert_null(strstr(o.body, "Basic pp"), "Proxy-Authorization reached B on its second hop");
  /* the same chain that never leaves A keeps them on every hop */
  snprintf(path, sizeof(path), "%s/redirect/302?to=/redirect/307?to=/headers", base);
  o = fetch("GET", path, NULL, secrets);
  cr_assert_eq(o.status, 200);
  cr_assert_eq(o.redirects, 2);
  cr_assert(strstr(o.body, "Bearer tok") && strstr(o.body, "sid=1") && strstr(o.body, "Basic pp"),
            "same origin all along keeps them: %s", o.body);
}

Test(redirect, credentials_are_dropped_whatever_the_case_of_their_names) {
  start_other();
  start(1, 0);
  static const char *const names[] = {"authorization",       "AUTHORIZATION", "aUtHoRiZaTiOn",
                                      "cookie",              "COOKIE",        "proxy-authorization",
                                      "PROXY-AUTHORIZATION", "Proxy-authorization"};
  char same[256], cross[256];
  snprintf(same, sizeof(same), "%s/redirect/302?to=/headers", base);
  snprintf(cross, sizeof(cross), "%s/redirect/302?to=%s/headers", base, other_base);
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    char value[32];
    snprintf(value, sizeof(value), "secret-%zu", i);
    const char *const hdr[] = {names[i], value, NULL};
    rout_t o = fetch("GET", same, NULL, hdr);
    cr_assert_eq(o.status, 200);
    cr_assert(strstr(o.body, value) != NULL, "%s goes to its own origin: %s", names[i], o.body);
    o = fetch("GET", cross, NULL, hdr);
    cr_assert_eq(o.status, 200, "%s %s", salvo_err_name(o.error), o.detail);
    cr_assert_null(strstr(o.body, value), "%s: %s crossed to another origin: %s", names[i], value,
                   o.body);
  }
  /* the "Name: value" form takes the same path */
  salvo_request_t *req;
  rout_t o;
  memset(&o, 0, sizeof(o));
  cr_assert_eq(salvo_request_new(engine, "GET", cross, &req), 0);
  cr_assert_eq(salvo_request_add_header_line(req, "authorization: line-secret"), 0);
  cr_assert_eq(salvo_request_add_header_line(req, "COOKIE: line-cookie"), 0);
  cr_assert_eq(salvo_request_submit(req, done_cb, &o), 0);
  while (o.calls == 0)
    uv_run(&loop, UV_RUN_ONCE);
  cr_assert_eq(o.status, 200);
  cr_assert_null(strstr(o.body, "line-secret"), "%s", o.body);
  cr_assert_null(strstr(o.body, "line-cookie"), "%s", o.body);
}

static const char *const default_secrets[] = {"authorization: Bearer dflt", "COOKIE: d=1", NULL};

static void secret_defaults(salvo_engine_opts_t *o) { o->default_headers = default_secrets; }

Test(redirect, credentials_from_default_headers_stay_with_the_origin_too) {
  start_other();
  start_with(secret_defaults);
  char path[256];
  snprintf(path, sizeof(path), "%s/redirect/302?to=/headers", base);
  rout_t o = fetch("GET", path, NULL, NULL);
  cr_assert(strstr(o.body, "Bearer dflt") && strstr(o.body, "d=1"), "sent to A: %s", o.body);
  snprintf(path, sizeof(path), "%s/redirect/302?to=%s/headers", base, other_base);
  o = fetch("GET", path, NULL, NULL);
  cr_assert_eq(o.status, 200, "%s %s", salvo_err_name(o.error), o.detail);
  cr_assert_null(strstr(o.body, "Bearer dflt"), "a default Authorization crossed origins: %s", o.body);
  cr_assert_null(strstr(o.body, "d=1"), "a default Cookie crossed origins: %s", o.body);
}

Test(redirect, a_host_header_given_for_the_first_origin_is_not_sent_to_the_next) {
  start_other();
  start(1, 0);
  char host_a[64], host_b[64], path[256];
  snprintf(host_a, sizeof(host_a), "127.0.0.1:%d", faultd_port(srv, FAULTD_PORT_HTTP));
  snprintf(host_b, sizeof(host_b), "Host: 127.0.0.1:%d", faultd_port(other, FAULTD_PORT_HTTP));
  const char *const hdr[] = {"Host", host_a, NULL};
  snprintf(path, sizeof(path), "%s/redirect/302?to=%s/headers", base, other_base);
  rout_t o = fetch("GET", path, NULL, hdr);
  cr_assert_eq(o.status, 200, "%s %s", salvo_err_name(o.error), o.detail);
  cr_assert(strstr(o.body, host_b) != NULL, "B was asked for itself: %s", o.body);
  cr_assert_null(strstr(o.body, host_a), "A's Host went to B: %s", o.body);
}

Test(redirect, a_password_in_the_url_does_not_follow_to_another_origin) {
  start_other();
  start(1, 0);
  char path[256];
  int port = faultd_port(srv, FAULTD_PORT_HTTP);
  snprintf(path, sizeof(path), "http://user:pw@127.0.0.1:%d/redirect/302?to=/headers", port);
  rout_t o = fetch("GET", path, NULL, NULL);
  cr_assert_eq(o.status, 200);
  cr_assert(strstr(o.body, "Authorization: Basic") != NULL, "same origin: sent (%s)", o.body);
  snprintf(path, sizeof(path), "http://user:pw@127.0.0.1:%d/redirect/302?to=%s/headers", port,
           other_base);
  o = fetch("GET", path, NULL, NULL);
  cr_assert_eq(o.status, 200, "%s %s", salvo_err_name(o.error), o.detail);
  cr_assert_null(strstr(o.body, "Authorization"), "the URL's password crossed origins: %s", o.body);
}

/* ------------------------------------------------- hops and retry attempts */

static void three_attempts(salvo_engine_opts_t *o) {
  o->retry.max_attempts = 3;
  o->retry.backoff_base_ms = 10;
  o->retry.jitter = SALVO_JITTER_NONE;
}

/* The attempt numbers the decision callback is told, in order. */
static unsigned told[16];
static size_t ntold;

static salvo_decision_t note_attempt(salvo_request_t *req, const salvo_attempt_info_t *info,
                                     salvo_decision_t d, uint64_t *wait_ms, void *ud) {
  (void)req;
  (void)wait_ms;
  (void)ud;
  if (ntold < 16)
    told[ntold++] = info->attempt;
  return d;
}

static void three_attempts_noted(salvo_engine_opts_t *o) {
  three_attempts(o);
  o->retry.decide_cb = note_attempt;
  ntold = 0;
}

Test(redirect, hops_do_not_use_up_the_retries_of_a_flaky_target) {
  start_other();
  start_with(three_attempts_noted);
  char path[512];
  /* two hops (the second to another origin), then a target that fails twice */
  snprintf(path, sizeof(path), "%s/redirect/302?to=/redirect/307?to=%s/fail-until/3/flaky", base,
           other_base);
  rout_t o = fetch("GET", path, NULL, NULL);
  cr_assert_eq(o.status, 200, "the target got its 3 attempts: %ld %s %s", o.status,
               salvo_err_name(o.error), o.detail);
  cr_assert_eq(o.error, 0);
  cr_assert_eq(o.stop, SALVO_STOP_SUCCESS);
  cr_assert_eq(o.redirects, 2);
  cr_assert_eq(o.attempts, 5, "2 hops + 3 attempts at the target");
  cr_assert_eq(faultd_key_count(other, "flaky", NULL, NULL), 3, "the server saw 3 attempts");
  cr_assert_eq(faultd_count(srv, "/redirect/"), 2);

  /* the history: one record per hop, then one per attempt at the target */
  cr_assert_eq(o.history_len, 5);
  static const long status[] = {302, 307, 503, 503, 200};
  static const salvo_decision_t decision[] = {SALVO_DECIDE_RETRY, SALVO_DECIDE_RETRY, SALVO_DECIDE_RETRY, SALVO_DECIDE_RETRY,
                                              SALVO_DECIDE_STOP};
  static const uint64_t wait[] = {0, 0, 10, 20, 0};
  for (size_t i = 0; i < 5; i++) {
    const salvo_attempt_record_t *h = &o.history[i];
    cr_assert_eq(h->attempt, i + 1, "record %zu numbered %u", i, h->attempt);
    cr_assert_eq(h->status, status[i], "record %zu: status %ld", i, h->status);
    cr_assert_eq(h->error, 0, "record %zu", i);
    cr_assert_eq(h->decision, decision[i], "record %zu", i);
    cr_assert_eq(h->wait_ms, wait[i], "record %zu waited %llu ms", i, (unsigned long long)h->wait_ms);
    cr_assert_eq(h->reached_server, 1, "record %zu", i);
  }
  cr_assert(strstr(o.history[0].reason, "redirect 302") != NULL, "%s", o.history[0].reason);
  cr_assert(strstr(o.history[1].reason, "redirect 307") != NULL, "%s", o.history[1].reason);
  /* the policy counts the target's attempts only: 1, 2, 3 */
  cr_assert_eq(ntold, 3, "the decision callback ran %zu times (hops are not its business)", ntold);
  for (unsigned i = 0; i < 3; i++)
    cr_assert_eq(told[i], i + 1, "decision %u was told attempt %u", i, told[i]);
}

Test(redirect, hops_do_not_add_retries_either) {
  start_other();
  start_with(three_attempts);
  char path[512];
  snprintf(path, sizeof(path), "%s/redirect/302?to=/redirect/302?to=%s/fail-until/9/never", base,
           other_base);
  rout_t o = fetch("GET", path, NULL, NULL);
  cr_assert_eq(o.status, 503);
  cr_assert_eq(o.stop, SALVO_STOP_EXHAUSTED, "%d", o.stop);
  cr_assert_eq(o.attempts, 5, "2 hops + max_attempts at the target");
  cr_assert_eq(o.history_len, 5);
  cr_assert_eq(faultd_key_count(other, "never", NULL, NULL), 3, "max_attempts reached the target");
  cr_assert_eq(o.history[4].decision, SALVO_DECIDE_STOP);
}

Test(redirect, a_hop_that_makes_a_post_a_get_makes_its_retries_those_of_a_get) {
  start_with(three_attempts);
  char path[256];
  /* 500 is retried for idempotent requests only: the GET after a 303 is */
  snprintf(path, sizeof(path), "%s/redirect/303?to=/fail-until/3/after303?status=500", base);
  rout_t o = fetch("POST", path, "body", NULL);
  cr_assert_eq(o.status, 200, "%ld %s", o.status, salvo_err_name(o.error));
  cr_assert_eq(o.attempts, 4, "1 hop + 3 attempts");
  cr_assert_eq(faultd_key_count(srv, "after303", NULL, NULL), 3);
  /* ...and the POST kept by a 307 is not */
  snprintf(path, sizeof(path), "%s/redirect/307?to=/fail-until/3/after307?status=500", base);
  o = fetch("POST", path, "body", NULL);
  cr_assert_eq(o.status, 500);
  cr_assert_eq(o.attempts, 2, "1 hop + 1 attempt");
  cr_assert_eq(o.stop, SALVO_STOP_NOT_RETRYABLE);
  cr_assert_eq(faultd_key_count(srv, "after307", NULL, NULL), 1);
}
