/* HdrHistogram in C: see hdr.h. Where it matters (the layout, the indexing,
 * getValueAtPercentile(), the V2 encoding, the interval log) this follows
 * HdrHistogram's Java AbstractHistogram, ZigZagEncoding, HistogramLogWriter
 * and HistogramLogReader (2.2.x); each part names the Java method it mirrors.
 * Decoding is stricter than Java's: it reads files from other machines. */
#include "hdr.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#define HDR_MAX_COUNTS (1 << 24)
/* Java's V2 cookie bases; the encoders OR in 0x10 ("LSBit of wordSize byte
 * indicates TLZE Encoding"), so "HISTF" starts every compressed string. */
#define V2_COOKIE_BASE 0x1c849303u
#define V2_COMPRESSED_COOKIE_BASE 0x1c849304u
#define COOKIE_FLAGS 0x10u
#define COOKIE_BASE(c) ((c) & ~0xf0u)
#define HEADER_SIZE 40 /* cookie, payload length, offset, digits, lowest, highest, ratio */
#define MAX_WORD 9     /* ZigZag LEB128-64b9B: the 9th byte carries 8 bits */

struct hdr_s {
  int64_t lowest;               /* lowestDiscernibleValue */
  int64_t highest;              /* highestTrackableValue: values above count as this */
  int digits;                   /* numberOfSignificantValueDigits */
  int unit_magnitude;           /* floor(log2(lowest)), computed as Java does */
  int half_count_magnitude;     /* subBucketHalfCountMagnitude */
  int32_t half_count;           /* subBucketHalfCount */
  int64_t sub_bucket_mask;      /* (subBucketCount - 1) << unitMagnitude */
  int leading_zero_count_base;  /* 64 - unitMagnitude - subBucketCountMagnitude */
  int32_t counts_len;           /* countsArrayLength */
  int64_t total;                /* saturates at INT64_MAX */
  int64_t counts[];
};

/* ------------------------------------------------------------------ layout */

/* ceil(log2(2 * 10^digits)) for digits 0..5, as Java's init() computes it. */
static const int sub_bucket_count_magnitude[6] = {1, 5, 8, 11, 15, 18};

/* getBucketsNeededToCoverValue() */
static int buckets_needed(int64_t sub_bucket_count, int unit_magnitude, int64_t value) {
  int64_t smallest_untrackable = sub_bucket_count << unit_magnitude;
  int buckets = 1;
  while (smallest_untrackable <= value) {
    if (smallest_untrackable > INT64_MAX / 2)
      return buckets + 1;
    smallest_untrackable <<= 1;
    buckets++;
  }
  return buckets;
}

/* The layout of (lowest, highest, digits) in *h, or -1 where HdrHistogram's
 * constructor would throw (or the counts would be more than HDR_MAX_COUNTS). */
static int layout(hdr_t *h, int64_t lowest, int64_t highest, int digits) {
  if (lowest < 1 || digits < 0 || digits > 5 || lowest > INT64_MAX / 2 || highest < 2 * lowest)
    return -1;
  int magnitude = sub_bucket_count_magnitude[digits];
  int unit = (int)(log((double)lowest) / log(2.0));
  if (magnitude + unit > 62)
    return -1;
  int64_t sub_bucket_count = INT64_C(1) << magnitude;
  int buckets = buckets_needed(sub_bucket_count, unit, highest);
  int64_t counts_len = (int64_t)(buckets + 1) * (sub_bucket_count / 2);
  if (counts_len > HDR_MAX_COUNTS)
    return -1;
  h->lowest = lowest;
  h->highest = highest;
  h->digits = digits;
  h->unit_magnitude = unit;
  h->half_count_magnitude = magnitude - 1;
  h->half_count = (int32_t)(sub_bucket_count / 2);
  h->sub_bucket_mask = (sub_bucket_count - 1) << unit;
  h->leading_zero_count_base = 64 - unit - magnitude;
  h->counts_len = (int32_t)counts_len;
  return 0;
}

static hdr_t *hdr_alloc(int64_t lowest, int64_t highest, int digits) {
  hdr_t shape = {0};
  if (layout(&shape, lowest, highest, digits) != 0)
    return NULL;
  hdr_t *h = calloc(1, sizeof(*h) + (size_t)shape.counts_len * sizeof(int64_t));
  if (h != NULL)
    *h = shape;
  return h;
}

hdr_t *hdr_new(int64_t lowest, int64_t highest, int digits) {
  return hdr_alloc(lowest, highest, digits);
}

hdr_t *hdr_new_default(void) {
  return hdr_new(HDR_LOWEST, HDR_HIGHEST, HDR_DIGITS);
}

void hdr_free(hdr_t *h) {
  free(h);
}

void hdr_reset(hdr_t *h) {
  memset(h->counts, 0, (size_t)h->counts_len * sizeof(int64_t));
  h->total = 0;
}

int32_t hdr_counts_len(const hdr_t *h) {
  return h->counts_len;
}

void hdr_layout(const hdr_t *h, int64_t *lowest, int64_t *highest, int *digits) {
  *lowest = h->lowest;
  *highest = h->highest;
  *digits = h->digits;
}

/* ---------------------------------------------------------------- indexing */

/* getBucketIndex(): value >= 0. */
static int bucket_index(const hdr_t *h, int64_t value) {
  return h->leading_zero_count_base - __builtin_clzll((uint64_t)(value | h->sub_bucket_mask));
}

/* countsArrayIndex(): value >= 0, within the layout. */
static int64_t index_of(const hdr_t *h, int64_t value) {
  int bucket = bucket_index(h, value);
  int64_t sub_bucket = value >> (bucket + h->unit_magnitude);
  return ((int64_t)(bucket + 1) << h->half_count_magnitude) + sub_bucket - h->half_count;
}

/* valueFromIndex(): the lowest value counted at index. */
static int64_t value_from_index(const hdr_t *h, int64_t index) {
  int bucket = (int)(index >> h->half_count_magnitude) - 1;
  int64_t sub_bucket = (index & (h->half_count - 1)) + h->half_count;
  if (bucket < 0) {
    sub_bucket -= h->half_count;
    bucket = 0;
  }
  return sub_bucket << (bucket + h->unit_magnitude);
}

int64_t hdr_lowest_equivalent(const hdr_t *h, int64_t value) {
  if (value < 0)
    value = 0;
  int bucket = bucket_index(h, value);
  return (value >> (bucket + h->unit_magnitude)) << (bucket + h->unit_magnitude);
}

/* highestEquivalentValue(): nextNonEquivalentValue(value) - 1, added so that
 * the top of a layout reaching INT64_MAX does not overflow on the way. */
int64_t hdr_highest_equivalent(const hdr_t *h, int64_t value) {
  if (value < 0)
    value = 0;
  int64_t size = INT64_C(1) << (bucket_index(h, value) + h->unit_magnitude);
  return hdr_lowest_equivalent(h, value) + (size - 1);
}

static int64_t add_saturated(int64_t a, int64_t b) {
  return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* --------------------------------------------------------------- recording */

void hdr_record(hdr_t *h, int64_t value) {
  hdr_record_n(h, value, 1);
}

void hdr_record_n(hdr_t *h, int64_t value, int64_t n) {
  if (n <= 0)
    return;
  if (value < 0)
    value = 0;
  if (value > h->highest)
    value = h->highest;
  int64_t index = index_of(h, value);
  h->counts[index] = add_saturated(h->counts[index], n);
  h->total = add_saturated(h->total, n);
}

/* As Java's add() does across layouts: each count of |from| recorded at the
 * lowest value of its bucket. Within one layout that is the same index. */
void hdr_add(hdr_t *into, const hdr_t *from) {
  for (int32_t i = 0; i < from->counts_len; i++)
    if (from->counts[i] > 0)
      hdr_record_n(into, value_from_index(from, i), from->counts[i]);
}

/* ------------------------------------------------------------------- stats */

int64_t hdr_total(const hdr_t *h) {
  return h->total;
}

/* getMin(): 0 when empty or when the bucket of 0 has a count. */
int64_t hdr_min(const hdr_t *h) {
  for (int32_t i = 0; i < h->counts_len; i++)
    if (h->counts[i] > 0)
      return value_from_index(h, i);
  return 0;
}

int64_t hdr_max(const hdr_t *h) {
  for (int32_t i = h->counts_len - 1; i >= 0; i--)
    if (h->counts[i] > 0)
      return hdr_highest_equivalent(h, value_from_index(h, i));
  return 0;
}

/* getMean(): each bucket counts at its medianEquivalentValue(). */
double hdr_mean(const hdr_t *h) {
  if (h->total == 0)
    return 0.0;
  double sum = 0.0;
  for (int32_t i = 0; i < h->counts_len; i++) {
    if (h->counts[i] == 0)
      continue;
    int64_t low = value_from_index(h, i);
    int64_t size = INT64_C(1) << (bucket_index(h, low) + h->unit_magnitude);
    sum += (double)(low + (size >> 1)) * (double)h->counts[i];
  }
  return sum / (double)h->total;
}

/* getValueAtPercentile(), to the ulp: one ulp off the percentile so that
 * round-off cannot push ceil() into the next count, clamped to 0..100, at
 * least the first count, at most the last; the 0th percentile is the lowest
 * equivalent value. */
int64_t hdr_percentile(const hdr_t *h, double p) {
  double requested = fmin(fmax(nextafter(p, -INFINITY), 0.0), 100.0);
  double fp_count = (requested * (double)h->total) / 100.0;
  /* fp_count can pass the total when the total is past 2^53 (its double
   * rounds up): Java then answers 0; this, the last counted bucket. */
  int64_t count = fp_count < 0x1p63 ? (int64_t)ceil(fp_count) : h->total;
  if (count > h->total)
    count = h->total;
  if (count < 1)
    count = 1;
  int64_t so_far = 0;
  for (int32_t i = 0; i < h->counts_len; i++) {
    so_far = add_saturated(so_far, h->counts[i]);
    if (so_far >= count) {
      int64_t value = value_from_index(h, i);
      return p == 0.0 ? value : hdr_highest_equivalent(h, value);
    }
  }
  return 0;
}

static int32_t next_counted(const hdr_t *h, int32_t i) {
  while (i < h->counts_len && h->counts[i] == 0)
    i++;
  return i;
}

int hdr_same(const hdr_t *a, const hdr_t *b) {
  if (a->total != b->total)
    return 0;
  int32_t i = next_counted(a, 0), j = next_counted(b, 0);
  for (; i < a->counts_len && j < b->counts_len; i = next_counted(a, i + 1), j = next_counted(b, j + 1)) {
    int64_t va = value_from_index(a, i), vb = value_from_index(b, j);
    if (a->counts[i] != b->counts[j] || va != vb ||
        hdr_highest_equivalent(a, va) != hdr_highest_equivalent(b, vb))
      return 0;
  }
  return i == a->counts_len && j == b->counts_len;
}

void hdr_each(const hdr_t *h, void (*cb)(int64_t value, int64_t count, void *ud), void *ud) {
  for (int32_t i = 0; i < h->counts_len; i++)
    if (h->counts[i] > 0)
      cb(hdr_highest_equivalent(h, value_from_index(h, i)), h->counts[i], ud);
}

/* ---------------------------------------------------------------- encoding */

static unsigned char *put_be32(unsigned char *p, uint32_t v) {
  for (int i = 3; i >= 0; i--)
    *p++ = (unsigned char)(v >> (8 * i));
  return p;
}

static unsigned char *put_be64(unsigned char *p, uint64_t v) {
  p = put_be32(p, (uint32_t)(v >> 32));
  return put_be32(p, (uint32_t)v);
}

static uint32_t get_be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const unsigned char *p) {
  return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

/* ZigZagEncoding.putLong(): LEB128 of the zigzagged value, at most 9 bytes. */
static unsigned char *zigzag_put(unsigned char *p, int64_t value) {
  uint64_t v = value < 0 ? ~((uint64_t)value << 1) : (uint64_t)value << 1;
  for (int i = 0; i < 8; i++) {
    if (v >> 7 == 0) {
      *p++ = (unsigned char)v;
      return p;
    }
    *p++ = (unsigned char)((v & 0x7f) | 0x80);
    v >>= 7;
  }
  *p++ = (unsigned char)v;
  return p;
}

/* ZigZagEncoding.getLong(): bytes used, or 0 when p[0..avail) ends inside the word. */
static size_t zigzag_get(const unsigned char *p, size_t avail, int64_t *value) {
  uint64_t v = 0;
  size_t used = 0;
  while (used < MAX_WORD) {
    if (used == avail)
      return 0;
    unsigned char b = p[used];
    if (used == MAX_WORD - 1) {
      v |= (uint64_t)b << 56;
      used++;
      break;
    }
    v |= (uint64_t)(b & 0x7f) << (7 * used);
    used++;
    if (!(b & 0x80))
      break;
  }
  *value = (v & 1) ? -(int64_t)(v >> 1) - 1 : (int64_t)(v >> 1);
  return used;
}

/* encodeIntoByteBuffer(): the uncompressed V2 form. Counts up to the top
 * counted index (index 0 alone when empty), a run of zeros as minus its length. */
static size_t encode_raw(const hdr_t *h, unsigned char *out) {
  int32_t limit = h->counts_len;
  while (limit > 1 && h->counts[limit - 1] == 0)
    limit--;
  unsigned char *p = out + HEADER_SIZE;
  for (int32_t i = 0; i < limit;) {
    int64_t count = h->counts[i++];
    int64_t zeros = 0;
    if (count == 0) {
      zeros = 1;
      while (i < limit && h->counts[i] == 0) {
        zeros++;
        i++;
      }
    }
    p = zigzag_put(p, zeros > 1 ? -zeros : count);
  }
  size_t payload = (size_t)(p - out) - HEADER_SIZE;
  unsigned char *q = put_be32(out, V2_COOKIE_BASE | COOKIE_FLAGS);
  q = put_be32(q, (uint32_t)payload);
  q = put_be32(q, 0); /* normalizingIndexOffset */
  q = put_be32(q, (uint32_t)h->digits);
  q = put_be64(q, (uint64_t)h->lowest);
  q = put_be64(q, (uint64_t)h->highest);
  double ratio = 1.0; /* integerToDoubleValueConversionRatio */
  uint64_t bits;
  memcpy(&bits, &ratio, sizeof(bits));
  put_be64(q, bits);
  return (size_t)(p - out);
}

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *base64_encode(const unsigned char *in, size_t len) {
  char *out = malloc((len + 2) / 3 * 4 + 1), *p = out;
  if (out == NULL)
    return NULL;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < len)
      v |= (uint32_t)in[i + 1] << 8;
    if (i + 2 < len)
      v |= in[i + 2];
    *p++ = b64_alphabet[v >> 18];
    *p++ = b64_alphabet[(v >> 12) & 63];
    *p++ = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
    *p++ = i + 2 < len ? b64_alphabet[v & 63] : '=';
  }
  *p = '\0';
  return out;
}

/* encodeIntoCompressedByteBuffer(): the compressed cookie, the zlib stream's
 * length, the zlib stream (deflate, zlib wrapper) of the uncompressed form. */
char *hdr_encode(const hdr_t *h) {
  int32_t limit = h->counts_len;
  while (limit > 1 && h->counts[limit - 1] == 0)
    limit--;
  size_t raw_cap = HEADER_SIZE + (size_t)limit * MAX_WORD;
  unsigned char *raw = malloc(raw_cap);
  uLongf zlen = compressBound((uLong)raw_cap);
  unsigned char *packed = malloc(8 + zlen);
  char *text = NULL;
  if (raw != NULL && packed != NULL) {
    size_t raw_len = encode_raw(h, raw);
    if (compress2(packed + 8, &zlen, raw, (uLong)raw_len, Z_BEST_COMPRESSION) == Z_OK) {
      put_be32(put_be32(packed, V2_COMPRESSED_COOKIE_BASE | COOKIE_FLAGS), (uint32_t)zlen);
      text = base64_encode(packed, 8 + zlen);
    }
  }
  free(raw);
  free(packed);
  return text;
}

/* ---------------------------------------------------------------- decoding */

static void say(char *why, size_t why_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t why_len, const char *fmt, ...) {
  if (why == NULL || why_len == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, why_len, fmt, ap);
  va_end(ap);
}

static int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/* Standard alphabet, padded, nothing else (no white space), and the bits the
 * padding leaves over zero: only what an encoder writes. Decodes into out
 * (len / 4 * 3 bytes); the length decoded, or -1. */
static long base64_decode(const char *text, size_t len, unsigned char *out) {
  if (len == 0 || len % 4 != 0)
    return -1;
  size_t pad = text[len - 1] == '=' ? (text[len - 2] == '=' ? 2 : 1) : 0;
  unsigned char *p = out;
  for (size_t i = 0; i < len; i += 4) {
    uint32_t v = 0;
    for (size_t k = 0; k < 4; k++) {
      int d = i + k >= len - pad ? 0 : b64_value((unsigned char)text[i + k]);
      if (d < 0)
        return -1;
      v = v << 6 | (uint32_t)d;
    }
    *p++ = (unsigned char)(v >> 16);
    *p++ = (unsigned char)(v >> 8);
    *p++ = (unsigned char)v;
  }
  size_t end = len / 4 * 3;
  if ((pad >= 1 && out[end - 1] != 0) || (pad == 2 && out[end - 2] != 0))
    return -1;
  return (long)(len / 4 * 3 - pad);
}

/* Exactly n bytes out of the zlib stream: 0, or -1 with a reason. */
static int inflate_exact(z_stream *z, unsigned char *out, size_t n, char *why, size_t why_len) {
  z->next_out = out;
  z->avail_out = (uInt)n;
  while (z->avail_out > 0) {
    uInt before = z->avail_out;
    int rc = inflate(z, Z_NO_FLUSH);
    if (rc == Z_STREAM_END && z->avail_out > 0) {
      say(why, why_len, "the zlib stream ends before the length its header gives");
      return -1;
    }
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      say(why, why_len, "bad zlib stream (%s)", z->msg != NULL ? z->msg : "error");
      return -1;
    }
    if (z->avail_out == before) {
      say(why, why_len, "the zlib stream is cut short");
      return -1;
    }
  }
  return 0;
}

/* The uncompressed header: the layout it gives, checked, allocated. */
static hdr_t *decode_header(const unsigned char *hd, uint32_t *payload_len, char *why, size_t why_len) {
  uint32_t cookie = get_be32(hd);
  if (COOKIE_BASE(cookie) != V2_COOKIE_BASE) {
    say(why, why_len, "not a V2 histogram (inner cookie 0x%08x)", (unsigned)cookie);
    return NULL;
  }
  /* normalizingIndexOffset (hd + 8) and the conversion ratio (hd + 32) are
   * not read, as hdr-histogram-js does not: it writes 1 in both. */
  *payload_len = get_be32(hd + 4);
  int32_t digits = (int32_t)get_be32(hd + 12);
  int64_t lowest = (int64_t)get_be64(hd + 16), highest = (int64_t)get_be64(hd + 24);
  hdr_t *h = hdr_alloc(lowest, highest, digits);
  if (h == NULL) {
    hdr_t shape;
    if (layout(&shape, lowest, highest, digits) == 0)
      say(why, why_len, "out of memory");
    else
      say(why, why_len, "layout out of range (lowest %lld, highest %lld, %d digits)", (long long)lowest,
          (long long)highest, (int)digits);
    return NULL;
  }
  /* Each word fills at least one count, so a longer payload cannot be right
   * (and a zlib bomb cannot make it read more). */
  if (*payload_len > (uint64_t)h->counts_len * MAX_WORD) {
    say(why, why_len, "payload of %u bytes for %d counts", (unsigned)*payload_len, (int)h->counts_len);
    hdr_free(h);
    return NULL;
  }
  return h;
}

/* One word of the payload into h at *index: 0, or -1 with a reason.
 * fillCountsArrayFromSourceBuffer(): a negative word is a run of zeros. */
static int apply_word(hdr_t *h, int64_t word, int64_t *index, char *why, size_t why_len) {
  if (word < 0) {
    uint64_t zeros = (uint64_t)(-(word + 1)) + 1;
    if (zeros > INT32_MAX || *index + (int64_t)zeros > h->counts_len) {
      say(why, why_len, "counts past the layout's %d", (int)h->counts_len);
      return -1;
    }
    *index += (int64_t)zeros;
    return 0;
  }
  if (*index >= h->counts_len) {
    say(why, why_len, "counts past the layout's %d", (int)h->counts_len);
    return -1;
  }
  if (word > INT64_MAX - h->total) {
    say(why, why_len, "total count beyond 2^63");
    return -1;
  }
  h->counts[(*index)++] = word;
  h->total += word;
  return 0;
}

/* The payload, streamed through a small buffer: nothing is allocated for it. */
static int decode_payload(z_stream *z, hdr_t *h, uint32_t payload_len, char *why, size_t why_len) {
  unsigned char chunk[4096 + MAX_WORD];
  size_t carry = 0;
  uint32_t remaining = payload_len;
  int64_t index = 0;
  while (remaining > 0) {
    size_t want = remaining < 4096 ? remaining : 4096;
    if (inflate_exact(z, chunk + carry, want, why, why_len) != 0)
      return -1;
    remaining -= (uint32_t)want;
    size_t avail = carry + want, pos = 0, used;
    int64_t word;
    while ((used = zigzag_get(chunk + pos, avail - pos, &word)) > 0) {
      if (apply_word(h, word, &index, why, why_len) != 0)
        return -1;
      pos += used;
    }
    carry = avail - pos;
    memmove(chunk, chunk + pos, carry);
  }
  if (carry > 0) {
    say(why, why_len, "the payload ends inside a count");
    return -1;
  }
  return 0;
}

/* Nothing after the payload: the zlib stream ends there (its checksum read)
 * and the compressed bytes end with it. */
static int decode_end(z_stream *z, char *why, size_t why_len) {
  unsigned char extra;
  z->next_out = &extra;
  z->avail_out = 1;
  int rc = inflate(z, Z_FINISH);
  if (rc != Z_STREAM_END || z->avail_out == 0) {
    say(why, why_len, z->avail_out == 0 ? "the zlib stream is longer than the payload length its header gives"
                                        : "the zlib stream is cut short or corrupt");
    return -1;
  }
  if (z->avail_in != 0) {
    say(why, why_len, "%u bytes after the zlib stream", (unsigned)z->avail_in);
    return -1;
  }
  return 0;
}

static hdr_t *decode_bytes(const unsigned char *bytes, size_t n, char *why, size_t why_len) {
  if (n < 8 || COOKIE_BASE(get_be32(bytes)) != V2_COMPRESSED_COOKIE_BASE) {
    say(why, why_len, n < 8 ? "too short for a histogram" : "not a V2 compressed histogram (cookie 0x%08x)",
        n < 8 ? 0u : (unsigned)get_be32(bytes));
    return NULL;
  }
  if (get_be32(bytes + 4) != n - 8) {
    say(why, why_len, "compressed length %u, but %zu bytes follow", (unsigned)get_be32(bytes + 4), n - 8);
    return NULL;
  }
  z_stream z;
  memset(&z, 0, sizeof(z));
  if (inflateInit(&z) != Z_OK) {
    say(why, why_len, "out of memory");
    return NULL;
  }
  z.next_in = (Bytef *)(uintptr_t)(bytes + 8);
  z.avail_in = (uInt)(n - 8);
  unsigned char header[HEADER_SIZE];
  uint32_t payload_len = 0;
  hdr_t *h = NULL;
  if (inflate_exact(&z, header, HEADER_SIZE, why, why_len) == 0 &&
      (h = decode_header(header, &payload_len, why, why_len)) != NULL &&
      (decode_payload(&z, h, payload_len, why, why_len) != 0 || decode_end(&z, why, why_len) != 0)) {
    hdr_free(h);
    h = NULL;
  }
  inflateEnd(&z);
  return h;
}

hdr_t *hdr_decode(const char *text, size_t len, char *why, size_t why_len) {
  /* A compressed stream of more than 4 GiB is nobody's histogram (and zlib's
   * avail_in is 32 bits). */
  if (len > (size_t)UINT32_MAX) {
    say(why, why_len, "longer than any histogram");
    return NULL;
  }
  unsigned char *bytes = malloc(len / 4 * 3 + 1);
  if (bytes == NULL) {
    say(why, why_len, "out of memory");
    return NULL;
  }
  long n = base64_decode(text, len, bytes);
  hdr_t *h = NULL;
  if (n < 0)
    say(why, why_len, "not base64 (standard alphabet, padded)");
  else
    h = decode_bytes(bytes, (size_t)n, why, why_len);
  free(bytes);
  return h;
}

/* ----------------------------------------------------------- interval logs */

struct hlog_writer_s {
  FILE *f;
  int failed; /* a write failed: hlog_close() says so */
};

/* "%.3f" without the locale's decimal comma (HistogramLogWriter formats
 * with Locale.US): milliseconds rounded as printf would. */
static void format_seconds(char *buf, size_t cap, double seconds) {
  if (!isfinite(seconds) || fabs(seconds) > 9e15)
    seconds = 0;
  long long ms = llround(seconds * 1000.0);
  unsigned long long a = ms < 0 ? 0ULL - (unsigned long long)ms : (unsigned long long)ms;
  snprintf(buf, cap, "%s%llu.%03llu", ms < 0 ? "-" : "", a / 1000, a % 1000);
}

/* Each line of comment as a "#" line of its own, control characters as spaces. */
static void write_comment(FILE *f, const char *comment) {
  fputc('#', f);
  for (const char *p = comment; *p; p++) {
    if (*p == '\n' && p[1] != '\0')
      fputc('\n', f), fputc('#', f);
    else if (*p != '\n')
      fputc((unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p, f);
  }
  fputc('\n', f);
}

/* The header Java's HistogramLogWriter users write: version, comment,
 * StartTime (with its date as text, ignored by readers), BaseTime and the
 * legend. BaseTime is StartTime, so each line's START (seconds after
 * BaseTime to Java's and JavaScript's readers) is seconds from StartTime. */
hlog_writer_t *hlog_open(const char *path, double start_unix_s, const char *comment) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return NULL;
  hlog_writer_t *w = calloc(1, sizeof(*w));
  if (w == NULL) {
    fclose(f);
    errno = ENOMEM;
    return NULL;
  }
  w->f = f;
  char start[48], date[64] = "";
  format_seconds(start, sizeof(start), start_unix_s);
  time_t t = isfinite(start_unix_s) && fabs(start_unix_s) < 9e15 ? (time_t)floor(start_unix_s) : 0;
  struct tm tm;
  if (gmtime_r(&t, &tm) != NULL)
    strftime(date, sizeof(date), "%a %b %d %H:%M:%S UTC %Y", &tm);
  fputs("#[Histogram log format version 1.3]\n", f);
  if (comment != NULL && comment[0] != '\0')
    write_comment(f, comment);
  fprintf(f, "#[StartTime: %s (seconds since epoch), %s]\n", start, date);
  fprintf(f, "#[BaseTime: %s (seconds since epoch)]\n", start);
  fputs("\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n", f);
  return w;
}

int hlog_write(hlog_writer_t *w, const char *tag, double start_s, double length_s, const hdr_t *h) {
  char *text = hdr_encode(h);
  if (text == NULL) {
    w->failed = 1;
    return -1;
  }
  if (tag != NULL && tag[0] != '\0') {
    char clean[sizeof(((hlog_entry_t *)0)->tag)];
    size_t n = 0;
    for (; tag[n] != '\0' && n < sizeof(clean) - 1; n++) {
      char c = tag[n];
      bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                c == '_' || c == '-';
      clean[n] = ok ? c : '_';
    }
    clean[n] = '\0';
    fprintf(w->f, "Tag=%s,", clean);
  }
  char start[48], length[48], max[48];
  format_seconds(start, sizeof(start), start_s);
  format_seconds(length, sizeof(length), length_s);
  format_seconds(max, sizeof(max), (double)hdr_max(h) / 1000.0);
  if (fprintf(w->f, "%s,%s,%s,%s\n", start, length, max, text) < 0)
    w->failed = 1;
  free(text);
  return w->failed || ferror(w->f) ? -1 : 0;
}

int hlog_close(hlog_writer_t *w) {
  if (w == NULL)
    return 0;
  int failed = w->failed || ferror(w->f);
  if (fclose(w->f) != 0)
    failed = 1;
  free(w);
  return failed ? -1 : 0;
}

/* Longest line read: a histogram of the largest layout, base64'd, is far shorter. */
#define HLOG_LINE_MAX (64 << 20)

/* One line without its end of line (LF or CRLF): 1, 0 at the end, -1 when
 * too long, out of memory, with a NUL byte, or on a read error. */
static int read_line(FILE *f, char **buf, size_t *cap, size_t *len) {
  *len = 0;
  int c;
  while ((c = getc(f)) != EOF && c != '\n') {
    if (c == '\0' || *len >= HLOG_LINE_MAX)
      return -1;
    if (*len + 1 >= *cap) {
      size_t bigger = *cap ? *cap * 2 : 4096;
      char *p = realloc(*buf, bigger);
      if (p == NULL)
        return -1;
      *buf = p;
      *cap = bigger;
    }
    (*buf)[(*len)++] = (char)c;
  }
  if (ferror(f))
    return -1;
  if (c == EOF && *len == 0)
    return 0;
  if (*len > 0 && (*buf)[*len - 1] == '\r')
    (*len)--;
  if (*buf != NULL)
    (*buf)[*len] = '\0';
  return 1;
}

/* A decimal number as Java's Scanner reads a log's ([-]digits[.digits]
 * [e[-]digits]), the whole of s[0..n), locale-free. 0, or -1. */
static int parse_number(const char *s, size_t n, double *out) {
  size_t i = 0;
  bool negative = i < n && (s[i] == '-' || s[i] == '+') && s[i++] == '-';
  uint64_t mantissa = 0;
  int exponent = 0, digits = 0;
  for (bool fraction = false; i < n; i++) {
    if (s[i] == '.' && !fraction) {
      fraction = true;
    } else if (s[i] >= '0' && s[i] <= '9') {
      if (mantissa < UINT64_C(100000000000000000))
        mantissa = mantissa * 10 + (uint64_t)(s[i] - '0'), exponent -= fraction;
      else
        exponent += !fraction;
      digits++;
    } else {
      break;
    }
  }
  if (digits == 0)
    return -1;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    bool neg_exp = i < n && (s[i] == '-' || s[i] == '+') && s[i++] == '-';
    int e = 0, e_digits = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, e_digits++)
      e = e < 1000 ? e * 10 + (s[i] - '0') : e;
    if (e_digits == 0)
      return -1;
    exponent += neg_exp ? -e : e;
  }
  if (i != n)
    return -1;
  double v = exponent < 0 ? (double)mantissa / pow(10, -exponent) : (double)mantissa * pow(10, exponent);
  if (!isfinite(v))
    return -1;
  *out = negative ? -v : v;
  return 0;
}

typedef struct {
  bool have_start, have_base, base_known, have_ref;
  double start, base, ref; /* StartTime, BaseTime, what entries count from */
} hlog_times_t;

/* "#[StartTime: N ..." and "#[BaseTime: N ...": the number, or -1 if the
 * line is not one of them (a comment), -2 if its number cannot be read. */
static int time_comment(const char *line, const char *name, double *value) {
  size_t n = strlen(name);
  if (strncmp(line, name, n) != 0 || line[n] != ' ')
    return -1;
  const char *p = line + n;
  while (*p == ' ')
    p++;
  size_t len = strcspn(p, " ,]");
  return parse_number(p, len, value) == 0 ? 0 : -2;
}

static int read_comment(const char *line, hlog_times_t *t, char *why, size_t why_len) {
  double v;
  int rc = time_comment(line, "#[StartTime:", &v);
  if (rc == 0) {
    t->start = v;
    t->have_start = true;
  } else if (rc == -1 && (rc = time_comment(line, "#[BaseTime:", &v)) == 0) {
    t->base = v;
    t->have_base = t->base_known = true;
  }
  if (rc == -2) {
    say(why, why_len, "a StartTime or BaseTime without a number");
    return -1;
  }
  return 0;
}

/* "[Tag=NAME,]START,LENGTH,MAX,HISTF..." into e (e->hist allocated). */
static int read_interval(char *line, size_t len, hlog_entry_t *e, char *why, size_t why_len) {
  const char *p = line, *end = line + len;
  e->tag[0] = '\0';
  if (strncmp(p, "Tag=", 4) == 0) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    size_t n = comma != NULL ? (size_t)(comma - p) - 4 : 0;
    if (comma == NULL || n >= sizeof(e->tag)) {
      say(why, why_len, comma == NULL ? "a tag and nothing else" : "a tag longer than %zu bytes",
          sizeof(e->tag) - 1);
      return -1;
    }
    for (size_t i = 0; i < n; i++)
      if ((unsigned char)p[4 + i] < 0x20 || p[4 + i] == 0x7f) {
        say(why, why_len, "a control character in the tag");
        return -1;
      }
    memcpy(e->tag, p + 4, n);
    e->tag[n] = '\0';
    p = comma + 1;
  }
  const char *field[4];
  size_t field_len[4];
  for (int i = 0; i < 4; i++) {
    const char *comma = i < 3 ? memchr(p, ',', (size_t)(end - p)) : NULL;
    if (i < 3 && comma == NULL) {
      say(why, why_len, "not START,LENGTH,MAX,HISTOGRAM");
      return -1;
    }
    field[i] = p;
    field_len[i] = (size_t)((i < 3 ? comma : end) - p);
    p = i < 3 ? comma + 1 : end;
  }
  double max;
  if (parse_number(field[0], field_len[0], &e->start_s) != 0 ||
      parse_number(field[1], field_len[1], &e->length_s) != 0 || parse_number(field[2], field_len[2], &max) != 0) {
    say(why, why_len, "START, LENGTH or MAX is not a number");
    return -1;
  }
  char reason[160];
  e->hist = hdr_decode(field[3], field_len[3], reason, sizeof(reason));
  if (e->hist == NULL) {
    say(why, why_len, "%s", reason);
    return -1;
  }
  return 0;
}

/* HistogramLogReader's times: a line's START is after BaseTime; without a
 * BaseTime, START is absolute unless it is more than a year before
 * StartTime (then it is after StartTime). Entries count from the StartTime
 * (else the BaseTime, else 0) in force at the first interval. */
static void place_interval(hlog_times_t *t, hlog_entry_t *e, double *start_unix_s) {
  if (!t->base_known) {
    t->base = t->have_start && e->start_s < t->start - 365 * 24 * 3600.0 ? t->start : 0.0;
    t->base_known = true;
  }
  if (!t->have_ref) {
    t->ref = t->have_start ? t->start : t->have_base ? t->base : 0.0;
    t->have_ref = true;
    if (start_unix_s != NULL)
      *start_unix_s = t->ref;
  }
  e->start_s += t->base - t->ref;
}

/* One line: 0 to go on, -1 on a line it cannot read, 1 when cb said stop
 * (its value in *stopped). */
static int read_log_line(char *line, size_t len, hlog_times_t *t, double *start_unix_s,
                         int (*cb)(const hlog_entry_t *e, void *ud), void *ud, int *stopped, char *why,
                         size_t why_len) {
  if (len == 0 || strncmp(line, "\"StartTimestamp\"", 16) == 0)
    return 0;
  if (line[0] == '#')
    return read_comment(line, t, why, why_len);
  hlog_entry_t e;
  if (read_interval(line, len, &e, why, why_len) != 0)
    return -1;
  place_interval(t, &e, start_unix_s);
  *stopped = cb(&e, ud);
  hdr_free(e.hist);
  return *stopped != 0;
}

int hlog_read(FILE *f, double *start_unix_s, int (*cb)(const hlog_entry_t *e, void *ud), void *ud, char *why,
              size_t why_len) {
  hlog_times_t t = {0};
  char *line = NULL, reason[200];
  size_t cap = 0, len;
  int rc = 0, stopped = 0;
  long line_no = 0;
  if (start_unix_s != NULL)
    *start_unix_s = 0;
  while (rc == 0) {
    line_no++;
    int got = read_line(f, &line, &cap, &len);
    if (got < 0) {
      say(why, why_len, "line %ld: %s", line_no,
          ferror(f) ? "read error" : "too long, with a NUL byte, or out of memory");
      rc = -1;
    } else if (got == 0) {
      break;
    } else if ((rc = read_log_line(line, len, &t, start_unix_s, cb, ud, &stopped, reason, sizeof(reason))) < 0) {
      say(why, why_len, "line %ld: %s", line_no, reason);
    }
  }
  free(line);
  if (rc == 0 && !t.have_ref && start_unix_s != NULL)
    *start_unix_s = t.have_start ? t.start : t.have_base ? t.base : 0.0;
  return rc < 0 ? -1 : stopped;
}
