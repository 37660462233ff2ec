/* Soak: 100,000 requests of mixed methods (SALVO_SOAK_REQUESTS to change it)
 * through a salvo-faultd process that fails 10-20% of them on every path
 * (503, 500, reset, close), against the whole engine with its defaults.
 * It checks what a long-running daemon needs:
 *   - every request completes exactly once;
 *   - the requests salvo says it sent equal what the server received;
 *   - no POST without an Idempotency-Key reached the server twice;
 *   - RSS at the end is within a few MiB of RSS after warm-up;
 *   - no file descriptor outlives the engine.
 *
 *   SALVO_FAULTD=path/to/salvo-faultd test_soak
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <salvo/salvo.h>

#include "rss.h"

static const char *faultd_path;
static uv_loop_t loop;
static salvo_engine_t *engine;
static int engine_closed;

typedef struct {
  unsigned char calls;
  unsigned char kind;  /* index in kinds[] */
  unsigned sends;
  int error;
} slot_t;

static slot_t *reqs;
static size_t total, submitted, completed;
static uint64_t sends_reported;
static char base[64];
static char *counters; /* /counters at the end */

/* Paths and methods: every path fails some share of its requests. */
static const struct {
  const char *method;
  const char *path;
  int keyed; /* carries an Idempotency-Key */
} kinds[] = {
    {"GET", "/random/15/1?status=503", 0},   {"GET", "/random/15/2?fault=reset", 0},
    {"GET", "/random/10/3?fault=close", 0},  {"GET", "/ok", 0},
    {"PUT", "/random/15/4?status=500", 0},   {"DELETE", "/random/10/5?fault=reset", 0},
    {"HEAD", "/random/20/6?status=503", 0},  {"POST", "/random/15/7?status=500", 0},
    {"POST", "/random/15/8?fault=reset", 0}, {"POST", "/random/10/9?fault=close", 0},
    {"POST", "/random/20/10?status=503", 1}, {"PATCH", "/random/15/11?fault=reset", 1},
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static int fd_count(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL)
    n += e->d_name[0] != '.';
  if (d != NULL)
    closedir(d);
  return n - 1; /* the directory stream itself */
}

static void on_done(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  (void)req;
  slot_t *s = ud;
  s->calls++;
  s->sends = r->sends;
  s->error = r->error;
  sends_reported += r->sends;
  completed++;
}

static void submit_one(size_t i) {
  size_t k = (i * 7 + i / 13) % NKINDS;
  char url[128], id[32];
  snprintf(url, sizeof(url), "%s%s", base, kinds[k].path);
  snprintf(id, sizeof(id), "soak-%zu", i);
  salvo_request_t *req;
  cr_assert_eq(salvo_request_new(engine, kinds[k].method, url, &req), 0);
  cr_assert_eq(salvo_request_add_header(req, "X-Request-ID", id), 0);
  if (kinds[k].keyed) {
    char key[40];
    snprintf(key, sizeof(key), "key-%zu", i);
    cr_assert_eq(salvo_request_add_header(req, "Idempotency-Key", key), 0);
  }
  if (strcmp(kinds[k].method, "POST") == 0 || strcmp(kinds[k].method, "PUT") == 0 ||
      strcmp(kinds[k].method, "PATCH") == 0)
    cr_assert_eq(salvo_request_set_body(req, "soak body", 9), 0);
  reqs[i].kind = (unsigned char)k;
  cr_assert_eq(salvo_request_submit(req, on_done, &reqs[i]), 0);
  submitted++;
}

static void counters_done(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  (void)ud;
  cr_assert_eq(r->status, 200, "/counters: %s", salvo_err_name(r->error));
  counters = salvo_response_take_body(req);
}

static int server_pid;

static void stop_server(void) {
  if (server_pid > 0)
    kill(server_pid, SIGTERM);
  server_pid = 0;
}

static void on_closed(salvo_engine_t *e, void *ud) {
  (void)e;
  (void)ud;
  engine_closed = 1;
}

Test(soak, a_hundred_thousand_requests_under_faults, .timeout = 1200, .fini = stop_server) {
  faultd_path = getenv("SALVO_FAULTD");
  cr_assert_not_null(faultd_path, "set SALVO_FAULTD to the salvo-faultd binary");
  const char *n = getenv("SALVO_SOAK_REQUESTS");
  total = n != NULL ? strtoul(n, NULL, 10) : 100000;
  cr_assert_geq(total, 1000);
  reqs = calloc(total, sizeof(*reqs));
  cr_assert_not_null(reqs);

  /* salvo-faultd as its own process: its counters do not count in our RSS */
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "exec %s --lifetime 900 2>/dev/null", faultd_path);
  FILE *srv = popen(cmd, "r");
  cr_assert_not_null(srv);
  char line[1024];
  cr_assert_not_null(fgets(line, sizeof(line), srv), "salvo-faultd printed no start-up line");
  json_error_t jerr;
  json_t *ports = json_loads(line, 0, &jerr);
  cr_assert_not_null(ports, "start-up line: %s", line);
  snprintf(base, sizeof(base), "http://127.0.0.1:%d",
           (int)json_integer_value(json_object_get(ports, "http")));
  server_pid = (int)json_integer_value(json_object_get(ports, "pid"));
  json_decref(ports);

  /* Counted with the loop open and libcurl initialised: what stays is the engine's. */
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
  int fds_before = fd_count();
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.max_in_flight = 256;
  opts.retry.backoff_base_ms = 20;
  opts.retry.backoff_max_ms = 500;
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);

  /* Keep about 2,000 submitted and not done; warm up on the first 10%. */
  size_t warm = total / 10;
  long rss_warm = 0;
  uint64_t t0 = uv_hrtime();
  while (completed < total) {
    while (submitted < total && submitted - completed < 2000)
      submit_one(submitted);
    uv_run(&loop, UV_RUN_ONCE);
    if (rss_warm == 0 && completed >= warm)
      rss_warm = salvo_tool_rss_kb();
  }
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  long rss_end = salvo_tool_rss_kb();

  salvo_request_t *creq;
  char url[128];
  snprintf(url, sizeof(url), "%s/counters", base);
  cr_assert_eq(salvo_request_new(engine, "GET", url, &creq), 0);
  cr_assert_eq(salvo_request_submit(creq, counters_done, NULL), 0);
  while (counters == NULL)
    uv_run(&loop, UV_RUN_ONCE);

  salvo_engine_stats_t st;
  salvo_engine_stats(engine, &st);
  salvo_engine_close(engine, on_closed, NULL);
  while (!engine_closed)
    uv_run(&loop, UV_RUN_ONCE);
  uv_run(&loop, UV_RUN_DEFAULT);
  int fds_after = fd_count();
  cr_assert_eq(uv_loop_close(&loop), 0, "the engine left handles on the loop");

  json_t *doc = json_loads(counters, 0, &jerr);
  cr_assert_not_null(doc, "counters JSON: %s", jerr.text);
  json_int_t server_total = json_integer_value(json_object_get(doc, "requests"));
  json_t *ids = json_object_get(doc, "request_ids");

  size_t twice = 0, unseen = 0, ok_kinds = 0, proto = 0;
  for (size_t i = 0; i < total; i++) {
    cr_assert_eq(reqs[i].calls, 1, "request %zu completed %d times", i, reqs[i].calls);
    proto += reqs[i].error == SALVO_EPROTO;
    const char *m = kinds[reqs[i].kind].method;
    if (strcmp(m, "POST") == 0 && !kinds[reqs[i].kind].keyed) {
      char id[32];
      snprintf(id, sizeof(id), "soak-%zu", i);
      json_int_t seen = json_integer_value(json_object_get(ids, id));
      twice += seen > 1;
      unseen += seen == 0; /* every fault here comes after the server read the request */
      ok_kinds++;
    }
  }
  json_decref(doc);
  free(counters);
  cr_log_info("soak: %zu requests in %.1f s (%.0f req/s), %llu retries, %llu sends; RSS %ld kB after "
              "warm-up, %ld kB at the end; fds %d before, %d after",
              total, secs, (double)total / secs, (unsigned long long)st.retries,
              (unsigned long long)sends_reported, rss_warm, rss_end, fds_before, fds_after);
  /* none of these faults makes a malformed response: one would mean bytes
   * left over on a connection (as a HEAD with a body once did) */
  cr_assert_eq(proto, 0, "%zu requests ended with protocol_error", proto);
  /* the server must have recorded every keyless POST once: a check that finds
   * no ids at all would pass "never twice" without looking */
  cr_assert_gt(ok_kinds, total / 10, "only %zu keyless POSTs in the mix", ok_kinds);
  cr_assert_eq(unseen, 0, "the server recorded no X-Request-ID for %zu keyless POSTs (of %zu)", unseen,
               ok_kinds);
  cr_assert_eq(twice, 0, "%zu keyless POSTs (of %zu) reached the server twice", twice, ok_kinds);
  cr_assert_eq((uint64_t)server_total, sends_reported + 1,
               "the server received %lld requests, salvo reports %llu sends (+1 for /counters)",
               (long long)server_total, (unsigned long long)sends_reported);
  cr_assert_gt(st.retries, total / 20, "the faults made retries (%llu)", (unsigned long long)st.retries);
#if defined(__SANITIZE_ADDRESS__)
  /* AddressSanitizer keeps freed memory in quarantine (256 MB by default), so
   * RSS grows by design there; the native run checks it, LeakSanitizer the rest. */
  (void)rss_warm;
#else
  cr_assert_lt(rss_end - rss_warm, 8 * 1024, "RSS grew %ld kB after warm-up", rss_end - rss_warm);
#endif
  cr_assert_eq(fds_after, fds_before, "file descriptors: %d before the engine, %d after",
               fds_before, fds_after);

  free(reqs);
  stop_server();
  pclose(srv);
}

