/* salvo-faultd's file server: /file/SIZE/SEED, a large deterministic file
 * made up as it is sent, with single byte ranges, If-Range, validators,
 * pacing and planted corruption, for clients that stream bodies to disk and
 * continue interrupted downloads.
 *
 * Protocol-independent: faultd__file_plan() turns a request into an F_FILE
 * plan (status, validators, the part of the file to send); each transport
 * sends its head and reads the body with faultd__body_read() as the socket
 * drains, so the server never holds more of it than one slice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "faultd_int.h"

#define FILE_MAX_SIZE ((uint64_t)64 << 30)
#define FILE_MAX_SEED UINT64_C(0xffffffff)
#define FILE_MAX_RATE ((uint64_t)1 << 40)
#define FILE_MAX_CORRUPT 1000000u
#define FILE_MAX_ETAG 128 /* characters of ?etag=TEXT */

static const char last_modified[] = "Wed, 21 Oct 2026 07:28:00 GMT";

/* Writes bytes [i, i + n) of the file with |seed| into |out|. Byte i is
 * (i * 7 + (i >> 16) * 13 + seed) & 0xff: within a 64 KiB block it repeats
 * every 256 bytes, so each block copies one 256-byte pattern. */
static void file_fill(unsigned char *out, uint64_t i, size_t n, uint32_t seed) {
  while (n > 0) {
    uint64_t block_end = (i | 0xffff) + 1;
    size_t run = block_end - i < n ? (size_t)(block_end - i) : n;
    unsigned base = (unsigned)(((i >> 16) * 13 + seed) & 0xff);
    unsigned char pattern[512]; /* twice the period: any 256 bytes from any phase */
    for (unsigned k = 0; k < sizeof(pattern); k++)
      pattern[k] = (unsigned char)(k * 7 + base);
    n -= run;
    while (run > 0) {
      size_t m = run < 256 ? run : 256;
      memcpy(out, pattern + (i & 0xff), m);
      out += m;
      i += m;
      run -= m;
    }
  }
}

size_t faultd__file_read(const fault_plan_t *p, uint64_t off, void *buf, size_t cap) {
  if (off >= p->file.length)
    return 0;
  if (cap > p->file.length - off)
    cap = (size_t)(p->file.length - off);
  file_fill(buf, p->file.first + off, cap, p->file.seed);
  uint64_t bad = p->file.corrupt_at;
  if (bad != UINT64_MAX && bad >= off && bad < off + cap)
    ((unsigned char *)buf)[bad - off] ^= 0xff;
  return cap;
}

uint64_t faultd__file_allowed(const fault_plan_t *p, uint64_t now_ms) {
  if (p->file.rate == 0)
    return UINT64_MAX;
  double ms = now_ms > p->file.started_ms ? (double)(now_ms - p->file.started_ms) : 0;
  double allowed = (double)p->file.rate * ms / 1000.0;
  return allowed >= (double)p->file.length ? p->file.length : (uint64_t)allowed;
}

/* |len| bytes at |s| as a decimal number of at most |max|: 0, or -1 if they
 * are not all digits (no sign, no space) or the number is larger. */
static int parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out) {
  if (len == 0 || len > 20)
    return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (max - d) / 10)
      return -1;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

static int parse_u64_str(const char *s, uint64_t max, uint64_t *out) {
  return parse_u64(s, strlen(s), max, out);
}

/* The value of request header |name| (trimmed of spaces and tabs) from the
 * request's "name: value\n" lines. Returns how many fields of that name the
 * request has (0, 1, 2...); *value is the first's. */
static unsigned header_get(const freq_t *req, const char *name, const char **value,
                           size_t *value_len) {
  size_t name_len = strlen(name);
  unsigned found = 0;
  const char *at = req->headers, *end = req->headers + req->headers_len;
  while (at < end) {
    const char *nl = memchr(at, '\n', (size_t)(end - at));
    const char *line_end = nl != NULL ? nl : end;
    if ((size_t)(line_end - at) > name_len && strncasecmp(at, name, name_len) == 0 &&
        at[name_len] == ':') {
      const char *v = at + name_len + 1, *v_end = line_end;
      while (v < v_end && (*v == ' ' || *v == '\t'))
        v++;
      while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t' || v_end[-1] == '\r'))
        v_end--;
      if (found++ == 0) {
        *value = v;
        *value_len = (size_t)(v_end - v);
      }
    }
    at = line_end + 1;
  }
  return found;
}

/* |len| digits at |s| as a number, UINT64_MAX if larger (a range past any
 * end is still a range); -1 if they are not all digits. */
static int parse_position(const char *s, size_t len, uint64_t *out) {
  if (len == 0)
    return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    unsigned d = (unsigned)(s[i] - '0');
    v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
  }
  *out = v;
  return 0;
}

typedef enum { RANGE_WHOLE, RANGE_PART, RANGE_UNSATISFIABLE } range_answer_t;

/* A Range value: one "bytes=A-" or "bytes=A-B" is a part (B clamped to
 * size - 1), or unsatisfiable when A >= size; anything else (several
 * ranges, a suffix "bytes=-N", malformed) asks for the whole file, which
 * RFC 9110 14.2 allows a server to send. */
static range_answer_t parse_range(const char *v, size_t len, uint64_t size, uint64_t *first,
                                  uint64_t *last) {
  if (len < 6 || strncasecmp(v, "bytes=", 6) != 0)
    return RANGE_WHOLE;
  v += 6;
  len -= 6;
  const char *dash = memchr(v, '-', len);
  if (dash == NULL || parse_position(v, (size_t)(dash - v), first) != 0)
    return RANGE_WHOLE;
  size_t tail = len - (size_t)(dash - v) - 1;
  *last = UINT64_MAX;
  if (tail > 0 && (parse_position(dash + 1, tail, last) != 0 || *last < *first))
    return RANGE_WHOLE;
  if (*first >= size)
    return RANGE_UNSATISFIABLE;
  if (*last > size - 1)
    *last = size - 1;
  return RANGE_PART;
}

/* What the request's Range and If-Range ask of a file with these validators. */
static range_answer_t range_asked(const freq_t *req, const fault_plan_t *p, uint64_t *first,
                                  uint64_t *last) {
  const char *range, *if_range;
  size_t range_len, if_range_len;
  /* Headers cut to fit the request's buffer may have lost an If-Range. */
  if (req->headers_truncated || header_get(req, "range", &range, &range_len) != 1)
    return RANGE_WHOLE;
  unsigned conditions = header_get(req, "if-range", &if_range, &if_range_len);
  if (conditions > 1)
    return RANGE_WHOLE;
  if (conditions == 1) {
    /* strong comparison: W/"..." never equals the ETag sent */
    int etag_matches = p->file.etag[0] != '\0' && strlen(p->file.etag) == if_range_len &&
                       memcmp(p->file.etag, if_range, if_range_len) == 0;
    int date_matches = p->file.last_modified != NULL &&
                       strlen(p->file.last_modified) == if_range_len &&
                       memcmp(p->file.last_modified, if_range, if_range_len) == 0;
    if (!etag_matches && !date_matches)
      return RANGE_WHOLE;
  }
  return parse_range(range, range_len, p->file.size, first, last);
}

static void refuse(fault_plan_t *p, const char *why) {
  p->kind = F_RESPOND;
  p->status = 400;
  faultd__plan_body(p, why, strlen(why));
}

/* ?etag=none|TEXT, ?lastmod=none, ?ranges=0|1 into *p; -1 if one is malformed. */
static int file_validators(const char *url, fault_plan_t *p) {
  char value[FILE_MAX_ETAG + 2];
  faultd__query_param(url, "etag", value, sizeof(value));
  if (strcmp(value, "none") == 0) {
    p->file.etag[0] = '\0';
  } else if (value[0] != '\0') {
    size_t len = strlen(value);
    if (len > FILE_MAX_ETAG)
      return -1;
    for (size_t i = 0; i < len; i++) /* etagc (RFC 9110 8.8.3), without obs-text */
      if (value[i] < 0x21 || value[i] == '"' || value[i] > 0x7e)
        return -1;
    snprintf(p->file.etag, sizeof(p->file.etag), "\"%s\"", value);
  }
  faultd__query_param(url, "lastmod", value, sizeof(value));
  if (strcmp(value, "none") == 0)
    p->file.last_modified = NULL;
  else if (value[0] != '\0')
    return -1;
  faultd__query_param(url, "ranges", value, sizeof(value));
  if (strcmp(value, "0") == 0)
    p->file.accept_ranges = 0;
  else if (value[0] != '\0' && strcmp(value, "1") != 0)
    return -1;
  return 0;
}

/* ?rate=BYTES, ?corrupt=N&key=KEY into *p, *corrupt and |key|; -1 if malformed. */
static int file_options(const char *url, fault_plan_t *p, uint64_t *corrupt, char *key,
                        size_t key_cap) {
  char value[32];
  faultd__query_param(url, "rate", value, sizeof(value));
  if (value[0] != '\0' && (parse_u64_str(value, FILE_MAX_RATE, &p->file.rate) != 0 ||
                           p->file.rate == 0))
    return -1;
  *corrupt = 0;
  faultd__query_param(url, "corrupt", value, sizeof(value));
  if (value[0] != '\0' && (parse_u64_str(value, FILE_MAX_CORRUPT, corrupt) != 0 || *corrupt == 0))
    return -1;
  faultd__query_param(url, "key", key, key_cap);
  if (strlen(key) >= key_cap - 1) /* cut to fit: too long */
    return -1;
  return *corrupt > 0 && key[0] == '\0' ? -1 : 0;
}

void faultd__file_plan(faultd_t *fd, const freq_t *req, const char *url, const char *rest,
                       fault_plan_t *p) {
  const char *slash = strchr(rest, '/');
  uint64_t size, seed, corrupt, first = 0, last = 0;
  char key[129];
  if (slash == NULL || parse_u64(rest, (size_t)(slash - rest), FILE_MAX_SIZE, &size) != 0 ||
      parse_u64_str(slash + 1, FILE_MAX_SEED, &seed) != 0) {
    refuse(p, "/file/SIZE/SEED: SIZE 0..68719476736, SEED 0..4294967295\n");
    return;
  }
  p->kind = F_FILE;
  p->content_type = "application/octet-stream";
  p->file.size = size;
  p->file.seed = (uint32_t)seed;
  p->file.accept_ranges = 1;
  p->file.last_modified = last_modified;
  p->file.corrupt_at = UINT64_MAX;
  p->file.started_ms = uv_now(fd->loop);
  snprintf(p->file.etag, sizeof(p->file.etag), "\"%llu-%llu\"", (unsigned long long)size,
           (unsigned long long)seed);
  if (file_validators(url, p) != 0 || file_options(url, p, &corrupt, key, sizeof(key)) != 0) {
    refuse(p, "bad option: ranges=0|1 etag=none|TEXT lastmod=none rate=1.. corrupt=N&key=K\n");
    return;
  }
  range_answer_t answer = p->file.accept_ranges ? range_asked(req, p, &first, &last) : RANGE_WHOLE;
  if (answer == RANGE_PART) {
    p->status = 206;
    p->file.first = first;
    p->file.length = last - first + 1;
    snprintf(p->file.content_range, sizeof(p->file.content_range), "bytes %llu-%llu/%llu",
             (unsigned long long)first, (unsigned long long)last, (unsigned long long)size);
  } else if (answer == RANGE_UNSATISFIABLE) {
    p->status = 416;
    snprintf(p->file.content_range, sizeof(p->file.content_range), "bytes */%llu",
             (unsigned long long)size);
  } else {
    p->file.length = size;
  }
  if (key[0] != '\0' && faultd__record_key(fd, key, req) < corrupt && p->file.length > 0)
    p->file.corrupt_at = p->file.length / 2; /* the middle byte of what this answer sends */
}
