/* salvo-bench: load through the salvo engine; request mixes, load shapes,
 * histograms that leave the process, retry storms.
 *
 *   main.c     the command line's verbs: run (default), merge, compare, --storm
 *   options.c  the command line: bench_opts_t
 *   shape.c    pure: when each request of a load shape is due
 *   mix.c      pure: request mixes (-i FILE), the weighted draw
 *   run.c      the load: one loop and engine per thread, recording into a result
 *   result.c   bench_result_t: counts, histograms, seconds; JSON out and in; merge
 *   report.c   the HTML page of one or more results (inline SVG)
 *   storm.c    --storm: one overload then relief, once per retry policy
 *   hdr.c      HdrHistogram and its interval logs (hdr.h)
 * Each struct has one owner: the file that defines its functions. */
#ifndef SALVO_BENCH_H
#define SALVO_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <salvo/salvo.h>

#include "hdr.h"

/* ------------------------------------------------------------ shape.c */

/* A load shape: the offered rate over time, piecewise linear. Open loop:
 * the k-th request (from 1) is due when the integral of the rate reaches k. */
#define SHAPE_MAX_SEGMENTS 64

typedef struct {
  double from_s, to_s;      /* to_s = INFINITY for the last, open-ended one */
  double rate_from, rate_to; /* requests per second at from_s and at to_s (linear between) */
} shape_segment_t;

typedef struct {
  shape_segment_t seg[SHAPE_MAX_SEGMENTS];
  size_t n;                  /* 0: closed loop (no schedule) */
  double end_s;              /* where the shape itself ends (steps); INFINITY if it does not */
} shape_t;

/* Builders; each returns 0, or -1 with a reason in why (naming the text). */
int shape_constant(shape_t *s, double rate);
int shape_ramp(shape_t *s, const char *text, char *why, size_t why_len);  /* FROM:TO:DURATION, then TO */
int shape_steps(shape_t *s, const char *text, char *why, size_t why_len); /* RATE:DURATION,... (10s, 500ms, 2m, 5) */
/* A spike on top of s (built first): RATE:AT:FOR (seconds, suffixes as steps): the rate is RATE
 * from AT for FOR seconds, then what it was. */
int shape_spike(shape_t *s, const char *text, char *why, size_t why_len);
/* Every rate of the shape times |f| (a shard's or a thread's share). */
void shape_scale(shape_t *s, double f);
/* Requests due by t seconds (the integral of the rate from 0 to t). */
double shape_due_by(const shape_t *s, double t);
/* When the integral of the rate reaches k, in seconds; INFINITY if never.
 * salvo-bench sends request j (from 0) at shape_time_of(j): the first at 0. */
double shape_time_of(const shape_t *s, double k);
/* The rate at t. */
double shape_rate_at(const shape_t *s, double t);

/* Parses a duration: "10s", "500ms", "2m", "1h" or a bare number of seconds. -1 if bad. */
double shape_parse_duration(const char *text, const char **end);

/* ------------------------------------------------------------ mix.c */

/* A seedable random source (splitmix64): the same seed draws the same mix. */
typedef struct {
  uint64_t state;
} bench_rng_t;

void rng_seed(bench_rng_t *r, uint64_t seed);
uint64_t rng_next(bench_rng_t *r);
double rng_unit(bench_rng_t *r); /* [0, 1) */

#define BENCH_NAME_MAX 64
#define BENCH_MAX_ENTRIES 1024
#define BENCH_MAX_NAMES 64

/* One kind of request in a mix. */
typedef struct {
  char name[BENCH_NAME_MAX]; /* "name", else the method and the URL's path, cut */
  char *method;              /* NULL = GET (POST with a body) */
  char *url;
  char **headers;            /* "Name: value", NULL-terminated; NULL if none */
  char *body;
  size_t body_len;
  int has_body;
  double weight;             /* > 0 */
  size_t name_index;         /* the entry's place in bench_mix_t.names */
} mix_entry_t;

typedef struct {
  mix_entry_t *entries;
  size_t n;
  double *cumulative;        /* cumulative[i] = sum of weights 0..i, for the draw */
  char (*names)[BENCH_NAME_MAX]; /* distinct names, in order of first appearance */
  size_t nnames;
} bench_mix_t;

/* One entry: GET url (salvo-bench URL). 0 or -1 out of memory. */
int mix_single(bench_mix_t *m, const char *url, const char *method, const char *body, size_t body_len,
               char **headers);
/* Parses mix lines (salvo-fetch's input format plus "weight" and "name"); a line
 * that is blank or starts with '#' is skipped. 0, or -1 with "line N: reason" in why. */
int mix_parse(bench_mix_t *m, const char *text, size_t len, char *why, size_t why_len);
int mix_load(bench_mix_t *m, const char *path, char *why, size_t why_len);
/* The entry of the next request: by weight. */
const mix_entry_t *mix_draw(const bench_mix_t *m, bench_rng_t *r);
void mix_free(bench_mix_t *m);
/* A URL as salvo-bench shows it: without its query and fragment (they may hold
 * tokens: "?..." stands for them) and with its userinfo as "***". malloc'd. */
char *bench_shown_url(const char *url);

/* ------------------------------------------------------------ result.c */

/* Error classes: [0] is a final HTTP status of 400 or more; [-e] a salvo error e. */
#define BENCH_NCLASSES 40

typedef struct {
  uint64_t requests;     /* completed */
  uint64_t ok;           /* no error and a status below 400 */
  uint64_t attempts;     /* over all requests */
  uint64_t sends;        /* times a request went on the wire (libcurl's own resends included) */
  uint64_t errors[BENCH_NCLASSES];
} bench_counts_t;

/* One name of a mix. */
typedef struct {
  char name[BENCH_NAME_MAX];
  bench_counts_t counts;
  hdr_t *latency;        /* as the total's latency */
} bench_name_stats_t;

/* One second of the run, by completion time (offered: by scheduled time). */
typedef struct {
  bench_counts_t counts;
  uint64_t offered;      /* open loop: requests due in this second */
  char *hist;            /* its latency histogram, hdr_encode()d once the second is over; NULL
                            when nothing completed in it */
} bench_second_t;

typedef struct {
  /* what ran */
  char label[128];       /* the run's name (storm: the policy) */
  char target[512];      /* the URL, or "-i FILE (N entries)" */
  char shape[256];       /* the load shape in words */
  int open_loop;
  long concurrency;
  long threads;
  unsigned shards;       /* results merged into this one (1 = a single process) */
  char shard[32];        /* "K/N" of a shard, "" otherwise */
  double start_unix_s;   /* when the schedule started */
  double seconds;        /* wall time of the run (the longest of merged ones) */
  long max_rss_kib;      /* the largest of the merged ones */
  /* what happened */
  bench_counts_t total;
  hdr_t *latency;        /* open loop: from the scheduled time (corrected); closed: from submit */
  hdr_t *service;        /* from the hand-over to the engine (uncorrected, service time) */
  hdr_t *ok_latency;     /* as latency, the requests that ended ok only */
  uint64_t offered;      /* open loop: requests due */
  uint64_t late;         /* open loop: handed to the engine more than BENCH_LATE_US after due */
  uint64_t unsent;       /* open loop: due, waiting for a slot, and dropped by a stop (SIGINT) */
  int64_t late_max_us;
  bench_name_stats_t *names;
  size_t nnames;
  bench_second_t *secs;
  size_t nsecs;
  /* --storm */
  double overload_end_s; /* when the overload ended; 0 if none */
  double recovery_s;     /* seconds from then until goodput is back (result_recovery()); -1 never */
  double slo_ms;         /* the latency bound of latency_recovery_s */
  double latency_recovery_s; /* seconds from then until p99 is back under slo_ms too; -1 never */
  /* one thread, one host: the host's own record (attempts on the wire, its limit) */
  int has_host;
  salvo_host_stats_t host;
  /* recording: the second being filled, encoded into secs[] when the next begins */
  hdr_t *live;
  size_t live_sec;
} bench_result_t;

#define BENCH_LATE_US 2000
/* A request handed over within this of its due time was sent on time (the
 * loop's timers have a 1 ms resolution): its latency counts from the send. */
#define BENCH_ON_TIME_NS 1000000

/* A result with these names (NULL-safe when nnames is 0). NULL out of memory. */
bench_result_t *result_new(char (*names)[BENCH_NAME_MAX], size_t nnames);
void result_free(bench_result_t *r);
/* One completion. name: index into names; sec: completion second. */
void result_record(bench_result_t *r, size_t name, size_t sec, int error, long status,
                   unsigned attempts, unsigned sends, int64_t latency_us, int64_t service_us);
void result_offered(bench_result_t *r, size_t sec);
/* Ends recording: the second being filled is encoded. Call before reading secs[]. */
int result_finish(bench_result_t *r);
/* Adds from into into (threads, shards): counts, histograms, seconds, names by name. */
int result_merge(bench_result_t *into, const bench_result_t *from);
/* The class name of errors[i]: "http_status" or salvo_err_name(). */
const char *result_class_name(size_t i);
/* Writes the result as one JSON object (histograms as HdrHistogram V2 base64). -1 on error. */
int result_write_json(const bench_result_t *r, FILE *f);
/* Reads one back; NULL with a reason in why. */
bench_result_t *result_read_json(const char *path, char *why, size_t why_len);
/* Reads an .hlog into a result (histograms and counts only). */
bench_result_t *result_read_hlog(const char *path, char *why, size_t why_len);
/* Writes the per-second histograms as an interval log (tagged per name too). */
int result_write_hlog(const bench_result_t *r, const char *path);
/* The human summary on f. */
void result_print(const bench_result_t *r, FILE *f);
/* Storm: seconds after overload_end_s until, for every remaining second of
 * the schedule, goodput holds >= 90 % of offered, completions <= 110 % of it
 * (no backlog still draining) and errors <= 5 %, and with
 * slo_ms > 0 also the second's p99 latency <= slo_ms; -1 if never. */
double result_recovery(const bench_result_t *r, double overload_end_s, double slo_ms);

/* ------------------------------------------------------------ options.c */

/* Retry policies by name (--retry-policy, --storm). */
typedef enum { POLICY_DEFAULT = 0, POLICY_NONE, POLICY_NAIVE, POLICY_ADAPTIVE } bench_policy_t;

/* What the command line asked for. Filled by bench_options(), read-only after. */
typedef struct {
  salvo_engine_opts_t engine;  /* as the flags set them */
  const char *url;             /* the URL argument, NULL with -i */
  const char *input;           /* -i FILE */
  const char *method;          /* -X */
  char **headers;              /* -H, NULL-terminated */
  size_t nheaders;
  const char *body;            /* -d */
  long total;                  /* -n; 0 = by duration or shape */
  double duration_s;           /* -D; 0 = none */
  long concurrency;            /* -c */
  long threads;                /* -t */
  double think_ms;             /* --think: closed loop */
  shape_t shape;               /* open loop when shape.n > 0 */
  char shape_text[256];        /* the shape in words */
  uint64_t seed;               /* --seed */
  unsigned shard_k, shard_n;   /* --shard K/N (1/1 = none) */
  double start_at;             /* --start-at UNIX_SECONDS, 0 = now */
  bench_policy_t policy;       /* --retry-policy */
  int json;                    /* --json: the result on stdout as JSON */
  const char *hlog;            /* --hlog FILE */
  const char *report;          /* --report FILE */
  const char *label;           /* --label */
  int quiet;
  /* --storm */
  int storm;
  const char *storm_json;      /* --storm-json FILE: all four results */
  double overload_end_s;       /* storm: when the overload ends (the first step's end) */
  double slo_ms;               /* --slo */
} bench_opts_t;

/* Parses argv into *o; exits 2 on a usage error, 0 after --help. */
void bench_options(int argc, char **argv, bench_opts_t *o);
void bench_options_free(bench_opts_t *o);
/* Sets the engine options of a policy. */
void bench_apply_policy(salvo_engine_opts_t *e, bench_policy_t p);
const char *bench_policy_name(bench_policy_t p);
_Noreturn void bench_die_usage(const char *fmt, const char *arg);

/* ------------------------------------------------------------ run.c */

/* Runs the load of o with the mix m and engine options e (threads merged).
 * NULL when an engine cannot start (the reason on stderr). */
bench_result_t *bench_run(const bench_opts_t *o, const bench_mix_t *m, const salvo_engine_opts_t *e);
/* Set from a signal handler: stop scheduling, let what is in flight end. */
void bench_request_stop(void);

/* ------------------------------------------------------------ storm.c */

int bench_storm(const bench_opts_t *o, const bench_mix_t *m);

/* ------------------------------------------------------------ report.c */

/* Writes an HTML page (inline SVG, no JavaScript) of one result, or of
 * several on the same axes (compare, storm). 0, or -1 with errno. */
int report_write(const char *path, const bench_result_t *const *runs, size_t nruns);

#endif
