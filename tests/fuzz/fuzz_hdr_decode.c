/* libFuzzer target: salvo-bench's HdrHistogram decoding (bench/salvo-bench/
 * hdr.c), which reads histograms and interval logs from other machines. The
 * first byte picks what the rest is:
 *   0: text: hdr_decode() of it, and hlog_read() of it as a log (fmemopen);
 *   1: the uncompressed V2 form, which this compresses and wraps first, so
 *      the fuzzer reaches the header and the counts past zlib's checksum;
 *   2: the compressed bytes (cookie, length, zlib stream), base64'd here.
 * Nothing may crash or leak, and what is accepted must be a histogram that
 * holds: counts add up to the total, it encodes back to the same counts,
 * percentiles never go down. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "hdr.h"

static void add_count(int64_t value, int64_t count, void *ud) {
  (void)value;
  int64_t *sum = ud;
  if (count <= 0 || *sum > INT64_MAX - count)
    abort();
  *sum += count;
}

static void check(const hdr_t *h) {
  int64_t sum = 0;
  hdr_each(h, add_count, &sum);
  if (sum != hdr_total(h))
    abort();
  int64_t last = 0;
  for (double p = 0; p <= 100; p += 12.5) {
    int64_t v = hdr_percentile(h, p);
    if (v < last)
      abort();
    last = v;
  }
  if (hdr_total(h) > 0 && hdr_max(h) < hdr_min(h))
    abort();
  /* (past 2^40 the ulp taken off 100 can stop short of the last bucket, as in Java) */
  if (hdr_total(h) > 0 && hdr_total(h) < (INT64_C(1) << 40) && hdr_percentile(h, 100) != hdr_max(h))
    abort();
  char *text = hdr_encode(h);
  if (text == NULL)
    return; /* out of memory */
  char why[200];
  hdr_t *back = hdr_decode(text, strlen(text), why, sizeof(why));
  if (back == NULL || !hdr_same(h, back))
    abort();
  hdr_free(back);
  free(text);
}

static void decode(const char *text, size_t len) {
  char why[200];
  why[0] = '\0';
  hdr_t *h = hdr_decode(text, len, why, sizeof(why));
  if (h == NULL && why[0] == '\0')
    abort(); /* refused without a reason */
  if (h != NULL)
    check(h);
  hdr_free(h);
}

static int on_entry(const hlog_entry_t *e, void *ud) {
  (void)ud;
  if (e->hist == NULL || strlen(e->tag) >= sizeof(e->tag) || !isfinite(e->length_s))
    abort();
  check(e->hist);
  return 0;
}

static void read_log(const uint8_t *data, size_t size) {
  if (size == 0)
    return;
  FILE *f = fmemopen((void *)(uintptr_t)data, size, "r");
  if (f == NULL)
    return;
  double start;
  char why[300];
  why[0] = '\0';
  int rc = hlog_read(f, &start, on_entry, NULL, why, sizeof(why));
  if (rc != 0 && (rc != -1 || strncmp(why, "line ", 5) != 0))
    abort(); /* on_entry never stops; a refusal names its line */
  fclose(f);
}

static char *to_base64(const unsigned char *in, size_t len) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *out = malloc(len / 3 * 4 + 8), *p = out;
  if (out == NULL)
    return NULL;
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

static void decode_bytes(const unsigned char *bytes, size_t n) {
  char *text = to_base64(bytes, n);
  if (text != NULL)
    decode(text, strlen(text));
  free(text);
}

static void decode_raw(const uint8_t *raw, size_t n) {
  uLongf zlen = compressBound((uLong)n);
  unsigned char *packed = malloc(8 + zlen);
  if (packed != NULL && compress2(packed + 8, &zlen, raw, (uLong)n, 1) == Z_OK) {
    const unsigned char cookie[4] = {0x1c, 0x84, 0x93, 0x14};
    memcpy(packed, cookie, 4);
    for (int i = 0; i < 4; i++)
      packed[4 + i] = (unsigned char)(zlen >> (24 - 8 * i));
    decode_bytes(packed, 8 + zlen);
  }
  free(packed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  const uint8_t *rest = data + 1;
  size_t n = size - 1;
  switch (data[0] % 3) {
  case 0:
    decode((const char *)rest, n);
    read_log(rest, n);
    break;
  case 1:
    decode_raw(rest, n);
    break;
  default:
    decode_bytes(rest, n);
    break;
  }
  return 0;
}
