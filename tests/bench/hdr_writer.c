/* The C side of the hdr_js test (tests/bench/hdr_js.py), with hdr.c:
 *   hdr_writer write FILE  writes an interval log of known data and prints
 *                          its numbers, computed from the histograms it wrote
 *   hdr_writer read FILE   reads an interval log and prints its numbers
 * in the JSON that tests/bench/hlog_check.mjs prints from hdr-histogram-js:
 *   {"start": StartTime, "intervals": [{tag, start, length, count, p50, p99, max}],
 *    "totals": {TAG: {count, p50, p99, max}}}
 * Totals add each tag's intervals into a histogram of salvo-bench's layout. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hdr.h"

#define MAX_TAGS 8

typedef struct {
  FILE *out;     /* where the intervals go */
  int intervals;
  int tags;
  char tag[MAX_TAGS][128];
  hdr_t *total[MAX_TAGS];
} report_t;

static void print_summary(FILE *out, const hdr_t *h) {
  fprintf(out, "\"count\": %" PRId64 ", \"p50\": %" PRId64 ", \"p99\": %" PRId64 ", \"max\": %" PRId64, hdr_total(h),
         hdr_percentile(h, 50), hdr_percentile(h, 99), hdr_max(h));
}

/* Tags are [A-Za-z0-9._-]: no JSON escaping needed (checked). */
static void print_interval(report_t *r, const char *tag, double start, double length, const hdr_t *h) {
  for (const char *p = tag; *p; p++)
    if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) {
      fprintf(stderr, "hdr_writer: a tag that needs escaping\n");
      exit(1);
    }
  fprintf(r->out, "%s{\"tag\": \"%s\", \"start\": %.6f, \"length\": %.6f, ", r->intervals++ ? ", " : "", tag,
          start, length);
  print_summary(r->out, h);
  fprintf(r->out, "}");
  int t = 0;
  while (t < r->tags && strcmp(r->tag[t], tag) != 0)
    t++;
  if (t == r->tags) {
    if (r->tags == MAX_TAGS) {
      fprintf(stderr, "hdr_writer: more than %d tags\n", MAX_TAGS);
      exit(1);
    }
    snprintf(r->tag[t], sizeof(r->tag[t]), "%s", tag);
    r->total[t] = hdr_new_default();
    r->tags++;
  }
  hdr_add(r->total[t], h);
}

static void print_totals(report_t *r) {
  printf("], \"totals\": {");
  for (int t = 0; t < r->tags; t++) {
    printf("%s\"%s\": {", t ? ", " : "", r->tag[t]);
    print_summary(stdout, r->total[t]);
    printf("}");
    hdr_free(r->total[t]);
  }
  printf("}}\n");
}

static uint64_t rng = 12345;

static int64_t latency(void) { /* splitmix64, spread over 1 us .. 1 h */
  uint64_t z = (rng += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  z ^= z >> 31;
  return (int64_t)((z >> 16) & ((UINT64_C(1) << (z % 32)) - 1)) + 1;
}

/* Several intervals, two tags and none, counts past 2^32, the top bucket, an empty one. */
static int write_log(const char *path) {
  const double start = 1700000000.25;
  hlog_writer_t *w = hlog_open(path, start, "written by salvo's tests/bench/hdr_writer");
  if (w == NULL) {
    fprintf(stderr, "hdr_writer: %s: %s\n", path, strerror(errno));
    return 1;
  }
  report_t r = {.out = stdout};
  printf("{\"start\": %.3f, \"intervals\": [", start);
  struct {
    const char *tag;
    double start, length;
  } iv[] = {{NULL, 0, 1}, {"get", 1, 1}, {NULL, 2, 1.5}, {"get", 3.5, 1}, {"idle", 4.5, 0.25}};
  for (size_t i = 0; i < sizeof(iv) / sizeof(iv[0]); i++) {
    hdr_t *h = hdr_new_default();
    if (i == 0)
      for (int64_t v = 1; v <= 5000; v++)
        hdr_record(h, v);
    if (i == 1) {
      for (int64_t v = 1; v <= 3000; v++)
        hdr_record(h, v * v);
      hdr_record_n(h, HDR_HIGHEST, 3);
    }
    if (i == 2)
      for (int k = 0; k < 20000; k++)
        hdr_record(h, latency());
    if (i == 3) {
      hdr_record_n(h, 777, INT64_C(3000000000) * 2);
      hdr_record(h, 0);
      hdr_record(h, 123456);
    }
    if (hlog_write(w, iv[i].tag, iv[i].start, iv[i].length, h) != 0) {
      fprintf(stderr, "hdr_writer: writing %s failed\n", path);
      return 1;
    }
    print_interval(&r, iv[i].tag ? iv[i].tag : "", iv[i].start, iv[i].length, h);
    hdr_free(h);
  }
  print_totals(&r);
  return hlog_close(w) == 0 ? 0 : 1;
}

static int print_entry(const hlog_entry_t *e, void *ud) {
  print_interval(ud, e->tag, e->start_s, e->length_s, e->hist);
  return 0;
}

static int read_log(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    fprintf(stderr, "hdr_writer: %s: %s\n", path, strerror(errno));
    return 1;
  }
  /* the intervals first into memory: the start comes first but is known after */
  char *intervals = NULL;
  size_t len = 0;
  report_t r = {.out = open_memstream(&intervals, &len)};
  double start;
  char why[256];
  int rc = r.out != NULL ? hlog_read(f, &start, print_entry, &r, why, sizeof(why)) : -1;
  fclose(f);
  if (r.out == NULL || fclose(r.out) != 0 || rc != 0) {
    fprintf(stderr, "hdr_writer: %s: %s\n", path, rc != 0 && r.out != NULL ? why : "out of memory");
    free(intervals);
    return 1;
  }
  printf("{\"start\": %.3f, \"intervals\": [%s", start, intervals);
  free(intervals);
  print_totals(&r);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "write") == 0)
    return write_log(argv[2]);
  if (argc == 3 && strcmp(argv[1], "read") == 0)
    return read_log(argv[2]);
  fprintf(stderr, "usage: hdr_writer write|read FILE\n");
  return 2;
}
