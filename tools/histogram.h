/* A latency histogram with HdrHistogram's precision (3 significant digits)
 * from 1 us to beyond 1 h, in a fixed 320 KB: no allocation per sample, and
 * histograms of several threads add up. Header-only, for the tools. */
#ifndef SALVO_TOOLS_HISTOGRAM_H
#define SALVO_TOOLS_HISTOGRAM_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Values below 1000 us are exact. Above, a value keeps its top 3 significant
 * digits: it is shifted right until it is below 1000, so the kept part is in
 * [500, 999] and the error at most 1/500. */
#define HIST_BUCKETS 40000

typedef struct {
  uint64_t counts[HIST_BUCKETS];
  uint64_t n;
  uint64_t max_us;
  uint64_t min_us;
} histogram_t;

static inline size_t hist_bucket(uint64_t us) {
  if (us < 1000)
    return (size_t)us;
  unsigned shift = 0;
  while ((us >> shift) >= 1000)
    shift++;
  size_t b = 1000 + (size_t)(shift - 1) * 1000 + (size_t)(us >> shift);
  return b < HIST_BUCKETS ? b : HIST_BUCKETS - 1;
}

/* The highest value that falls in bucket |b|. */
static inline uint64_t hist_value(size_t b) {
  if (b < 1000)
    return b;
  size_t shift = (b - 1000) / 1000 + 1;
  return (((uint64_t)((b - 1000) % 1000) + 1) << shift) - 1;
}

static inline void hist_init(histogram_t *h) {
  memset(h, 0, sizeof(*h));
  h->min_us = UINT64_MAX;
}

static inline void hist_add(histogram_t *h, uint64_t us) {
  h->counts[hist_bucket(us)]++;
  h->n++;
  if (us > h->max_us)
    h->max_us = us;
  if (us < h->min_us)
    h->min_us = us;
}

static inline void hist_merge(histogram_t *into, const histogram_t *from) {
  for (size_t b = 0; b < HIST_BUCKETS; b++)
    into->counts[b] += from->counts[b];
  into->n += from->n;
  if (from->max_us > into->max_us)
    into->max_us = from->max_us;
  if (from->min_us < into->min_us)
    into->min_us = from->min_us;
}

/* The value at percentile |p| (0..100), in microseconds. */
static inline uint64_t hist_percentile_us(const histogram_t *h, double p) {
  if (h->n == 0)
    return 0;
  if (p >= 100.0)
    return h->max_us;
  uint64_t want = (uint64_t)ceil(p / 100.0 * (double)h->n);
  if (want == 0)
    want = 1;
  uint64_t seen = 0;
  for (size_t b = 0; b < HIST_BUCKETS; b++) {
    seen += h->counts[b];
    if (seen >= want) {
      uint64_t v = hist_value(b);
      return v < h->max_us ? v : h->max_us;
    }
  }
  return h->max_us;
}

#endif
