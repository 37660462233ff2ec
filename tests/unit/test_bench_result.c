/* salvo-bench's results without I/O but a temporary file: what a completion
 * counts, merging two halves equals the whole, the JSON round trip, the
 * interval log round trip, and when a storm counts as recovered. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bench.h"

static char names[3][BENCH_NAME_MAX] = {"home", "post", "missing"};

typedef struct {
  size_t name, sec;
  int error;
  long status;
  unsigned attempts, sends;
  int64_t latency, service;
} completion_t;

/* A repeatable run of n completions over about 5 seconds. */
static completion_t completion(unsigned i) {
  uint64_t x = (uint64_t)i * 2654435761u + 12345;
  completion_t c = {.name = x % 3,
                    .sec = i * 5 / 4000,
                    .error = x % 17 == 0 ? SALVO_ECONNREFUSED : 0,
                    .status = x % 3 == 2 ? 404 : 200,
                    .attempts = 1 + (unsigned)(x % 5 == 0),
                    .sends = 1 + (unsigned)(x % 5 == 0),
                    .latency = (int64_t)(100 + x % 100000),
                    .service = (int64_t)(50 + x % 50000)};
  return c;
}

static void record(bench_result_t *r, completion_t c) {
  result_record(r, c.name, c.sec, c.error, c.status, c.attempts, c.sends, c.latency, c.service);
}

static bench_result_t *fill(unsigned from, unsigned to, unsigned step) {
  bench_result_t *r = result_new(names, 3);
  cr_assert_not_null(r);
  for (unsigned i = from; i < to; i += step)
    record(r, completion(i));
  for (unsigned i = from; i < to; i += step)
    result_offered(r, completion(i).sec);
  cr_assert_eq(result_finish(r), 0);
  return r;
}

static hdr_t *second_hist(const bench_result_t *r, size_t s) {
  if (s >= r->nsecs || r->secs[s].hist == NULL)
    return hdr_new_default();
  char why[128];
  hdr_t *h = hdr_decode(r->secs[s].hist, strlen(r->secs[s].hist), why, sizeof(why));
  cr_assert_not_null(h, "%s", why);
  return h;
}

static void assert_same(const bench_result_t *a, const bench_result_t *b) {
  cr_assert_eq(memcmp(&a->total, &b->total, sizeof(a->total)), 0, "totals differ");
  cr_assert(hdr_same(a->latency, b->latency), "latency histograms differ");
  cr_assert(hdr_same(a->service, b->service), "service histograms differ");
  cr_assert(hdr_same(a->ok_latency, b->ok_latency), "ok histograms differ");
  cr_assert_eq(a->offered, b->offered);
  cr_assert_eq(a->nnames, b->nnames);
  for (size_t i = 0; i < a->nnames; i++) {
    cr_assert_str_eq(a->names[i].name, b->names[i].name);
    cr_assert_eq(memcmp(&a->names[i].counts, &b->names[i].counts, sizeof(bench_counts_t)), 0,
                 "counts of %s differ", a->names[i].name);
    cr_assert(hdr_same(a->names[i].latency, b->names[i].latency), "%s's histogram differs",
              a->names[i].name);
  }
  cr_assert_eq(a->nsecs, b->nsecs);
  for (size_t s = 0; s < a->nsecs; s++) {
    cr_assert_eq(memcmp(&a->secs[s].counts, &b->secs[s].counts, sizeof(bench_counts_t)), 0,
                 "second %zu's counts differ", s);
    cr_assert_eq(a->secs[s].offered, b->secs[s].offered);
    hdr_t *x = second_hist(a, s), *y = second_hist(b, s);
    cr_assert(hdr_same(x, y), "second %zu's histogram differs", s);
    hdr_free(x);
    hdr_free(y);
  }
}

Test(result, a_completion_counts_where_a_user_looks) {
  bench_result_t *r = result_new(names, 3);
  result_record(r, 0, 0, 0, 200, 1, 1, 1000, 900);
  result_record(r, 1, 0, 0, 503, 4, 5, 2000, 1900);
  result_record(r, 2, 2, SALVO_ECONNREFUSED, 0, 2, 2, 3000, 2900);
  result_offered(r, 0);
  result_finish(r);
  cr_assert_eq(r->total.requests, 3);
  cr_assert_eq(r->total.ok, 1);
  cr_assert_eq(r->total.attempts, 7);
  cr_assert_eq(r->total.sends, 8);
  cr_assert_eq(r->total.errors[0], 1, "a final 503 is an http_status error");
  cr_assert_eq(r->total.errors[-SALVO_ECONNREFUSED], 1);
  cr_assert_str_eq(result_class_name((size_t)-SALVO_ECONNREFUSED), "connect_refused");
  cr_assert_str_eq(result_class_name(0), "http_status");
  cr_assert_eq(r->names[1].counts.errors[0], 1);
  cr_assert_eq(r->names[0].counts.ok, 1);
  cr_assert_eq(hdr_total(r->ok_latency), 1);
  cr_assert_eq(r->nsecs, 3);
  cr_assert_eq(r->secs[0].counts.requests, 2);
  cr_assert_null(r->secs[1].hist, "nothing completed in second 1");
  cr_assert_eq(r->secs[2].counts.errors[-SALVO_ECONNREFUSED], 1);
  hdr_t *h = second_hist(r, 0);
  cr_assert_eq(hdr_total(h), 2);
  cr_assert_eq(hdr_max(h), hdr_max(r->names[1].latency));
  hdr_free(h);
  result_free(r);
}

Test(result, merging_two_halves_equals_the_whole) {
  bench_result_t *whole = fill(0, 4000, 1);
  bench_result_t *even = fill(0, 4000, 2), *odd = fill(1, 4000, 2);
  cr_assert_eq(result_merge(even, odd), 0);
  assert_same(whole, even);
  cr_assert_eq(hdr_percentile(whole->latency, 99), hdr_percentile(even->latency, 99));
  /* and halves by time (what two threads or shards give, one after the other) */
  bench_result_t *first = fill(0, 2000, 1), *second = fill(2000, 4000, 1);
  cr_assert_eq(result_merge(first, second), 0);
  assert_same(whole, first);
  result_free(whole);
  result_free(even);
  result_free(odd);
  result_free(first);
  result_free(second);
}

Test(result, merge_matches_names_by_name_not_by_place) {
  char other[2][BENCH_NAME_MAX] = {"new", "home"};
  bench_result_t *a = result_new(names, 3), *b = result_new(other, 2);
  result_record(a, 0, 0, 0, 200, 1, 1, 10, 10);
  result_record(b, 1, 0, 0, 200, 1, 1, 20, 20);
  result_record(b, 0, 0, 0, 200, 1, 1, 30, 30);
  cr_assert_eq(result_merge(a, b), 0);
  cr_assert_eq(a->nnames, 4);
  cr_assert_eq(a->names[0].counts.requests, 2, "home from both");
  cr_assert_str_eq(a->names[3].name, "new");
  cr_assert_eq(a->names[3].counts.requests, 1);
  result_free(a);
  result_free(b);
}

Test(result, json_round_trip_keeps_every_count_and_histogram) {
  bench_result_t *r = fill(0, 4000, 1);
  snprintf(r->label, sizeof(r->label), "run \"one\"");
  snprintf(r->target, sizeof(r->target), "-i mix.jsonl");
  r->seconds = 5.5;
  r->late = 7;
  r->late_max_us = 12000;
  r->overload_end_s = 2;
  r->recovery_s = -1;
  r->slo_ms = 500;
  r->latency_recovery_s = 3;
  char path[] = "/tmp/salvo-bench-json-XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  FILE *f = fdopen(fd, "w");
  cr_assert_eq(result_write_json(r, f), 0);
  fclose(f);
  char why[256];
  bench_result_t *back = result_read_json(path, why, sizeof(why));
  cr_assert_not_null(back, "%s", why);
  assert_same(r, back);
  cr_assert_str_eq(back->label, "run \"one\"");
  cr_assert_eq(back->late, 7);
  cr_assert_eq(back->late_max_us, 12000);
  cr_assert_eq(back->recovery_s, -1, "never stays never");
  cr_assert_eq(back->latency_recovery_s, 3);
  result_free(back);
  /* a damaged histogram is refused, by name, never half read */
  f = fopen(path, "w");
  fputs("{\"salvo_bench\":1,\"histogram\":\"HISTFAAAAbad\",\"service_histogram\":\"\",\"ok_histogram\":\"\"}", f);
  fclose(f);
  cr_assert_null(result_read_json(path, why, sizeof(why)));
  cr_assert(strstr(why, "\"histogram\"") != NULL, "%s", why);
  f = fopen(path, "w");
  fputs("{\"requests\": 5}", f);
  fclose(f);
  cr_assert_null(result_read_json(path, why, sizeof(why)));
  cr_assert(strstr(why, "not a salvo-bench --json result") != NULL, "%s", why);
  unlink(path);
  result_free(r);
}

Test(result, the_interval_log_holds_every_second) {
  bench_result_t *r = fill(0, 4000, 1);
  r->start_unix_s = 1700000000.25;
  char path[] = "/tmp/salvo-bench-hlog-XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  close(fd);
  cr_assert_eq(result_write_hlog(r, path), 0);
  char why[256];
  bench_result_t *back = result_read_hlog(path, why, sizeof(why));
  cr_assert_not_null(back, "%s", why);
  cr_assert(hdr_same(r->latency, back->latency), "the seconds add up to the whole");
  cr_assert_eq(back->total.requests, r->total.requests);
  cr_assert(fabs(back->start_unix_s - r->start_unix_s) < 0.001);
  cr_assert_eq(back->nsecs, r->nsecs);
  for (size_t s = 0; s < r->nsecs; s++) {
    hdr_t *x = second_hist(r, s), *y = second_hist(back, s);
    cr_assert(hdr_same(x, y), "second %zu", s);
    hdr_free(x);
    hdr_free(y);
  }
  unlink(path);
  result_free(back);
  result_free(r);
}

/* A storm's timeline: offered per second, ok per second, p99 per second. */
static bench_result_t *timeline(const unsigned *offered, const unsigned *ok, const int64_t *lat_us, size_t n) {
  bench_result_t *r = result_new(NULL, 0);
  for (size_t s = 0; s < n; s++) {
    for (unsigned i = 0; i < offered[s]; i++)
      result_offered(r, s);
    for (unsigned i = 0; i < offered[s]; i++)
      result_record(r, 0, s, 0, i < ok[s] ? 200 : 503, 1, 1, lat_us[s], lat_us[s]);
  }
  result_finish(r);
  return r;
}

Test(result, recovery_is_the_first_second_from_which_every_second_is_good) {
  /* overload for 3 s, then relief from second 3 */
  unsigned offered[8] = {100, 100, 100, 50, 50, 50, 50, 50};
  unsigned ok[8] = {10, 10, 10, 20, 48, 50, 49, 50};
  int64_t lat[8] = {900000, 900000, 900000, 900000, 900000, 2000, 2000, 2000};
  bench_result_t *r = timeline(offered, ok, lat, 8);
  cr_assert_eq(result_recovery(r, 3, 0), 1, "second 4 is good and all after it");
  cr_assert_eq(result_recovery(r, 3, 100), 2, "with an SLO of 100 ms, second 5");
  result_free(r);
  /* a second that falls back resets it: metastable until the end is never */
  unsigned ok2[8] = {10, 10, 10, 50, 50, 50, 10, 50};
  r = timeline(offered, ok2, lat, 8);
  cr_assert_eq(result_recovery(r, 3, 0), 4, "from second 7");
  result_free(r);
  /* a client that queued the overload drains it: not recovered while it does */
  {
    unsigned ok4[8] = {100, 100, 100, 100, 100, 50, 50, 50};
    bench_result_t *q = result_new(NULL, 0);
    for (size_t s = 0; s < 8; s++) {
      for (unsigned i = 0; i < offered[s]; i++)
        result_offered(q, s);
      for (unsigned i = 0; i < ok4[s]; i++)
        result_record(q, 0, s, 0, 200, 1, 1, 1000, 1000);
    }
    result_finish(q);
    cr_assert_eq(result_recovery(q, 3, 0), 2, "ok/s above offered is a backlog draining");
    result_free(q);
  }
  unsigned ok3[8] = {10, 10, 10, 5, 5, 5, 5, 5};
  r = timeline(offered, ok3, lat, 8);
  cr_assert_eq(result_recovery(r, 3, 0), -1, "never");
  result_free(r);
}
