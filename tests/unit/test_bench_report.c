/* salvo-bench's HTML report (bench/salvo-bench/report.c): results built
 * with known counts, the page read back as a user's browser would get it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static char names[3][BENCH_NAME_MAX] = {"get /a", "<script>alert(1)</script>", "a&b \"q\" 'x'"};

/* Five seconds; per second: name 0 ok 10 times in 1 ms (service 0.8) with 1 attempt;
 * name 1 ok 4 times in 1.5 ms (1.2) with 2 attempts and 2 failing with a 503 in
 * 1.8 ms (1.7) after 3; name 2 one attempt timeout in 2 ms (1.9). Offered: 17 per
 * second. (Below 2048 us HdrHistogram keeps every microsecond: the values are exact.) */
#define SECS 5
static bench_result_t *make_run(const char *label) {
  bench_result_t *r = result_new(names, 3);
  cr_assert_not_null(r);
  snprintf(r->label, sizeof(r->label), "%s", label);
  snprintf(r->target, sizeof(r->target), "-i <mix>.txt (3 entries, 3 names)");
  snprintf(r->shape, sizeof(r->shape), "17 req/s for 5 s");
  r->open_loop = 1;
  r->concurrency = 64;
  r->seconds = SECS;
  r->start_unix_s = 1700000000;
  for (size_t s = 0; s < SECS; s++) {
    for (int k = 0; k < 17; k++)
      result_offered(r, s);
    for (int k = 0; k < 10; k++)
      result_record(r, 0, s, 0, 200, 1, 1, 1000, 800);
    for (int k = 0; k < 4; k++)
      result_record(r, 1, s, 0, 200, 2, 2, 1500, 1200);
    for (int k = 0; k < 2; k++)
      result_record(r, 1, s, 0, 503, 3, 3, 1800, 1700);
    result_record(r, 2, s, SALVO_EATTEMPT, 0, 1, 1, 2000, 1900);
  }
  cr_assert_eq(result_finish(r), 0);
  return r;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "%s: %s", path, strerror(errno));
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    fwrite(chunk, 1, n, m);
  fclose(f);
  fclose(m);
  return buf;
}

/* The page of runs[0..n), as text. */
static char *page_of(const bench_result_t *const *runs, size_t n) {
  char path[] = "/tmp/test_bench_report_XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  close(fd);
  cr_assert_eq(report_write(path, runs, n), 0, "report_write: %s", strerror(errno));
  char *text = slurp(path);
  unlink(path);
  cr_assert(strcasestr(text, "<script") == NULL, "no script element, escaped or not");
  cr_assert(strstr(text, "<svg") != NULL);
  return text;
}

/* The text of the first <tr class="cls"> after from, up to its </tr>; malloc'd. */
static char *row_of(const char *from, const char *cls) {
  char open[64];
  snprintf(open, sizeof(open), "<tr class=\"%s\">", cls);
  const char *a = strstr(from, open);
  cr_assert_not_null(a, "no row %s", open);
  const char *b = strstr(a, "</tr>");
  cr_assert_not_null(b);
  return strndup(a, (size_t)(b - a));
}

static size_t count_of(const char *text, const char *needle) {
  size_t n = 0;
  for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
    n++;
  return n;
}

Test(bench_report, every_name_shows_escaped) {
  bench_result_t *r = make_run("mine");
  const bench_result_t *runs[] = {r};
  char *page = page_of(runs, 1);
  cr_assert(strstr(page, "get /a") != NULL);
  cr_assert(strstr(page, "&lt;script&gt;alert(1)&lt;/script&gt;") != NULL);
  cr_assert(strstr(page, "a&amp;b &quot;q&quot; &#39;x&#39;") != NULL);
  cr_assert(strstr(page, "-i &lt;mix&gt;.txt (3 entries, 3 names)") != NULL, "the target, escaped");
  cr_assert(strstr(page, "<mix>") == NULL);
  free(page);
  result_free(r);
}

Test(bench_report, the_totals_row_holds_exact_counts) {
  bench_result_t *r = make_run("mine");
  const bench_result_t *runs[] = {r};
  char *page = page_of(runs, 1);
  char *total = row_of(strstr(page, "<table class=\"names\">"), "total");
  cr_assert(strstr(total, "<td class=\"requests\">85</td>") != NULL, "%s", total);
  cr_assert(strstr(total, "<td class=\"ok\">70</td>") != NULL, "%s", total);
  cr_assert(strstr(total, "<span class=\"class\">http_status</span> 10<") != NULL, "%s", total);
  cr_assert(strstr(total, "<span class=\"class\">attempt_timeout</span> 5<") != NULL, "%s", total);
  /* (50 * 1 + 20 * 2 + 10 * 3 + 5 * 1) / 85 attempts per request */
  cr_assert(strstr(total, "<td class=\"attempts\">1.471</td>") != NULL, "%s", total);
  size_t len = strlen(total);
  cr_assert(len > 14 && strcmp(total + len - 14, "<td>2.000</td>") == 0, "max 2 ms: %s", total);
  free(total);
  /* name 1's row: 30 requests, 20 ok, 10 http_status, 2.333 attempts, p50 1.5 ms */
  char *at = strstr(page, "<td class=\"name\">&lt;script&gt;");
  cr_assert_not_null(at);
  const char *end = strstr(at, "</tr>");
  char *row = strndup(at, (size_t)(end - at));
  cr_assert(strstr(row, "<td class=\"requests\">30</td><td class=\"ok\">20</td>") != NULL, "%s", row);
  cr_assert(strstr(row, "<span class=\"class\">http_status</span> 10<") != NULL, "%s", row);
  cr_assert(strstr(row, "<td class=\"attempts\">2.333</td><td>1.500</td>") != NULL, "%s", row);
  free(row);
  /* the header */
  char *requests = row_of(page, "requests");
  cr_assert(strstr(requests, "<td>85</td>") != NULL, "%s", requests);
  free(requests);
  char *ok = row_of(page, "ok");
  cr_assert(strstr(ok, "<td>70 (82.35 %)</td>") != NULL, "%s", ok);
  free(ok);
  char *tp = row_of(page, "throughput");
  cr_assert(strstr(tp, "<td>17 req/s</td>") != NULL, "%s", tp);
  free(tp);
  free(page);
  result_free(r);
}

Test(bench_report, percentiles_of_the_latency_and_the_service_time) {
  bench_result_t *r = make_run("mine");
  const bench_result_t *runs[] = {r};
  char *page = page_of(runs, 1);
  const char *t = strstr(page, "<table class=\"percentiles\">");
  cr_assert_not_null(t);
  cr_assert(strstr(t, "latency ms</th><th>service ms</th>") != NULL, "open loop: both columns");
  /* 50 of 85 in 1 ms (service 0.8 ms); p99 is among the 5 in 2 ms (service 1.9) */
  cr_assert(strstr(t, "<tr><td class=\"name\">p50</td><td>1.000</td><td>0.800</td></tr>") != NULL, "%s", t);
  cr_assert(strstr(t, "<tr><td class=\"name\">p90</td><td>1.800</td><td>1.700</td></tr>") != NULL, "%s", t);
  cr_assert(strstr(t, "<tr><td class=\"name\">p99</td><td>2.000</td><td>1.900</td></tr>") != NULL, "%s", t);
  cr_assert(strstr(page, "service time") != NULL, "the service curve in the legend");
  free(page);
  result_free(r);
}

Test(bench_report, the_charts_have_a_line_per_series) {
  bench_result_t *r = make_run("mine");
  const bench_result_t *runs[] = {r};
  char *page = page_of(runs, 1);
  const char *lines[] = {"mine: latency</title>", "mine: service time</title>", "mine: p50</title>",
                         "mine: p99</title>", "mine: completed</title>", "mine: ok (goodput)</title>",
                         "mine: errors</title>", "mine: offered</title>", "mine: attempts per request</title>"};
  for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
    cr_assert_eq(count_of(page, lines[i]), 1, "%s", lines[i]);
  cr_assert_eq(count_of(page, "<svg class=\"chart\""), 4);
  cr_assert(strstr(page, "overload ends") == NULL, "not a storm");
  cr_assert(strstr(page, "class=\"slo\"") == NULL && strstr(page, "latency-recovery") == NULL, "no SLO");
  cr_assert(strstr(page, "partial second") == NULL, "5.0 s: five whole seconds");
  free(page);
  result_free(r);
}

/* The last partial second is left out of the time charts: it would look like a drop. */
Test(bench_report, a_last_partial_second_is_left_out) {
  bench_result_t *r = make_run("mine");
  result_record(r, 0, SECS, 0, 200, 1, 1, 1000, 800); /* one completion in second 5 */
  cr_assert_eq(result_finish(r), 0);
  r->seconds = SECS + 0.2;
  const bench_result_t *runs[] = {r};
  char *page = page_of(runs, 1);
  cr_assert(strstr(page, "the last partial second is left out") != NULL);
  /* the p99 line: one subpath of five points, the seconds' middles, none at 5.5 s */
  const char *p99 = strstr(page, "mine: p99</title>");
  cr_assert_not_null(p99);
  const char *d = p99;
  while (d > page && strncmp(d, " d=\"", 4) != 0)
    d--;
  char *path = strndup(d, (size_t)(p99 - d));
  cr_assert_eq(count_of(path, "M"), 1, "%s", path);
  cr_assert_eq(count_of(path, "L"), SECS - 1, "%s", path);
  free(path);
  free(page);
  result_free(r);
}

Test(bench_report, a_compare_names_both_runs) {
  bench_result_t *a = make_run("before <1>");
  bench_result_t *b = make_run("after");
  b->open_loop = 0;
  const bench_result_t *runs[] = {a, b};
  char *page = page_of(runs, 2);
  /* the header: a column per run, headed by its label */
  const char *head = strstr(page, "<table class=\"summary\"><tr>");
  cr_assert_not_null(head);
  char *labels = strndup(head, (size_t)(strstr(head, "</tr>") - head));
  const char *first = strstr(labels, "</span>before &lt;1&gt;</th>");
  cr_assert(first != NULL && strstr(first, "</span>after</th>") != NULL, "%s", labels);
  free(labels);
  char *requests = row_of(page, "requests");
  cr_assert(strstr(requests, "<td>85</td><td>85</td>") != NULL, "%s", requests);
  free(requests);
  cr_assert(strstr(page, "<title>salvo-bench: before &lt;1&gt; vs after</title>") != NULL);
  cr_assert_eq(count_of(page, "<tr class=\"total\">"), 2, "a totals row per run");
  cr_assert_eq(count_of(page, "before &lt;1&gt;: p99</title>"), 1);
  cr_assert_eq(count_of(page, "after: p99</title>"), 1);
  cr_assert_eq(count_of(page, "after: service time</title>"), 0, "closed loop: no service curve");
  cr_assert(strstr(page, "#0072b2") != NULL && strstr(page, "#d55e00") != NULL, "a colour per run");
  free(page);
  result_free(a);
  result_free(b);
}

Test(bench_report, a_storm_says_never_and_marks_the_overload) {
  bench_result_t *runs[4];
  const char *policy[] = {"none", "naive", "default", "adaptive"};
  for (size_t i = 0; i < 4; i++) {
    runs[i] = make_run(policy[i]);
    runs[i]->overload_end_s = 2;
    runs[i]->recovery_s = i == 1 ? -1 : (double)i;
    runs[i]->slo_ms = 1000;
    runs[i]->latency_recovery_s = i < 2 ? -1 : (double)i + 1;
  }
  char *page = page_of((const bench_result_t *const *)runs, 4);
  char *rec = row_of(page, "recovery");
  cr_assert(strstr(rec, "<td>0 s after the overload ended</td><td>never</td><td>2 s after") != NULL, "%s", rec);
  free(rec);
  char *lrec = row_of(page, "latency-recovery");
  cr_assert(strstr(lrec, "<td>never (SLO: p99 1000 ms)</td><td>never (SLO: p99 1000 ms)</td>"
                         "<td>3 s after the overload ended (SLO: p99 1000 ms)</td>") != NULL, "%s", lrec);
  free(lrec);
  cr_assert_eq(count_of(page, "<line class=\"slo\""), 1, "the SLO on the latency chart, once");
  cr_assert(strstr(page, "naive (recovery never)") != NULL, "the legend");
  cr_assert(strstr(page, "adaptive (recovery 3 s)") != NULL, "the legend");
  /* one overload marker per time chart (the four runs share it) */
  cr_assert_eq(count_of(page, "<line class=\"marker\""), 4, "latency, goodput, throughput, attempts");
  cr_assert(strstr(page, "<h2>Goodput over time</h2>") != NULL, "several runs: a goodput chart of their own");
  free(page);
  for (size_t i = 0; i < 4; i++)
    result_free(runs[i]);
}

Test(bench_report, an_interval_log_has_no_outcomes) {
  bench_result_t *r = result_new(NULL, 0);
  cr_assert_not_null(r);
  snprintf(r->label, sizeof(r->label), "from.hlog");
  /* as result_read_hlog() leaves it: requests and latencies only */
  r->total.requests = 3;
  hdr_record(r->latency, 1000);
  hdr_record(r->latency, 1000);
  hdr_record(r->latency, 4000);
  r->seconds = 1;
  const bench_result_t *runs[] = {r};
  char *page = page_of(runs, 1);
  char *total = row_of(page, "total");
  cr_assert(strstr(total, "<td class=\"requests\">3</td><td class=\"ok\">&mdash;</td>") != NULL, "%s", total);
  free(total);
  cr_assert(strstr(page, "<tr class=\"ok\">") == NULL, "no ok in the header");
  cr_assert(strstr(page, "from.hlog: errors</title>") == NULL);
  cr_assert(strstr(page, "no data") != NULL, "no seconds: the time charts say so");
  free(page);
  result_free(r);
}

Test(bench_report, errors) {
  bench_result_t *r = make_run("mine");
  const bench_result_t *runs[] = {r, NULL};
  errno = 0;
  cr_assert_eq(report_write("/tmp/never-written.html", runs, 0), -1);
  cr_assert_eq(errno, EINVAL);
  errno = 0;
  cr_assert_eq(report_write("/tmp/never-written.html", runs, 2), -1, "a NULL run");
  cr_assert_eq(errno, EINVAL);
  cr_assert_eq(access("/tmp/never-written.html", F_OK), -1);
  errno = 0;
  cr_assert_eq(report_write("/nonexistent-dir/report.html", runs, 1), -1);
  cr_assert_eq(errno, ENOENT);
  errno = 0;
  cr_assert_eq(report_write("/dev/full", runs, 1), -1, "a write error");
  cr_assert_eq(errno, ENOSPC);
  result_free(r);
}
