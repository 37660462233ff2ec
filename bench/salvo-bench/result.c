/* A run's result: counts, histograms, seconds, names. Recorded by run.c,
 * merged across threads, shards and machines, written and read as JSON,
 * written as an HdrHistogram interval log. Owner of bench_result_t. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bench.h"

#define MAX_SECS 86400

static const double pcts[] = {50, 75, 90, 95, 99, 99.9, 99.99, 100};
#define NPCTS (sizeof(pcts) / sizeof(pcts[0]))

const char *result_class_name(size_t i) {
  if (i == 0)
    return "http_status";
  const char *n = salvo_err_name(-(int)i);
  return n != NULL ? n : "unknown";
}

static size_t class_of(const char *name) {
  for (size_t i = 0; i < BENCH_NCLASSES; i++)
    if (strcmp(result_class_name(i), name) == 0)
      return i;
  return BENCH_NCLASSES;
}

bench_result_t *result_new(char (*names)[BENCH_NAME_MAX], size_t nnames) {
  bench_result_t *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return NULL;
  r->shards = 1;
  r->threads = 1;
  r->latency = hdr_new_default();
  r->service = hdr_new_default();
  r->ok_latency = hdr_new_default();
  r->live = hdr_new_default();
  r->names = calloc(nnames > 0 ? nnames : 1, sizeof(*r->names));
  int bad = r->latency == NULL || r->service == NULL || r->ok_latency == NULL || r->live == NULL ||
            r->names == NULL;
  for (size_t i = 0; i < nnames && !bad; i++) {
    memcpy(r->names[i].name, names[i], BENCH_NAME_MAX);
    r->names[i].name[BENCH_NAME_MAX - 1] = '\0';
    r->nnames++;
    bad = (r->names[i].latency = hdr_new_default()) == NULL;
  }
  if (bad) {
    result_free(r);
    return NULL;
  }
  return r;
}

void result_free(bench_result_t *r) {
  if (r == NULL)
    return;
  hdr_free(r->latency);
  hdr_free(r->service);
  hdr_free(r->ok_latency);
  hdr_free(r->live);
  for (size_t i = 0; i < r->nnames; i++)
    hdr_free(r->names[i].latency);
  free(r->names);
  for (size_t i = 0; i < r->nsecs; i++)
    free(r->secs[i].hist);
  free(r->secs);
  free(r);
}

/* secs[] long enough for second |sec|; -1 when past a day or out of memory. */
static int grow(bench_result_t *r, size_t sec) {
  if (sec < r->nsecs)
    return 0;
  if (sec >= MAX_SECS)
    return -1;
  size_t n = sec + 1; /* once a second: no need to grow ahead */
  bench_second_t *s = realloc(r->secs, n * sizeof(*s));
  if (s == NULL)
    return -1;
  memset(s + r->nsecs, 0, (n - r->nsecs) * sizeof(*s));
  r->secs = s;
  r->nsecs = n;
  return 0;
}

/* Adds histogram h to the encoded one of second |sec|. */
static int add_to_second(bench_result_t *r, size_t sec, const hdr_t *h) {
  if (hdr_total(h) == 0)
    return 0;
  if (grow(r, sec) != 0)
    return -1;
  bench_second_t *s = &r->secs[sec];
  char *enc;
  if (s->hist == NULL) {
    enc = hdr_encode(h);
  } else {
    char why[128];
    hdr_t *old = hdr_decode(s->hist, strlen(s->hist), why, sizeof(why));
    if (old == NULL)
      return -1;
    hdr_add(old, h);
    enc = hdr_encode(old);
    hdr_free(old);
  }
  if (enc == NULL)
    return -1;
  free(s->hist);
  s->hist = enc;
  return 0;
}

int result_finish(bench_result_t *r) {
  int rc = add_to_second(r, r->live_sec, r->live);
  hdr_reset(r->live);
  return rc;
}

static void count(bench_counts_t *c, int error, long status, unsigned attempts, unsigned sends) {
  c->requests++;
  c->attempts += attempts;
  c->sends += sends;
  if (error == 0 && status < 400)
    c->ok++;
  else
    c->errors[error == 0 ? 0 : (-error < BENCH_NCLASSES ? (size_t)-error : 0)]++;
}

void result_record(bench_result_t *r, size_t name, size_t sec, int error, long status,
                   unsigned attempts, unsigned sends, int64_t latency_us, int64_t service_us) {
  if (sec >= MAX_SECS)
    sec = MAX_SECS - 1;
  if (sec != r->live_sec) {
    result_finish(r);
    r->live_sec = sec;
  }
  if (grow(r, sec) == 0)
    count(&r->secs[sec].counts, error, status, attempts, sends);
  count(&r->total, error, status, attempts, sends);
  hdr_record(r->live, latency_us);
  hdr_record(r->latency, latency_us);
  hdr_record(r->service, service_us);
  if (error == 0 && status < 400)
    hdr_record(r->ok_latency, latency_us);
  if (name < r->nnames) {
    count(&r->names[name].counts, error, status, attempts, sends);
    hdr_record(r->names[name].latency, latency_us);
  }
}

void result_offered(bench_result_t *r, size_t sec) {
  r->offered++;
  if (sec < MAX_SECS && grow(r, sec) == 0)
    r->secs[sec].offered++;
}

static void add_counts(bench_counts_t *into, const bench_counts_t *from) {
  into->requests += from->requests;
  into->ok += from->ok;
  into->attempts += from->attempts;
  into->sends += from->sends;
  for (size_t i = 0; i < BENCH_NCLASSES; i++)
    into->errors[i] += from->errors[i];
}

int result_merge(bench_result_t *into, const bench_result_t *from) {
  add_counts(&into->total, &from->total);
  hdr_add(into->latency, from->latency);
  hdr_add(into->service, from->service);
  hdr_add(into->ok_latency, from->ok_latency);
  into->offered += from->offered;
  into->late += from->late;
  into->unsent += from->unsent;
  if (from->late_max_us > into->late_max_us)
    into->late_max_us = from->late_max_us;
  if (from->seconds > into->seconds)
    into->seconds = from->seconds;
  if (from->max_rss_kib > into->max_rss_kib)
    into->max_rss_kib = from->max_rss_kib;
  if (into->start_unix_s == 0 || (from->start_unix_s > 0 && from->start_unix_s < into->start_unix_s))
    into->start_unix_s = from->start_unix_s;
  for (size_t i = 0; i < from->nnames; i++) {
    size_t k = 0;
    while (k < into->nnames && strcmp(into->names[k].name, from->names[i].name) != 0)
      k++;
    if (k == into->nnames) {
      bench_name_stats_t *n = realloc(into->names, (into->nnames + 1) * sizeof(*n));
      if (n == NULL)
        return -1;
      into->names = n;
      memset(&n[k], 0, sizeof(n[k]));
      memcpy(n[k].name, from->names[i].name, BENCH_NAME_MAX);
      if ((n[k].latency = hdr_new_default()) == NULL)
        return -1;
      into->nnames++;
    }
    add_counts(&into->names[k].counts, &from->names[i].counts);
    hdr_add(into->names[k].latency, from->names[i].latency);
  }
  if (from->nsecs > 0 && grow(into, from->nsecs - 1) != 0)
    return -1;
  for (size_t s = 0; s < from->nsecs; s++) {
    add_counts(&into->secs[s].counts, &from->secs[s].counts);
    into->secs[s].offered += from->secs[s].offered;
    if (from->secs[s].hist != NULL) {
      char why[128];
      hdr_t *h = hdr_decode(from->secs[s].hist, strlen(from->secs[s].hist), why, sizeof(why));
      int rc = h != NULL ? add_to_second(into, s, h) : -1;
      hdr_free(h);
      if (rc != 0)
        return -1;
    }
  }
  return 0;
}

/* ------------------------------------------------------------ JSON out */

static json_t *counts_json(json_t *o, const bench_counts_t *c) {
  json_object_set_new(o, "requests", json_integer((json_int_t)c->requests));
  json_object_set_new(o, "ok", json_integer((json_int_t)c->ok));
  json_object_set_new(o, "attempts", json_integer((json_int_t)c->attempts));
  json_object_set_new(o, "sends", json_integer((json_int_t)c->sends));
  json_t *e = json_object();
  for (size_t i = 0; i < BENCH_NCLASSES; i++)
    if (c->errors[i] > 0)
      json_object_set_new(e, result_class_name(i), json_integer((json_int_t)c->errors[i]));
  json_object_set_new(o, "errors", e);
  return o;
}

static json_t *pcts_json(const hdr_t *h) {
  json_t *o = json_object();
  for (size_t i = 0; i < NPCTS; i++) {
    char key[16];
    snprintf(key, sizeof(key), "p%g", pcts[i]);
    json_object_set_new(o, key, json_real((double)hdr_percentile(h, pcts[i]) / 1000.0));
  }
  return o;
}

static int set_hist(json_t *o, const char *key, const hdr_t *h) {
  char *enc = hdr_encode(h);
  if (enc == NULL)
    return -1;
  json_object_set_new(o, key, json_string(enc));
  free(enc);
  return 0;
}

int result_write_json(const bench_result_t *r, FILE *f) {
  json_t *o = json_object();
  json_object_set_new(o, "salvo_bench", json_integer(1));
  json_object_set_new(o, "label", json_string(r->label));
  json_object_set_new(o, "target", json_string(r->target));
  json_object_set_new(o, "shape", json_string(r->shape));
  json_object_set_new(o, "open_loop", json_boolean(r->open_loop));
  json_object_set_new(o, "concurrency", json_integer(r->concurrency));
  json_object_set_new(o, "threads", json_integer(r->threads));
  json_object_set_new(o, "shards", json_integer(r->shards));
  if (r->shard[0] != '\0')
    json_object_set_new(o, "shard", json_string(r->shard));
  json_object_set_new(o, "start_unix_s", json_real(r->start_unix_s));
  json_object_set_new(o, "seconds", json_real(r->seconds));
  counts_json(o, &r->total);
  double secs = r->seconds > 0 ? r->seconds : 1;
  json_object_set_new(o, "throughput", json_real((double)r->total.requests / secs));
  json_object_set_new(o, "goodput", json_real((double)r->total.ok / secs));
  json_object_set_new(o, "retries", json_integer((json_int_t)(r->total.attempts > r->total.requests
                                                                   ? r->total.attempts - r->total.requests
                                                                   : 0)));
  json_object_set_new(o, "attempts_per_request",
                      json_real(r->total.requests ? (double)r->total.attempts / (double)r->total.requests : 0));
  json_object_set_new(o, "offered", json_integer((json_int_t)r->offered));
  json_object_set_new(o, "late", json_integer((json_int_t)r->late));
  json_object_set_new(o, "unsent", json_integer((json_int_t)r->unsent));
  json_object_set_new(o, "late_max_ms", json_real((double)r->late_max_us / 1000.0));
  json_object_set_new(o, "latency_ms", pcts_json(r->latency));
  json_object_set_new(o, "service_ms", pcts_json(r->service));
  json_object_set_new(o, "ok_latency_ms", pcts_json(r->ok_latency));
  int bad = set_hist(o, "histogram", r->latency) | set_hist(o, "service_histogram", r->service) |
            set_hist(o, "ok_histogram", r->ok_latency);
  json_t *names = json_array();
  for (size_t i = 0; i < r->nnames; i++) {
    json_t *n = json_object();
    json_object_set_new(n, "name", json_string(r->names[i].name));
    counts_json(n, &r->names[i].counts);
    json_object_set_new(n, "latency_ms", pcts_json(r->names[i].latency));
    bad |= set_hist(n, "histogram", r->names[i].latency);
    json_array_append_new(names, n);
  }
  json_object_set_new(o, "names", names);
  json_t *tl = json_array();
  for (size_t s = 0; s < r->nsecs; s++) {
    const bench_second_t *sec = &r->secs[s];
    json_t *t = json_object();
    json_object_set_new(t, "t", json_integer((json_int_t)s));
    json_object_set_new(t, "offered", json_integer((json_int_t)sec->offered));
    counts_json(t, &sec->counts);
    if (sec->hist != NULL)
      json_object_set_new(t, "histogram", json_string(sec->hist));
    json_array_append_new(tl, t);
  }
  json_object_set_new(o, "timeline", tl);
  if (r->overload_end_s > 0) {
    json_object_set_new(o, "overload_end_s", json_real(r->overload_end_s));
    json_object_set_new(o, "recovery_s", r->recovery_s < 0 ? json_null() : json_real(r->recovery_s));
    json_object_set_new(o, "slo_ms", json_real(r->slo_ms));
    json_object_set_new(o, "latency_recovery_s",
                        r->latency_recovery_s < 0 ? json_null() : json_real(r->latency_recovery_s));
  }
  json_object_set_new(o, "max_rss_kib", json_integer(r->max_rss_kib));
  int rc = bad ? -1 : json_dumpf(o, f, JSON_COMPACT | JSON_REAL_PRECISION(15));
  json_decref(o);
  if (rc == 0 && fputc('\n', f) == EOF)
    rc = -1;
  return rc;
}

/* ------------------------------------------------------------ JSON in */

/* Counts read from a file: a non-negative integer below 2^53 (what a double
 * holds exactly), else the file is refused (bad_value names the key). */
static const char *bad_value;

static uint64_t u64(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (INT64_C(1) << 53)) {
    bad_value = key;
    return 0;
  }
  return (uint64_t)json_integer_value(v);
}

/* Seconds, milliseconds, rates: finite, 0 .. 1e10. */
static double real(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (v == NULL || json_is_null(v))
    return 0;
  double d = json_is_number(v) ? json_number_value(v) : -1;
  if (!(d >= 0 && d <= 1e10)) {
    bad_value = key;
    return 0;
  }
  return d;
}

static void read_counts(json_t *o, bench_counts_t *c) {
  c->requests = u64(o, "requests");
  c->ok = u64(o, "ok");
  c->attempts = u64(o, "attempts");
  c->sends = u64(o, "sends");
  const char *k;
  json_t *v;
  json_t *e = json_object_get(o, "errors");
  if (json_is_object(e))
    json_object_foreach(e, k, v) {
      size_t i = class_of(k);
      if (i < BENCH_NCLASSES)
        c->errors[i] += u64(e, k);
    }
}

/* into += the histogram at key (required). */
static int read_hist(json_t *o, const char *key, hdr_t *into, char *why, size_t why_len) {
  json_t *v = json_object_get(o, key);
  if (!json_is_string(v)) {
    snprintf(why, why_len, "\"%s\" is missing (was it written by salvo-bench --json?)", key);
    return -1;
  }
  char inner[128];
  hdr_t *h = hdr_decode(json_string_value(v), json_string_length(v), inner, sizeof(inner));
  if (h == NULL) {
    snprintf(why, why_len, "\"%s\": %s", key, inner);
    return -1;
  }
  hdr_add(into, h);
  hdr_free(h);
  return 0;
}

static void copy_str(char *out, size_t cap, json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  snprintf(out, cap, "%s", s != NULL ? s : "");
}

static bench_result_t *from_json(json_t *o, char *why, size_t why_len) {
  if (!json_is_object(o) || !json_is_integer(json_object_get(o, "salvo_bench"))) {
    snprintf(why, why_len, "not a salvo-bench --json result");
    return NULL;
  }
  json_t *names = json_object_get(o, "names");
  size_t nn = json_is_array(names) ? json_array_size(names) : 0;
  if (nn > 4096) {
    snprintf(why, why_len, "too many names (%zu)", nn);
    return NULL;
  }
  bench_result_t *r = result_new(NULL, 0);
  if (r == NULL) {
    snprintf(why, why_len, "out of memory");
    return NULL;
  }
  bad_value = NULL;
  copy_str(r->label, sizeof(r->label), o, "label");
  copy_str(r->target, sizeof(r->target), o, "target");
  copy_str(r->shape, sizeof(r->shape), o, "shape");
  copy_str(r->shard, sizeof(r->shard), o, "shard");
  r->open_loop = json_is_true(json_object_get(o, "open_loop"));
  r->concurrency = (long)u64(o, "concurrency");
  r->threads = (long)u64(o, "threads");
  r->shards = (unsigned)u64(o, "shards");
  r->start_unix_s = real(o, "start_unix_s");
  r->seconds = real(o, "seconds");
  r->max_rss_kib = (long)u64(o, "max_rss_kib");
  read_counts(o, &r->total);
  r->offered = u64(o, "offered");
  r->late = u64(o, "late");
  r->unsent = u64(o, "unsent");
  r->late_max_us = (int64_t)(real(o, "late_max_ms") * 1000);
  r->overload_end_s = real(o, "overload_end_s");
  json_t *rec = json_object_get(o, "recovery_s");
  r->recovery_s = json_is_null(rec) ? -1 : real(o, "recovery_s");
  if (r->late_max_us < 0 || r->late_max_us > INT64_C(86400000000))
    bad_value = "late_max_ms";
  r->slo_ms = real(o, "slo_ms");
  rec = json_object_get(o, "latency_recovery_s");
  r->latency_recovery_s = json_is_null(rec) ? -1 : real(o, "latency_recovery_s");
  if (read_hist(o, "histogram", r->latency, why, why_len) != 0 ||
      read_hist(o, "service_histogram", r->service, why, why_len) != 0 ||
      read_hist(o, "ok_histogram", r->ok_latency, why, why_len) != 0)
    goto fail;
  if (nn > 0 && (r->names = realloc(r->names, nn * sizeof(*r->names))) == NULL)
    goto oom;
  for (size_t i = 0; i < nn; i++) {
    json_t *n = json_array_get(names, i);
    bench_name_stats_t *s = &r->names[i];
    memset(s, 0, sizeof(*s));
    if ((s->latency = hdr_new_default()) == NULL)
      goto oom;
    r->nnames++;
    copy_str(s->name, sizeof(s->name), n, "name");
    read_counts(n, &s->counts);
    if (read_hist(n, "histogram", s->latency, why, why_len) != 0)
      goto fail;
  }
  json_t *tl = json_object_get(o, "timeline");
  size_t nt = json_is_array(tl) ? json_array_size(tl) : 0;
  for (size_t i = 0; i < nt; i++) {
    json_t *t = json_array_get(tl, i);
    json_t *tv = json_object_get(t, "t");
    if (!json_is_integer(tv) || json_integer_value(tv) < 0 || json_integer_value(tv) >= MAX_SECS) {
      snprintf(why, why_len, "timeline[%zu]: \"t\" must be a second from 0 to %d", i, MAX_SECS - 1);
      goto fail;
    }
    size_t s = (size_t)json_integer_value(tv);
    if (grow(r, s) != 0)
      goto oom;
    bench_counts_t c = {0};
    read_counts(t, &c);
    add_counts(&r->secs[s].counts, &c);
    r->secs[s].offered += u64(t, "offered");
    if (json_object_get(t, "histogram") != NULL) {
      hdr_t *h = hdr_new_default();
      char inner[160];
      int rc = h != NULL ? read_hist(t, "histogram", h, inner, sizeof(inner)) : -1;
      if (rc == 0)
        rc = add_to_second(r, s, h);
      hdr_free(h);
      if (rc != 0) {
        snprintf(why, why_len, "timeline[%zu]: %s", i, h != NULL ? inner : "out of memory");
        goto fail;
      }
    }
  }
  if (bad_value != NULL) {
    snprintf(why, why_len, "\"%s\": not a count or a time a run can have", bad_value);
    goto fail;
  }
  return r;
oom:
  snprintf(why, why_len, "out of memory");
fail:
  result_free(r);
  return NULL;
}

bench_result_t *result_read_json(const char *path, char *why, size_t why_len) {
  json_error_t err;
  json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
  if (o == NULL) {
    snprintf(why, why_len, "%s: line %d: %s", path, err.line, err.text);
    return NULL;
  }
  char inner[256];
  bench_result_t *r = from_json(o, inner, sizeof(inner));
  json_decref(o);
  if (r == NULL)
    snprintf(why, why_len, "%s: %s", path, inner);
  return r;
}

/* ------------------------------------------------------------ interval logs */

typedef struct {
  bench_result_t *r;
  int failed;
} hlog_read_t;

static int on_interval(const hlog_entry_t *e, void *ud) {
  hlog_read_t *st = ud;
  bench_result_t *r = st->r;
  if (e->tag[0] != '\0') /* a tagged interval: one name's */
    return 0;
  if (!(e->start_s >= 0 && e->start_s < MAX_SECS && e->length_s >= 0 && e->length_s <= MAX_SECS)) {
    st->failed = 2;
    return 1;
  }
  double at = e->start_s;
  size_t sec = at >= MAX_SECS ? MAX_SECS - 1 : (size_t)at;
  int64_t n = hdr_total(e->hist);
  hdr_add(r->latency, e->hist);
  if (add_to_second(r, sec, e->hist) != 0) {
    st->failed = 1;
    return 1;
  }
  r->total.requests += (uint64_t)n;
  r->secs[sec].counts.requests += (uint64_t)n;
  if (e->start_s + e->length_s > r->seconds)
    r->seconds = e->start_s + e->length_s;
  return 0;
}

bench_result_t *result_read_hlog(const char *path, char *why, size_t why_len) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    snprintf(why, why_len, "%s: %s", path, strerror(errno));
    return NULL;
  }
  bench_result_t *r = result_new(NULL, 0);
  if (r == NULL) {
    fclose(f);
    snprintf(why, why_len, "out of memory");
    return NULL;
  }
  snprintf(r->target, sizeof(r->target), "%s", path);
  snprintf(r->label, sizeof(r->label), "%s", path);
  snprintf(r->shape, sizeof(r->shape), "from an interval log (latencies only)");
  hlog_read_t st = {r, 0};
  char inner[256];
  int rc = hlog_read(f, &r->start_unix_s, on_interval, &st, inner, sizeof(inner));
  fclose(f);
  if (rc < 0 || st.failed) {
    snprintf(why, why_len, "%s: %s", path,
             rc < 0 ? inner : st.failed == 2 ? "an interval starts or lasts past a day" : "out of memory");
    result_free(r);
    return NULL;
  }
  return r;
}

int result_write_hlog(const bench_result_t *r, const char *path) {
  char comment[900];
  snprintf(comment, sizeof(comment), "salvo-bench: %s; %s; latency in microseconds", r->target, r->shape);
  hlog_writer_t *w = hlog_open(path, r->start_unix_s, comment);
  if (w == NULL)
    return -1;
  int rc = 0;
  for (size_t s = 0; s < r->nsecs && rc == 0; s++) {
    if (r->secs[s].hist == NULL)
      continue;
    char why[128];
    hdr_t *h = hdr_decode(r->secs[s].hist, strlen(r->secs[s].hist), why, sizeof(why));
    rc = h != NULL ? hlog_write(w, NULL, (double)s, 1.0, h) : -1;
    hdr_free(h);
  }
  return hlog_close(w) != 0 || rc != 0 ? -1 : 0;
}

/* ------------------------------------------------------------ summary */

static void print_counts_errors(const bench_counts_t *c, FILE *f) {
  for (size_t i = 0; i < BENCH_NCLASSES; i++)
    if (c->errors[i] > 0)
      fprintf(f, " %s %" PRIu64, result_class_name(i), c->errors[i]);
}

static void print_pcts(const char *title, const hdr_t *h, FILE *f) {
  fprintf(f, "%-14s p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", title,
          (double)hdr_percentile(h, 50) / 1000.0, (double)hdr_percentile(h, 90) / 1000.0,
          (double)hdr_percentile(h, 99) / 1000.0, (double)hdr_percentile(h, 99.9) / 1000.0,
          (double)hdr_max(h) / 1000.0);
}

void result_print(const bench_result_t *r, FILE *f) {
  const bench_counts_t *c = &r->total;
  double secs = r->seconds > 0 ? r->seconds : 1;
  fprintf(f, "target         %s\n", r->target);
  fprintf(f, "load           %s\n", r->shape);
  fprintf(f, "requests       %" PRIu64 " in %.3f s, %ld thread(s), concurrency %ld%s", c->requests,
          r->seconds, r->threads, r->concurrency, r->open_loop ? ", open loop" : ", closed loop");
  if (r->shards > 1)
    fprintf(f, ", %u shards merged", r->shards);
  fputc('\n', f);
  if (r->shard[0])
    fprintf(f, "shard          %s\n", r->shard);
  fprintf(f, "throughput     %.0f req/s\n", (double)c->requests / secs);
  fprintf(f, "ok             %" PRIu64 "\n", c->ok);
  for (size_t i = 0; i < BENCH_NCLASSES; i++)
    if (c->errors[i])
      fprintf(f, "error %-8s %" PRIu64 "\n", result_class_name(i), c->errors[i]);
  fprintf(f, "retries        %" PRIu64 "\n", c->attempts > c->requests ? c->attempts - c->requests : 0);
  fprintf(f, "attempts/req   %.3f (sends %" PRIu64 ")\n",
          c->requests ? (double)c->attempts / (double)c->requests : 0.0, c->sends);
  print_pcts(r->open_loop ? "latency ms" : "latency ms", r->latency, f);
  if (r->open_loop) {
    print_pcts("service ms", r->service, f);
    fprintf(f, "sent late      %" PRIu64 " of %" PRIu64 " (more than %d ms after due; latest %.1f ms)\n",
            r->late, r->offered, BENCH_LATE_US / 1000, (double)r->late_max_us / 1000.0);
    if (r->unsent > 0)
      fprintf(f, "not sent       %" PRIu64 " (due, waiting for a slot when the run was stopped)\n", r->unsent);
  }
  if (r->has_host) { /* the host's own record: attempts on the wire, not time in a queue */
    const salvo_host_stats_t *h = &r->host;
    fprintf(f, "on the wire ms p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", h->p50_us / 1000.0,
            h->p90_us / 1000.0, h->p99_us / 1000.0, h->max_us / 1000.0);
    if (h->limit_max > 0)
      fprintf(f, "host limit     %u now, %u..%u over the run (adaptive)\n", h->limit, h->limit_min,
              h->limit_max);
  }
  if (r->nnames > 1) {
    fprintf(f, "%-24s %9s %9s %8s %9s %9s %9s %9s %9s  errors\n", "name", "requests", "ok", "att/req",
            "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms");
    for (size_t i = 0; i < r->nnames; i++) {
      const bench_name_stats_t *n = &r->names[i];
      const hdr_t *h = n->latency;
      fprintf(f, "%-24.64s %9" PRIu64 " %9" PRIu64 " %8.3f %9.3f %9.3f %9.3f %9.3f %9.3f", n->name,
              n->counts.requests, n->counts.ok,
              n->counts.requests ? (double)n->counts.attempts / (double)n->counts.requests : 0.0,
              (double)hdr_percentile(h, 50) / 1000.0, (double)hdr_percentile(h, 90) / 1000.0,
              (double)hdr_percentile(h, 99) / 1000.0, (double)hdr_percentile(h, 99.9) / 1000.0,
              (double)hdr_max(h) / 1000.0);
      print_counts_errors(&n->counts, f);
      fputc('\n', f);
    }
  }
  if (r->overload_end_s > 0) {
    if (r->recovery_s < 0)
      fprintf(f, "recovery       never (goodput still short when the load ended)\n");
    else
      fprintf(f, "recovery       %.0f s after the overload ended\n", r->recovery_s);
    if (r->latency_recovery_s < 0)
      fprintf(f, "p99 < %.0f ms   never\n", r->slo_ms);
    else
      fprintf(f, "p99 < %.0f ms   %.0f s after the overload ended\n", r->slo_ms, r->latency_recovery_s);
  }
  if (r->max_rss_kib > 0)
    fprintf(f, "max RSS        %ld KiB\n", r->max_rss_kib);
}

/* The p99 of second s in ms; 0 when nothing completed. */
static double second_p99_ms(const bench_second_t *x) {
  if (x->hist == NULL)
    return 0;
  char why[128];
  hdr_t *h = hdr_decode(x->hist, strlen(x->hist), why, sizeof(why));
  double v = h != NULL ? (double)hdr_percentile(h, 99) / 1000.0 : 0;
  hdr_free(h);
  return v;
}

double result_recovery(const bench_result_t *r, double overload_end_s, double slo_ms) {
  size_t from = (size_t)ceil(overload_end_s);
  size_t last = 0; /* one past the last second with offered load */
  for (size_t s = 0; s < r->nsecs; s++)
    if (r->secs[s].offered > 0)
      last = s + 1;
  if (last > 0 && r->secs[last - 1].offered * 2 < r->secs[last > 1 ? last - 2 : 0].offered)
    last--; /* a last partial second of schedule */
  if (from >= last)
    return -1;
  size_t good_from = last; /* the first second from which every second is good */
  for (size_t s = last; s-- > from;) {
    const bench_second_t *x = &r->secs[s];
    uint64_t errors = x->counts.requests - x->counts.ok;
    int good = (double)x->counts.ok >= 0.9 * (double)x->offered &&
               (double)x->counts.requests <= 1.1 * (double)x->offered + 1 && /* no backlog draining */
               (double)errors <= 0.05 * (double)(x->counts.requests ? x->counts.requests : 1) &&
               (slo_ms <= 0 || second_p99_ms(x) <= slo_ms);
    if (!good)
      break;
    good_from = s;
  }
  return good_from < last ? (double)good_from - overload_end_s : -1;
}
