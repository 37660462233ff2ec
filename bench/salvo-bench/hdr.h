/* HdrHistogram in C, as salvo-bench needs it: the layout of HdrHistogram
 * (Gil Tene's, as in its Java, C and JavaScript ports) so its counts, its
 * percentiles and its V2 compressed encoding are the same as theirs, and
 * interval logs (.hlog, format 1.3) that HdrHistogram's own tools read.
 * Owner of hdr_t and hlog_writer_t: hdr.c. Pure: no clock, no loop. */
#ifndef SALVO_BENCH_HDR_H
#define SALVO_BENCH_HDR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct hdr_s hdr_t;

/* Latencies are recorded in microseconds from 1 us to 1 h, 3 significant digits. */
#define HDR_LOWEST 1
#define HDR_HIGHEST INT64_C(3600000000)
#define HDR_DIGITS 3

/* A histogram of values lowest..highest (lowest >= 1, highest >= 2 * lowest)
 * with 1..5 significant digits. NULL on bad arguments or out of memory. */
hdr_t *hdr_new(int64_t lowest, int64_t highest, int digits);
/* hdr_new(HDR_LOWEST, HDR_HIGHEST, HDR_DIGITS). */
hdr_t *hdr_new_default(void);
void hdr_free(hdr_t *h);
void hdr_reset(hdr_t *h);

/* Records a value |n| times. A value below 0 counts as 0; one above highest
 * counts as highest (never dropped, so totals always add up). */
void hdr_record(hdr_t *h, int64_t value);
void hdr_record_n(hdr_t *h, int64_t value, int64_t n);
/* Adds every count of |from| to |into|, whatever their layouts (values
 * outside into's range are clamped as hdr_record does). */
void hdr_add(hdr_t *into, const hdr_t *from);

int64_t hdr_total(const hdr_t *h);
int64_t hdr_min(const hdr_t *h);   /* 0 when empty */
int64_t hdr_max(const hdr_t *h);   /* 0 when empty; highest equivalent value of the top bucket */
double hdr_mean(const hdr_t *h);
/* HdrHistogram's getValueAtPercentile(): the highest equivalent value of
 * the bucket that holds the ceil(p / 100 * total)-th value (p in 0..100). */
int64_t hdr_percentile(const hdr_t *h, double p);
/* 1 when both hold the same counts at the same values. */
int hdr_same(const hdr_t *a, const hdr_t *b);

/* Calls cb for each bucket with a count: its highest equivalent value and count. */
void hdr_each(const hdr_t *h, void (*cb)(int64_t value, int64_t count, void *ud), void *ud);

/* The V2 compressed encoding in base64 ("HISTF..."), as Java's
 * encodeIntoCompressedByteBuffer() and hdr-histogram-js's
 * encodeIntoCompressedBase64() write it. malloc'd, NUL-terminated; NULL on
 * out of memory. */
char *hdr_encode(const hdr_t *h);
/* Decodes one such string (|len| bytes; V2 compressed only). NULL with a
 * reason in why (never the input itself) on anything malformed: bad base64,
 * cookie, zlib stream, lengths, a layout out of range, counts past the
 * layout or negative. Never reads past len, never allocates more than the
 * layout needs (and refuses layouts above 1<<24 counts). */
hdr_t *hdr_decode(const char *text, size_t len, char *why, size_t why_len);

/* ------------------------------------------------------------ interval logs */

/* Writes an HdrHistogram interval log, format version 1.3:
 *   #[Histogram log format version 1.3]
 *   #[StartTime: 1700000000.000 (seconds since epoch), <date>]
 *   #[BaseTime: 1700000000.000 (seconds since epoch)]   (hmm: see hdr.c)
 *   "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
 *   [Tag=NAME,]START,LENGTH,MAX,HISTF...
 * START is seconds from StartTime (3 decimals), MAX is the interval's max / 1000
 * (milliseconds, as values are microseconds). */
typedef struct hlog_writer_s hlog_writer_t;
/* NULL with errno set when the file cannot be opened. comment may be NULL. */
hlog_writer_t *hlog_open(const char *path, double start_unix_s, const char *comment);
/* tag: NULL or "" for none; a tag is [A-Za-z0-9._-]+ (others are written as '_').
 * Returns 0, or -1 on a write error. */
int hlog_write(hlog_writer_t *w, const char *tag, double start_s, double length_s, const hdr_t *h);
/* Returns 0, or -1 if any write failed (the file is closed either way). */
int hlog_close(hlog_writer_t *w);

/* One interval read back. */
typedef struct {
  char tag[128];         /* "" when none */
  double start_s;        /* from the log's StartTime (or BaseTime) */
  double length_s;
  hdr_t *hist;           /* owned by the reader: valid during the callback */
} hlog_entry_t;

/* Reads a log (any HdrHistogram V2 interval log, with or without tags,
 * StartTime, BaseTime and comments). Calls cb for each interval in order;
 * cb returns 0 to go on, non-zero to stop (returned). *start_unix_s gets
 * the StartTime (0 if none). -1 with a reason in why (naming the line) on a
 * line it cannot read. */
int hlog_read(FILE *f, double *start_unix_s, int (*cb)(const hlog_entry_t *e, void *ud), void *ud,
              char *why, size_t why_len);

#endif
