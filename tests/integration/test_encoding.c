/* Compressed responses against salvo-faultd: what is asked for, what is
 * decoded, and the body cap on decoded bytes, a gzip bomb included. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <salvo/salvo.h>

#include "../../tools/rss.h"
#include "fixture.h"
#include "harness.h"

/* What a done callback saw of an encoded response. */
typedef struct {
  outcome_t o;
  int text_ok;             /* the buffered body is "abc...z" repeated, all body_len bytes of it */
  unsigned char first[2];  /* its first two bytes */
  long content_length;     /* the response's Content-Length, -1 if none */
  char encoding[32];       /* its Content-Encoding, "" if none */
  long rss_kb;             /* the process's RSS during the callback, body still held */
  char text[4096];         /* the body's start, NUL-terminated */
} enc_outcome_t;

static void enc_cb(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  enc_outcome_t *e = ud;
  record_cb(req, r, &e->o);
  e->rss_kb = salvo_tool_rss_kb();
  e->text_ok = r->body != NULL;
  for (size_t i = 0; e->text_ok && i < r->body_len; i++)
    e->text_ok = r->body[i] == (char)('a' + i % 26);
  if (r->body != NULL && r->body_len >= 2)
    memcpy(e->first, r->body, 2);
  snprintf(e->text, sizeof(e->text), "%s", r->body != NULL ? r->body : "");
  const char *cl = salvo_response_header(req, "Content-Length");
  e->content_length = cl != NULL ? atol(cl) : -1;
  const char *ce = salvo_response_header(req, "Content-Encoding");
  snprintf(e->encoding, sizeof(e->encoding), "%s", ce != NULL ? ce : "");
}

static void start_engine(int accept_encoding, int tls) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.retry.max_attempts = 1;
  opts.accept_encoding = accept_encoding;
  if (tls)
    opts.ca_file = faultd_cert_file(srv);
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
}

static char *url_on(const char *at, const char *path) {
  static char buf[4][160];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof(buf[k]), "%s%s", at, path);
  return buf[k];
}

/* One GET of |path|; |accept| -1 keeps the engine's accept_encoding, else
 * sets the request's; |header| an extra header line or NULL. */
static void get(const char *at, const char *path, int accept, const char *header,
                enc_outcome_t *e) {
  salvo_request_t *req;
  memset(e, 0, sizeof(*e));
  cr_assert_eq(salvo_request_new(engine, "GET", url_on(at, path), &req), 0);
  if (accept >= 0)
    cr_assert_eq(salvo_request_set_accept_encoding(req, accept), 0);
  if (header != NULL)
    cr_assert_eq(salvo_request_add_header_line(req, header), 0);
  cr_assert_eq(salvo_request_submit(req, enc_cb, e), 0);
  fixture_run_until(&e->o.calls);
  cr_assert_eq(e->o.calls, 1);
}

TestSuite(encoding, .init = fixture_setup, .fini = fixture_teardown, .timeout = 60);

Test(encoding, gzip_and_br_bodies_arrive_decoded_over_http1_and_http2) {
  start_engine(1, 1);
  const char *paths[] = {"/gzip/100000", "/br/100000", "/gzip/0", "/gzip/1"};
  const size_t sizes[] = {100000, 100000, 0, 1};
  for (int tls = 0; tls < 2; tls++) {
    for (size_t i = 0; i < 4; i++) {
      enc_outcome_t e;
      get(tls ? tls_base : base, paths[i], -1, NULL, &e);
      const char *how = tls ? "https (h2)" : "http/1.1";
      cr_assert_eq(e.o.error, 0, "%s %s: %s (%s)", how, paths[i], salvo_err_name(e.o.error),
                   e.o.detail);
      cr_assert_eq(e.o.status, 200);
      cr_assert_eq(e.o.http_version, tls ? 20 : 11);
      cr_assert_str_eq(e.encoding, paths[i][1] == 'g' ? "gzip" : "br", "%s", paths[i]);
      cr_assert_eq(e.o.body_len, sizes[i], "%s %s: body_len %zu counts decoded bytes", how,
                   paths[i], e.o.body_len);
      cr_assert(e.text_ok, "%s %s: the decoded text", how, paths[i]);
      cr_assert_lt(e.content_length, (long)sizes[i] / 10 + 64,
                   "%s: %ld bytes were sent for %zu", paths[i], e.content_length, sizes[i]);
    }
  }
}

static int sent_accept_encoding(const enc_outcome_t *e, const char *value) {
  char line[96];
  snprintf(line, sizeof(line), "Accept-Encoding: %s\n", value);
  return strstr(e->text, line) != NULL;
}

/* /headers echoes the request's headers: Accept-Encoding goes out only when
 * asked for, by the engine or the request, and a caller's own replaces
 * salvo's. */
Test(encoding, accept_encoding_is_sent_only_when_asked_for) {
  start_engine(0, 0);
  enc_outcome_t e;
  get(base, "/headers", -1, NULL, &e);
  cr_assert_eq(e.o.error, 0);
  cr_assert_null(strcasestr(e.text, "accept-encoding"), "engine off: %s", e.text);
  get(base, "/headers", 1, NULL, &e);
  cr_assert(sent_accept_encoding(&e, "deflate, gzip, br, zstd"), "request on: %s", e.text);
  get(base, "/headers", 0, "Accept-Encoding: identity", &e);
  cr_assert(sent_accept_encoding(&e, "identity"), "a caller's own header goes out: %s",
            e.text);
  fixture_close_engine();

  start_engine(1, 0);
  get(base, "/headers", -1, NULL, &e);
  cr_assert(sent_accept_encoding(&e, "deflate, gzip, br, zstd"), "engine on: %s", e.text);
  get(base, "/headers", 0, NULL, &e);
  cr_assert_null(strcasestr(e.text, "accept-encoding"), "request off: %s", e.text);
  get(base, "/headers", -1, "Accept-Encoding: gzip", &e);
  cr_assert(sent_accept_encoding(&e, "gzip"), "the caller's: %s", e.text);
  cr_assert_null(strstr(e.text, "zstd"), "the caller's replaces salvo's: %s", e.text);
}

/* Off, a body the server compressed anyway arrives as it was sent, and
 * counts as such; a caller's own Accept-Encoding does not make salvo
 * decode. On, with the caller's own header, it is decoded. */
Test(encoding, off_the_gzip_body_arrives_as_the_server_sent_it) {
  start_engine(0, 0);
  for (int own = 0; own < 2; own++) {
    enc_outcome_t e;
    get(base, "/gzip/100000", -1, own ? "Accept-Encoding: gzip" : NULL, &e);
    cr_assert_eq(e.o.error, 0, "%s", salvo_err_name(e.o.error));
    cr_assert_gt(e.content_length, 0);
    cr_assert_eq(e.o.body_len, (size_t)e.content_length, "own header %d: body_len %zu, sent %ld",
                 own, e.o.body_len, e.content_length);
    cr_assert(e.first[0] == 0x1f && e.first[1] == 0x8b, "the gzip magic, undecoded");
  }
  enc_outcome_t e;
  get(base, "/gzip/100000", 1, "Accept-Encoding: gzip", &e);
  cr_assert_eq(e.o.body_len, 100000, "on, with the caller's header: decoded");
  cr_assert(e.text_ok);
}

Test(encoding, a_body_that_does_not_decode_is_a_protocol_error) {
  start_engine(1, 1);
  for (int tls = 0; tls < 2; tls++) {
    enc_outcome_t e;
    get(tls ? tls_base : base, "/bad-gzip", -1, NULL, &e);
    cr_assert_eq(e.o.error, SALVO_EPROTO, "tls %d: %s (%s)", tls, salvo_err_name(e.o.error),
                 e.o.detail);
    cr_assert_eq(e.o.status, 200);
    cr_assert_eq(e.o.reached, 1);
  }
  enc_outcome_t e;
  get(base, "/bad-gzip", 0, NULL, &e);
  cr_assert_eq(e.o.error, 0, "off: nothing is decoded, so nothing fails");
  cr_assert_str_eq(e.o.body, "this is not gzip\n");
}

static size_t streamed;
static long stream_rss_max;

static int stream_cb(salvo_request_t *req, const char *data, size_t len, void *ud) {
  (void)req;
  (void)data;
  (void)ud;
  if (streamed / (1 << 20) != (streamed + len) / (1 << 20)) { /* each MiB */
    long kb = salvo_tool_rss_kb();
    if (kb > stream_rss_max)
      stream_rss_max = kb;
  }
  streamed += len;
  return 0;
}

/* max_body_size counts decoded bytes, at the exact byte, buffered or
 * streamed: a body of 60 bytes on the wire that decodes to 10001 is over a
 * cap of 10000. Off, the same response is 60 bytes and within it. A
 * Content-Length over the cap (1 GiB of zeros in 1 MB, under a cap of
 * 500000 that 30 decoded chunks of 16 KiB would fit in) ends it at the
 * headers, before any body byte. */
Test(encoding, the_body_cap_counts_decoded_bytes) {
  start_engine(1, 0);
  const struct {
    const char *path;
    int stream, accept, error;
    size_t cap;
  } cases[] = {
      {"/gzip/10000", 0, 1, 0, 10000},
      {"/gzip/10001", 0, 1, SALVO_EBODYLIMIT, 10000},
      {"/gzip/10000", 1, 1, 0, 10000},
      {"/gzip/10001", 1, 1, SALVO_EBODYLIMIT, 10000},
      {"/br/10001", 0, 1, SALVO_EBODYLIMIT, 10000},
      {"/gzip/10001", 0, 0, 0, 10000},
      {"/gzip/10001", 1, 0, 0, 10000},
      {"/gzip-bomb/1", 0, 1, SALVO_EBODYLIMIT, 500000},
      {"/gzip-bomb/1", 1, 1, SALVO_EBODYLIMIT, 500000},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    enc_outcome_t e;
    memset(&e, 0, sizeof(e));
    salvo_request_t *req;
    streamed = 0;
    cr_assert_eq(salvo_request_new(engine, "GET", url_on(base, cases[i].path), &req), 0);
    cr_assert_eq(salvo_request_set_max_body_size(req, cases[i].cap), 0);
    cr_assert_eq(salvo_request_set_accept_encoding(req, cases[i].accept), 0);
    if (cases[i].stream)
      cr_assert_eq(salvo_request_set_data_cb(req, stream_cb), 0);
    cr_assert_eq(salvo_request_submit(req, enc_cb, &e), 0);
    fixture_run_until(&e.o.calls);
    const char *how = cases[i].stream ? "streamed" : "buffered";
    cr_assert_eq(e.o.error, cases[i].error, "%s %s accept %d: %s", how, cases[i].path,
                 cases[i].accept, salvo_err_name(e.o.error));
    cr_assert_leq(e.o.body_len, cases[i].cap);
    if (cases[i].stream)
      cr_assert_eq(streamed, e.o.body_len, "body_len counts what the data callback got");
    if (cases[i].error == 0 && cases[i].accept)
      cr_assert_eq(e.o.body_len, cases[i].cap, "%s %s: the whole decoded body", how,
                   cases[i].path);
    if (!cases[i].accept)
      cr_assert_lt(e.o.body_len, 100, "off: the encoded bytes");
    if (strncmp(cases[i].path, "/gzip-bomb/", 11) == 0)
      cr_assert_eq(e.o.body_len, 0, "%s: %zu bytes, but Content-Length %ld is over the cap", how,
                   e.o.body_len, e.content_length);
  }
}

/* 10 GiB of zeros in 10.6 MB of gzip: the attempt ends at 16 MiB of decoded
 * body, quickly, holding no more than that. */
static void bomb(int stream) {
  enum { CAP = 16 << 20 };
  start_engine(1, 0);
  enc_outcome_t warm;
  get(base, "/gzip/1000", -1, NULL, &warm); /* libcurl and zlib set up before the baseline */
  cr_assert_eq(warm.o.error, 0);
  long rss_before = salvo_tool_rss_kb();
  cr_assert_gt(rss_before, 0);
  stream_rss_max = rss_before;
  streamed = 0;
  enc_outcome_t e;
  memset(&e, 0, sizeof(e));
  salvo_request_t *req;
  salvo_engine_stats_t before, after;
  salvo_engine_stats(engine, &before);
  cr_assert_eq(salvo_request_new(engine, "GET", url_on(base, "/gzip-bomb/10"), &req), 0);
  cr_assert_eq(salvo_request_set_max_body_size(req, CAP), 0);
  if (stream)
    cr_assert_eq(salvo_request_set_data_cb(req, stream_cb), 0);
  uint64_t t0 = uv_hrtime();
  cr_assert_eq(salvo_request_submit(req, enc_cb, &e), 0);
  fixture_run_until(&e.o.calls);
  uint64_t ms = ms_since(t0);
  salvo_engine_stats(engine, &after);
  const char *how = stream ? "streamed" : "buffered";
  cr_assert_eq(e.o.error, SALVO_EBODYLIMIT, "%s: %s (%s)", how, salvo_err_name(e.o.error),
               e.o.detail);
  cr_assert_eq(e.o.status, 200);
  cr_assert_eq(e.o.attempts, 1, "a body over the cap is not fetched again");
  cr_assert_gt(e.content_length, 10 * 1000 * 1000, "the bomb's 10 MB on the wire");
  cr_assert_leq(e.o.body_len, CAP, "%s: %zu decoded bytes kept", how, e.o.body_len);
  cr_assert_geq(e.o.body_len, CAP - (1 << 20), "%s: it took decoded bytes up to the cap", how);
  if (stream)
    cr_assert_eq(streamed, e.o.body_len);
  cr_assert_eq(after.bytes_received - before.bytes_received, e.o.body_len,
               "the engine counts the decoded bytes taken, not the chunk refused");
  cr_assert_lt(ms, 20000, "%s: took %llu ms", how, (unsigned long long)ms);
  long grew_kb = (stream ? stream_rss_max : e.rss_kb) - rss_before;
#if defined(__SANITIZE_ADDRESS__)
  /* AddressSanitizer keeps freed memory (the buffer's smaller copies) in
   * quarantine, so RSS grows by design there: the native run checks it. */
#else
  if (getenv("SALVO_UNDER_VALGRIND") == NULL) /* valgrind's own allocator: likewise */
    cr_assert_leq(grew_kb, (stream ? 0 : CAP / 1024) + 8 * 1024, "%s: RSS grew by %ld KiB", how,
                  grew_kb);
#endif
  cr_assert_eq(faultd_count(srv, "/gzip-bomb/"), 1);
  printf("gzip bomb %s: %zu bytes kept in %llu ms, RSS +%ld KiB\n", how, e.o.body_len,
         (unsigned long long)ms, grew_kb);
}

Test(encoding, a_gzip_bomb_stops_at_the_cap_buffered) { bomb(0); }
Test(encoding, a_gzip_bomb_stops_at_the_cap_streamed) { bomb(1); }
