/*
 * salvo — many HTTP requests at once, reliably.
 *
 * One engine drives libcurl's multi interface from a libuv loop that the
 * caller owns. Every request submitted ends with exactly one call of its done
 * callback, whatever happens: success, error, timeout, cancel or engine close.
 *
 * Threading: an engine and its requests belong to the thread that runs the
 * loop. Call every function of this header from that thread. For more cores,
 * run one loop and one engine per thread.
 *
 * Calls allowed from inside salvo callbacks (done_cb, data_cb): every call of
 * this header, including salvo_request_submit(), salvo_request_cancel() and
 * salvo_engine_close(). salvo defers what cannot run inside libcurl's own
 * callbacks; none of them ever calls a done callback before returning.
 *
 * Reading order: errors (classes and names), engine (timeouts), retry (the
 * policy and its decision), per-host protection (rate limits, pauses, retry
 * budget, circuit breaker, hedging, host stats), engine options and life,
 * request (build, submit, cancel, result, response headers). README.md has
 * the same with examples and the tables of defaults.
 */
#ifndef SALVO_H
#define SALVO_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "salvo/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && (defined(SALVO_BUILDING) || !defined(SALVO_STATIC))
#define SALVO_EXTERN __attribute__((visibility("default")))
#else
#define SALVO_EXTERN
#endif

/* ---------------------------------------------------------------- errors */

/*
 * Error classes. 0 is success; every error is negative. An attempt's outcome
 * and a request's final outcome are expressed as one of these (or 0 with an
 * HTTP status). salvo_err_name() gives a stable lower_snake_case identifier
 * for logs and machine-readable output, salvo_strerror() a short message.
 *
 * SALVO_ERRNO_MAP is the one list the enum, the names and the messages are
 * made from, as libuv's UV_ERRNO_MAP: XX(code, value, name, message). Values
 * run from -1 down without a gap, and stay below 32 in magnitude
 * (salvo_host_stats_t.by_error, SALVO_ERRBIT): error.c asserts both when it
 * compiles. A new class is added at the end, never in between.
 */
#define SALVO_ERRNO_MAP(XX)                                                                    \
  /* invalid input: URL, header, method, option */                                            \
  XX(EINVAL, -1, "invalid_input", "invalid input")                                            \
  XX(ENOMEM, -2, "out_of_memory", "out of memory")                                            \
  /* the host name could not be resolved */                                                   \
  XX(EDNS, -3, "dns_failure", "host name could not be resolved")                              \
  /* TCP connection refused */                                                                \
  XX(ECONNREFUSED, -4, "connect_refused", "connection refused")                               \
  /* other connect failure (unreachable, ...) */                                              \
  XX(ECONNECT, -5, "connect_failed", "could not connect (host or network unreachable)")       \
  /* TCP + TLS connect took longer than the connect timeout */                                \
  XX(ECONNTIMEOUT, -6, "connect_timeout", "connect timed out")                                \
  XX(ETLS, -7, "tls_handshake", "TLS handshake failed")                                       \
  /* the peer's certificate is not trusted; never retried */                                  \
  XX(ETLSVERIFY, -8, "tls_verification", "TLS certificate verification failed")               \
  /* the connection closed before any response */                                             \
  XX(ECLOSED, -9, "closed_without_response", "connection closed without a response")          \
  /* connection reset, or a send or receive error */                                          \
  XX(ERESET, -10, "connection_reset", "connection reset or broken")                           \
  XX(ETRUNCATED, -11, "truncated_body", "response body shorter than announced")               \
  /* no byte for the idle timeout */                                                          \
  XX(EIDLE, -12, "idle_timeout", "no data received within the idle timeout")                  \
  /* one attempt took longer than the attempt timeout */                                      \
  XX(EATTEMPT, -13, "attempt_timeout", "attempt took longer than the attempt timeout")        \
  /* the whole request took longer than its deadline */                                       \
  XX(EDEADLINE, -14, "deadline_exceeded", "request deadline exceeded")                        \
  /* waited longer than the queue timeout for a slot */                                       \
  XX(EQUEUE, -15, "queue_timeout", "waited too long in the queue for a free slot")            \
  /* HTTP/2 framing error or stream reset */                                                  \
  XX(EHTTP2, -16, "http2_error", "HTTP/2 protocol or stream error")                           \
  /* response body larger than max_body_size */                                               \
  XX(EBODYLIMIT, -17, "body_too_large", "response body larger than the allowed maximum")      \
  /* canceled by salvo_request_cancel() or engine close */                                    \
  XX(ECANCELED, -18, "canceled", "request canceled")                                          \
  /* the engine is closing; nothing new is accepted */                                        \
  XX(ECLOSING, -19, "engine_closing", "engine is closing")                                    \
  /* not supported by this build of libcurl */                                                \
  XX(ENOTSUP, -20, "not_supported", "not supported by this libcurl")                          \
  /* malformed response (not HTTP, bad encoding, ...) */                                      \
  XX(EPROTO, -21, "protocol_error", "malformed HTTP response")                                \
  /* the data callback asked to stop */                                                       \
  XX(EABORTED, -22, "aborted_by_callback", "stopped by the data callback")                    \
  /* unexpected libcurl or libuv failure; see the result's detail */                          \
  XX(EINTERNAL, -23, "internal_error", "internal error in libcurl or libuv")                  \
  /* the server asked to wait longer than retry_after_max_ms */                               \
  XX(ERETRYAFTER, -24, "retry_after_too_long", "server asked to wait longer than allowed")    \
  /* the host's circuit is open: failed fast, nothing sent */                                 \
  XX(ECIRCUIT, -25, "circuit_open", "the host's circuit breaker is open")                     \
  /* the host's rate limit or pause would hold it past its deadline or queue timeout:         \
     nothing sent */                                                                          \
  XX(ERATELIMIT, -26, "rate_limited", "the host's rate limit would pass the deadline")        \
  /* a redirect salvo will not follow: too many hops, https to http, a scheme other than      \
     http(s), or a Location it cannot parse */                                                \
  XX(EREDIRECT, -27, "redirect_refused", "a redirect salvo will not follow")                  \
  /* this machine ran out of something (file descriptors, local ports, socket buffers):      \
     nothing was sent, and it is not the host's fault */                                      \
  XX(ELOCAL, -28, "local_resource",                                                           \
     "out of a local resource (file descriptors, ports, buffers)")                            \
  /* the proxy could not be resolved or reached, or refused the tunnel: nothing reached the   \
     target, and it is not the host's fault */                                                \
  XX(EPROXY, -29, "proxy_failure", "the proxy could not be reached or refused the request")

typedef enum {
  SALVO_OK = 0,
#define SALVO__ERR_ENUM(code, value, name, msg) SALVO_##code = (value),
  SALVO_ERRNO_MAP(SALVO__ERR_ENUM)
#undef SALVO__ERR_ENUM
} salvo_error_t;

/* Longest URL and longest header value a caller may give (a header name
 * may have 256 bytes); longer ones are SALVO_EINVAL, never SALVO_ENOMEM. */
#define SALVO_MAX_URL_SIZE (64 * 1024)
#define SALVO_MAX_HEADER_LINE_SIZE (64 * 1024)

/* One bit per error class, for salvo_retry_policy_t.retry_errors. */
#define SALVO_ERRBIT(err) (UINT64_C(1) << (unsigned)(-(err)))

/** Human-readable message for an error code. Never NULL. */
SALVO_EXTERN const char *salvo_strerror(int err);
/**
 * Stable lower_snake_case name of an error code ("connect_refused",
 * "idle_timeout", ...), "ok" for 0, "unknown" for anything else. Never NULL.
 */
SALVO_EXTERN const char *salvo_err_name(int err);

/** Run-time version, "MAJOR.MINOR.PATCH". */
SALVO_EXTERN const char *salvo_version(void);

/* ---------------------------------------------------------------- engine */

/** An engine: one libcurl multi handle driven by one libuv loop. */
typedef struct salvo_engine_s salvo_engine_t;
/** A request. Owned by the caller until submitted, then by the engine. */
typedef struct salvo_request_s salvo_request_t;

typedef enum {
  SALVO_HTTP_AUTO = 0, /* https: HTTP/2 via ALPN, else HTTP/1.1; http: HTTP/1.1 */
  SALVO_HTTP_1_1 = 1,  /* always HTTP/1.1 */
  SALVO_HTTP_2 = 2     /* https: offer only HTTP/2 first (ALPN); http: h2c (needs libcurl >= 8.0) */
} salvo_http_version_t;

/*
 * Timeouts in milliseconds; 0 switches one off. Each expiry has its own error
 * class so a caller can tell a dead server (connect) from a stalled one (idle)
 * from a slow one (attempt, deadline) from an overloaded client (queue).
 */
typedef struct {
  uint64_t connect_ms; /* TCP + TLS handshake, per attempt (3100) */
  uint64_t idle_ms;    /* longest gap between bytes once the request is sent (10000) */
  uint64_t attempt_ms; /* one attempt, wall clock from its start (0 = off) */
  uint64_t deadline_ms;/* whole request from submit, every attempt and wait included (30000) */
  uint64_t queue_ms;   /* longest wait in the engine's queue for a slot (0 = off) */
} salvo_timeouts_t;

/** Fills *t with the defaults above. */
SALVO_EXTERN void salvo_timeouts_init(salvo_timeouts_t *t);

/* ----------------------------------------------------------------- retry */

typedef enum {
  SALVO_JITTER_FULL = 0,     /* uniform in [0, min(cap, base * mult^n)] (default) */
  SALVO_JITTER_EQUAL = 1,    /* half of that, plus uniform in [0, half] */
  SALVO_JITTER_DECORRELATED = 2, /* min(cap, uniform in [base, 3 * previous wait]) */
  SALVO_JITTER_NONE = 3      /* min(cap, base * mult^n) exactly */
} salvo_jitter_t;

/* What to do after an attempt: stop (the request completes) or try again.
 * SALVO_STOP and SALVO_RETRY are the names of 0.1, kept as aliases; the
 * SALVO_STOP_* names below are stop reasons, not decisions. */
typedef enum {
  SALVO_DECIDE_STOP = 0,
  SALVO_DECIDE_RETRY = 1,
  SALVO_STOP = SALVO_DECIDE_STOP,  /* deprecated alias */
  SALVO_RETRY = SALVO_DECIDE_RETRY /* deprecated alias */
} salvo_decision_t;

/* Why a request ended. */
typedef enum {
  SALVO_STOP_SUCCESS = 0,        /* a response that is not retried and is < 400 */
  SALVO_STOP_NOT_RETRYABLE = 1,  /* the outcome is not one the policy retries */
  SALVO_STOP_EXHAUSTED = 2,      /* max_attempts made */
  SALVO_STOP_DEADLINE = 3,       /* the deadline passed, or the next wait would pass it */
  SALVO_STOP_RETRY_AFTER = 4,    /* Retry-After longer than retry_after_max_ms */
  SALVO_STOP_CANCELED = 5,       /* salvo_request_cancel() or engine close */
  SALVO_STOP_BY_CALLBACK = 6,    /* the decision callback said stop */
  SALVO_STOP_QUEUE = 7,          /* no slot within queue_ms */
  SALVO_STOP_BUDGET = 8,         /* a retry was due, and the host's retry budget refused it */
  SALVO_STOP_CIRCUIT = 9,        /* the host's circuit was open */
  SALVO_STOP_RATE_LIMIT = 10     /* the host's rate limit would hold it past its deadline or queue timeout */
} salvo_stop_reason_t;

/** Stable lower_snake_case name of a stop reason ("attempts_exhausted", ...). */
SALVO_EXTERN const char *salvo_stop_reason_name(salvo_stop_reason_t reason);

/** What the decision callback is told about the attempt that just ended. */
typedef struct {
  const char *method;
  unsigned attempt;        /* number of the attempt that ended, from 1 */
  int error;               /* its error class, 0 if a response came */
  long status;             /* its HTTP status, 0 if none */
  int reached_server;      /* the request may have reached the server */
  int idempotent;          /* method in idempotent_methods, or an Idempotency-Key was sent */
  int64_t retry_after_ms;  /* parsed Retry-After (on 413/429/503), -1 if none or garbage */
} salvo_attempt_info_t;

/** One entry of a request's attempt history. */
typedef struct {
  unsigned attempt;        /* from 1 */
  int error;               /* error class, 0 if a response came */
  long status;             /* HTTP status, 0 if none */
  int reached_server;
  salvo_decision_t decision;
  uint64_t wait_ms;        /* wait before the next attempt; 0 when stopping */
  int64_t retry_after_ms;  /* Retry-After the server sent, -1 if none */
  unsigned sends;          /* times this attempt went on the wire. libcurl sends a request again
                              by itself when a reused connection died before any answer or an
                              HTTP/2 stream was refused. salvo allows that when the server's TCP
                              acknowledged nothing of the last send (its application cannot have
                              read it; libcurl stops after 5), else once per attempt, idempotent
                              requests only, against the host's retry budget */
  char reason[128];        /* the decision in words: "not retried: POST reached the server ..." */
} salvo_attempt_record_t;

/**
 * Overrides the policy's decision for one attempt. |default_decision| is what
 * the policy decided and *wait_ms the wait it chose; return SALVO_RETRY or
 * SALVO_STOP, and change *wait_ms to wait differently. The deadline still
 * bounds every wait.
 */
typedef salvo_decision_t (*salvo_decide_cb)(salvo_request_t *req, const salvo_attempt_info_t *info,
                                            salvo_decision_t default_decision, uint64_t *wait_ms,
                                            void *user_data);
/** Called after every attempt's decision, for logs and metrics. */
typedef void (*salvo_attempt_event_cb)(salvo_request_t *req, const salvo_attempt_record_t *record,
                                       void *user_data);

#define SALVO_MAX_RETRY_STATUSES 16

/*
 * A retry policy. Fill it with salvo_retry_policy_init(), then change fields.
 * It is copied on use (strings are arrays, so nothing in it needs to outlive
 * the call). The engine's is the default; salvo_request_set_retry_policy()
 * overrides it for one request.
 *
 * The rule: an outcome is retried when it is one of the retried error classes
 * or statuses and it is safe. A retried error class is safe if the request
 * never reached the server, or if it is idempotent. A retried status is safe
 * if it is in retry_any_method_statuses, or if the request is idempotent and
 * the status is in retry_statuses. A request is idempotent when its method is
 * in idempotent_methods or it carries an Idempotency-Key header.
 */
typedef struct {
  unsigned max_attempts;          /* attempts in all, the first included; 1 = no retry (4) */
  uint64_t backoff_base_ms;       /* (250) */
  double backoff_multiplier;      /* (2.0) */
  uint64_t backoff_max_ms;        /* cap of one wait (10000) */
  salvo_jitter_t jitter;          /* (SALVO_JITTER_FULL) */
  uint64_t seed;                  /* jitter random source; 0 = seeded from the OS (0). Engine-wide only. */
  uint64_t retry_errors;          /* SALVO_ERRBIT()s of the retried error classes (see init) */
  int retry_statuses[SALVO_MAX_RETRY_STATUSES];            /* idempotent only (408 500 502 504), 0-terminated */
  int retry_any_method_statuses[SALVO_MAX_RETRY_STATUSES]; /* any method (429 503), 0-terminated */
  char idempotent_methods[128];   /* comma-separated ("GET,HEAD,OPTIONS,PUT,DELETE,TRACE") */
  int respect_retry_after;        /* wait what 413/429/503 Retry-After says instead of backing off (1) */
  uint64_t retry_after_max_ms;    /* longer Retry-After ends the request with SALVO_ERETRYAFTER (60000) */
  int idempotency_key_auto;       /* 1: send one random Idempotency-Key on every attempt of a POST or
                                     PATCH that has none, which makes it retryable (0) */
  char request_id_header[64];     /* same random id on every attempt, unless the caller set
                                     one; "" = off ("X-Request-ID") */
  char attempt_header[64];        /* attempt number on each attempt; "" = off ("") */
  salvo_decide_cb decide_cb;      /* NULL = the policy decides (NULL) */
  void *decide_data;
  salvo_attempt_event_cb event_cb;/* NULL = none (NULL) */
  void *event_data;
} salvo_retry_policy_t;

/** Fills *p with the defaults above. */
SALVO_EXTERN void salvo_retry_policy_init(salvo_retry_policy_t *p);

/* ------------------------------------------------------ per-host protection */

/*
 * Per-host protection. A host is scheme + host + port ("https://example.com:443").
 * Each host gets its own token bucket, retry budget, circuit breaker and
 * latency record, created on its first request. Every wait is a loop timer:
 * a request held back waits in its host's queue and takes no slot.
 */
typedef struct {
  /* Rate limit: a token bucket per host. */
  double rate;                /* requests per second; 0 = no limit until the server asks for one (0) */
  double burst;               /* bucket size; 0 = max(1, rate) (0) */
  /* Adaptive rate (AIMD): a 429 multiplies the rate by decrease (once per
   * round: 429s to requests sent before the last cut do not cut again);
   * each success adds increase / rate, that is about `increase` requests per
   * second per second. With rate 0, the first 429 starts from the rate the
   * host was sent in the last second. */
  int adaptive;               /* (0) */
  double decrease;            /* (0.5) */
  double increase;            /* (1.0) */
  double rate_floor;          /* (1.0) */
  double rate_ceiling;        /* 0 = none (0) */
  /* A 429 or 503 with Retry-After, or else RateLimit-Reset or
   * X-RateLimit-Reset, pauses the whole host until then. */
  int pause_on_retry_after;   /* (1) */
  uint64_t max_pause_ms;      /* longest host pause (60000) */
  int64_t reset_epoch_above;  /* a Reset value above this is a Unix time, else seconds (1000000000) */
  /* Retry budget: retries to a host in the last window may not exceed
   * ratio x that host's requests in the window plus floor per second. */
  int budget;                 /* (1) */
  double budget_ratio;        /* (0.2) */
  double budget_floor;        /* retries per second always allowed (10) */
  uint64_t budget_window_ms;  /* (10000) */
  /* Circuit breaker over attempt outcomes. A failure is a connection-level
   * error class or a 500, 502, 503 or 504; 4xx are the caller's business. */
  int breaker;                /* (0) */
  unsigned breaker_consecutive; /* this many failures in a row open it (5) */
  double breaker_ratio;       /* or this failure ratio in the window... (0.5) */
  unsigned breaker_min_requests; /* ...over at least this many attempts (20) */
  uint64_t breaker_window_ms; /* (10000) */
  uint64_t breaker_break_ms;  /* open this long, +/-20% jitter; doubles on each reopen (5000) */
  uint64_t breaker_max_break_ms; /* (60000) */
  /* Hedging, idempotent requests only: when the first attempt has no
   * response after the delay, a second is sent; the first response wins and
   * the other is canceled. Hedges count against the retry budget. */
  uint64_t hedge_delay_ms;    /* 0 = off (0) */
  int hedge_p95;              /* 1: the delay is the host's running p95 once it has 20 samples,
                                 hedge_delay_ms until then (0) */
  /* Concurrency. However many slots the engine has, a host never has more
   * requests in flight than its connections can carry (HTTP/1.1: one per
   * connection; HTTP/2: connections x streams), and no more than these
   * limits; the rest wait in its queue and hold no slot. A freed slot goes
   * to the host with queued work and the fewest requests in flight, so one
   * slow host cannot take the slots of the others (fair share); a host
   * alone may use them all. */
  unsigned max_in_flight;     /* requests in flight to the host at once, hedges included;
                                 0 = no limit of its own (0). Browsers use 6 per HTTP/1.1
                                 host, scrapy 8: set one to be polite to servers you do not own */
  /* Adaptive concurrency (opt-in): a latency-based limit per host, below
   * max_in_flight. The host's no-load latency (time to the first byte) is
   * measured with 3 in flight, at the start and every minute. While its
   * latency stays within adaptive_tolerance x that, the limit grows (by
   * about the square root of itself per window of samples, only while the
   * host uses at least half of it); when latency rises above, the limit
   * falls in proportion; a 429, a 503 or a timeout cuts it by a fifth. */
  int adaptive_concurrency;   /* (0) */
  unsigned adaptive_initial;  /* the limit a host starts with (10) */
  unsigned adaptive_min;      /* never below (1) */
  unsigned adaptive_max;      /* never above; 0 = max_in_flight if set, else 1000 (0) */
  double adaptive_tolerance;  /* latency up to this x the no-load latency counts as no queueing (1.5) */
} salvo_host_policy_t;

/** Fills *p with the defaults above. */
SALVO_EXTERN void salvo_host_policy_init(salvo_host_policy_t *p);

typedef enum {
  SALVO_CIRCUIT_CLOSED = 0,
  SALVO_CIRCUIT_OPEN = 1,
  SALVO_CIRCUIT_HALF_OPEN = 2
} salvo_circuit_t;

/** Stable name: "closed", "open", "half_open". */
SALVO_EXTERN const char *salvo_circuit_name(salvo_circuit_t state);

typedef enum {
  SALVO_HOST_CIRCUIT_OPENED = 1,    /* failures tripped it; until = when it half-opens */
  SALVO_HOST_CIRCUIT_HALF_OPEN = 2, /* one probe goes through */
  SALVO_HOST_CIRCUIT_CLOSED = 3,    /* the probe succeeded */
  SALVO_HOST_PAUSED = 4,            /* Retry-After or a rate-limit reset: until = end of the pause */
  SALVO_HOST_RATE_CHANGED = 5,      /* the adaptive rate moved down (rate = the new one) */
  SALVO_HOST_LIMIT_CHANGED = 6      /* the adaptive concurrency limit moved (limit = the new one) */
} salvo_host_event_type_t;

typedef struct {
  salvo_host_event_type_t type;
  const char *host;           /* "https://example.com:443" */
  double rate;                /* the host's rate limit after the event, 0 = none */
  uint64_t until_ms;          /* loop time (uv_now) the pause or open state ends, else 0 */
  unsigned limit;             /* the host's concurrency limit after the event, 0 = none */
} salvo_host_event_t;

typedef void (*salvo_host_event_cb)(salvo_engine_t *engine, const salvo_host_event_t *ev,
                                    void *user_data);

typedef struct {
  char host[272];             /* "scheme://host:port" */
  uint64_t requests;          /* requests submitted to this host */
  uint64_t successes;         /* requests that ended with a response < 400 */
  uint64_t failures;          /* requests that ended any other way */
  uint64_t attempts;          /* attempts sent, hedges included */
  uint64_t retries;           /* retry attempts */
  uint64_t hedges;            /* hedge attempts */
  uint64_t budget_refused;    /* retries the budget refused */
  uint64_t circuit_rejected;  /* requests failed fast by an open circuit */
  uint64_t limited;           /* 429 responses */
  uint64_t by_error[32];      /* final outcomes by class: index -error (1..31), [0] = HTTP status >= 400 */
  double rate;                /* current rate limit, requests per second; 0 = none */
  salvo_circuit_t circuit;
  uint64_t paused_ms;         /* how much longer the host is paused, 0 = not paused */
  size_t queued;              /* requests of this host now waiting in its queue */
  uint64_t p50_us, p90_us, p99_us, max_us; /* latency of requests that got a response */
  uint64_t resends;           /* sends libcurl made again within an attempt (a reused connection
                                 that died, an HTTP/2 stream refused); those the server may have
                                 read spent retry budget */
  size_t in_flight;           /* its attempts now on the wire, hedges included */
  unsigned limit;             /* most it may have in flight now (its connections, max_in_flight,
                                 the adaptive limit); 0 = only the engine's max_in_flight */
  unsigned limit_min, limit_max; /* the lowest and highest adaptive limit so far, within what its
                                     connections carry (0 = not adaptive; probes not counted) */
} salvo_host_stats_t;

/**
 * Gives one host its own policy instead of opts.hosts. |origin| is a URL
 * naming the host ("https://api.example.com", a path is ignored). Takes effect
 * for the host's next admission; its tokens, pause and circuit state carry
 * over. Returns 0, or SALVO_EINVAL (bad origin or policy, engine closing),
 * SALVO_ENOMEM.
 */
SALVO_EXTERN int salvo_engine_set_host_policy(salvo_engine_t *engine, const char *origin,
                                              const salvo_host_policy_t *policy);

/** Number of hosts the engine keeps state for (at most about opts.max_hosts). */
SALVO_EXTERN size_t salvo_engine_host_count(const salvo_engine_t *engine);
/** Stats of host |i| (0 <= i < count), in order of first use, except that a
 * host that takes an evicted one's place takes its index too. Indexes hold
 * until the loop runs again. SALVO_EINVAL if out of range. */
SALVO_EXTERN int salvo_engine_host_stats(const salvo_engine_t *engine, size_t i,
                                         salvo_host_stats_t *out);

typedef struct {
  /* Slots: transfers on the wire at once, over all hosts. salvo hands libcurl
   * only transfers that can go out now: a host gets at most what its
   * connections carry (max_host_connections, x max_streams where it speaks
   * HTTP/2; a host not yet heard from gets max_host_connections until its
   * first answer says which), and each lane no more than its
   * max_connections carry (one HTTP/1.1 request, or max_streams HTTP/2
   * streams of one host, per connection). The rest wait in their host's
   * queue, holding no slot. */
  size_t max_in_flight;        /* slots (64) */
  long max_connections;        /* open connections per lane (one for HTTP/1.1 only, one where HTTP/2
                                  may be used), 0 = no cap (0) */
  long max_host_connections;   /* per host; 0 = auto: none of its own for HTTP/1.1-only hosts, 4 where
                                  HTTP/2 may multiplex (0) */
  long max_streams;            /* HTTP/2 streams per connection salvo uses (100); a server that
                                  allows fewer makes the rest wait inside libcurl */
  salvo_http_version_t http_version; /* SALVO_HTTP_AUTO */
  const char *ca_file;         /* PEM bundle of trusted CAs; NULL = system store (NULL) */
  int insecure_skip_verify;    /* 1 disables TLS verification and warns on stderr (0) */
  /* Proxies. The library ignores the environment (http_proxy, HTTPS_PROXY,
   * ALL_PROXY, NO_PROXY) unless proxy_from_env is 1: a daemon's environment
   * should not decide where its credentials go. A proxy that cannot be
   * reached or refuses is SALVO_EPROXY, never the target host's failure. */
  const char *proxy;           /* "http://[user:pass@]host:port" (or socks5h://...) for every request;
                                  NULL = none (NULL) */
  const char *no_proxy;        /* comma-separated entries that go direct: a host name (and the
                                  names under it), an IP address or CIDR range ("10.0.0.0/8"),
                                  "*" = all; NULL = none (NULL) */
  int proxy_from_env;          /* 1: where proxy is NULL, take it as curl does: http_proxy for http,
                                  https_proxy/HTTPS_PROXY for https, else all_proxy/ALL_PROXY;
                                  no_proxy/NO_PROXY where no_proxy is NULL (0) */
  const char *user_agent;      /* NULL = "salvo/VERSION" */
  const char *const *default_headers; /* NULL-terminated "Name: value" lines sent on every request (NULL) */
  size_t max_body_size;        /* buffered or streamed response body cap, bytes (64 MiB) */
  size_t max_header_size;      /* response header block cap per attempt, bytes; past it the attempt
                                  ends with SALVO_EPROTO (64 KiB; libcurl's own limit is 100 KB) */
  /* Redirects (off by default). When followed: at most max_redirects hops;
   * 307/308 keep the method and body; 303 turns anything but HEAD into GET,
   * and 301/302 turn POST into GET, without the body; Authorization, Cookie
   * and Proxy-Authorization are dropped once the origin (scheme, host, port)
   * changes; https to http is refused unless allowed. Each hop is an attempt
   * with its own record, but does not count against max_attempts. */
  int follow_redirects;        /* (0) */
  unsigned max_redirects;      /* (5) */
  int redirect_allow_downgrade;/* (0) */
  salvo_timeouts_t timeouts;   /* engine-wide defaults, see salvo_timeouts_init() */
  salvo_retry_policy_t retry;  /* engine-wide default, see salvo_retry_policy_init() */
  salvo_host_policy_t hosts;   /* every host's protection, see salvo_host_policy_init() */
  salvo_host_event_cb host_event_cb; /* circuit, pause and rate events; NULL = none (NULL) */
  void *host_event_data;
  /* Hosts the engine keeps state for. Past it, a new host takes the place of
   * the least recently used idle one: no request of its own live (queued,
   * waiting or in flight), not paused, circuit closed, no policy of its own.
   * That host's stats and learned rate are forgotten (salvo_engine_stats()
   * counts it in hosts_evicted). If none is idle, the engine keeps more.
   * A host takes about 1.5 KB, 3.7 KB once it has answered. 0 = no cap (10000) */
  size_t max_hosts;
} salvo_engine_opts_t;

/** Fills *opts with the documented defaults. Always use it before setting fields. */
SALVO_EXTERN void salvo_engine_opts_init(salvo_engine_opts_t *opts);

/**
 * Creates an engine on |loop|, which the caller owns and keeps running. The
 * engine copies |opts| (NULL = defaults), including the strings it points to.
 *
 * Returns 0 and sets *out, or one of:
 *   SALVO_EINVAL   an option is out of range, a default header is malformed,
 *                  or ca_file cannot be read;
 *   SALVO_ENOMEM   out of memory;
 *   SALVO_EINTERNAL libcurl or libuv could not be initialised.
 */
SALVO_EXTERN int salvo_engine_new(uv_loop_t *loop, const salvo_engine_opts_t *opts,
                                  salvo_engine_t **out);

typedef void (*salvo_engine_close_cb)(salvo_engine_t *engine, void *user_data);

/**
 * Closes the engine asynchronously: every request still queued, waiting or in
 * flight completes with SALVO_ECANCELED, every uv handle of the engine closes,
 * then |close_cb| (may be NULL) runs and the engine is freed. After that the
 * caller's uv_loop_close() returns 0 as far as salvo is concerned.
 * Calling it twice, or with NULL, does nothing.
 */
SALVO_EXTERN void salvo_engine_close(salvo_engine_t *engine, salvo_engine_close_cb close_cb,
                                     void *user_data);

/** Counters since the engine was created. */
typedef struct {
  uint64_t submitted;          /* requests accepted by salvo_request_submit() */
  uint64_t completed;          /* done callbacks called */
  uint64_t attempts;           /* transfers started */
  uint64_t retries;            /* attempts scheduled after a failed one */
  uint64_t resends;            /* requests libcurl sent again within an attempt (see
                                  salvo_attempt_record_t.sends) */
  uint64_t connections_opened; /* new connections libcurl made (sum of CURLINFO_NUM_CONNECTS) */
  size_t queued;               /* requests now waiting for a slot */
  size_t waiting;              /* requests now in backoff before their next attempt */
  size_t in_flight;            /* transfers now on the wire (handed to libcurl) */
  size_t hosts;                /* hosts the engine keeps state for now */
  uint64_t hosts_evicted;      /* idle hosts forgotten to stay within max_hosts */
} salvo_engine_stats_t;

SALVO_EXTERN void salvo_engine_stats(const salvo_engine_t *engine, salvo_engine_stats_t *stats);

/* --------------------------------------------------------------- request */

/**
 * Called with body bytes as they arrive when set; the body is then not
 * buffered. Return 0 to go on, anything else to stop the request with
 * SALVO_EABORTED. The bytes are valid only during the call. An attempt that
 * has passed bytes to this callback is never retried: the caller would get
 * them twice.
 */
typedef int (*salvo_data_cb)(salvo_request_t *req, const char *data, size_t len,
                             void *user_data);

/** Timings of one attempt in microseconds, each a phase duration. */
typedef struct {
  uint64_t dns_us;     /* name resolution */
  uint64_t connect_us; /* TCP connect (0 on a reused connection) */
  uint64_t tls_us;     /* TLS handshake (0 for http or a reused connection) */
  uint64_t ttfb_us;    /* from attempt start to the first response byte */
  uint64_t total_us;   /* from attempt start to its end */
} salvo_timings_t;

/** What a request's done callback receives. Valid only during the callback. */
typedef struct {
  int error;               /* 0, or the salvo_error_t of the final outcome */
  long status;             /* final HTTP status, 0 if no response was received */
  unsigned attempts;       /* attempts made, 0 if it never left the queue */
  unsigned sends;          /* times the request went on the wire, over all attempts (>= attempts
                              that reached the server; see salvo_attempt_record_t.sends) */
  int reached_server;      /* 1 if the final attempt's request may have reached the server */
  int http_version;        /* 10, 11 or 20 for the final response, 0 if none */
  const char *body;        /* buffered body, NUL-terminated for convenience; NULL with a data_cb */
  size_t body_len;         /* bytes of body received (also counted with a data_cb) */
  salvo_timings_t timings; /* of the final attempt */
  uint64_t elapsed_us;     /* from submit to completion */
  const char *detail;      /* libcurl's message or salvo's explanation, "" if none */
  salvo_stop_reason_t stop_reason; /* why the engine stopped */
  int64_t retry_after_ms;  /* with SALVO_ERETRYAFTER: the wait the server named; else -1 */
  const salvo_attempt_record_t *history; /* one record per attempt, oldest first */
  size_t history_len;      /* == attempts */
  unsigned redirects;      /* redirects followed; salvo_request_url() is then the final URL */
} salvo_result_t;

typedef void (*salvo_done_cb)(salvo_request_t *req, const salvo_result_t *result,
                              void *user_data);

/**
 * Creates a request for |method| (e.g. "GET"; any RFC 9110 token) and |url|
 * (absolute http:// or https://). Both are copied.
 *
 * Returns 0 and sets *out, or:
 *   SALVO_EINVAL  NULL or empty method, a method that is not a token, a
 *                 malformed URL, a scheme other than http/https, no host;
 *   SALVO_ENOMEM  out of memory.
 */
SALVO_EXTERN int salvo_request_new(salvo_engine_t *engine, const char *method, const char *url,
                                   salvo_request_t **out);

/**
 * Adds a header, "Name" and "value" given apart; both are copied. A header the
 * engine adds by default (User-Agent, a default header) is replaced when the
 * request sets the same name. An empty value sends the header empty.
 *
 * The wire framing is always salvo's: Content-Length, Transfer-Encoding, TE,
 * Trailer, Connection, Keep-Alive, Proxy-Connection and Upgrade are refused
 * (salvo_header_reserved() says why), and Host only if it names the URL's own
 * host (and port). A Host header is dropped, like credentials, when a
 * redirect leaves the origin.
 *
 * Returns 0, SALVO_ENOMEM, or SALVO_EINVAL: empty or non-token name, CR, LF
 * or NUL in the value, a reserved name, a Host that is not the URL's, or
 * the request was already submitted.
 */
SALVO_EXTERN int salvo_request_add_header(salvo_request_t *req, const char *name,
                                          const char *value);

/**
 * Why a caller may not set header |name| ("salvo frames the body itself",
 * ...), or NULL if it may (Host: see salvo_request_add_header()). The string
 * is static. Also applies to opts.default_headers, where Host is refused too.
 */
SALVO_EXTERN const char *salvo_header_reserved(const char *name);

/** Same as salvo_request_add_header() with one "Name: value" line. */
SALVO_EXTERN int salvo_request_add_header_line(salvo_request_t *req, const char *line);

/**
 * Sets the request body; |len| bytes are copied so that every attempt can
 * re-send them. Returns 0, SALVO_ENOMEM, or SALVO_EINVAL after submit.
 */
SALVO_EXTERN int salvo_request_set_body(salvo_request_t *req, const void *body, size_t len);

/** Overrides the engine's timeouts for this request (copied). */
SALVO_EXTERN int salvo_request_set_timeouts(salvo_request_t *req, const salvo_timeouts_t *t);

/** Streams the body to |cb| instead of buffering it (see salvo_data_cb). */
SALVO_EXTERN int salvo_request_set_data_cb(salvo_request_t *req, salvo_data_cb cb);

/** Overrides the engine's retry policy for this request (copied; seed is ignored). */
SALVO_EXTERN int salvo_request_set_retry_policy(salvo_request_t *req, const salvo_retry_policy_t *p);

/** Overrides the engine's max_body_size for this request. */
SALVO_EXTERN int salvo_request_set_max_body_size(salvo_request_t *req, size_t max);
/** Follows redirects (1) or not (0) for this request, whatever the engine's default. */
SALVO_EXTERN int salvo_request_set_follow_redirects(salvo_request_t *req, int follow);

/**
 * Submits the request. From a 0 return on, the engine owns |req| and calls
 * |done_cb| exactly once, never before this function returns; |req| is freed
 * when done_cb returns.
 *
 * On error the callback is never called and the caller still owns |req|
 * (free it with salvo_request_free()):
 *   SALVO_EINVAL    done_cb is NULL, or req was already submitted;
 *   SALVO_ENOTSUP   plaintext HTTP/2 (h2c) asked of libcurl < 8.0, whose h2c is broken;
 *   SALVO_ECLOSING  the engine is closing;
 *   SALVO_ENOMEM    out of memory.
 */
SALVO_EXTERN int salvo_request_submit(salvo_request_t *req, salvo_done_cb done_cb, void *user_data);

/**
 * Cancels a submitted request whose done callback has not run yet. The done
 * callback then runs soon, from the loop, with SALVO_ECANCELED (or with the
 * outcome it already had, if it finished in the meantime). Never calls the
 * callback before returning. Returns 0, or SALVO_EINVAL if req was not
 * submitted.
 */
SALVO_EXTERN int salvo_request_cancel(salvo_request_t *req);

/** Frees a request that was never submitted successfully. NULL is a no-op. */
SALVO_EXTERN void salvo_request_free(salvo_request_t *req);

/** The engine a request belongs to. */
SALVO_EXTERN salvo_engine_t *salvo_request_engine(const salvo_request_t *req);
/** The request's method and URL as given. */
SALVO_EXTERN const char *salvo_request_method(const salvo_request_t *req);
SALVO_EXTERN const char *salvo_request_url(const salvo_request_t *req);

/**
 * Response headers of the final response, usable only inside the done
 * callback. salvo_response_header() returns the value of the last header named
 * |name| (case-insensitive) or NULL. salvo_response_header_at() walks them in
 * order: returns 0 and sets *name and *value for index |i|, or SALVO_EINVAL past
 * the end. Returned strings live until the done callback returns.
 */
SALVO_EXTERN const char *salvo_response_header(salvo_request_t *req, const char *name);
SALVO_EXTERN int salvo_response_header_at(salvo_request_t *req, size_t i, const char **name,
                                          const char **value);

/**
 * Takes ownership of the buffered body inside the done callback: returns a
 * malloc()ed, NUL-terminated buffer of result->body_len bytes that the caller
 * frees, and result->body becomes invalid. NULL if there is none.
 */
SALVO_EXTERN char *salvo_response_take_body(salvo_request_t *req);

#ifdef __cplusplus
}
#endif

#endif /* SALVO_H */
