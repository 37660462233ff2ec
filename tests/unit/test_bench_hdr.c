/* salvo-bench's HdrHistogram (bench/salvo-bench/hdr.c) against HdrHistogram
 * itself. The expected numbers were computed once with HdrHistogram's Java
 * library 2.1.11 (Debian's libhdrhistogram-java) and with hdr-histogram-js
 * 3.0.1, which agree on all of them (where only one could say, it is named),
 * and are hard-coded here. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "hdr.h"

/* ------------------------------------------------------------------ layout */

typedef struct {
  int64_t lowest, highest;
  int digits;
  int32_t counts_len;  /* countsArrayLength */
  int64_t top;         /* highestEquivalentValue(highest) */
} layout_case_t;

/* Java's new Histogram(lowest, highest, digits) and hdr-histogram-js's
 * build({..., autoResize: false}); INT64_MAX layouts: Java only. */
static const layout_case_t layouts[] = {
  {1, INT64_C(3600000000), 3, 23552, INT64_C(3600809983)},
  {1, 2, 0, 3, 3},
  {1000, 1000000000, 2, 1920, INT64_C(1002438655)},
  {1024, INT64_C(3600000000), 3, 13312, INT64_C(3600809983)},
  {3, 100, 1, 48, 103},
  {1, INT64_C(9007199254740991), 5, 4849664, INT64_C(9007199254740991)},
  {1, INT64_MAX, 5, 6160384, INT64_MAX},
  {1, INT64_MAX, 3, 55296, INT64_MAX},
};

Test(bench_hdr, layout_matches_hdrhistogram) {
  for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
    const layout_case_t *c = &layouts[i];
    hdr_t *h = hdr_new(c->lowest, c->highest, c->digits);
    cr_assert_not_null(h, "layout %zu", i);
    cr_expect_eq(hdr_counts_len(h), c->counts_len, "layout %zu: counts %d, HdrHistogram %d", i,
                 hdr_counts_len(h), c->counts_len);
    cr_expect_eq(hdr_highest_equivalent(h, c->highest), c->top, "layout %zu: top %lld", i,
                 (long long)hdr_highest_equivalent(h, c->highest));
    hdr_free(h);
  }
}

/* lowestEquivalentValue() and highestEquivalentValue() of 1..3.6e9, 3 digits. */
Test(bench_hdr, equivalent_values_match_hdrhistogram) {
  static const int64_t cases[][3] = {
    /* value, lowest equivalent, highest equivalent */
    {0, 0, 0},
    {1, 1, 1},
    {1000, 1000, 1000},
    {2047, 2047, 2047},
    {2048, 2048, 2049},
    {2049, 2048, 2049},
    {2050, 2050, 2051},
    {4095, 4094, 4095},
    {4096, 4096, 4099},
    {10007, 10000, 10007},
    {123456, 123456, 123519},
    {1000000, 999936, 1000447},
    {INT64_C(3600000000), INT64_C(3598712832), INT64_C(3600809983)},
  };
  hdr_t *h = hdr_new_default();
  cr_assert_eq(hdr_counts_len(h), 23552);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    cr_expect_eq(hdr_lowest_equivalent(h, cases[i][0]), cases[i][1], "lowest of %lld: %lld", (long long)cases[i][0],
                 (long long)hdr_lowest_equivalent(h, cases[i][0]));
    cr_expect_eq(hdr_highest_equivalent(h, cases[i][0]), cases[i][2], "highest of %lld: %lld",
                 (long long)cases[i][0], (long long)hdr_highest_equivalent(h, cases[i][0]));
  }
  hdr_free(h);
}

Test(bench_hdr, refuses_what_hdrhistogram_refuses) {
  cr_expect_null(hdr_new(0, 100, 3), "lowest < 1");
  cr_expect_null(hdr_new(-5, 100, 3));
  cr_expect_null(hdr_new(10, 19, 3), "highest < 2 * lowest");
  cr_expect_null(hdr_new(1, 100, 6), "more than 5 digits");
  cr_expect_null(hdr_new(1, 100, -1));
  cr_expect_null(hdr_new(INT64_C(1) << 50, INT64_MAX, 5), "unitMagnitude + subBucketCountMagnitude > 62");
  cr_expect_null(hdr_new(INT64_MAX / 2 + 1, INT64_MAX, 0));
  hdr_t *h = hdr_new(INT64_C(1) << 44, INT64_MAX, 5); /* 44 + 18 = 62: just fits */
  cr_expect_not_null(h);
  hdr_free(h);
}

/* ------------------------------------------------------------- percentiles */

static hdr_t *one_to_ten_thousand(void) {
  hdr_t *h = hdr_new_default();
  for (int64_t v = 1; v <= 10000; v++)
    hdr_record(h, v);
  return h;
}

/* getValueAtPercentile() of 1..10000 each once, in 1..3.6e9 with 3 digits. */
Test(bench_hdr, percentiles_match_hdrhistogram) {
  static const struct {
    double p;
    int64_t value;
  } cases[] = {
    {0, 1}, {1, 100}, {50, 5003}, {90, 9007}, {99, 9903}, {99.9, 9991}, {99.99, 9999},
    {100, 10007}, {101, 10007} /* clamped to 100 */,
  };
  hdr_t *h = one_to_ten_thousand();
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    cr_expect_eq(hdr_percentile(h, cases[i].p), cases[i].value, "p%g: %lld, HdrHistogram %lld", cases[i].p,
                 (long long)hdr_percentile(h, cases[i].p), (long long)cases[i].value);
  /* Below 0: clamped to 0 as Java does (which gives 1; hdr-histogram-js, which does not clamp, 0). */
  cr_expect_eq(hdr_percentile(h, -5), 1);
  cr_expect_eq(hdr_total(h), 10000);
  cr_expect_eq(hdr_max(h), 10007, "getMaxValue()");
  cr_expect_eq(hdr_min(h), 1, "getMinValue()");
  cr_expect(fabs(hdr_mean(h) - 5000.898) < 1e-9, "getMean() 5000.898, got %.9f", hdr_mean(h));
  hdr_free(h);
}

/* The ceil(): with 3 values the 50th percentile is the 2nd (ceil(1.5)), the
 * 33.34th too (ceil(1.0002)), the 33.33rd the 1st. */
Test(bench_hdr, percentile_rounds_up_the_count_and_reaches_the_first) {
  hdr_t *h = hdr_new_default();
  hdr_record(h, 10);
  hdr_record(h, 20);
  hdr_record(h, 30);
  cr_expect_eq(hdr_percentile(h, 50), 20);
  cr_expect_eq(hdr_percentile(h, 33.34), 20);
  cr_expect_eq(hdr_percentile(h, 33.33), 10);
  cr_expect_eq(hdr_percentile(h, 100.0 / 3.0), 10);
  cr_expect_eq(hdr_percentile(h, 0.0001), 10, "at least the first count");
  cr_expect_eq(hdr_percentile(h, 100), 30);
  hdr_free(h);
}

/* The ulp Java takes off p before the ceil(): 5.0 / 6 * 100 of 6 values
 * times 6 / 100 is 5.000000000000001 in doubles, the 5th value all the same
 * (Java and hdr-histogram-js: 50; without the ulp, 60). Of 18 values,
 * 15.0 / 18 * 100 is the 15th to Java (150), the 16th to hdr-histogram-js
 * (160), which takes its ulp off the count instead: this follows Java. */
Test(bench_hdr, percentile_takes_an_ulp_off_as_java_does) {
  hdr_t *h = hdr_new_default();
  for (int i = 1; i <= 6; i++)
    hdr_record(h, i * 10);
  cr_expect_eq(hdr_percentile(h, 5.0 / 6 * 100), 50);
  for (int i = 7; i <= 18; i++)
    hdr_record(h, i * 10);
  cr_expect_eq(hdr_percentile(h, 15.0 / 18 * 100), 150);
  hdr_free(h);
}

/* Past 2^53 counts the double of the total can round up, and the count
 * for p100 pass the total: Java answers 0 there (fuzz_hdr_decode found it);
 * this, the last counted bucket. 73172498018985917 is such a total. */
Test(bench_hdr, percentile_of_a_total_past_2_53) {
  hdr_t *h = hdr_new_default();
  hdr_record_n(h, 5, INT64_C(73172498018985916));
  hdr_record(h, 7);
  cr_expect_eq(hdr_percentile(h, 100), 7);
  cr_expect_eq(hdr_percentile(h, 50), 5);
  hdr_free(h);
}

Test(bench_hdr, empty_and_clamped) {
  hdr_t *h = hdr_new(1, 1000000, 3);
  cr_expect_eq(hdr_percentile(h, 50), 0);
  cr_expect_eq(hdr_max(h), 0);
  cr_expect_eq(hdr_min(h), 0);
  cr_expect_eq(hdr_mean(h), 0.0);
  hdr_record(h, -7);              /* counts as 0 */
  hdr_record_n(h, 5000000, 2);    /* counts as highest */
  hdr_record_n(h, 100, 0);        /* nothing */
  hdr_record_n(h, 100, -3);       /* nothing */
  cr_expect_eq(hdr_total(h), 3);
  cr_expect_eq(hdr_min(h), 0);
  cr_expect_eq(hdr_max(h), hdr_highest_equivalent(h, 1000000));
  cr_expect_eq(hdr_percentile(h, 0), 0);
  hdr_reset(h);
  cr_expect_eq(hdr_total(h), 0);
  cr_expect_eq(hdr_max(h), 0);
  hdr_free(h);
}

/* ------------------------------------------------------------------- merge */

static uint64_t rng_state;

static uint64_t next_random(void) { /* splitmix64 */
  uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

/* Latency-like: spread over 1 us .. about 1.4 h (past HDR_HIGHEST), some 0. */
static int64_t random_value(void) {
  uint64_t r = next_random();
  if (r % 97 == 0)
    return 0;
  return (int64_t)((r >> 20) & ((UINT64_C(1) << (r % 33)) - 1)) + 1;
}

Test(bench_hdr, merge_of_halves_is_the_whole) {
  enum { N = 200000 };
  hdr_t *a = hdr_new_default(), *b1 = hdr_new_default(), *b2 = hdr_new_default();
  rng_state = 42;
  for (int i = 0; i < N; i++) {
    int64_t v = random_value();
    hdr_record(a, v);
    hdr_record(i < N / 2 ? b1 : b2, v);
  }
  cr_assert(!hdr_same(a, b1));
  hdr_add(b1, b2);
  cr_assert(hdr_same(a, b1), "A and B1 + B2 differ");
  cr_expect_eq(hdr_total(b1), N);
  const double ps[] = {0, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 99.999, 100};
  for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
    cr_expect_eq(hdr_percentile(a, ps[i]), hdr_percentile(b1, ps[i]), "p%g", ps[i]);
  cr_expect_eq(hdr_max(a), hdr_max(b1));
  cr_expect_eq(hdr_min(a), hdr_min(b1));
  cr_expect_eq(hdr_mean(a), hdr_mean(b1));
  /* hdr_same sees a single count moved to the next bucket (5000..5003, 5004..5007) */
  hdr_record(b1, 5000);
  hdr_record(a, 5004);
  cr_expect(!hdr_same(a, b1));
  hdr_free(a);
  hdr_free(b1);
  hdr_free(b2);
}

/* Across layouts as Java's add(): each bucket's count at its lowest value.
 * Java (and hdr-histogram-js) on 97, 194, .. 970000 in 1..3.6e9 (3 digits)
 * added into 1000..1e6 (2 digits): p50 485375, p99 962559, max 970751, min 0
 * (97..485 fall in the bucket of 0), mean 485050.1888. */
Test(bench_hdr, merge_across_layouts_matches_java) {
  hdr_t *from = hdr_new_default(), *into = hdr_new(1000, 1000000, 2);
  for (int64_t v = 1; v <= 10000; v++)
    hdr_record(from, v * 97);
  hdr_add(into, from);
  cr_expect_eq(hdr_total(into), 10000);
  cr_expect_eq(hdr_percentile(into, 0), 0);
  cr_expect_eq(hdr_percentile(into, 50), 485375);
  cr_expect_eq(hdr_percentile(into, 99), 962559);
  cr_expect_eq(hdr_max(into), 970751);
  cr_expect_eq(hdr_min(into), 0);
  cr_expect(fabs(hdr_mean(into) - 485050.1888) < 1e-6, "mean %.6f", hdr_mean(into));
  hdr_free(from);
  hdr_free(into);
}

/* Values outside the target's range are clamped to it, never dropped: the
 * same as recording each value's lowest equivalent (in |from|) into it. */
Test(bench_hdr, merge_clamps_to_the_target_range) {
  hdr_t *from = hdr_new_default(), *into = hdr_new(1000, 1000000, 2), *expect = hdr_new(1000, 1000000, 2);
  rng_state = 7;
  for (int i = 0; i < 50000; i++) {
    int64_t v = random_value();
    hdr_record(from, v);
    hdr_record(expect, hdr_lowest_equivalent(from, v > HDR_HIGHEST ? HDR_HIGHEST : v));
  }
  hdr_add(into, from);
  cr_expect_eq(hdr_total(into), 50000, "nothing dropped");
  cr_expect_eq(hdr_max(into), hdr_highest_equivalent(into, 1000000), "above the range: at its top");
  cr_expect(hdr_same(into, expect));
  hdr_free(from);
  hdr_free(into);
  hdr_free(expect);
}

typedef struct {
  int buckets;
  int64_t last, sum;
} each_t;

static void each_bucket(int64_t value, int64_t count, void *ud) {
  each_t *e = ud;
  cr_assert_gt(value, e->last, "values go up");
  e->last = value;
  e->sum += count;
  e->buckets++;
}

/* hdr_each: each counted bucket once, at its highest equivalent value. */
Test(bench_hdr, each_visits_the_counted_buckets) {
  hdr_t *h = hdr_new_default();
  hdr_record_n(h, 2048, 3); /* 2048..2049 */
  hdr_record(h, 2049);
  hdr_record(h, 10007);     /* 10000..10007 */
  hdr_record(h, 1);
  each_t e = {0, -1, 0};
  hdr_each(h, each_bucket, &e);
  cr_expect_eq(e.buckets, 3);
  cr_expect_eq(e.sum, 6);
  cr_expect_eq(e.last, 10007);
  hdr_free(h);
}

/* ---------------------------------------------------------------- encoding */

static hdr_t *round_trip(const hdr_t *h) {
  char *text = hdr_encode(h);
  cr_assert_not_null(text);
  cr_assert_eq(strncmp(text, "HISTF", 5), 0, "V2 compressed: %.16s", text);
  char why[200] = "";
  hdr_t *back = hdr_decode(text, strlen(text), why, sizeof(why));
  cr_assert_not_null(back, "decode: %s", why);
  cr_assert(hdr_same(h, back), "not the same after a round trip");
  int64_t l1, h1, l2, h2;
  int d1, d2;
  hdr_layout(h, &l1, &h1, &d1);
  hdr_layout(back, &l2, &h2, &d2);
  cr_assert(l1 == l2 && h1 == h2 && d1 == d2, "layout changed");
  free(text);
  return back;
}

Test(bench_hdr, round_trips) {
  hdr_t *h = hdr_new_default();
  hdr_free(round_trip(h)); /* empty */
  hdr_record(h, 12345);
  hdr_free(round_trip(h)); /* one value */
  hdr_record_n(h, 7, INT64_C(1) << 40);
  hdr_record_n(h, 3000, INT64_C(5000000000));
  hdr_record_n(h, HDR_HIGHEST, INT64_C(1) << 33); /* the top bucket */
  hdr_t *back = round_trip(h);
  cr_expect_eq(hdr_total(back), (INT64_C(1) << 40) + INT64_C(5000000000) + (INT64_C(1) << 33) + 1);
  cr_expect_eq(hdr_max(back), INT64_C(3600809983));
  hdr_free(back);
  hdr_free(h);
  /* the widest layout, counts at both ends and the largest count */
  h = hdr_new(1, INT64_MAX, 5);
  hdr_record_n(h, 0, INT64_MAX - 2);
  hdr_record(h, INT64_MAX);
  hdr_record(h, INT64_MAX - 1);
  back = round_trip(h);
  cr_expect_eq(hdr_max(back), INT64_MAX);
  cr_expect_eq(hdr_total(back), INT64_MAX);
  hdr_free(back);
  hdr_free(h);
}

static unsigned char *unbase64(const char *s, size_t *n) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t len = strlen(s);
  unsigned char *out = malloc(len);
  *n = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len && s[i] != '='; i++) {
    acc = acc << 6 | (uint32_t)(strchr(a, s[i]) - a);
    if ((bits += 6) >= 8) {
      out[(*n)++] = (unsigned char)(acc >> (bits - 8));
      bits -= 8;
    }
  }
  return out;
}

/* The uncompressed form inside a compressed string, byte for byte. */
static unsigned char *raw_of(const char *text, uLongf *raw_len) {
  size_t n;
  unsigned char *packed = unbase64(text, &n);
  unsigned char *raw = malloc(1 << 20);
  *raw_len = 1 << 20;
  cr_assert_eq(uncompress(raw, raw_len, packed + 8, (uLong)(n - 8)), Z_OK);
  free(packed);
  return raw;
}

/* Java's encodeIntoCompressedByteBuffer() of 1..10000 in 1..3.6e9 with 3
 * digits (HdrHistogram 2.1.11): the same bytes before compression. */
#define JAVA_1_TO_10000                                                                                    \
  "HISTFAAAAEN4nJNpmSzMwCDwmAECmKE0I4i4NnkJg/0HqAjTKBgFo2AUjIJRMApGGmAZBaNgFIxYwDEKRsEoGLFAYNgDJgAYu1Oa"
/* Java: new Histogram(1, Long.MAX_VALUE, 3), 5e9 zeros, 2^40, Long.MAX_VALUE:
 * p50 0, getMaxValue() Long.MAX_VALUE, total 5000000002. */
#define JAVA_TOP "HISTFAAAACt4nJNpmSzMwMDAywABzFCasf4/BNh/gAg0nFi/QPXve2am3++ZmABNohCa"
/* Java: an empty 1..3.6e9, 3 digits. */
#define JAVA_EMPTY "HISTFAAAAB94nJNpmSzMwMDAyAABzFAazL82eQmD/QeoCABVgwSI"

Test(bench_hdr, encodes_what_java_encodes) {
  hdr_t *h = one_to_ten_thousand();
  char *ours = hdr_encode(h);
  uLongf ours_len, java_len;
  unsigned char *a = raw_of(ours, &ours_len), *b = raw_of(JAVA_1_TO_10000, &java_len);
  cr_expect_eq(ours_len, java_len, "uncompressed: %lu bytes, Java's %lu", (unsigned long)ours_len,
               (unsigned long)java_len);
  cr_expect(ours_len == java_len && memcmp(a, b, ours_len) == 0, "not Java's bytes");
  free(a);
  free(b);
  free(ours);
  /* runs of zeros, counts past 2^32, the top of a layout reaching INT64_MAX */
  hdr_t *top = hdr_new(1, INT64_MAX, 3);
  hdr_record_n(top, 0, INT64_C(5000000000));
  hdr_record(top, INT64_C(1) << 40);
  hdr_record(top, INT64_MAX);
  ours = hdr_encode(top);
  a = raw_of(ours, &ours_len);
  b = raw_of(JAVA_TOP, &java_len);
  cr_expect(ours_len == java_len && memcmp(a, b, ours_len) == 0, "runs of zeros: not Java's bytes");
  free(a);
  free(b);
  free(ours);
  hdr_free(top);
  hdr_t *empty = hdr_new_default();
  ours = hdr_encode(empty);
  a = raw_of(ours, &ours_len);
  b = raw_of(JAVA_EMPTY, &java_len);
  cr_expect(ours_len == java_len && memcmp(a, b, ours_len) == 0, "empty: not Java's bytes");
  free(a);
  free(b);
  free(ours);
  hdr_free(empty);
  hdr_free(h);
}

Test(bench_hdr, decodes_what_java_and_js_encode) {
  char why[200] = "";
  hdr_t *h = hdr_decode(JAVA_1_TO_10000, strlen(JAVA_1_TO_10000), why, sizeof(why));
  cr_assert_not_null(h, "%s", why);
  hdr_t *ours = one_to_ten_thousand();
  cr_expect(hdr_same(h, ours));
  hdr_free(ours);
  hdr_free(h);

  h = hdr_decode(JAVA_TOP, strlen(JAVA_TOP), why, sizeof(why));
  cr_assert_not_null(h, "%s", why);
  cr_expect_eq(hdr_total(h), INT64_C(5000000002));
  cr_expect_eq(hdr_percentile(h, 50), 0);
  cr_expect_eq(hdr_max(h), INT64_MAX);
  cr_expect_eq(hdr_percentile(h, 100), INT64_MAX);
  hdr_free(h);

  /* hdr-histogram-js 3.0.1: build({lowestDiscernibleValue: 1000,
   * highestTrackableValue: 1e9, numberOfSignificantValueDigits: 2,
   * autoResize: false}), i * 997 for i in 1..1000, 5e8 three times,
   * encodeIntoCompressedBase64(). It writes normalizingIndexOffset 1 and the
   * ratio as the integer 1. Its own decode: countsArrayLength 1920, total
   * 1003, p50 501759, p99 991231, p100 501219327, minNonZeroValue 512. */
  static const char js[] = "HISTFAAAAEt4nJNpmSzMwMBUzsDAwMjAwMDEAAbML0Ck9axTDFDAyMBEGBKhZMgqwgJYsAnSShELGws6wBShoSIOLg4owMOgriKWz4JsAKKrDSg=";
  h = hdr_decode(js, strlen(js), why, sizeof(why));
  cr_assert_not_null(h, "%s", why);
  int64_t lowest, highest;
  int digits;
  hdr_layout(h, &lowest, &highest, &digits);
  cr_expect(lowest == 1000 && highest == 1000000000 && digits == 2);
  cr_expect_eq(hdr_counts_len(h), 1920);
  cr_expect_eq(hdr_total(h), 1003);
  cr_expect_eq(hdr_percentile(h, 50), 501759);
  cr_expect_eq(hdr_percentile(h, 99), 991231);
  cr_expect_eq(hdr_percentile(h, 100), 501219327);
  cr_expect_eq(hdr_max(h), 501219327);
  cr_expect_eq(hdr_min(h), 512);
  hdr_free(h);

  /* hdr-histogram-js's empty default histogram (auto-resizing: 1..2, 3 digits) */
  static const char js_empty[] = "HISTFAAAABp4nJNpmSzMwMDACMXMDBDACKWZ4HwAMzIBUA==";
  h = hdr_decode(js_empty, strlen(js_empty), why, sizeof(why));
  cr_assert_not_null(h, "%s", why);
  cr_expect_eq(hdr_total(h), 0);
  hdr_free(h);
}

/* ------------------------------------------------------- decoding garbage */

static char *base64(const unsigned char *in, size_t len) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *out = malloc(len / 3 * 4 + 8), *p = out;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
    *p++ = a[v >> 18];
    *p++ = a[(v >> 12) & 63];
    *p++ = i + 1 < len ? a[(v >> 6) & 63] : '=';
    *p++ = i + 2 < len ? a[v & 63] : '=';
  }
  *p = '\0';
  return out;
}

static void be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8),
  p[3] = (unsigned char)v;
}

static void be64(unsigned char *p, uint64_t v) {
  be32(p, (uint32_t)(v >> 32));
  be32(p + 4, (uint32_t)v);
}

/* An uncompressed V2 form: header then payload. */
static size_t raw_histogram(unsigned char *out, uint32_t cookie, uint32_t payload_len, int32_t digits, int64_t lowest,
                            int64_t highest, const unsigned char *payload, size_t n) {
  be32(out, cookie);
  be32(out + 4, payload_len);
  be32(out + 8, 0);
  be32(out + 12, (uint32_t)digits);
  be64(out + 16, (uint64_t)lowest);
  be64(out + 24, (uint64_t)highest);
  be64(out + 32, UINT64_C(0x3ff0000000000000));
  if (n > 0)
    memcpy(out + 40, payload, n);
  return 40 + n;
}

/* Compressed and base64'd, with the outer cookie and length given (length
 * -1: the true one, -2: the true one and the extra bytes), and extra bytes
 * after the zlib stream. */
static char *pack(const unsigned char *raw, size_t n, uint32_t cookie, long length, size_t extra) {
  uLongf zlen = compressBound((uLong)n);
  unsigned char *buf = calloc(1, 8 + zlen + extra);
  cr_assert_eq(compress2(buf + 8, &zlen, raw, (uLong)n, 9), Z_OK);
  be32(buf, cookie);
  be32(buf + 4, length == -1 ? (uint32_t)zlen : length == -2 ? (uint32_t)(zlen + extra) : (uint32_t)length);
  char *text = base64(buf, 8 + zlen + extra);
  free(buf);
  return text;
}

/* Refused, with a reason that says |reason| when given. */
static void expect_refused_for(const char *text, size_t len, const char *what, const char *reason) {
  char why[200] = "";
  hdr_t *h = hdr_decode(text, len, why, sizeof(why));
  cr_expect_null(h, "%s: decoded", what);
  cr_expect_neq(why[0], '\0', "%s: no reason given", what);
  if (reason != NULL)
    cr_expect_not_null(strstr(why, reason), "%s: refused for '%s'", what, why);
  hdr_free(h);
}

static void expect_refused(const char *text, size_t len, const char *what) {
  expect_refused_for(text, len, what, NULL);
}

#define V2 0x1c849313u
#define V2Z 0x1c849314u

Test(bench_hdr, decode_refuses_truncated_and_bad_base64) {
  hdr_t *h = one_to_ten_thousand();
  char *text = hdr_encode(h);
  size_t len = strlen(text);
  for (size_t cut = 0; cut < len; cut++)
    expect_refused(text, cut, "truncated");
  char *copy = strdup(text);
  copy[10] = '*';
  expect_refused(copy, len, "a character outside base64");
  strcpy(copy, text);
  copy[12] = '=';
  expect_refused(copy, len, "padding in the middle");
  strcpy(copy, text);
  copy[5] = ' ';
  expect_refused(copy, len, "a space");
  expect_refused("HISTFA==", 8, "too short");
  expect_refused("", 0, "empty");
  free(copy);
  /* the bits that padding leaves over, not zero: "AB==" is 0x00 with bits left, "AA==" is right */
  static const unsigned char one[] = {0};
  char *pad = base64(one, 1);
  cr_expect_str_eq(pad, "AA==");
  free(pad);
  expect_refused("AB==", 4, "padding bits set");
  /* hdr-histogram-js's empty histogram, and the same with bits set under its padding */
  char why[200];
  hdr_t *js = hdr_decode("HISTFAAAABp4nJNpmSzMwMDACMXMDBDACKWZ4HwAMzIBUA==", 48, why, sizeof(why));
  cr_expect_not_null(js, "%s", why);
  hdr_free(js);
  expect_refused_for("HISTFAAAABp4nJNpmSzMwMDACMXMDBDACKWZ4HwAMzIBUB==", 48, "bits under the padding", "not base64");
  free(text);
  hdr_free(h);
}

Test(bench_hdr, decode_refuses_wrong_cookies_and_lengths) {
  unsigned char raw[64], one[] = {0x02}; /* ZigZag 1 */
  size_t n = raw_histogram(raw, V2, 1, 3, 1, 1000, one, 1);
  char *ok = pack(raw, n, V2Z, -1, 0);
  char why[200];
  hdr_t *h = hdr_decode(ok, strlen(ok), why, sizeof(why));
  cr_assert_not_null(h, "the well-formed one: %s", why);
  cr_expect_eq(hdr_total(h), 1);
  cr_expect_eq(hdr_min(h), 0);
  hdr_free(h);
  free(ok);

  const uint32_t outer[] = {0x1c849302u /* V1 */, 0x1c849309u /* V0 */, V2 /* uncompressed */, 0xdeadbeefu};
  for (size_t i = 0; i < sizeof(outer) / sizeof(outer[0]); i++) {
    char *t = pack(raw, n, outer[i], -1, 0);
    expect_refused(t, strlen(t), "outer cookie");
    free(t);
  }
  raw_histogram(raw, 0x1c849301u, 1, 3, 1, 1000, one, 1);
  char *t = pack(raw, n, V2Z, -1, 0);
  expect_refused(t, strlen(t), "inner cookie V1");
  free(t);
  raw_histogram(raw, V2, 1, 3, 1, 1000, one, 1);
  t = pack(raw, n, V2Z, 5, 0);
  expect_refused(t, strlen(t), "compressed length too short");
  free(t);
  t = pack(raw, n, V2Z, 5000, 0);
  expect_refused(t, strlen(t), "compressed length past the end");
  free(t);
  t = pack(raw, n, V2Z, -1, 3);
  expect_refused_for(t, strlen(t), "bytes after the compressed length", "compressed length");
  free(t);
  t = pack(raw, n, V2Z, -2, 3);
  expect_refused_for(t, strlen(t), "bytes after the zlib stream", "after the zlib stream");
  free(t);
  raw_histogram(raw, V2, 2, 3, 1, 1000, one, 1);
  t = pack(raw, n, V2Z, -1, 0);
  expect_refused_for(t, strlen(t), "payload length past the stream", "ends before the length");
  free(t);
  unsigned char two[] = {0x02, 0x02};
  n = raw_histogram(raw, V2, 1, 3, 1, 1000, two, 2);
  t = pack(raw, n, V2Z, -1, 0);
  expect_refused_for(t, strlen(t), "stream longer than the payload length", "longer than the payload length");
  free(t);
  unsigned char cut[] = {0x02, 0x80};
  n = raw_histogram(raw, V2, 2, 3, 1, 1000, cut, 2);
  t = pack(raw, n, V2Z, -1, 0);
  expect_refused_for(t, strlen(t), "payload ends inside a count", "ends inside a count");
  free(t);
}

Test(bench_hdr, decode_refuses_a_corrupt_zlib_stream) {
  unsigned char raw[64], one[] = {0x02};
  size_t n = raw_histogram(raw, V2, 1, 3, 1, 1000, one, 1);
  uLongf zlen = sizeof(raw) * 2;
  unsigned char buf[200];
  cr_assert_eq(compress2(buf + 8, &zlen, raw, (uLong)n, 9), Z_OK);
  be32(buf, V2Z);
  be32(buf + 4, (uint32_t)zlen);
  buf[8 + zlen - 1] ^= 1; /* the Adler-32 */
  char *t = base64(buf, 8 + zlen);
  expect_refused(t, strlen(t), "bad checksum");
  free(t);
  buf[8 + zlen - 1] ^= 1;
  be32(buf + 4, (uint32_t)zlen - 4); /* without the Adler-32 */
  t = base64(buf, 8 + zlen - 4);
  expect_refused_for(t, strlen(t), "no checksum", "cut short");
  free(t);
  be32(buf + 4, (uint32_t)zlen);
  buf[8] = 0x77; /* not a zlib header */
  t = base64(buf, 8 + zlen);
  expect_refused(t, strlen(t), "bad zlib header");
  free(t);
}

Test(bench_hdr, decode_refuses_layouts_out_of_range) {
  static const struct {
    int32_t digits;
    int64_t lowest, highest;
  } bad[] = {
    {6, 1, 1000},                      /* digits */
    {-1, 1, 1000},
    {3, 0, 1000},                      /* lowest */
    {3, -4, 1000},
    {3, 1000, 1999},                   /* highest < 2 * lowest */
    {3, 1, -1},
    {5, INT64_C(1) << 50, INT64_MAX},  /* unitMagnitude + subBucketCountMagnitude > 62 */
  };
  unsigned char raw[64], one[] = {0x02};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    size_t n = raw_histogram(raw, V2, 1, bad[i].digits, bad[i].lowest, bad[i].highest, one, 1);
    char *t = pack(raw, n, V2Z, -1, 0);
    expect_refused(t, strlen(t), "layout");
    free(t);
  }
}

/* Counts past the layout's last index (1..1000, 3 digits: 2048 counts), one
 * at a time or in a run of zeros; a total past 2^63. */
Test(bench_hdr, decode_refuses_counts_past_the_layout) {
  hdr_t *shape = hdr_new(1, 1000, 3);
  int32_t counts = hdr_counts_len(shape);
  hdr_free(shape);
  unsigned char *payload = malloc((size_t)counts + 1), *raw = malloc((size_t)counts + 64);
  memset(payload, 0x02, (size_t)counts + 1);
  size_t n = raw_histogram(raw, V2, (uint32_t)counts, 3, 1, 1000, payload, (size_t)counts);
  char *t = pack(raw, n, V2Z, -1, 0);
  char why[200];
  hdr_t *h = hdr_decode(t, strlen(t), why, sizeof(why));
  cr_assert_not_null(h, "every count of the layout: %s", why);
  cr_expect_eq(hdr_total(h), counts);
  hdr_free(h);
  free(t);
  n = raw_histogram(raw, V2, (uint32_t)counts + 1, 3, 1, 1000, payload, (size_t)counts + 1);
  t = pack(raw, n, V2Z, -1, 0);
  expect_refused(t, strlen(t), "one count too many");
  free(t);
  /* a run of counts - 1 zeros (ZigZag of -(counts - 1), LEB128), then two counts */
  uint64_t z = (uint64_t)(counts - 1) * 2 - 1;
  unsigned char run[] = {(unsigned char)((z & 0x7f) | 0x80), (unsigned char)(z >> 7), 0x02, 0x02};
  n = raw_histogram(raw, V2, sizeof(run), 3, 1, 1000, run, sizeof(run));
  t = pack(raw, n, V2Z, -1, 0);
  expect_refused(t, strlen(t), "a run of zeros then past the end");
  free(t);
  /* the largest run of zeros Java takes (2^31 - 1) */
  unsigned char big[] = {0xfd, 0xff, 0xff, 0xff, 0x0f};
  n = raw_histogram(raw, V2, sizeof(big), 3, 1, 1000, big, sizeof(big));
  t = pack(raw, n, V2Z, -1, 0);
  expect_refused(t, strlen(t), "a run of 2^31 - 1 zeros");
  free(t);
  /* INT64_MAX twice: ZigZag 2^64 - 2 is fe ff ff ff ff ff ff ff ff */
  unsigned char huge[18];
  for (int i = 0; i < 2; i++) {
    huge[9 * i] = 0xfe;
    memset(huge + 9 * i + 1, 0xff, 8);
  }
  n = raw_histogram(raw, V2, 9, 3, 1, 1000, huge, 9);
  t = pack(raw, n, V2Z, -1, 0);
  h = hdr_decode(t, strlen(t), why, sizeof(why));
  cr_assert_not_null(h, "one count of INT64_MAX: %s", why);
  cr_expect_eq(hdr_total(h), INT64_MAX);
  hdr_free(h);
  free(t);
  n = raw_histogram(raw, V2, 18, 3, 1, 1000, huge, 18);
  t = pack(raw, n, V2Z, -1, 0);
  expect_refused(t, strlen(t), "a total past 2^63");
  free(t);
  free(payload);
  free(raw);
}

/* A few hundred bytes that claim, or inflate to, far more than a layout needs. */
Test(bench_hdr, decode_refuses_zlib_bombs) {
  unsigned char raw[64], one[] = {0x02};
  size_t n = raw_histogram(raw, V2, 0x7fffffffu, 3, 1, 1000, one, 1);
  char *t = pack(raw, n, V2Z, -1, 0);
  expect_refused_for(t, strlen(t), "a payload length of 2 GiB", "payload of 2147483647 bytes for 2048 counts");
  free(t);
  /* 8 MiB of zero bytes (counts of 0, one index each) behind a header that
   * claims a payload of every count of the widest layout */
  size_t big = (size_t)8 << 20; /* past the 6160384 counts of the widest layout */
  unsigned char *bomb = calloc(1, big + 40);
  raw_histogram(bomb, V2, 0xffffffffu, 5, 1, INT64_MAX, NULL, 0);
  n = raw_histogram(bomb, V2, 6160384u * 9, 5, 1, INT64_MAX, NULL, 0) + big;
  t = pack(bomb, n, V2Z, -1, 0);
  cr_expect_lt(strlen(t), (size_t)200000, "the bomb is small: %zu", strlen(t));
  expect_refused_for(t, strlen(t), "8 MiB of zero counts", "counts past the layout");
  free(t);
  /* the same zeros behind an honest small payload length */
  n = raw_histogram(bomb, V2, 1, 3, 1, 1000, NULL, 0) + big;
  t = pack(bomb, n, V2Z, -1, 0);
  expect_refused_for(t, strlen(t), "a payload of 1 byte that inflates to 8 MiB", "longer than the payload length");
  free(t);
  free(bomb);
}

/* ------------------------------------------------------------ interval logs */

typedef struct {
  int n;
  hlog_entry_t e[8];
  hdr_t *h[8];
  int stop_at; /* the callback returns 7 at this entry (1-based), or never */
} collected_t;

static int collect(const hlog_entry_t *e, void *ud) {
  collected_t *c = ud;
  cr_assert_lt(c->n, 8);
  c->e[c->n] = *e;
  /* hist is the reader's: copy it */
  c->h[c->n] = hdr_new(1, 2, 0);
  int64_t l, hi;
  int d;
  hdr_layout(e->hist, &l, &hi, &d);
  hdr_free(c->h[c->n]);
  c->h[c->n] = hdr_new(l, hi, d);
  hdr_add(c->h[c->n], e->hist);
  c->n++;
  return c->n == c->stop_at ? 7 : 0;
}

static void collected_free(collected_t *c) {
  for (int i = 0; i < c->n; i++)
    hdr_free(c->h[i]);
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f);
  char *text = calloc(1, 1 << 20);
  size_t n = fread(text, 1, (1 << 20) - 1, f);
  text[n] = '\0';
  fclose(f);
  return text;
}

Test(bench_hdr, log_write_then_read) {
  char path[] = "/tmp/test_bench_hdr.XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  close(fd);
  hdr_t *h[3] = {hdr_new_default(), hdr_new_default(), hdr_new(1000, 60000000, 2)};
  rng_state = 3;
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < 1000 * (k + 1); i++)
      hdr_record(h[k], random_value());
  hlog_writer_t *w = hlog_open(path, 1700000000.5, "salvo-bench test\nsecond line");
  cr_assert_not_null(w);
  cr_assert_eq(hlog_write(w, NULL, 0, 1, h[0]), 0);
  cr_assert_eq(hlog_write(w, "get", 1.5, 1, h[1]), 0);
  cr_assert_eq(hlog_write(w, "weird tag!", 2.25, 0.75, h[2]), 0);
  cr_assert_eq(hlog_close(w), 0);

  char *text = read_text(path);
  const char *head = "#[Histogram log format version 1.3]\n"
                     "#salvo-bench test\n"
                     "#second line\n"
                     "#[StartTime: 1700000000.500 (seconds since epoch), Tue Nov 14 22:13:20 UTC 2023]\n"
                     "#[BaseTime: 1700000000.500 (seconds since epoch)]\n"
                     "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n"
                     "0.000,1.000,";
  cr_expect_eq(strncmp(text, head, strlen(head)), 0, "header:\n%s", text);
  char line[64];
  snprintf(line, sizeof(line), "\nTag=weird_tag_,2.250,0.750,%.3f,HISTF", (double)hdr_max(h[2]) / 1000);
  cr_expect_not_null(strstr(text, line), "no '%s' in\n%s", line + 1, text);
  free(text);

  FILE *f = fopen(path, "r");
  collected_t c = {0};
  double start = -1;
  char why[300] = "";
  cr_assert_eq(hlog_read(f, &start, collect, &c, why, sizeof(why)), 0, "%s", why);
  fclose(f);
  cr_expect_eq(start, 1700000000.5);
  cr_assert_eq(c.n, 3);
  const char *tags[] = {"", "get", "weird_tag_"};
  const double starts[] = {0, 1.5, 2.25}, lengths[] = {1, 1, 0.75};
  for (int k = 0; k < 3; k++) {
    cr_expect_str_eq(c.e[k].tag, tags[k]);
    cr_expect(fabs(c.e[k].start_s - starts[k]) < 1e-9, "start %d: %f", k, c.e[k].start_s);
    cr_expect(fabs(c.e[k].length_s - lengths[k]) < 1e-9);
    cr_expect(hdr_same(c.h[k], h[k]), "interval %d differs", k);
  }
  collected_free(&c);

  /* the callback stops the reading */
  f = fopen(path, "r");
  collected_t s = {.stop_at = 2};
  cr_expect_eq(hlog_read(f, NULL, collect, &s, why, sizeof(why)), 7);
  cr_expect_eq(s.n, 2);
  collected_free(&s);
  fclose(f);
  unlink(path);
  for (int k = 0; k < 3; k++)
    hdr_free(h[k]);
}

Test(bench_hdr, log_open_fails_with_errno) {
  errno = 0;
  cr_expect_null(hlog_open("/nonexistent-dir/x.hlog", 0, NULL));
  cr_expect_eq(errno, ENOENT);
  cr_expect_eq(hlog_close(NULL), 0);
}

static int read_log_text(const char *text, collected_t *c, double *start, char *why, size_t why_len) {
  FILE *f = fmemopen((void *)text, strlen(text), "r");
  cr_assert_not_null(f);
  int rc = hlog_read(f, start, collect, c, why, why_len);
  fclose(f);
  return rc;
}

/* What Java wrote before 1.3 (and still reads): no BaseTime, absolute or
 * relative timestamps, the 1.01 legend, CRLF, blank lines, comments. */
Test(bench_hdr, log_reads_the_legacy_forms) {
  hdr_t *h = one_to_ten_thousand();
  char *hist = hdr_encode(h), text[4096], why[300] = "";
  double start;
  collected_t c = {0};
  /* absolute timestamps (ycsb's logs): START is a Unix time */
  snprintf(text, sizeof(text),
           "#[Logging for: READ]\r\n#[Histogram log format version 1.01]\r\n"
           "#[StartTime: 1438613579.295 (seconds since epoch), Mon Aug 03 07:52:59 PDT 2015]\r\n"
           "\"StartTimestamp\",\"EndTimestamp\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\r\n"
           "1438613579.290,0.660,10.007,%s\r\n\r\n1438613580.950,1.000,10.007,%s\r\n",
           hist, hist);
  cr_assert_eq(read_log_text(text, &c, &start, why, sizeof(why)), 0, "%s", why);
  cr_expect_eq(start, 1438613579.295);
  cr_assert_eq(c.n, 2);
  cr_expect(fabs(c.e[0].start_s - (-0.005)) < 1e-6, "%f", c.e[0].start_s);
  cr_expect(fabs(c.e[1].start_s - 1.655) < 1e-6);
  cr_expect(fabs(c.e[0].length_s - 0.66) < 1e-9);
  cr_expect(hdr_same(c.h[1], h));
  collected_free(&c);

  /* relative timestamps, no BaseTime (jHiccup's 1.2 logs): after StartTime */
  memset(&c, 0, sizeof(c));
  snprintf(text, sizeof(text),
           "#[Histogram log format version 1.2]\n#[StartTime: 1441812279.474 (seconds since epoch), x]\n"
           "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n"
           "0.127,1.007,2.769,%s\nTag=A,1.134,0.999,0.442,%s\n",
           hist, hist);
  cr_assert_eq(read_log_text(text, &c, &start, why, sizeof(why)), 0, "%s", why);
  cr_expect_eq(start, 1441812279.474);
  cr_assert_eq(c.n, 2);
  cr_expect(fabs(c.e[0].start_s - 0.127) < 1e-9);
  cr_expect(fabs(c.e[1].start_s - 1.134) < 1e-9);
  cr_expect_str_eq(c.e[1].tag, "A");
  collected_free(&c);

  /* a BaseTime 10 s before StartTime: START counts from BaseTime */
  memset(&c, 0, sizeof(c));
  snprintf(text, sizeof(text),
           "#[StartTime: 1700000010.000 (seconds since epoch), x]\n#[BaseTime: 1700000000.000 (seconds since epoch)]\n"
           "12.500,1.000,1.000,%s\n",
           hist);
  cr_assert_eq(read_log_text(text, &c, &start, why, sizeof(why)), 0, "%s", why);
  cr_expect_eq(start, 1700000010.0);
  cr_assert_eq(c.n, 1);
  cr_expect(fabs(c.e[0].start_s - 2.5) < 1e-9, "%f", c.e[0].start_s);
  collected_free(&c);

  /* neither: START as it is, from 0 */
  memset(&c, 0, sizeof(c));
  snprintf(text, sizeof(text), "3.000,1.000,1.000,%s\n", hist);
  cr_assert_eq(read_log_text(text, &c, &start, why, sizeof(why)), 0, "%s", why);
  cr_expect_eq(start, 0);
  cr_expect(fabs(c.e[0].start_s - 3) < 1e-9);
  collected_free(&c);

  /* no intervals: the StartTime all the same */
  memset(&c, 0, sizeof(c));
  cr_expect_eq(read_log_text("#[StartTime: 5.25 (seconds since epoch)]\n", &c, &start, why, sizeof(why)), 0);
  cr_expect_eq(start, 5.25);
  cr_expect_eq(c.n, 0);
  free(hist);
  hdr_free(h);
}

Test(bench_hdr, log_refuses_lines_it_cannot_read) {
  hdr_t *h = hdr_new_default();
  hdr_record(h, 5);
  char *hist = hdr_encode(h), text[4096], long_tag[200];
  memset(long_tag, 'a', 150);
  long_tag[150] = '\0';
  const char *bad[] = {
    "0.0,1.0,%s\n",                 /* a field missing */
    "0.0,1.0,1.0,%s,extra\n",       /* one too many: the histogram is not base64 */
    "x,1.0,1.0,%s\n",               /* START */
    "0.0,1.0.0,1.0,%s\n",           /* LENGTH */
    "0.0,1.0,,%s\n",                /* MAX */
    "0.0,1.0,1.0,HISTF%s\n",        /* the histogram */
    "Tag=%s\n",                     /* a tag alone */
    "#[StartTime: soon]\n%s\n",     /* StartTime without a number */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char header[] = "#[Histogram log format version 1.3]\n";
    int n = snprintf(text, sizeof(text), "%s", header);
    snprintf(text + n, sizeof(text) - (size_t)n, bad[i], hist);
    collected_t c = {0};
    char why[300] = "";
    cr_expect_eq(read_log_text(text, &c, NULL, why, sizeof(why)), -1, "case %zu read", i);
    cr_expect(strncmp(why, "line 2: ", 8) == 0, "case %zu: %s", i, why);
    cr_expect_eq(c.n, 0);
    collected_free(&c);
  }
  snprintf(text, sizeof(text), "Tag=%s,0.0,1.0,1.0,%s\n", long_tag, hist);
  collected_t c = {0};
  char why[300] = "";
  cr_expect_eq(read_log_text(text, &c, NULL, why, sizeof(why)), -1, "tag of 150 bytes");
  cr_expect(strstr(why, "line 1: ") == why, "%s", why);
  /* the line before a bad one was read */
  snprintf(text, sizeof(text), "0.0,1.0,1.0,%s\n1,2\n", hist);
  cr_expect_eq(read_log_text(text, &c, NULL, why, sizeof(why)), -1);
  cr_expect_eq(c.n, 1);
  cr_expect(strstr(why, "line 2: ") == why, "%s", why);
  collected_free(&c);
  /* a NUL byte */
  static const char nul[] = "0.0,1.0\0,1.0\n";
  FILE *f = fmemopen((void *)nul, sizeof(nul) - 1, "r");
  collected_t d = {0};
  cr_expect_eq(hlog_read(f, NULL, collect, &d, why, sizeof(why)), -1);
  fclose(f);
  free(hist);
  hdr_free(h);
}
