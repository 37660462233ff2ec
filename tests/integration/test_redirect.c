/* Redirects against salvo-faultd: off by default; when on, the hop limit, the
 * method rules of RFC 9110, credentials dropped on an origin change, no
 * https-to-http downgrade, http(s) only. */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <salvo/salvo.h>

#include "fixture.h"
#include "harness.h"


typedef struct {
  int calls;
  int error;
  long status;
  unsigned attempts, redirects;
  size_t history_len;
  char url[512];
  char body[2048];
  char detail[256];
} rout_t;

TestSuite(redirect, .init = fixture_setup, .fini = fixture_teardown, .timeout = 60);

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
