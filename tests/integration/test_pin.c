/* Pinned addresses: opts.resolve and opts.connect_to (curl's --resolve and
 * --connect-to) against salvo-faultd in-process. The made-up name
 * "salvo-pinned.invalid" (and "salvo-backend.invalid") only ever appears in
 * a URL of an engine whose entries pin it to a loopback address: no test
 * here makes a DNS lookup. Refused entries are checked before any request. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <salvo/salvo.h>

#include "fixture.h"
#include "harness.h"

#define PINNED "salvo-pinned.invalid"

TestSuite(pin, .init = fixture_setup, .fini = fixture_teardown, .timeout = 60);

/* What a done callback saw, with the whole body (the harness keeps 128 bytes). */
typedef struct {
  outcome_t o;
  char body[4096];
} seen_t;

static void seen_cb(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  seen_t *s = ud;
  record_cb(req, r, &s->o);
  size_t n = r->body_len < sizeof(s->body) - 1 ? r->body_len : sizeof(s->body) - 1;
  if (r->body != NULL)
    memcpy(s->body, r->body, n);
  s->body[r->body != NULL ? n : 0] = '\0';
}

static void get(const char *url, seen_t *s) {
  salvo_request_t *req;
  cr_assert_eq(salvo_request_new(engine, "GET", url, &req), 0, "request_new %s", url);
  cr_assert_eq(salvo_request_submit(req, seen_cb, s), 0);
  outcomes_run(&loop, &s->o, 1);
}

static void start_pinned(const char *const *resolve, const char *const *connect_to,
                         const char *ca_file, salvo_http_version_t version) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.retry.max_attempts = 1;
  opts.resolve = resolve;
  opts.connect_to = connect_to;
  opts.ca_file = ca_file;
  opts.http_version = version;
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
}

/* The host's key in its stats: "scheme://host:port" of the URL. */
static const char *host_key(size_t index, salvo_host_stats_t *st) {
  cr_assert_eq(salvo_engine_host_stats(engine, index, st), 0);
  return st->host;
}

/* A server whose certificate names |names|, on its TLS port only. */
static faultd_t *tls_server(const char *names) {
  faultd_opts_t fo;
  faultd_opts_init(&fo);
  for (int p = 0; p < FAULTD_PORTS; p++)
    fo.port[p] = p == FAULTD_PORT_TLS ? 0 : -1;
  fo.cert_names = names;
  faultd_t *other;
  cr_assert_eq(faultd_start(&loop, &fo, &other, NULL), 0);
  return other;
}

/* ------------------------------------------------------------ resolve */

Test(pin, resolve_sends_a_pinned_name_to_its_address) {
  int port = faultd_port(srv, FAULTD_PORT_HTTP);
  char entry[96], url[128], host_line[96], key[96];
  snprintf(entry, sizeof(entry), PINNED ":%d:127.0.0.1", port);
  const char *resolve[] = {entry, NULL};
  start_pinned(resolve, NULL, NULL, SALVO_HTTP_AUTO);
  snprintf(url, sizeof(url), "http://" PINNED ":%d/headers", port);
  seen_t s = {0};
  get(url, &s);
  cr_assert_eq(s.o.error, 0, "got %s (%s)", salvo_err_name(s.o.error), s.o.detail);
  cr_assert_eq(s.o.status, 200);
  cr_assert_eq(faultd_count(srv, "/headers"), 1, "the server on 127.0.0.1 answered it");
  snprintf(host_line, sizeof(host_line), "Host: " PINNED ":%d", port);
  cr_assert_not_null(strstr(s.body, host_line), "the server saw the URL's name: %s", s.body);
  salvo_host_stats_t st;
  snprintf(key, sizeof(key), "http://" PINNED ":%d", port);
  cr_assert_str_eq(host_key(0, &st), key, "the host keeps its own name as its key");
  cr_assert_eq(st.requests, 1);
}

/* A second request, and one after a reused handle's reset (a failed
 * transfer marks its handle dirty), still go to the pinned address. */
Test(pin, resolve_holds_for_every_request_and_after_a_handle_reset) {
  int port = faultd_port(srv, FAULTD_PORT_HTTP);
  char entry[96], ok[128], reset[128];
  snprintf(entry, sizeof(entry), PINNED ":%d:127.0.0.1", port);
  const char *resolve[] = {entry, NULL};
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.retry.max_attempts = 1;
  opts.max_in_flight = 1; /* one easy handle for all */
  opts.resolve = resolve;
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
  snprintf(ok, sizeof(ok), "http://" PINNED ":%d/ok", port);
  snprintf(reset, sizeof(reset), "http://" PINNED ":%d/reset", port);
  const char *urls[] = {ok, reset, ok, ok};
  for (int i = 0; i < 4; i++) {
    seen_t s = {0};
    get(urls[i], &s);
    if (urls[i] == reset) {
      cr_assert(s.o.error == SALVO_ERESET || s.o.error == SALVO_ECLOSED, "[%d] got %s", i,
                salvo_err_name(s.o.error));
    } else {
      cr_assert_eq(s.o.error, 0, "[%d] got %s (%s)", i, salvo_err_name(s.o.error), s.o.detail);
      cr_assert_eq(s.o.status, 200);
    }
  }
  cr_assert_eq(faultd_count(srv, "/ok"), 3);
  cr_assert_geq(faultd_count(srv, "/reset"), 1, "libcurl may send it again on a fresh connection");
}

/* IPv6: the address in brackets, as curl wants it. */
Test(pin, resolve_to_an_ipv6_address) {
  faultd_opts_t fo;
  faultd_opts_init(&fo);
  fo.host = "::1";
  for (int p = 0; p < FAULTD_PORTS; p++)
    fo.port[p] = p == FAULTD_PORT_HTTP ? 0 : -1;
  faultd_t *six;
  if (faultd_start(&loop, &fo, &six, NULL) != 0)
    cr_skip_test("no IPv6 loopback here");
  int port = faultd_port(six, FAULTD_PORT_HTTP);
  char entry[96], url[128];
  snprintf(entry, sizeof(entry), PINNED ":%d:[::1]", port);
  const char *resolve[] = {entry, NULL};
  start_pinned(resolve, NULL, NULL, SALVO_HTTP_AUTO);
  snprintf(url, sizeof(url), "http://" PINNED ":%d/ok", port);
  seen_t s = {0};
  get(url, &s);
  unsigned served = faultd_count(six, "/ok");
  faultd_close(six);
  cr_assert_eq(s.o.error, 0, "got %s (%s)", salvo_err_name(s.o.error), s.o.detail);
  cr_assert_eq(s.o.status, 200);
  cr_assert_eq(served, 1, "the server on ::1 answered it");
}

/* TLS keeps the URL's name: a certificate for the pinned name is verified
 * against it, over HTTP/2 and over HTTP/1.1, and the request carries it. */
Test(pin, tls_verifies_the_pinned_name) {
  faultd_t *named = tls_server("DNS:" PINNED);
  int port = faultd_port(named, FAULTD_PORT_TLS);
  char entry[96], url[128], host_line[96];
  snprintf(entry, sizeof(entry), PINNED ":%d:127.0.0.1", port);
  const char *resolve[] = {entry, NULL};
  snprintf(host_line, sizeof(host_line), "Host: " PINNED ":%d", port);
  seen_t s[2] = {0};
  /* HTTP/2 by ALPN */
  start_pinned(resolve, NULL, faultd_cert_file(named), SALVO_HTTP_AUTO);
  snprintf(url, sizeof(url), "https://" PINNED ":%d/ok", port);
  get(url, &s[0]);
  fixture_close_engine();
  /* HTTP/1.1, where the server shows the Host header */
  start_pinned(resolve, NULL, faultd_cert_file(named), SALVO_HTTP_1_1);
  snprintf(url, sizeof(url), "https://" PINNED ":%d/headers", port);
  get(url, &s[1]);
  unsigned served = faultd_count(named, "");
  faultd_close(named);
  for (int i = 0; i < 2; i++)
    cr_assert_eq(s[i].o.error, 0, "[%d] got %s (%s)", i, salvo_err_name(s[i].o.error),
                 s[i].o.detail);
  cr_assert_eq(s[0].o.status, 200);
  cr_assert_eq(s[0].o.http_version, 20, "HTTP/2 over the pinned connection");
  cr_assert_eq(s[1].o.status, 200);
  cr_assert_eq(s[1].o.http_version, 11);
  cr_assert_not_null(strstr(s[1].body, host_line), "the server saw the URL's name: %s", s[1].body);
  cr_assert_eq(served, 2);
}

/* The fixture's certificate names localhost, 127.0.0.1 and ::1, not the
 * pinned name: the same address verifies under its own name, and fails
 * verification under the pinned one. The name is checked, not the address. */
Test(pin, tls_refuses_a_certificate_without_the_pinned_name) {
  int port = faultd_port(srv, FAULTD_PORT_TLS);
  char entry[96], pinned_url[128], address_url[128];
  snprintf(entry, sizeof(entry), PINNED ":%d:127.0.0.1", port);
  const char *resolve[] = {entry, NULL};
  start_pinned(resolve, NULL, faultd_cert_file(srv), SALVO_HTTP_AUTO);
  snprintf(pinned_url, sizeof(pinned_url), "https://" PINNED ":%d/ok", port);
  snprintf(address_url, sizeof(address_url), "https://127.0.0.1:%d/ok", port);
  seen_t s[2] = {0};
  get(address_url, &s[0]);
  get(pinned_url, &s[1]);
  cr_assert_eq(s[0].o.error, 0, "127.0.0.1 is in the certificate: %s (%s)",
               salvo_err_name(s[0].o.error), s[0].o.detail);
  cr_assert_eq(s[0].o.status, 200);
  cr_assert_eq(s[1].o.error, SALVO_ETLSVERIFY, "got %s (%s)", salvo_err_name(s[1].o.error),
               s[1].o.detail);
  cr_assert_eq(s[1].o.attempts, 1, "not retried: a wrong certificate stays wrong");
  cr_assert_eq(faultd_count(srv, "/ok"), 1, "nothing was sent under the unproven name");
}

/* A handle moves between the two lanes (http on one multi handle, https on
 * the other, each with its own DNS cache): the entries hold on both. */
Test(pin, resolve_holds_on_both_lanes_with_one_handle) {
  faultd_t *named = tls_server("DNS:" PINNED);
  int http_port = faultd_port(srv, FAULTD_PORT_HTTP);
  int tls_port = faultd_port(named, FAULTD_PORT_TLS);
  char e1[96], e2[96], http_url[128], tls_url[128];
  snprintf(e1, sizeof(e1), PINNED ":%d:127.0.0.1", http_port);
  snprintf(e2, sizeof(e2), PINNED ":%d:127.0.0.1", tls_port);
  const char *resolve[] = {e1, e2, NULL};
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.retry.max_attempts = 1;
  opts.max_in_flight = 1; /* one easy handle for all */
  opts.resolve = resolve;
  opts.ca_file = faultd_cert_file(named);
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
  snprintf(http_url, sizeof(http_url), "http://" PINNED ":%d/ok", http_port);
  snprintf(tls_url, sizeof(tls_url), "https://" PINNED ":%d/ok", tls_port);
  const char *urls[] = {http_url, tls_url, http_url, tls_url};
  seen_t s[4] = {0};
  for (int i = 0; i < 4; i++)
    get(urls[i], &s[i]);
  unsigned served = faultd_count(named, "/ok");
  faultd_close(named);
  for (int i = 0; i < 4; i++) {
    cr_assert_eq(s[i].o.error, 0, "[%d] %s: %s (%s)", i, urls[i], salvo_err_name(s[i].o.error),
                 s[i].o.detail);
    cr_assert_eq(s[i].o.status, 200);
  }
  cr_assert_eq(faultd_count(srv, "/ok"), 2);
  cr_assert_eq(served, 2);
}

/* ------------------------------------------------------------ connect_to */

Test(pin, connect_to_sends_a_name_and_port_elsewhere) {
  int port = faultd_port(srv, FAULTD_PORT_HTTP);
  char entry[96];
  snprintf(entry, sizeof(entry), PINNED ":80:127.0.0.1:%d", port);
  const char *connect_to[] = {entry, NULL};
  start_pinned(NULL, connect_to, NULL, SALVO_HTTP_AUTO);
  seen_t s[2] = {0};
  get("http://" PINNED "/ok", &s[0]);
  get("http://" PINNED "/headers", &s[1]);
  for (int i = 0; i < 2; i++) {
    cr_assert_eq(s[i].o.error, 0, "[%d] got %s (%s)", i, salvo_err_name(s[i].o.error),
                 s[i].o.detail);
    cr_assert_eq(s[i].o.status, 200);
  }
  cr_assert_str_eq(s[0].body, "ok\n");
  cr_assert_not_null(strstr(s[1].body, "Host: " PINNED "\n"),
                     "the server saw the URL's name and no port: %s", s[1].body);
  cr_assert_eq(faultd_count(srv, "/ok"), 1);
  salvo_host_stats_t st;
  cr_assert_str_eq(host_key(0, &st), "http://" PINNED ":80", "keyed by the URL, not the target");
  cr_assert_eq(st.requests, 2);
}

/* connect_to to a name that a resolve entry pins: both apply, in curl's order. */
Test(pin, connect_to_a_name_that_resolve_pins) {
  int port = faultd_port(srv, FAULTD_PORT_HTTP);
  char via[96], pin[96];
  snprintf(via, sizeof(via), PINNED ":80:salvo-backend.invalid:%d", port);
  snprintf(pin, sizeof(pin), "salvo-backend.invalid:%d:127.0.0.1", port);
  const char *connect_to[] = {via, NULL};
  const char *resolve[] = {pin, NULL};
  start_pinned(resolve, connect_to, NULL, SALVO_HTTP_AUTO);
  seen_t s = {0};
  get("http://" PINNED "/ok", &s);
  cr_assert_eq(s.o.error, 0, "got %s (%s)", salvo_err_name(s.o.error), s.o.detail);
  cr_assert_eq(s.o.status, 200);
  cr_assert_eq(faultd_count(srv, "/ok"), 1);
}

/* Empty fields: any host and port go to the server ("::ADDR:PORT"). */
Test(pin, connect_to_with_empty_fields_matches_any) {
  int port = faultd_port(srv, FAULTD_PORT_HTTP);
  char entry[96];
  snprintf(entry, sizeof(entry), "::127.0.0.1:%d", port);
  const char *connect_to[] = {entry, NULL};
  start_pinned(NULL, connect_to, NULL, SALVO_HTTP_AUTO);
  seen_t s[2] = {0};
  get("http://" PINNED ":8/ok", &s[0]);
  get("http://salvo-backend.invalid/ok", &s[1]);
  for (int i = 0; i < 2; i++) {
    cr_assert_eq(s[i].o.error, 0, "[%d] got %s (%s)", i, salvo_err_name(s[i].o.error),
                 s[i].o.detail);
    cr_assert_eq(s[i].o.status, 200);
  }
  cr_assert_eq(faultd_count(srv, "/ok"), 2);
  cr_assert_eq(salvo_engine_host_count(engine), 2, "two hosts, each under its own name");
}

/* ------------------------------------------------------------ refused entries */

typedef struct {
  int count;
  int level;
  int engine_set;
  char text[512];
} pin_log_t;

static void pin_log(salvo_engine_t *e, salvo_log_level_t level, const char *message, void *ud) {
  pin_log_t *b = ud;
  if (b->count++ == 0) {
    b->level = (int)level;
    b->engine_set = e != NULL;
    snprintf(b->text, sizeof(b->text), "%s", message);
  }
}

/* Each entry is refused in the second place of its list, after a good
 * one: salvo_engine_new() returns SALVO_EINVAL, leaves *out alone and logs
 * the entry's index (not its text) once. */
static void refused(const char *field, const char *bad) {
  const char *good = strcmp(field, "resolve") == 0 ? "good.invalid:80:127.0.0.1"
                                                   : "good.invalid:80:127.0.0.1:81";
  const char *list[] = {good, bad, NULL};
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  if (strcmp(field, "resolve") == 0)
    opts.resolve = list;
  else
    opts.connect_to = list;
  pin_log_t b = {0};
  opts.log_cb = pin_log;
  opts.log_data = &b;
  salvo_engine_t *e = (salvo_engine_t *)&b; /* any value: it must stay */
  cr_assert_eq(salvo_engine_new(&loop, &opts, &e), SALVO_EINVAL, "%s \"%s\" was taken", field,
               bad);
  cr_assert_eq(e, (salvo_engine_t *)&b, "*out untouched");
  cr_assert_eq(b.count, 1, "%s \"%s\": one message, got %d", field, bad, b.count);
  cr_assert_eq(b.level, SALVO_LOG_ERROR);
  cr_assert_eq(b.engine_set, 0);
  char index[32];
  snprintf(index, sizeof(index), "opts.%s[1]", field);
  cr_assert_not_null(strstr(b.text, index), "names the entry by index: %s", b.text);
  if (bad[0] != '\0')
    cr_assert_null(strstr(b.text, bad), "does not quote it: %s", b.text);
}

Test(pin, malformed_resolve_entries_are_refused) {
  static const char *const bad[] = {
      "",                                 /* empty */
      PINNED,                             /* no port */
      PINNED ":8080",                     /* no address */
      PINNED "::127.0.0.1",               /* missing port */
      PINNED ":0:127.0.0.1",              /* port 0 */
      PINNED ":70000:127.0.0.1",          /* port past 65535 */
      ":8080:127.0.0.1",                  /* empty HOST */
      PINNED ":8080:localhost",           /* a name, which would need DNS */
      PINNED ":8080:1.2.3",               /* not an address */
      PINNED ":8080:::1",                 /* IPv6 without brackets */
      PINNED ":8080:127.0.0.1,",          /* empty address */
      "+" PINNED ":8080:127.0.0.1",       /* curl's expiring form */
      "-" PINNED ":8080",                 /* curl's removal form */
      "*:8080:127.0.0.1",                 /* wildcard */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    refused("resolve", bad[i]);
}

Test(pin, malformed_connect_to_entries_are_refused) {
  static const char *const bad[] = {
      "",
      PINNED ":80",                       /* two fields */
      PINNED ":80:127.0.0.1",             /* three */
      PINNED ":80:127.0.0.1:81:82",       /* five */
      PINNED ":0:127.0.0.1:81",           /* port 0 */
      PINNED ":80:127.0.0.1:70000",       /* port past 65535 */
      PINNED ":x:127.0.0.1:81",           /* not a port */
      PINNED ":80:::1:81",                /* IPv6 without brackets */
      PINNED ":80:[::1:81",               /* unclosed bracket */
      PINNED ":80:[localhost]:81",        /* brackets hold IPv6 only */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    refused("connect_to", bad[i]);
}

/* Refused entries leave nothing behind: the loop closes clean (the
 * fixture's teardown checks it) and a good list after works. */
Test(pin, an_engine_after_refused_entries_works) {
  refused("resolve", PINNED ":8080:localhost");
  int port = faultd_port(srv, FAULTD_PORT_HTTP);
  char entry[96], url[128];
  snprintf(entry, sizeof(entry), PINNED ":%d:127.0.0.1", port);
  const char *resolve[] = {entry, NULL};
  start_pinned(resolve, NULL, NULL, SALVO_HTTP_AUTO);
  snprintf(url, sizeof(url), "http://" PINNED ":%d/ok", port);
  seen_t s = {0};
  get(url, &s);
  cr_assert_eq(s.o.error, 0, "got %s (%s)", salvo_err_name(s.o.error), s.o.detail);
}
