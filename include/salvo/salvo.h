/*
 * salvo — many HTTP requests at once, reliably.
 *
 * One engine drives libcurl's multi interface from a libuv loop that the
 * caller owns. Every request submitted ends with exactly one call of its done
 * callback, whatever happens: success, error, timeout, cancel or engine close.
 *
 * Threading: an engine and its requests belong to the thread that runs the
 * engine's loop. Call every function of this header that takes an engine or
 * a submitted request from that thread, and salvo_engine_new() there too (or
 * before the loop runs), with these exceptions:
 * - salvo_request_submit_threadsafe() may be called from any thread, until
 *   the engine's close_cb runs (see there); the done callback still runs on
 *   the loop's thread.
 * - salvo_request_new(), the salvo_request_set_* and salvo_request_add_header*
 *   setters, salvo_request_method(), salvo_request_url(),
 *   salvo_request_engine() and salvo_request_free() may be called from any
 *   thread for a request not yet submitted, by one thread at a time per
 *   request: they read only what never changes after salvo_engine_new().
 * - The functions that take neither an engine nor a request (the *_init
 *   functions, salvo_strerror(), salvo_err_name(), salvo_version(),
 *   salvo_stop_reason_name(), salvo_circuit_name(), salvo_header_reserved(),
 *   salvo_log_level_name()) may be called from any thread.
 * Debug builds (without NDEBUG) abort with an assertion when
 * salvo_request_submit(), salvo_request_cancel(), salvo_engine_close(),
 * salvo_engine_set_host_policy(), salvo_engine_stats(),
 * salvo_engine_host_count() or salvo_engine_host_stats() is called from a
 * thread other than the one the engine's loop was seen running on (known
 * from the loop's first pass over the engine, so calls made before the loop
 * thread starts are not checked). salvo keeps no global state of its own, so
 * for more cores run one loop and one engine per thread. salvo_engine_new()
 * calls libcurl's curl_global_init(): see there before creating engines on
 * several threads.
 *
 * Calls allowed from inside salvo callbacks (done_cb, data_cb, decide_cb,
 * attempt_event_cb, host_event_cb): every call of this header, including
 * salvo_request_submit(), salvo_request_cancel() and salvo_engine_close().
 * Inside an engine's close_cb, call nothing on that engine. salvo defers what
 * cannot run inside libcurl's own callbacks (data_cb runs inside libcurl's
 * write callback), so a cancel or a close takes effect from the loop, after
 * the callback returns. No function of this header calls a callback before
 * returning: callbacks run only from the loop. The one exception is the log
 * callback (salvo_log_cb), which salvo_engine_new() may call, with a NULL
 * engine, before it returns.
 *
 * Lifetimes: an engine lives from salvo_engine_new() until its close
 * completes (salvo_engine_close()): after its close_cb returns it is freed,
 * and passing it, or a request made on it, to any function but
 * salvo_request_free() is undefined. From salvo_engine_close() on,
 * salvo_request_new() and salvo_request_submit() return SALVO_ECLOSING.
 * Builds without NDEBUG abort (assert) where they see an engine whose close
 * has completed, which they do as long as its memory was not reused.
 *
 * Conventions:
 * - A function that returns int returns 0 on success or a negative
 *   salvo_error_t. If it fails, its outputs and the object it was given are
 *   left untouched, unless its comment says otherwise.
 * - NULL: a NULL handle, output pointer or required argument makes a
 *   function that returns int return SALVO_EINVAL, one that returns a
 *   pointer return NULL, one that returns a count return 0, and one that
 *   returns void do nothing (salvo_engine_stats(NULL, st) zero-fills *st).
 *   *_free(NULL), *_close(NULL) and *_init(NULL) do nothing. Exceptions say
 *   so in their comment.
 * - Copies: strings, option structs and bodies passed in are copied before the
 *   function returns; none of them needs to outlive the call. Callback
 *   pointers and their user_data are kept as given, and user_data must stay
 *   valid while the callback may be called. Every callback gets its
 *   user_data last.
 * - Returned strings: names and messages (salvo_strerror(), salvo_err_name(),
 *   salvo_version(), salvo_stop_reason_name(), salvo_circuit_name(),
 *   salvo_header_reserved(), salvo_log_level_name()) are static. Every other
 *   returned pointer says how long it lives; "during the callback" means
 *   until the callback returns.
 * - Time: *_ms fields are milliseconds and *_us fields microseconds. Every
 *   one is a duration (a timeout, a wait, time left, time taken) except
 *   salvo_host_event_t.until_ms, which is a moment on the loop's clock: a
 *   value of uv_now(loop), comparable only with uv_now() of the same loop,
 *   not a wall-clock time. salvo_host_stats_t.paused_ms is a duration: the
 *   time left of a pause. Any duration is accepted: where a moment plus a
 *   duration would pass UINT64_MAX it stays at UINT64_MAX, which never
 *   comes (see SALVO_TIMEOUT_MAX_MS for timeouts).
 * - HTTP versions: salvo_http_version_t (0 auto, 1 HTTP/1.1, 2 HTTP/2) is what
 *   the engine asks for. salvo_result_t.http_version is what a response used,
 *   as major * 10 + minor (10, 11 or 20; 0 if none). The two are never
 *   compared. SALVO_VERSION_* and salvo_version() are salvo's own version.
 *
 * Reading order: errors (classes and names), engine (handles, HTTP versions,
 * timeouts), retry (the policy and its decision), per-host protection (rate
 * limits, pauses, retry budget, circuit breaker, hedging, concurrency, host
 * events and stats), log, engine options and life, request (data callback,
 * result, build, submit, cancel, accessors, response headers). README.md has
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
  /* a callback (head, data, body reader) asked to stop */                                    \
  XX(EABORTED, -22, "aborted_by_callback", "stopped by a callback")                           \
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
     http(s), a Location it cannot parse or longer than 8000 bytes, or out of memory */       \
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

/**
 * Short human-readable message for an error code: "success" for 0, "unknown
 * error" for a value that is not a salvo_error_t. Never NULL; static.
 */
SALVO_EXTERN const char *salvo_strerror(int err);
/**
 * Stable lower_snake_case name of an error code ("connect_refused",
 * "idle_timeout", ...), "ok" for 0, "unknown" for anything else. Never NULL;
 * static.
 */
SALVO_EXTERN const char *salvo_err_name(int err);

/** Run-time version, "MAJOR.MINOR.PATCH". Never NULL; static. */
SALVO_EXTERN const char *salvo_version(void);

/* ---------------------------------------------------------------- engine */

/** An engine: one libcurl multi handle driven by one libuv loop. */
typedef struct salvo_engine_s salvo_engine_t;
/**
 * A request. Owned by the caller until salvo_request_submit() returns 0, then
 * by the engine, which frees it when its done callback returns.
 */
typedef struct salvo_request_s salvo_request_t;

typedef enum {
  SALVO_HTTP_AUTO = 0, /* https: HTTP/2 via ALPN, else HTTP/1.1; http: HTTP/1.1 */
  SALVO_HTTP_1_1 = 1,  /* always HTTP/1.1 */
  SALVO_HTTP_2 = 2     /* https: as AUTO (ALPN offers h2, then http/1.1); http: h2c with prior
                          knowledge (needs libcurl >= 8.0, else SALVO_ENOTSUP at submit) */
} salvo_http_version_t;

/*
 * Timeouts, each a duration in milliseconds. 0 and SALVO_TIMEOUT_NEVER switch
 * one off (it waits forever), and so does every value above
 * SALVO_TIMEOUT_MAX_MS, such as (uint64_t)-1 or a negative number converted:
 * no value expires early by wrapping around. SALVO_TIMEOUT_INHERIT keeps the
 * value of the level above: the engine's in salvo_request_set_timeouts(),
 * salvo_timeouts_init()'s default in salvo_engine_opts_t. Each expiry has
 * its own error class so a caller can tell a dead server (connect) from a
 * stalled one (idle) from a slow one (attempt, deadline) from an overloaded
 * client (queue).
 */
#define SALVO_TIMEOUT_NEVER UINT64_MAX
#define SALVO_TIMEOUT_INHERIT (UINT64_MAX - 1)
/* The longest timeout that is kept as given: 2^40 ms, about 34.8 years. Any
 * moment of the loop's clock (milliseconds since boot) plus it stays far
 * from wrapping, it converts to a double and to microseconds exactly, and it
 * fits libcurl's long on 64-bit systems (on 32-bit ones the connect timeout
 * stops at LONG_MAX ms, 24.8 days). */
#define SALVO_TIMEOUT_MAX_MS (UINT64_C(1) << 40)

typedef struct {
  uint64_t connect_ms; /* name resolution, TCP and TLS handshake, per attempt (3100) */
  uint64_t idle_ms;    /* longest gap between bytes once the request is sent (10000) */
  uint64_t attempt_ms; /* one attempt, from its start to its end (0 = off) */
  uint64_t deadline_ms;/* whole request from submit, every attempt and wait included (30000) */
  uint64_t queue_ms;   /* longest wait in the engine's queue for a slot; runs again each time
                          a retry or a redirect hop queues (0 = off) */
} salvo_timeouts_t;

/** Fills *t with the defaults above; NULL does nothing. */
SALVO_EXTERN void salvo_timeouts_init(salvo_timeouts_t *t);
/**
 * Fills all five fields of *t with SALVO_TIMEOUT_INHERIT, so that
 * salvo_request_set_timeouts() changes only the fields set afterwards;
 * NULL does nothing.
 */
SALVO_EXTERN void salvo_timeouts_inherit(salvo_timeouts_t *t);

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
  SALVO_STOP_CANCELED = 5,       /* salvo_request_cancel() or engine close (also a retry that
                                    fell due while the engine closes: not made) */
  SALVO_STOP_BY_CALLBACK = 6,    /* the decision callback said stop, or the head, data or body
                                    reader callback stopped the request (SALVO_EABORTED) */
  SALVO_STOP_QUEUE = 7,          /* no slot within queue_ms */
  SALVO_STOP_BUDGET = 8,         /* a retry was due, and the host's retry budget refused it */
  SALVO_STOP_CIRCUIT = 9,        /* the host's circuit was open */
  SALVO_STOP_RATE_LIMIT = 10     /* the host's rate limit would hold it past its deadline or queue timeout */
} salvo_stop_reason_t;

/**
 * Stable lower_snake_case name of a stop reason ("attempts_exhausted", ...),
 * "unknown" for a value that is not a salvo_stop_reason_t. Never NULL; static.
 */
SALVO_EXTERN const char *salvo_stop_reason_name(salvo_stop_reason_t reason);

/** What the decision callback is told about the attempt that just ended. */
typedef struct {
  const char *method;      /* the method that attempt used (see salvo_request_method()) */
  unsigned attempt;        /* attempts so far, from 1, hedges included and redirect hops not:
                              the number max_attempts is compared with */
  int error;               /* its error class, 0 if a response came */
  long status;             /* its HTTP status; 0 if none, and 0 whenever error is set */
  int reached_server;      /* the request may have reached the server */
  int idempotent;          /* method in idempotent_methods, or an Idempotency-Key was sent */
  int64_t retry_after_ms;  /* parsed Retry-After (on 413/429/503), a wait from now; -1 if none or
                              garbage, INT64_MAX if absurdly far */
} salvo_attempt_info_t;

/**
 * One entry of a request's attempt history. Every attempt gets one: retries,
 * hedges and redirect hops included.
 */
typedef struct {
  unsigned attempt;        /* from 1, counted as salvo_result_t.attempts (hops, hedges included) */
  int error;               /* error class, 0 if a response came */
  long status;             /* HTTP status, 0 if none */
  int reached_server;      /* the request may have reached the server */
  salvo_decision_t decision; /* SALVO_DECIDE_RETRY: the request went on (a retry, a redirect
                                followed, or a hedge that lost while the other attempt goes on);
                                SALVO_DECIDE_STOP: it ended with this attempt */
  uint64_t wait_ms;        /* wait before the next attempt; 0 when stopping, for a redirect hop
                              and for a hedge that lost */
  int64_t retry_after_ms;  /* Retry-After the server sent (on 413/429/503), a wait in ms; -1 if
                              none or garbage, INT64_MAX if absurdly far */
  unsigned sends;          /* times this attempt went on the wire. libcurl sends a request again
                              by itself when a reused connection died before any answer or an
                              HTTP/2 stream was refused. salvo allows that when the server's TCP
                              acknowledged nothing of the last send (its application cannot have
                              read it; libcurl stops after 5), else once per attempt, idempotent
                              requests only, against the host's retry budget */
  char reason[128];        /* the decision in words: "not retried: POST reached the server ..." */
} salvo_attempt_record_t;

/**
 * Overrides the policy's decision for one attempt; set as
 * salvo_retry_policy_t.decide_cb, with decide_data as |user_data|.
 * |default_decision| is what the policy decided and *wait_ms the wait it
 * chose (0 when it stops). Return SALVO_DECIDE_RETRY or SALVO_DECIDE_STOP,
 * and change *wait_ms to wait differently; any other return value keeps the
 * policy's decision.
 *
 * SALVO_DECIDE_STOP where the policy retries ends the request with
 * SALVO_STOP_BY_CALLBACK and the attempt's own error (0 if it got a status).
 * SALVO_DECIDE_RETRY retries after *wait_ms even where the policy stops
 * (max_attempts reached, a body passed to a data callback, a success), but
 * the deadline still bounds every wait (a wait that reaches it ends the
 * request with SALVO_EDEADLINE), the host's retry budget may still refuse
 * (SALVO_STOP_BUDGET), and a closing engine retries nothing. A *wait_ms
 * changed along with SALVO_DECIDE_STOP is ignored.
 *
 * Not called for an attempt that was canceled or ran out of the deadline,
 * for a redirect salvo follows or refuses, or for a hedge that lost. |req| is
 * the request; |info| and its strings are valid during the call.
 */
typedef salvo_decision_t (*salvo_decide_cb)(salvo_request_t *req, const salvo_attempt_info_t *info,
                                            salvo_decision_t default_decision, uint64_t *wait_ms,
                                            void *user_data);
/**
 * Called after every attempt's decision, for logs and metrics, redirect hops
 * and hedges that lost included; set as salvo_retry_policy_t.event_cb, with
 * event_data as |user_data|. After a redirect is followed, the request's URL
 * and method are already the next hop's. |record| is valid during the call
 * and the done callback's result->history holds the same entry. Not called
 * when memory for the record runs out.
 */
typedef void (*salvo_attempt_event_cb)(salvo_request_t *req, const salvo_attempt_record_t *record,
                                       void *user_data);

#define SALVO_MAX_RETRY_STATUSES 16

/*
 * A retry policy. Fill it with salvo_retry_policy_init(), then change fields.
 * It is copied on use (strings are arrays, so nothing in it needs to outlive
 * the call; decide_data and event_data are kept as given). The engine's is
 * the default; salvo_request_set_retry_policy() overrides it for one request.
 * It is SALVO_EINVAL where it is used if max_attempts is 0, jitter is not a
 * salvo_jitter_t, backoff_multiplier is not within [1, 1e6], a string array
 * has no NUL, or request_id_header or attempt_header is set to a name that is
 * not a token, is reserved (salvo_header_reserved()) or is Host.
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
  void *decide_data;              /* decide_cb's user_data (NULL) */
  salvo_attempt_event_cb event_cb;/* NULL = none (NULL) */
  void *event_data;               /* event_cb's user_data (NULL) */
} salvo_retry_policy_t;

/** Fills *p with the defaults above; NULL does nothing. */
SALVO_EXTERN void salvo_retry_policy_init(salvo_retry_policy_t *p);

/* ------------------------------------------------------ per-host protection */

/*
 * Per-host protection. A host is scheme + host + port ("https://example.com:443").
 * Each host gets its own token bucket, retry budget, circuit breaker and
 * latency record, created on its first request (or by
 * salvo_engine_set_host_policy()). Every wait is a loop timer: a request held
 * back waits in its host's queue and takes no slot.
 *
 * salvo_engine_new() and salvo_engine_set_host_policy() refuse a policy
 * (SALVO_EINVAL) where rate, burst, increase, rate_ceiling, budget_ratio or
 * budget_floor is negative or NaN, decrease is not within (0, 1), rate_floor
 * is not above 0, budget_window_ms, breaker_window_ms, breaker_break_ms or
 * breaker_consecutive is 0, breaker_ratio is not within (0, 1],
 * breaker_max_break_ms is below breaker_break_ms, reset_epoch_above is
 * negative, adaptive_tolerance is not within [1, 100], or adaptive_max is set
 * and below adaptive_min.
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

/** Fills *p with the defaults above; NULL does nothing. */
SALVO_EXTERN void salvo_host_policy_init(salvo_host_policy_t *p);

typedef enum {
  SALVO_CIRCUIT_CLOSED = 0,
  SALVO_CIRCUIT_OPEN = 1,
  SALVO_CIRCUIT_HALF_OPEN = 2
} salvo_circuit_t;

/** Stable name: "closed", "open", "half_open"; "unknown" for anything else. Static. */
SALVO_EXTERN const char *salvo_circuit_name(salvo_circuit_t state);

typedef enum {
  SALVO_HOST_CIRCUIT_OPENED = 1,    /* failures tripped it, or the probe failed; until_ms = when
                                       the next request may go as the half-open probe */
  SALVO_HOST_CIRCUIT_HALF_OPEN = 2, /* one probe goes through */
  SALVO_HOST_CIRCUIT_CLOSED = 3,    /* the probe succeeded */
  SALVO_HOST_PAUSED = 4,            /* Retry-After or a rate-limit reset started or extended a
                                       pause: until_ms = end of the pause */
  SALVO_HOST_RATE_CHANGED = 5,      /* the adaptive rate moved down (rate = the new one) */
  SALVO_HOST_LIMIT_CHANGED = 6      /* the adaptive concurrency limit moved (limit = the new one) */
} salvo_host_event_type_t;

typedef struct {
  salvo_host_event_type_t type;
  const char *host;           /* "https://example.com:443" */
  double rate;                /* the host's rate limit after the event, 0 = none */
  uint64_t until_ms;          /* a moment, not a duration: the loop time (uv_now(loop)) the pause
                                 or open state ends; 0 for the other events */
  unsigned limit;             /* the host's concurrency limit after the event, 0 = none */
} salvo_host_event_t;

/**
 * Called from the loop when a host's circuit changes state, a pause starts or
 * grows, or an adaptive rate or limit moves; set as
 * salvo_engine_opts_t.host_event_cb, with host_event_data as |user_data|.
 * |ev| and ev->host are valid during the call.
 */
typedef void (*salvo_host_event_cb)(salvo_engine_t *engine, const salvo_host_event_t *ev,
                                    void *user_data);

typedef struct {
  char host[272];             /* "scheme://host:port", lower case, default port filled in */
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
  uint64_t paused_ms;         /* a duration, not a moment: time left of the host's pause, measured
                                 at the loop's current time (uv_now(loop)); 0 = not paused */
  size_t queued;              /* requests of this host now waiting in its queue */
  uint64_t p50_us, p90_us, p99_us, max_us; /* time (salvo_timings_t.total_us) of its attempts
                                 that got a response; 0 before the first. Bucketed: a percentile
                                 is within 1/32 (3.125%) of the time recorded at its rank (the
                                 nearest rank; exact below 16 us; up to 2^38 us, 76 hours), and
                                 never above max_us, which is exact */
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
 * Gives one host its own policy instead of opts.hosts. |origin| is an http or
 * https URL naming the host ("https://api.example.com"; userinfo, path and
 * query are ignored); it is not kept, and |policy| is copied. The host is
 * created if it is new, and is never evicted from then on (it counts against
 * max_hosts; creating it may evict another idle host). Calling it again
 * replaces the policy.
 *
 * The policy applies from the call on: to the host's next admission and to
 * the outcomes of its attempts still in flight. Its tokens, pause, stats and
 * circuit state carry over, except that the circuit starts closed again when
 * the new policy has breaker 0, or a budget_window_ms or breaker_window_ms
 * other than the host's current one (that also restarts the retry budget's
 * window), and that an adaptive concurrency limit starts again from
 * adaptive_initial.
 *
 * Returns 0 or one of:
 *   SALVO_EINVAL    engine or policy is NULL, the policy is invalid (see
 *                   salvo_host_policy_t), or origin is NULL or not an
 *                   absolute http(s) URL;
 *   SALVO_ECLOSING  the engine is closing (salvo_engine_close() was called);
 *   SALVO_ENOMEM    out of memory.
 */
SALVO_EXTERN int salvo_engine_set_host_policy(salvo_engine_t *engine, const char *origin,
                                              const salvo_host_policy_t *policy);

/**
 * Number of hosts the engine keeps state for (at most about opts.max_hosts);
 * 0 if engine is NULL.
 */
SALVO_EXTERN size_t salvo_engine_host_count(const salvo_engine_t *engine);
/**
 * Copies the stats of host |i| (0 <= i < salvo_engine_host_count()) into
 * *out, which then holds no pointer into the engine. Hosts are in order of
 * first use, except that a host that takes an evicted one's place takes its
 * index too. That happens only when a new host is met: in
 * salvo_request_submit(), in salvo_engine_set_host_policy(), or when a
 * redirect leads to a new host (from the loop); otherwise an index keeps
 * naming the same host.
 *
 * Returns 0, or SALVO_EINVAL if engine or out is NULL or i is out of range.
 */
SALVO_EXTERN int salvo_engine_host_stats(const salvo_engine_t *engine, size_t i,
                                         salvo_host_stats_t *out);

/* ------------------------------------------------------------------- log */

typedef enum {
  SALVO_LOG_ERROR = 0, /* something failed that the caller should know of */
  SALVO_LOG_WARN = 1,  /* a setting that weakens security, or a likely mistake */
  SALVO_LOG_INFO = 2,  /* a notable event of the engine's life */
  SALVO_LOG_DEBUG = 3  /* detail for finding a problem */
} salvo_log_level_t;

/** Stable name: "error", "warn", "info", "debug"; "unknown" for anything else. Static. */
SALVO_EXTERN const char *salvo_log_level_name(salvo_log_level_t level);

/**
 * Receives every message salvo has for a person, set as
 * salvo_engine_opts_t.log_cb with log_data as |user_data|; salvo itself
 * never writes to stderr or stdout. |message| is one line of text without
 * a newline or the level, valid during the call; it never carries a secret
 * (a password in a URL shows as "***", no header value is quoted). |engine|
 * is the engine the message is about, or NULL for the messages of
 * salvo_engine_new(), which come before it returns (and before it sets
 * *out). It runs on the thread of the call that caused the message, and
 * may call what the other callbacks may (see the top of this header).
 */
typedef void (*salvo_log_cb)(salvo_engine_t *engine, salvo_log_level_t level, const char *message,
                             void *user_data);

typedef struct {
  /* Slots: transfers on the wire at once, over all hosts. salvo hands libcurl
   * only transfers that can go out now: a host gets at most what its
   * connections carry (max_host_connections, x max_streams where it speaks
   * HTTP/2; a host not yet heard from gets max_host_connections until its
   * first answer says which), and each lane no more than its
   * max_connections carry (one HTTP/1.1 request, or max_streams HTTP/2
   * streams of one host, per connection). The rest wait in their host's
   * queue, holding no slot. */
  size_t max_in_flight;        /* slots; 0 is SALVO_EINVAL (64) */
  long max_connections;        /* open connections per lane (one for HTTP/1.1 only, one where HTTP/2
                                  may be used), 0 = no cap, negative is SALVO_EINVAL (0) */
  long max_host_connections;   /* per host; 0 = auto: none of its own for HTTP/1.1-only hosts, 4 where
                                  HTTP/2 may multiplex; negative is SALVO_EINVAL (0) */
  long max_streams;            /* HTTP/2 streams per connection salvo uses, at least 1 (100); a
                                  server that allows fewer makes the rest wait inside libcurl */
  salvo_http_version_t http_version; /* SALVO_HTTP_AUTO */
  const char *ca_file;         /* PEM bundle of trusted CAs, which must be readable when the engine
                                  is created; NULL = system store (NULL) */
  int insecure_skip_verify;    /* 1 disables TLS verification and logs a warning (0) */
  /* Proxies. The library ignores the environment (http_proxy, HTTPS_PROXY,
   * ALL_PROXY, NO_PROXY) unless proxy_from_env is 1: a daemon's environment
   * should not decide where its credentials go; it is read once, by
   * salvo_engine_new(). A proxy that libcurl's URL parser refuses is
   * SALVO_EINVAL there. A proxy that cannot be reached or refuses is
   * SALVO_EPROXY, never the target host's failure. */
  const char *proxy;           /* "http://[user:pass@]host:port" (or socks5h://...) for every request;
                                  NULL or "" = none (NULL) */
  const char *no_proxy;        /* comma-separated entries that go direct: a host name (and the
                                  names under it), an IP address or CIDR range ("10.0.0.0/8"),
                                  "*" = all; NULL = none (NULL) */
  int proxy_from_env;          /* 1: where proxy is NULL, take it as curl does: http_proxy for http,
                                  https_proxy/HTTPS_PROXY for https, else all_proxy/ALL_PROXY;
                                  no_proxy/NO_PROXY where no_proxy is NULL (0) */
  const char *user_agent;      /* a header value (no control characters); NULL = "salvo/VERSION",
                                  "" = none sent; a User-Agent line in default_headers replaces it
                                  (NULL) */
  const char *const *default_headers; /* NULL-terminated "Name: value" lines sent on every request,
                                  each under salvo_request_add_header()'s rules, Host refused;
                                  a request's header of the same name replaces one (NULL) */
  size_t max_body_size;        /* buffered or streamed response body cap per attempt, bytes (decoded
                                  ones with accept_encoding); past it the attempt ends with
                                  SALVO_EBODYLIMIT, and so does a Content-Length above it, once
                                  the headers are in (not for HEAD, 204, 304); 0 is
                                  SALVO_EINVAL (64 MiB) */
  size_t max_header_size;      /* response header block cap per attempt, bytes; past it the attempt
                                  ends with SALVO_EPROTO; 0 is SALVO_EINVAL (64 KiB; libcurl's own
                                  limit is 100 KB) */
  /* Redirects (off by default). When followed: at most max_redirects hops;
   * 307/308 keep the method and body; 303 turns anything but HEAD into GET,
   * and 301/302 turn POST into GET, without the body; Authorization, Cookie,
   * Proxy-Authorization and Host are dropped once the origin (scheme, host,
   * port) changes, for every later hop too; https to http is refused unless
   * allowed, and so is a Location longer than 8000 bytes. Each hop is an
   * attempt with its own record, but does not count against max_attempts.
   * salvo_request_url() and salvo_request_method() follow the hops. */
  int follow_redirects;        /* (0) */
  unsigned max_redirects;      /* (5) */
  int redirect_allow_downgrade;/* (0) */
  salvo_timeouts_t timeouts;   /* engine-wide defaults, see salvo_timeouts_init() */
  salvo_retry_policy_t retry;  /* engine-wide default, see salvo_retry_policy_init() */
  salvo_host_policy_t hosts;   /* every host's protection, see salvo_host_policy_init() */
  salvo_host_event_cb host_event_cb; /* circuit, pause and rate events; NULL = none (NULL) */
  void *host_event_data;       /* host_event_cb's user_data (NULL) */
  /* Hosts the engine keeps state for. Past it, a new host takes the place of
   * the least recently used idle one: no request of its own live (queued,
   * waiting or in flight), not paused, circuit closed, no policy of its own.
   * That host's stats and learned rate are forgotten (salvo_engine_stats()
   * counts it in hosts_evicted). If none is idle, the engine keeps more.
   * A host takes about 1.5 KB, 3.7 KB once it has answered. 0 = no cap (10000) */
  size_t max_hosts;
  /* Compressed responses (off by default; salvo_request_set_accept_encoding()
   * for one request). On, every request sends Accept-Encoding with each
   * encoding this libcurl decodes (curl_version_info() says which; Debian
   * 12's libcurl sends "deflate, gzip, br, zstd"), and a response in one of
   * them is decoded: the body, the data callback, result.body_len and
   * max_body_size all count decoded bytes, so a small body that decodes to
   * gigabytes ends at the cap with SALVO_EBODYLIMIT. A Content-Length, which
   * counts the bytes sent, above max_body_size still ends the attempt at the
   * end of its headers (after the head callback). A body that does not decode, or in an encoding libcurl does not
   * know, ends the attempt with SALVO_EPROTO. A caller's own Accept-Encoding
   * header goes out instead of salvo's; without accept_encoding it is sent
   * as well, but nothing is decoded: the body arrives as the server sent it,
   * and is counted so. */
  int accept_encoding;         /* 0 = no Accept-Encoding sent, nothing decoded; any other value
                                  = on (0) */
  salvo_log_cb log_cb;         /* salvo's messages (see salvo_log_cb); NULL = dropped (NULL) */
  void *log_data;              /* log_cb's user_data (NULL) */
  /* Pinned addresses, as curl's --resolve and --connect-to. Only where the
   * connection goes changes: the URL, the Host header, TLS SNI and the
   * certificate check keep the URL's host name, and so does the host's
   * state (queue, limits, stats: "scheme://host:port" of the URL). Each
   * entry is checked by salvo_engine_new(); a malformed one is SALVO_EINVAL
   * there, and the log callback is told its index (SALVO_LOG_ERROR). A
   * connect_to entry applies first (the first one that matches the URL's
   * host and port); a resolve entry for the host and port it then goes to
   * pins that too. Through a proxy, libcurl's rules hold: the proxy resolves
   * the target, so resolve entries only pin the proxy's own name, and
   * connect_to changes what an https tunnel (CONNECT) asks the proxy for. */
  const char *const *resolve;  /* NULL-terminated "HOST:PORT:ADDR[,ADDR...]" entries: requests to
                                  HOST:PORT connect to ADDR (the first that answers), with no DNS
                                  lookup. HOST a host name (any case) or IPv4 address as the URL
                                  spells it (not "*"; no IPv6 literal), PORT 1..65535, each ADDR
                                  an IP address, IPv6 in brackets ("[::1]"), checked with
                                  inet_pton() ("localhost", "1.2.3" are SALVO_EINVAL); curl's '+'
                                  and '-' forms are SALVO_EINVAL (NULL) */
  const char *const *connect_to; /* NULL-terminated "HOST:PORT:CONNECT_TO_HOST:CONNECT_TO_PORT"
                                  entries: a request to HOST:PORT connects to CONNECT_TO_HOST:
                                  CONNECT_TO_PORT instead. Any field may be empty: HOST or PORT
                                  matches any, CONNECT_TO_HOST or CONNECT_TO_PORT keeps the URL's.
                                  Hosts are host names or IP addresses, IPv6 in brackets; ports
                                  1..65535. A CONNECT_TO_HOST that is a name is looked up as
                                  usual, unless a resolve entry pins it (NULL) */
  /* Receive rate cap (libcurl's CURLOPT_MAX_RECV_SPEED_LARGE): bytes per
   * second each attempt may receive, counted in body bytes as they arrive
   * (before a Content-Encoding is decoded). libcurl 7.88 keeps it as an
   * average: it reads what is waiting in bursts (of about a second's worth,
   * at least 100 KB: salvo sets its read size), then holds the attempt until
   * the average is back under the cap. So a body of up to one burst arrives
   * at full speed, and below 100 KB/s a hold lasts longer than a second
   * (about 100 KB / cap: 10 s at 10 KB/s). Under a cap the idle timeout
   * gets the longest hold on top, so a hold is never taken for a stalled
   * server; the attempt timeout and the deadline must allow for the whole
   * body at the cap. Over HTTP/2, libcurl 7.88 may never resume a held
   * transfer whose last bytes it has already read off the socket: salvo has
   * it look again every 200 ms of silence, so holds there may end up to
   * 0.2 s late. salvo_request_set_max_recv_speed() overrides it per
   * request. */
  uint64_t max_recv_speed;     /* bytes per second, 0 = no cap; above INT64_MAX is SALVO_EINVAL (0) */
  /* How much libcurl reads from a connection at a time, per transfer
   * (CURLOPT_BUFFERSIZE). Larger reads mean fewer system calls and fewer
   * calls of the data callback for large bodies (a bulk download spends
   * about a fifth less CPU with 128 KiB), at this much memory per transfer
   * in flight. Under a receive cap the reads are about 10 ms of the cap
   * instead, at most 16 KiB. */
  size_t recv_buffer_size;     /* bytes; 0 = libcurl's 16 KiB; other values below 1024 or above
                                  524288 (libcurl's limits) are SALVO_EINVAL (0) */
} salvo_engine_opts_t;

/**
 * Fills *opts with the documented defaults; NULL does nothing. Always use it
 * before setting fields.
 */
SALVO_EXTERN void salvo_engine_opts_init(salvo_engine_opts_t *opts);

/**
 * Creates an engine on |loop|, which the caller owns and keeps running; the
 * engine adds its own handles to it. The engine copies |opts| (NULL = the
 * defaults of salvo_engine_opts_init()), including every string it points
 * to; the callbacks and their user_data are kept as given.
 *
 * libcurl: every call calls curl_global_init(CURL_GLOBAL_DEFAULT), which sets
 * up libcurl and its TLS library, unless it fails on an argument first;
 * salvo never calls curl_global_cleanup(). libcurl's global init is
 * thread-safe only from libcurl 7.84 on, and only where curl_version_info()
 * lists CURL_VERSION_THREADSAFE (salvo needs 7.88). Where that does not hold
 * and engines are created on several threads, or other threads use libcurl,
 * call curl_global_init() yourself once before starting them; the caller may
 * always call it first, and salvo's calls then only count up libcurl's init
 * counter.
 *
 * Logs a warning (SALVO_LOG_WARN, to opts.log_cb with a NULL engine, before
 * returning) when insecure_skip_verify is 1 and when the SSLKEYLOGFILE
 * environment variable is set. Timeouts are kept as salvo_timeouts_t says:
 * SALVO_TIMEOUT_INHERIT takes salvo_timeouts_init()'s default, a value
 * above SALVO_TIMEOUT_MAX_MS is off.
 *
 * Returns 0 and sets *out, or one of (*out untouched, nothing left on the
 * loop):
 *   SALVO_EINVAL    loop or out is NULL; max_in_flight, max_body_size or
 *                   max_header_size is 0, max_streams is below 1,
 *                   max_connections or max_host_connections is negative,
 *                   http_version is not a salvo_http_version_t; ca_file
 *                   cannot be read; the retry or host policy is invalid (see
 *                   their structs); a proxy, given or from the environment,
 *                   is not a URL or is longer than SALVO_MAX_URL_SIZE;
 *                   user_agent is not a valid header value; a default header
 *                   is not a valid "Name: value" line, is reserved or is
 *                   Host; a resolve or connect_to entry is malformed (the
 *                   log callback is told which, by its index);
 *                   max_recv_speed is above INT64_MAX; recv_buffer_size is
 *                   not 0 and not within 1024..524288;
 *   SALVO_ENOMEM    out of memory;
 *   SALVO_EINTERNAL curl_global_init() or another libcurl set-up call failed.
 */
SALVO_EXTERN int salvo_engine_new(uv_loop_t *loop, const salvo_engine_opts_t *opts,
                                  salvo_engine_t **out);

/**
 * Called once the engine has closed (see salvo_engine_close()). Only the
 * address |engine| may be used: it is freed when the callback returns.
 */
typedef void (*salvo_engine_close_cb)(salvo_engine_t *engine, void *user_data);

/**
 * Closes the engine asynchronously. From the call on, salvo_request_new(),
 * salvo_request_submit(), salvo_request_submit_threadsafe() and
 * salvo_engine_set_host_policy() return SALVO_ECLOSING, and no queued
 * request starts. Then, from the loop: every request still queued, waiting,
 * in flight, or handed over from another thread and not yet taken completes
 * with SALVO_ECANCELED (an attempt that ends before that completes its
 * request with its own outcome, never retried), every uv handle of the
 * engine closes, |close_cb| (may be NULL) runs with |user_data|, and the
 * engine is freed. The loop must run for this to happen; after it the
 * caller's uv_loop_close() returns 0 as far as salvo is concerned. NULL, or a
 * second call before the close completes, does nothing: the second call's
 * close_cb is never called. Once close_cb has returned (with no close_cb:
 * once the loop has run the close through) the engine must not be passed to
 * anything, nor a request made on it but to salvo_request_free() (see
 * Lifetimes at the top).
 */
SALVO_EXTERN void salvo_engine_close(salvo_engine_t *engine, salvo_engine_close_cb close_cb,
                                     void *user_data);

/**
 * Copies the engine's timeouts, the defaults of its requests, into *out as
 * the engine applies them: 0 for one that is off (given as 0,
 * SALVO_TIMEOUT_NEVER or above SALVO_TIMEOUT_MAX_MS), a default for one
 * given as SALVO_TIMEOUT_INHERIT. Returns 0, or SALVO_EINVAL if engine or
 * out is NULL (*out untouched).
 */
SALVO_EXTERN int salvo_engine_get_timeouts(const salvo_engine_t *engine, salvo_timeouts_t *out);
/**
 * Copies the engine's retry policy, the default of its requests, into *out,
 * as opts.retry gave it (seed included, 0 if the engine seeded from the
 * OS); its decide_data and event_data are the caller's pointers. Returns 0,
 * or SALVO_EINVAL if engine or out is NULL (*out untouched).
 */
SALVO_EXTERN int salvo_engine_get_retry_policy(const salvo_engine_t *engine,
                                               salvo_retry_policy_t *out);

/** Counters since the engine was created. */
typedef struct {
  uint64_t submitted;          /* requests accepted by salvo_request_submit(), and by
                                  salvo_request_submit_threadsafe() once the loop took them */
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
  uint64_t successes;          /* requests that ended with a response < 400 */
  uint64_t failures;           /* requests that ended any other way (successes + failures =
                                  completed) */
  uint64_t bytes_received;     /* response body bytes of every attempt (retries, redirect hops
                                  included), as the buffer or data callback took them: decoded
                                  ones with accept_encoding; a chunk refused by max_body_size is
                                  not counted */
  uint64_t p50_us, p90_us, p99_us, max_us; /* time (salvo_timings_t.total_us) of every attempt
                                  that got a response, all hosts, hosts since evicted included;
                                  0 before the first. Bucketed as salvo_host_stats_t's: a
                                  percentile is within 1/32 (3.125%) of the time at its rank */
} salvo_engine_stats_t;

/**
 * Copies the engine's counters into *stats. queued and waiting are counted
 * at the call. A NULL engine zero-fills *stats; a NULL stats does nothing.
 */
SALVO_EXTERN void salvo_engine_stats(const salvo_engine_t *engine, salvo_engine_stats_t *stats);

/* --------------------------------------------------------------- request */

/**
 * Called with response body bytes as they arrive (decoded, when the response
 * is: see accept_encoding), when set with
 * salvo_request_set_data_cb(); the body is then not buffered. |user_data| is
 * the one given to salvo_request_submit(). Return 0 to go on, anything else
 * to stop the request: the attempt ends with SALVO_EABORTED, which is never
 * retried (stop reason SALVO_STOP_BY_CALLBACK). The bytes are valid during
 * the call. It runs inside libcurl's write callback (see the note on calls
 * allowed at the top). A chunk that would take the body past max_body_size
 * is not passed: the attempt ends with SALVO_EBODYLIMIT.
 *
 * Only the body of the response the request ends with is passed, once:
 * - The body of a response salvo may try again after is held back, not
 *   passed as it arrives: a status the policy retries for this request while
 *   attempts remain (salvo_response_head_t.held; 503 and 429 by default),
 *   and a redirect salvo follows. If the request goes on (a retry, the next
 *   hop), that body is dropped. If it ends with that response (the retry
 *   budget, the deadline or the decision callback stopped it, a redirect
 *   was refused, or a cancel or the deadline cut the body short: then what
 *   had arrived), up to the first 64 KiB held are passed just before the done
 *   callback, from the loop, and nothing past them. A held body that grows
 *   past 64 KiB is passed from then on as it comes, and the response is then
 *   not retried.
 * - Any other response's body is passed as it arrives, and the policy never
 *   retries an attempt that passed bytes: the caller would get them twice
 *   (unless salvo_request_set_data_restartable() says its sink starts over). A
 *   decision callback that returns SALVO_DECIDE_RETRY overrides that, and the
 *   next attempt's bytes then come from the start (its head callback says a
 *   new response begins).
 * A request with a data callback is never hedged.
 *
 * salvo_response_header() and salvo_response_header_at() work inside it,
 * for the response whose bytes these are.
 */
typedef int (*salvo_data_cb)(salvo_request_t *req, const char *data, size_t len,
                             void *user_data);

/** What the response-head callback is told about one attempt's response. */
typedef struct {
  unsigned attempt;        /* the attempt, counted as salvo_attempt_record_t.attempt */
  long status;             /* its HTTP status (never 1xx: interim responses are skipped) */
  int http_version;        /* 10, 11 or 20, as salvo_result_t.http_version */
  int64_t content_length;  /* its Content-Length, -1 if none */
  int held;                /* 1: salvo may try again after this response (a status the policy
                              retries for this request while attempts remain, or a redirect it
                              follows), so its body is held back from the data callback (see
                              salvo_data_cb); 0: its body is the one the caller gets */
} salvo_response_head_t;

/**
 * Called once per attempt that gets a response, when its status line and
 * headers are in and before any of its body bytes; set with
 * salvo_request_set_head_cb(). A new call means a new response begins: a
 * caller writing a streamed body to a file truncates it here. Runs for held
 * responses too (head->held), for each redirect hop, and for trailers never.
 * |user_data| is the one given to salvo_request_submit(); |head| is valid
 * during the call. salvo_response_header() and salvo_response_header_at()
 * work inside it, for this response.
 *
 * Return 0 to go on, anything else to stop the request: the attempt ends
 * with SALVO_EABORTED, never retried (stop reason SALVO_STOP_BY_CALLBACK),
 * and its body is not read. It runs inside libcurl's header callback (see
 * the note on calls allowed at the top).
 */
typedef int (*salvo_head_cb)(salvo_request_t *req, const salvo_response_head_t *head,
                             void *user_data);

/** Timings of one attempt in microseconds, each a duration. */
typedef struct {
  uint64_t dns_us;     /* from attempt start to the name resolved */
  uint64_t connect_us; /* TCP connect (0 on a reused connection) */
  uint64_t tls_us;     /* TLS handshake (0 for http or a reused connection) */
  uint64_t ttfb_us;    /* from attempt start to the first response byte */
  uint64_t total_us;   /* from attempt start to its end */
} salvo_timings_t;

/**
 * What a request's done callback receives. The struct and everything it
 * points to are valid during the callback. "The final attempt" is the last
 * one that ended; a request that ends while it waits between attempts (a
 * cancel, the deadline) reports that attempt's status and timings, but no
 * body and no response headers.
 */
typedef struct {
  int error;               /* 0, or the salvo_error_t of the final outcome */
  long status;             /* the final attempt's HTTP status, 0 if no response was received;
                              may be set with an error (a body cut short or too large) */
  unsigned attempts;       /* attempts made, redirect hops and hedges included; 0 if it never
                              left the queue */
  unsigned sends;          /* times the request went on the wire, over all attempts (>= attempts
                              that reached the server; see salvo_attempt_record_t.sends) */
  int reached_server;      /* 1 if the final attempt's request may have reached the server */
  int http_version;        /* HTTP version of the final response as major * 10 + minor: 10, 11
                              or 20; 0 if none. Not a salvo_http_version_t */
  const char *body;        /* the final attempt's buffered body, NUL-terminated for convenience;
                              "" if none; NULL with a data_cb or after salvo_response_take_body() */
  size_t body_len;         /* bytes of body the final attempt received (also counted with a
                              data_cb): decoded bytes when the response was decoded (see
                              accept_encoding), else as the server sent them */
  salvo_timings_t timings; /* of the final attempt */
  uint64_t elapsed_us;     /* from submit to completion */
  const char *detail;      /* libcurl's message or salvo's explanation, "" if none; never NULL */
  salvo_stop_reason_t stop_reason; /* why the engine stopped */
  int64_t retry_after_ms;  /* with SALVO_ERETRYAFTER: the wait the server named; else -1 */
  const salvo_attempt_record_t *history; /* one record per attempt, oldest first */
  size_t history_len;      /* == attempts, unless memory for a record ran out or the last
                              attempt could not start */
  unsigned redirects;      /* redirects followed; when > 0, salvo_request_url() is the URL of the
                              last hop (see there) */
} salvo_result_t;

/**
 * Called exactly once for every request salvo_request_submit() accepted,
 * always from the loop. |user_data| is the one given to
 * salvo_request_submit(). |req| is freed when the callback returns.
 */
typedef void (*salvo_done_cb)(salvo_request_t *req, const salvo_result_t *result,
                              void *user_data);

/**
 * Creates a request for |method| (e.g. "GET"; any RFC 9110 token, case
 * kept) and |url| (absolute http:// or https://). Both are copied. The request
 * starts with the engine's timeouts, retry policy, max_body_size,
 * follow_redirects and accept_encoding; the setters below change them until
 * it is submitted. Nothing is resolved or sent here.
 *
 * Returns 0 and sets *out, or one of (*out untouched):
 *   SALVO_EINVAL    engine or out is NULL; method is NULL, empty or not a
 *                   token; url is NULL, empty, longer than
 *                   SALVO_MAX_URL_SIZE, of a scheme other than http/https,
 *                   without a host ("http:///path", "http://:80/",
 *                   "http://user@/", "http://[]/"), or refused by libcurl's
 *                   URL parser;
 *   SALVO_ECLOSING  the engine is closing (salvo_engine_close() was called);
 *   SALVO_ENOMEM    out of memory.
 */
SALVO_EXTERN int salvo_request_new(salvo_engine_t *engine, const char *method, const char *url,
                                   salvo_request_t **out);

/**
 * Adds a header, "Name" and "value" given apart; both are copied. A header the
 * engine adds by default (User-Agent, a default header) is replaced when the
 * request sets the same name. An empty value sends the header empty. A name
 * added twice is sent twice.
 *
 * The wire framing is always salvo's: Content-Length, Transfer-Encoding, TE,
 * Trailer, Connection, Keep-Alive, Proxy-Connection and Upgrade are refused
 * (salvo_header_reserved() says why), and Host unless it names the URL's own
 * host: "host" where the URL gives no port, or "host:port" with the URL's
 * port, given or default. A Host header is dropped, like credentials, when a
 * redirect leaves the origin.
 *
 * Returns 0 or one of (the request unchanged):
 *   SALVO_EINVAL  req, name or value is NULL; the request was already
 *                 submitted; the name is empty, not a token or longer than
 *                 256 bytes; the value has a control character other than
 *                 tab (CR, LF, ...) or DEL, or is longer than
 *                 SALVO_MAX_HEADER_LINE_SIZE; the name is reserved; a Host
 *                 that is not the URL's;
 *   SALVO_ENOMEM  out of memory.
 */
SALVO_EXTERN int salvo_request_add_header(salvo_request_t *req, const char *name,
                                          const char *value);

/**
 * Why a caller may not set header |name| (any case; "salvo frames the body
 * itself", ...), or NULL if it may or |name| is NULL (Host: see
 * salvo_request_add_header()). The string is static. Also applies to
 * opts.default_headers, where Host is refused too.
 */
SALVO_EXTERN const char *salvo_header_reserved(const char *name);

/**
 * Same as salvo_request_add_header() with one "Name: value" line: the name is
 * what comes before the first colon, the value what follows it, without the
 * spaces and tabs around it. Returns what salvo_request_add_header() does,
 * and SALVO_EINVAL for a NULL line or one without a colon.
 */
SALVO_EXTERN int salvo_request_add_header_line(salvo_request_t *req, const char *line);

/**
 * Sets the request body; |len| bytes are copied so that every attempt can
 * re-send them, and a later call replaces them. |body| may be NULL when
 * |len| is 0, for an empty body. No Content-Type is sent unless a header sets
 * one. A redirect that turns the method into GET drops the body.
 *
 * Returns 0 or one of (the previous body kept):
 *   SALVO_EINVAL  req is NULL, body is NULL with len > 0, or the request
 *                 was already submitted;
 *   SALVO_ENOMEM  out of memory.
 */
SALVO_EXTERN int salvo_request_set_body(salvo_request_t *req, const void *body, size_t len);

/**
 * A request body that is not in memory: salvo reads it as it sends, and
 * rewinds it when it must send it again. The three callbacks get the
 * reader's user_data; read and rewind get the request too. They run on the
 * loop thread, inside libcurl's callbacks (see the note on calls allowed at
 * the top), and must not block for long: reading a local file is fine,
 * waiting on a network is not.
 *
 * read puts up to |cap| next bytes of the body in |buf| and sets *len; *len
 * 0 means the body has ended. Return 0, or anything else to stop the
 * request: the attempt ends with SALVO_EABORTED, never retried. With a known
 * length the body must end exactly there: salvo never asks for more, and a
 * body that ends early ends the attempt with SALVO_EABORTED.
 */
typedef int (*salvo_body_read_cb)(salvo_request_t *req, char *buf, size_t cap, size_t *len,
                                  void *user_data);
/**
 * Goes back to the start of the body: return 0 if it did, anything else if
 * it cannot. Called before the body is sent again: a retry, a 307 or 308
 * redirect, or a send libcurl makes again on a fresh connection, and only
 * when some of the body was read since the start or the last rewind.
 */
typedef int (*salvo_body_rewind_cb)(salvo_request_t *req, void *user_data);
/** Releases what the reader holds; called once (see salvo_body_reader_t.close). */
typedef void (*salvo_body_close_cb)(void *user_data);

typedef struct {
  salvo_body_read_cb read;     /* required (NULL) */
  salvo_body_rewind_cb rewind; /* NULL: the body cannot be rewound, and an attempt after one
                                  that read any of it is not made: the request ends with that
                                  attempt's outcome, and its history says why (NULL) */
  salvo_body_close_cb close;   /* called once, when the request is freed (after its done
                                  callback, or by salvo_request_free()) or the reader is
                                  replaced; NULL = nothing to do (NULL) */
  int64_t length;              /* body bytes, or -1: unknown, sent chunked over HTTP/1.1 (-1) */
  void *user_data;             /* (NULL) */
} salvo_body_reader_t;

/** Fills *r: no callbacks, length -1, user_data NULL; NULL does nothing. */
SALVO_EXTERN void salvo_body_reader_init(salvo_body_reader_t *r);

/**
 * Sends the body from |reader| (copied; its user_data is kept as given)
 * instead of memory; it replaces a body set before (a previous reader is
 * closed). A request with a body reader is never hedged. A redirect that
 * turns the method into GET drops the body (the reader is not read again).
 *
 * Returns 0 or one of (the request unchanged):
 *   SALVO_EINVAL  req or reader is NULL, reader->read is NULL, length is
 *                 below -1, or the request was already submitted.
 */
SALVO_EXTERN int salvo_request_set_body_reader(salvo_request_t *req,
                                               const salvo_body_reader_t *reader);

/**
 * Sends the regular file at |path| as the body, read as it is sent (never
 * held in memory) and rewound for each re-send. Its length is taken now; a
 * file that then shrinks ends the attempt with SALVO_EABORTED. The file is
 * opened now and closed when the request is freed.
 *
 * Returns 0 or one of (the request unchanged):
 *   SALVO_EINVAL  req or path is NULL, the file cannot be opened, or is not a
 *                 regular file, or the request was already submitted;
 *   SALVO_ENOMEM  out of memory.
 */
SALVO_EXTERN int salvo_request_set_body_file(salvo_request_t *req, const char *path);

/**
 * Overrides the request's timeouts, the engine's until then: each field of
 * |t| replaces the request's value, except a field holding
 * SALVO_TIMEOUT_INHERIT, which keeps it. Start from salvo_timeouts_inherit()
 * to change some only, or from salvo_timeouts_init() for the library's
 * defaults (not the engine's). 0, SALVO_TIMEOUT_NEVER and any value above
 * SALVO_TIMEOUT_MAX_MS switch one off. A later call applies on top.
 *
 * Returns 0 or one of (the request unchanged):
 *   SALVO_EINVAL  req or t is NULL, or the request was already submitted.
 */
SALVO_EXTERN int salvo_request_set_timeouts(salvo_request_t *req, const salvo_timeouts_t *t);
/**
 * Sets only the request's deadline (salvo_timeouts_t.deadline_ms), as
 * salvo_request_set_timeouts() would: 0, SALVO_TIMEOUT_NEVER or above
 * SALVO_TIMEOUT_MAX_MS is none, SALVO_TIMEOUT_INHERIT changes nothing.
 *
 * Returns 0 or one of (the request unchanged):
 *   SALVO_EINVAL  req is NULL, or the request was already submitted.
 */
SALVO_EXTERN int salvo_request_set_deadline(salvo_request_t *req, uint64_t deadline_ms);

/**
 * Streams the response body to |cb| instead of buffering it (see
 * salvo_data_cb); NULL goes back to buffering. Returns 0, or SALVO_EINVAL if
 * req is NULL or the request was already submitted.
 */
SALVO_EXTERN int salvo_request_set_data_cb(salvo_request_t *req, salvo_data_cb cb);

/**
 * Says the data callback's sink starts over at every head callback (a file
 * truncated or rewound there, a digest reset), so body bytes already passed
 * do not keep the policy from retrying the attempt: a body cut short by a
 * reset, a timeout or a truncation is fetched again, whole, as a buffered
 * one would be, and the next attempt's head callback says it begins. Without
 * it (0, the default) an attempt that passed bytes is not retried (see
 * salvo_data_cb). Held bodies and hedging are unchanged. Returns 0, or
 * SALVO_EINVAL if req is NULL or the request was already submitted.
 */
SALVO_EXTERN int salvo_request_set_data_restartable(salvo_request_t *req, int restartable);

/**
 * Calls |cb| with each attempt's response head (see salvo_head_cb); NULL =
 * none. Returns 0, or SALVO_EINVAL if req is NULL or the request was already
 * submitted.
 */
SALVO_EXTERN int salvo_request_set_head_cb(salvo_request_t *req, salvo_head_cb cb);

/**
 * The request's own pointer, for the caller: salvo never reads it. Every
 * callback that gets the request (done, head, data, decide, attempt event)
 * reaches it with salvo_request_data(), so one policy can serve many
 * requests. It is separate from the user_data given to
 * salvo_request_submit(), which the done, head and data callbacks get as
 * their last argument. It may be set at any time, also after submit, from
 * the thread that may call functions on the request. Returns 0, or
 * SALVO_EINVAL if req is NULL.
 */
SALVO_EXTERN int salvo_request_set_data(salvo_request_t *req, void *data);
/** What salvo_request_set_data() set (NULL before), or NULL if req is NULL. */
SALVO_EXTERN void *salvo_request_data(const salvo_request_t *req);

/**
 * Overrides the engine's retry policy for this request. |p| is copied; its
 * seed is ignored (jitter uses the engine's random state). A later call
 * replaces it.
 *
 * Returns 0 or one of (the request's policy unchanged):
 *   SALVO_EINVAL  req or p is NULL, the request was already submitted, or
 *                 the policy is invalid (see salvo_retry_policy_t);
 *   SALVO_ENOMEM  out of memory.
 */
SALVO_EXTERN int salvo_request_set_retry_policy(salvo_request_t *req, const salvo_retry_policy_t *p);

/**
 * Overrides the engine's max_body_size for this request: the most body bytes
 * one attempt takes, buffered or streamed (decoded bytes, when the response
 * is decoded: see accept_encoding). Any value is accepted; 0 allows no
 * body (the first body byte ends the attempt with SALVO_EBODYLIMIT).
 * Returns 0, or SALVO_EINVAL if req is NULL or the request was already
 * submitted.
 */
SALVO_EXTERN int salvo_request_set_max_body_size(salvo_request_t *req, size_t max);
/**
 * Overrides the engine's max_recv_speed for this request: the bytes per
 * second each of its attempts may receive (see salvo_engine_opts_t), 0 = no
 * cap for this request, whatever the engine's. Returns 0, or SALVO_EINVAL if
 * req is NULL, the request was already submitted, or bytes_per_second is
 * above INT64_MAX (the request unchanged).
 */
SALVO_EXTERN int salvo_request_set_max_recv_speed(salvo_request_t *req, uint64_t bytes_per_second);
/**
 * Follows redirects (any non-zero |follow|) or not (0) for this request,
 * whatever the engine's follow_redirects; max_redirects and
 * redirect_allow_downgrade stay the engine's. Returns 0, or SALVO_EINVAL if
 * req is NULL or the request was already submitted.
 */
SALVO_EXTERN int salvo_request_set_follow_redirects(salvo_request_t *req, int follow);
/**
 * Asks for compressed responses and decodes them (any non-zero |on|) or not
 * (0) for this request, whatever the engine's accept_encoding (see there for
 * what is sent, decoded and counted). Returns 0, or SALVO_EINVAL if req is
 * NULL or the request was already submitted.
 */
SALVO_EXTERN int salvo_request_set_accept_encoding(salvo_request_t *req, int on);

/**
 * Submits the request. From a 0 return on, the engine owns |req| and calls
 * |done_cb| exactly once, with |user_data|, from the loop, never before this
 * function returns; |req| is freed when done_cb returns. The deadline and
 * queue timeout count from this call. Nothing starts before the loop runs.
 *
 * On error the callback is never called and the caller still owns |req|,
 * unchanged as far as the caller can see (free it with salvo_request_free(),
 * or submit it again):
 *   SALVO_EINVAL    req or done_cb is NULL, or req was already submitted;
 *   SALVO_ENOTSUP   plaintext HTTP/2 (h2c) asked of libcurl < 8.0, whose h2c is broken;
 *   SALVO_ECLOSING  the engine is closing;
 *   SALVO_ENOMEM    out of memory.
 */
SALVO_EXTERN int salvo_request_submit(salvo_request_t *req, salvo_done_cb done_cb, void *user_data);

/**
 * Submits the request from any thread: for worker threads that build
 * requests (salvo_request_new() and the setters, on their own thread) and
 * hand them to an engine whose loop runs elsewhere. The request goes into
 * the engine's hand-over queue, and the loop is woken (uv_async_send()); the
 * loop then takes it as salvo_request_submit() would, in the order handed
 * over. From a 0 return on, the engine owns |req| and calls |done_cb| exactly
 * once, with |user_data|, from the loop, on the loop's thread, never before
 * this function returns; |req| is freed when done_cb returns. The caller
 * must not touch |req| after a 0 return: it may be done and freed already.
 * The deadline and queue timeout count from when the loop takes the request;
 * result->elapsed_us from this call. May be called on the loop's thread too,
 * and from inside callbacks.
 *
 * A request the loop cannot take still gets its done callback, from the
 * loop, with no attempt made (result->attempts 0): SALVO_ECANCELED if
 * salvo_engine_close() was called before the loop took it, or SALVO_ENOMEM.
 * salvo_engine_stats() counts it in submitted and completed alike.
 * salvo_request_cancel() refuses the request (SALVO_EINVAL) until the loop
 * has taken it.
 *
 * The engine's wake handle does not keep its loop alive: a loop that should
 * wait for requests from other threads needs a handle of its own that does
 * (a daemon's listening socket, a signal watcher, a timer), or uv_run()
 * may return while requests are on their way.
 *
 * Lifetime: the call may race with salvo_engine_close() (it then returns
 * SALVO_ECLOSING), but must not be made once the engine's close_cb has run:
 * the engine is freed. Stop the threads that submit, or make sure they have
 * stopped, before the loop runs that far (for instance: close the engine,
 * then join them, then run the loop until close_cb).
 *
 * On error the callback is never called and the caller still owns |req|,
 * unchanged (free it with salvo_request_free(), or submit it again):
 *   SALVO_EINVAL    req or done_cb is NULL, or req was already submitted;
 *   SALVO_ENOTSUP   plaintext HTTP/2 (h2c) asked of libcurl < 8.0, whose h2c is broken;
 *   SALVO_ECLOSING  salvo_engine_close() was called.
 */
SALVO_EXTERN int salvo_request_submit_threadsafe(salvo_request_t *req, salvo_done_cb done_cb,
                                                 void *user_data);

/**
 * Cancels a submitted request whose done callback has not run yet. The done
 * callback then runs soon, from the loop, with SALVO_ECANCELED (or with the
 * outcome it already had, if it finished in the meantime). Never calls the
 * callback before returning; a second call before then does nothing more.
 * Returns 0, or SALVO_EINVAL if req is NULL, was not submitted, is inside
 * its own done callback, or was handed over by
 * salvo_request_submit_threadsafe() and not yet taken by the loop. Once the
 * done callback has returned, req is freed and must not be passed.
 */
SALVO_EXTERN int salvo_request_cancel(salvo_request_t *req);

/**
 * Frees a request that was never submitted successfully, with everything it
 * holds. NULL is a no-op, and so is a submitted request (the engine frees it
 * when its done callback returns).
 */
SALVO_EXTERN void salvo_request_free(salvo_request_t *req);

/** The engine a request belongs to; NULL if req is NULL. */
SALVO_EXTERN salvo_engine_t *salvo_request_engine(const salvo_request_t *req);
/**
 * The request's current method and URL; NULL if req is NULL. Before submit, and
 * until a redirect is followed, they are the strings given to
 * salvo_request_new(), byte for byte. Each redirect salvo follows changes
 * them before the next hop is queued: the URL becomes the Location resolved
 * against the previous URL, as libcurl's URL parser writes it, and a 303 to
 * anything but HEAD, or a 301 or 302 to a POST, makes the method "GET".
 * Callbacks see the current hop's (an attempt_event_cb for a followed
 * redirect already sees the next hop's). Inside the done callback they are
 * the last hop's: with result->redirects > 0, the final URL. A refused
 * redirect (SALVO_EREDIRECT) leaves them as they were, unless memory ran out
 * while the next hop was prepared.
 *
 * A pointer returned before any redirect stays valid until the request is
 * freed (salvo_request_free(), or the return of its done callback); one
 * returned after a redirect only until the next redirect is followed, which
 * frees the previous hop's URL. Copy the string to keep it longer.
 */
SALVO_EXTERN const char *salvo_request_method(const salvo_request_t *req);
SALVO_EXTERN const char *salvo_request_url(const salvo_request_t *req);

/**
 * Response headers, usable inside three callbacks: the head callback and
 * the data callback (the headers of the response being received), and the
 * done callback (the final attempt's response, the last hop's). Not 1xx
 * responses, trailers or a proxy's answer. Anywhere else they are not there
 * (and after the done callback req is freed). Each call copies what it
 * returns; the copies live until the request is freed, that is until its
 * done callback returns.
 *
 * salvo_response_header() returns the value of the last header named |name|
 * (case-insensitive), or NULL: req or name is NULL, called outside those
 * callbacks, no response (result->status 0, or the request ended while
 * waiting between attempts), no such header, or out of memory.
 *
 * salvo_response_header_at() walks them in the order received: returns 0 and
 * sets *name and *value for index |i|, or one of:
 *   SALVO_EINVAL  an argument is NULL, called outside those callbacks, no
 *                 response (as above), or |i| past the end; *name and
 *                 *value are untouched;
 *   SALVO_ENOMEM  out of memory copying them; *name and *value are then
 *                 both set to NULL.
 */
SALVO_EXTERN const char *salvo_response_header(salvo_request_t *req, const char *name);
SALVO_EXTERN int salvo_response_header_at(salvo_request_t *req, size_t i, const char **name,
                                          const char **value);

/**
 * Takes ownership of the buffered body inside the done callback: returns a
 * malloc()ed, NUL-terminated buffer of result->body_len bytes that the caller
 * frees with free(), and result->body becomes NULL. Returns NULL, and changes
 * nothing, if req is NULL, called before the done callback, with a data_cb,
 * when no body byte was received, or when the body was already taken.
 */
SALVO_EXTERN char *salvo_response_take_body(salvo_request_t *req);

#ifdef __cplusplus
}
#endif

#endif /* SALVO_H */
