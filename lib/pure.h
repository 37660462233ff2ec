/* The pure decisions of lib/: no I/O, no loop, no clock of their own (the
 * time is an argument). protect.c, retry.c, retry_after.c, validate.c,
 * redirect.c and timeouts.c include only this header, and are unit-tested
 * and fuzzed without a loop: they need libcurl (its URL parser) but never
 * libuv, whose header comes in only because salvo.h's types use it. Not
 * installed. */
#ifndef SALVO_PURE_H
#define SALVO_PURE_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "list.h"
#include "salvo/salvo.h"

/* ------------------------------------------------------ time arithmetic */

/* |a| + |b| where either may be any uint64_t: UINT64_MAX (never) where the
 * sum would wrap. Every moment plus a duration goes through it: a caller
 * may give any duration (salvo.h, "Time"). */
static inline uint64_t salvo__add_ms(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* A duration computed in double as uint64_t: 0 for NaN or <= 0, UINT64_MAX
 * where it would not fit (converting such a double is undefined in C). */
static inline uint64_t salvo__ms_from_double(double ms) {
  if (!(ms > 0))
    return 0;
  return ms < 18446744073709551616.0 ? (uint64_t)ms : UINT64_MAX;
}

/* A timeout as salvo keeps it: 0 (off) for 0, SALVO_TIMEOUT_NEVER and any
 * value above SALVO_TIMEOUT_MAX_MS, else the value. SALVO_TIMEOUT_INHERIT is
 * the caller's to resolve first. */
static inline uint64_t salvo__timeout_value(uint64_t ms) {
  return ms > SALVO_TIMEOUT_MAX_MS ? 0 : ms;
}

/* timeouts.c: applies |given| over |*kept|, field by field, as
 * salvo_request_set_timeouts() says: SALVO_TIMEOUT_INHERIT keeps *kept,
 * anything else becomes salvo__timeout_value() of it. */
void salvo__timeouts_apply(salvo_timeouts_t *kept, const salvo_timeouts_t *given);

/* A receive cap (salvo_engine_opts_t.max_recv_speed) in libcurl 7.88: while
 * data waits in the socket, libcurl reads up to SALVO__RECV_READS buffers
 * at once, then holds the transfer until its average is back under the cap.
 * salvo__recv_buffer_size() is the buffer (CURLOPT_BUFFERSIZE) for a cap:
 * about 10 ms' worth, so one such burst is about a second's, within
 * libcurl's 1 KB .. 16 KB (its default); |uncapped| without a cap (the
 * engine's recv_buffer_size). salvo__recv_pause_ms()
 * is the longest hold after a burst with |buffer|-byte reads, which the idle
 * timeout allows for on top; 0 without a cap. */
#define SALVO__RECV_READS 101
#define SALVO__RECV_BUFFER_MIN 1024L
#define SALVO__RECV_BUFFER_MAX 16384L
long salvo__recv_buffer_size(uint64_t bytes_per_second, long uncapped);
uint64_t salvo__recv_pause_ms(uint64_t bytes_per_second, long buffer);

/* ------------------------------------------------------ protect.c */

/* Per-host protection: state machines, the clock passed in (loop milliseconds). */
typedef struct {
  double rate;               /* tokens per second, 0 = no limit */
  double burst;              /* 0 = max(1, rate) */
  double tokens;
  uint64_t last_ms;          /* tokens were topped up at */
  uint64_t paused_until_ms;  /* the whole host waits until then */
  uint64_t last_cut_ms;      /* AIMD: the last decrease */
} salvo__bucket_t;

void salvo__bucket_init(salvo__bucket_t *b, const salvo_host_policy_t *p, uint64_t now);
/* 0 if a request may be sent now, else how many ms until one may. */
uint64_t salvo__bucket_wait(salvo__bucket_t *b, uint64_t now);
void salvo__bucket_take(salvo__bucket_t *b, uint64_t now);
/* A 429 to an attempt sent at |sent_at_ms|: 1 if the rate went down. */
int salvo__bucket_on_limited(salvo__bucket_t *b, const salvo_host_policy_t *p, uint64_t now,
                             uint64_t sent_at_ms, double recent_rate);
void salvo__bucket_on_success(salvo__bucket_t *b, const salvo_host_policy_t *p, uint64_t now);
/* 1 if the pause was extended. */
int salvo__bucket_pause(salvo__bucket_t *b, uint64_t until_ms);

/* Two counters over a sliding window of SALVO__WIN buckets. */
#define SALVO__WIN 10
typedef struct {
  uint64_t slot_ms; /* bucket width */
  uint64_t slot;    /* index (now / slot_ms) of the newest bucket */
  uint32_t a[SALVO__WIN];
  uint32_t b[SALVO__WIN];
} salvo__window_t;

void salvo__window_init(salvo__window_t *w, uint64_t window_ms);
void salvo__window_add(salvo__window_t *w, uint64_t now, uint32_t da, uint32_t db);
void salvo__window_sum(salvo__window_t *w, uint64_t now, uint64_t *a, uint64_t *b);
/* Retry budget over a window of a = requests, b = retries: may one more retry go? */
int salvo__budget_allows(salvo__window_t *w, const salvo_host_policy_t *p, uint64_t now);

typedef struct {
  salvo_circuit_t state;
  unsigned consecutive;      /* failures in a row */
  salvo__window_t win;       /* a = attempts, b = failures */
  uint64_t open_until_ms;
  uint64_t break_ms;         /* the current break; doubles on each reopen */
  int probe_out;             /* half-open: the probe is in flight */
} salvo__breaker_t;

enum { SALVO__ADMIT = 0, SALVO__ADMIT_PROBE = 1, SALVO__REJECT = 2 };
void salvo__breaker_init(salvo__breaker_t *br, const salvo_host_policy_t *p);
/* SALVO__ADMIT, SALVO__ADMIT_PROBE or SALVO__REJECT; *event a salvo_host_event_type_t or 0. */
int salvo__breaker_admit(salvo__breaker_t *br, const salvo_host_policy_t *p, uint64_t now,
                         int *event);
/* An attempt's outcome; returns a salvo_host_event_type_t or 0. */
int salvo__breaker_record(salvo__breaker_t *br, const salvo_host_policy_t *p, uint64_t now,
                          int failure, int probe, uint64_t *rng);
/* A probe that ends with no verdict on the host (canceled, or its own
 * deadline ran out) gives its place back: the next request probes. */
void salvo__breaker_release(salvo__breaker_t *br, int probe);

#define SALVO__LAT_BUCKETS 560
typedef struct {
  uint32_t n[SALVO__LAT_BUCKETS];
  uint64_t count;
  uint64_t max;
} salvo__lat_t;

void salvo__lat_add(salvo__lat_t *l, uint64_t us);
uint64_t salvo__lat_pct(const salvo__lat_t *l, double q);
int salvo__host_policy_check(const salvo_host_policy_t *p);

/* Fair share: hosts ready to send, in levels by how many requests each has
 * in flight. The next slot goes to the head of the lowest level (ties round
 * robin: a host admitted moves to the tail of the level above). A bitmap of
 * non-empty levels finds the lowest in a few word reads whatever the number
 * of hosts. Holds intrusive nodes; knows nothing of hosts. */
typedef struct {
  salvo__list_t *level;  /* nlevels lists */
  uint64_t *bits;        /* bit k set: level[k] is not empty */
  size_t nlevels;        /* a node's level is capped at nlevels - 1 */
  size_t lo;             /* no set bit in the words below this one */
  size_t count;          /* nodes held */
} salvo__fair_t;

int salvo__fair_init(salvo__fair_t *f, size_t nlevels);
void salvo__fair_free(salvo__fair_t *f);
/* Adds |node| at the tail of |level|; returns the level used (capped). */
size_t salvo__fair_add(salvo__fair_t *f, salvo__list_t *node, size_t level);
/* Removes |node|, which was added at |level| (as returned by salvo__fair_add). */
void salvo__fair_remove(salvo__fair_t *f, salvo__list_t *node, size_t level);
/* The head of the lowest non-empty level and that level, or NULL. */
salvo__list_t *salvo__fair_first(salvo__fair_t *f, size_t *level);

/* The most requests a host may have in flight: 0 = no limit of its own.
 * |conns| its connection cap (0 = none), |streams| per connection where it
 * multiplexes (0 or 1 where it does not), |policy_max| and |adaptive| (0 =
 * none) the configured and the adaptive limits. */
unsigned salvo__inflight_cap(long conns, long streams, unsigned policy_max, unsigned adaptive);

/* Adaptive concurrency limit (see salvo_host_policy_t.adaptive_concurrency).
 * Latency samples come in windows of max(5, limit / 2) attempts; at a
 * window's end the limit moves. The no-load latency (floor) is measured in
 * probes: the first 5 answers sent at no more than SALVO__PROBE_LIMIT in
 * flight, at the start and every SALVO__PROBE_EVERY_MS after. */
#define SALVO__PROBE_LIMIT 3
#define SALVO__PROBE_EVERY_MS 60000
typedef struct {
  double limit;        /* during a probe: the limit to come back to */
  double floor_us;     /* no-load latency: the last probe's mean, or a lower window mean */
  int probing;
  double probe_cap;    /* a probe's limit: SALVO__PROBE_LIMIT within adaptive_min..max */
  uint32_t probe_n, probe_drops;
  double probe_sum_us;
  uint64_t next_probe_ms;
  uint32_t win_n;      /* latency samples in this window */
  double win_sum_us;
  unsigned win_peak;   /* most in flight when an attempt of this window was sent */
  unsigned win_drops;  /* 429s, 503s and timeouts in this window */
  unsigned lowest, highest; /* the limit's range so far (probes not counted) */
  uint64_t windows;    /* windows closed */
} salvo__limiter_t;

void salvo__limiter_init(salvo__limiter_t *l, const salvo_host_policy_t *p);
/* The limit now (during a probe, the probe's). */
unsigned salvo__limiter_limit(const salvo__limiter_t *l);
/* One attempt ended at |now| (loop ms): |us| its latency to the first byte
 * of the answer, |in_flight| the host's in flight when it was sent (itself
 * included), |drop| 1 for a 429, a 503 or a timeout (|us| is then unused).
 * Returns 1 if salvo__limiter_limit() changed. */
int salvo__limiter_sample(salvo__limiter_t *l, const salvo_host_policy_t *p, uint64_t now,
                          uint64_t us, unsigned in_flight, int drop);

/* RateLimit-Reset value: ms to wait, -1 if not a number, INT64_MAX if absurdly far. */
int64_t salvo__reset_parse(const char *value, int64_t epoch_above, int64_t now_unix_ms);

/* ------------------------------------------------------ retry.c */

typedef struct {
  salvo_decision_t decision;
  salvo_stop_reason_t stop; /* when decision is SALVO_DECIDE_STOP */
  int final_error;          /* the request's error if it stops now */
  uint64_t wait_ms;         /* when decision is SALVO_DECIDE_RETRY */
  char reason[128];
} salvo__decision_t;

uint64_t salvo__rng_next(uint64_t *state);
/* Wait before retry number |retry| (1 = after the first attempt). */
uint64_t salvo__backoff_ms(const salvo_retry_policy_t *p, unsigned retry, uint64_t prev_wait_ms,
                           uint64_t *rng);
int salvo__status_in(const int *list, long status);
int salvo__method_in_list(const char *list, const char *method);
/* Decides after an attempt. |now_ms| and |deadline_at_ms| on the loop clock
 * (deadline 0 = none); |streamed_bytes| already given to a data callback. */
/* Whether a response with |status| may be tried again under policy |p|, as
 * far as its head tells: a status retried for this request (|idempotent|)
 * while attempts remain (|attempt| made, hops not counted). The body of such
 * a response is held back from a data callback. */
int salvo__retry_may_status(const salvo_retry_policy_t *p, long status, int idempotent,
                            unsigned attempt);
void salvo__retry_decide(const salvo_retry_policy_t *p, const salvo_attempt_info_t *a,
                         uint64_t streamed_bytes, uint64_t now_ms, uint64_t deadline_at_ms,
                         uint64_t prev_wait_ms, uint64_t *rng, salvo__decision_t *out);
/* 0 if a retry policy is usable, else SALVO_EINVAL (a field out of range, a
 * header name that is not a token or one salvo frames itself). */
int salvo__retry_policy_check(const salvo_retry_policy_t *p);

/* ------------------------------------------------------ retry_after.c */

/* ms to wait from |now_unix_ms|, INT64_MAX if absurdly far,
 * -1 if |value| is absent or garbage. */
int64_t salvo__retry_after_parse(const char *value, int64_t now_unix_ms);

/* ------------------------------------------------------ validate.c */

int salvo__valid_method(const char *method);
int salvo__valid_header_name(const char *name, size_t len);
int salvo__valid_header_value(const char *value, size_t len);
/* Returns 0 and sets *is_https (and *out, the parsed URL the caller frees
 * with curl_url_cleanup(), unless out is NULL), or SALVO_EINVAL / SALVO_ENOMEM. */
int salvo__parse_url(const char *url, int *is_https, CURLU **out);
/* |url| with a userinfo password shown as "***", cut to |cap|. */
void salvo__redact_url(const char *url, char *out, size_t cap);
/* Splits "Name: value"; returns 0 or SALVO_EINVAL. Output points into |line|. */
int salvo__split_header_line(const char *line, const char **name, size_t *name_len,
                             const char **value, size_t *value_len);
/* Builds the curl header line for name/value ("Name;" for an empty value). */
char *salvo__header_line(const char *name, size_t name_len, const char *value, size_t value_len);
/* Why a caller may not set this header (a framing or hop-by-hop field), or
 * NULL if it may. Host is checked against the URL by the request. */
const char *salvo__header_reserved(const char *name, size_t len);
/* 1 if the name is Host (any case): a caller may give it only for the URL's own authority. */
int salvo__is_host_header(const char *name, size_t len);
/* Feeds one response header line; -1 if it gives a Content-Length that
 * disagrees with one seen before in this response (*seen, -1 = none yet). */
int salvo__content_length_merge(int64_t *seen, const char *line, size_t len);
/* 1 if |host| is in a NO_PROXY-style |list| (see validate.c). */
int salvo__no_proxy_match(const char *list, const char *host);
int salvo__header_has_name(const struct curl_slist *list, const char *name, size_t name_len);
/* "scheme://host:port" of a URL libcurl accepted; returns its length. */
size_t salvo__host_key(const char *url, int is_https, char *out, size_t cap);
/* 1 if |entry| is a salvo_engine_opts_t.resolve entry salvo takes:
 * "HOST:PORT:ADDR[,ADDR...]", HOST a host name or IPv4 address (not "*"),
 * PORT 1..65535, each ADDR an IPv4 address or an IPv6 one in brackets (as
 * inet_pton() reads them). No '+' or '-' form. Else (NULL too) 0. */
int salvo__valid_resolve_entry(const char *entry);
/* 1 if |entry| is a salvo_engine_opts_t.connect_to entry salvo takes:
 * "HOST:PORT:CONNECT_TO_HOST:CONNECT_TO_PORT", any field empty, hosts a
 * host name, an IPv4 address or an IPv6 one in brackets, ports 1..65535.
 * Else (NULL too) 0. */
int salvo__valid_connect_to_entry(const char *entry);

/* ------------------------------------------------------ attempt.c (pure part) */

typedef struct {
  int error;   /* 0 or salvo_error_t */
  int reached; /* the request may have reached the server */
} salvo__outcome_t;

/* Pure: maps an attempt's end to an error class and "reached the server".
 * |stop_reason| is salvo's own reason for stopping it (0 if libcurl ended it),
 * |sent| whether PREREQFUNCTION ran, |pretransfer_us| CURLINFO_PRETRANSFER_TIME_T. */
salvo__outcome_t salvo__classify(CURLcode rc, long os_errno, int stop_reason, int sent,
                                 int64_t pretransfer_us);

/* ------------------------------------------------------ redirect.c */

/* What to do with a response to a request that follows redirects. */
enum { SALVO__REDIRECT_NONE = 0, SALVO__REDIRECT_FOLLOW = 1, SALVO__REDIRECT_REFUSE = 2 };

typedef struct {
  long status;              /* of the response */
  const char *location;     /* its Location header, NULL if none */
  const char *url;          /* the URL the request went to */
  const CURLU *curlu;       /* the same, parsed: a relative Location resolves against it */
  int is_https;
  const char *method;
  unsigned hops;            /* redirects followed so far */
  unsigned max_hops;
  int allow_downgrade;      /* https to http allowed */
} salvo__redirect_in_t;

typedef struct {
  int action;               /* SALVO__REDIRECT_* */
  char why[160];            /* FOLLOW: "redirect 302 to URL"; REFUSE: "redirect refused: ..." */
  CURLU *next;              /* FOLLOW: the next hop, parsed; the caller's to free */
  char *next_url;           /* FOLLOW: the same as a string (malloc), the caller's to free */
  int next_https;
  int to_get;               /* FOLLOW: the method becomes GET, without the body */
  int cross_origin;         /* FOLLOW: the next hop's origin (scheme, host, port) is another */
} salvo__redirect_plan_t;

/* The plan step of a redirect (RFC 9110 15.4): NONE unless |in| is a 301,
 * 302, 303, 307 or 308 with a non-empty Location; REFUSE past max_hops, for
 * a Location that is not an http(s) URL or is over 8000 bytes, or https to
 * http unless allowed; else FOLLOW. 303 turns anything but HEAD into GET,
 * 301 and 302 turn POST into GET. On REFUSE and NONE nothing is allocated;
 * out of memory is a REFUSE. */
void salvo__redirect_plan(const salvo__redirect_in_t *in, salvo__redirect_plan_t *out);
/* 1 for the statuses a plan may follow: 301, 302, 303, 307, 308. */
int salvo__redirect_status(long status);
/* Frees what a FOLLOW plan holds. */
void salvo__redirect_plan_free(salvo__redirect_plan_t *plan);

/* ------------------------------------------------------ error.c */

/* Index of an error class in salvo_host_stats_t.by_error (0 for 0 or unknown) */
int salvo__err_index(int err);

#endif /* SALVO_PURE_H */
