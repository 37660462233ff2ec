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
 * with 0..5 significant digits, as HdrHistogram's constructor takes them.
 * NULL on bad arguments (those HdrHistogram refuses too) or out of memory. */
hdr_t *hdr_new(int64_t lowest, int64_t highest, int digits);
/* hdr_new(HDR_LOWEST, HDR_HIGHEST, HDR_DIGITS). */
hdr_t *hdr_new_default(void);
void hdr_free(hdr_t *h);
void hdr_reset(hdr_t *h);

/* Records a value |n| times (nothing when n <= 0). A value below 0 counts
 * as 0; one above highest counts as highest (never dropped, so totals always
 * add up). Counts and the total saturate at INT64_MAX. */
void hdr_record(hdr_t *h, int64_t value);
void hdr_record_n(hdr_t *h, int64_t value, int64_t n);
/* Adds every count of |from| to |into|, whatever their layouts: as Java's
 * add(), each count at the lowest value of its bucket in |from| (values
 * outside into's range are clamped as hdr_record does). */
void hdr_add(hdr_t *into, const hdr_t *from);

int64_t hdr_total(const hdr_t *h);
int64_t hdr_min(const hdr_t *h);   /* 0 when empty; lowest value of the first bucket (getMin()) */
int64_t hdr_max(const hdr_t *h);   /* 0 when empty; highest equivalent value of the top bucket */
double hdr_mean(const hdr_t *h);   /* getMean(): each bucket at its middle value */
/* HdrHistogram's getValueAtPercentile(): the highest equivalent value of
 * the bucket that holds the ceil(p / 100 * total)-th value, at least the
 * first (p clamped to 0..100, one ulp below p first as Java does; p == 0
 * gives the lowest value of that bucket), at most the last (past 2^53
 * counts, where Java can answer 0). 0 when empty. */
int64_t hdr_percentile(const hdr_t *h, double p);
/* 1 when both hold the same counts at the same values. */
int hdr_same(const hdr_t *a, const hdr_t *b);

/* The layout, as HdrHistogram names it: countsArrayLength, the range of the
 * bucket a value is counted in (lowestEquivalentValue(),
 * highestEquivalentValue()), and what the histogram was made with. */
int32_t hdr_counts_len(const hdr_t *h);
int64_t hdr_lowest_equivalent(const hdr_t *h, int64_t value);
int64_t hdr_highest_equivalent(const hdr_t *h, int64_t value);
void hdr_layout(const hdr_t *h, int64_t *lowest, int64_t *highest, int *digits);

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
 * layout needs (and refuses layouts above 1<<24 counts). The header's
 * normalizingIndexOffset and conversion ratio are not read (hdr-histogram-js
 * writes 1 in both, and ignores them as this does). */
hdr_t *hdr_decode(const char *text, size_t len, char *why, size_t why_len);

/* ------------------------------------------------------------ interval logs */

/* Writes an HdrHistogram interval log, format version 1.3:
 *   #[Histogram log format version 1.3]
 *   #COMMENT
 *   #[StartTime: 1700000000.000 (seconds since epoch), Tue Nov 14 22:13:20 UTC 2023]
 *   #[BaseTime: 1700000000.000 (seconds since epoch)]
 *   "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
 *   [Tag=NAME,]START,LENGTH,MAX,HISTF...
 * START is seconds from StartTime (3 decimals). Readers (Java's, JS's, ours)
 * take START as seconds after BaseTime, hence BaseTime = StartTime. MAX is
 * the interval's max / 1000 (milliseconds, as values are microseconds). */
typedef struct hlog_writer_s hlog_writer_t;
/* NULL with errno set when the file cannot be opened. comment may be NULL
 * (each of its lines becomes a "#" line). */
hlog_writer_t *hlog_open(const char *path, double start_unix_s, const char *comment);
/* tag: NULL or "" for none; a tag is [A-Za-z0-9._-]+ (others are written as '_'),
 * at most 127 bytes (cut there). Returns 0, or -1 on a write error. */
int hlog_write(hlog_writer_t *w, const char *tag, double start_s, double length_s, const hdr_t *h);
/* Returns 0, or -1 if any write failed (the file is closed either way). */
int hlog_close(hlog_writer_t *w);

/* One interval read back. */
typedef struct {
  char tag[128];         /* "" when none */
  double start_s;        /* seconds from *start_unix_s (see hlog_read) */
  double length_s;
  hdr_t *hist;           /* owned by the reader: valid during the callback */
} hlog_entry_t;

/* Reads a log (any HdrHistogram V2 interval log, with or without tags,
 * StartTime, BaseTime and comments; LF or CRLF). Calls cb for each interval
 * in order; cb returns 0 to go on, non-zero to stop (returned). Times as
 * Java's HistogramLogReader takes them: START is after BaseTime; with no
 * BaseTime, START is absolute, unless it is more than a year before
 * StartTime (then it is after StartTime). *start_unix_s (may be NULL) gets
 * the StartTime (else the BaseTime, else 0) seen before the first interval,
 * and each start_s counts from it: *start_unix_s + start_s is the
 * interval's start as a Unix time. Returns 0 at the end of the file, cb's
 * value when it stopped, -1 with a reason in why (naming the line) on a
 * line it cannot read (lines longer than 64 MiB included). */
int hlog_read(FILE *f, double *start_unix_s, int (*cb)(const hlog_entry_t *e, void *ud), void *ud,
              char *why, size_t why_len);

#endif
