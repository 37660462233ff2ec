/* Internal declarations shared by the files of lib/: the glue structs, each
 * with the one file that owns it (writes its fields), and the calls each
 * file offers the others, under its name. The pure decisions are in pure.h.
 * Not installed. */
#ifndef SALVO_INTERNAL_H
#define SALVO_INTERNAL_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <uv.h>

#include "pure.h"

/* A host: scheme + host + port. Its queue, its protection state, its stats.
 * Owner: host.c. Others read it; they change it only through host.c. */
typedef struct salvo__host_s {
  struct salvo__host_s *hnext; /* hash chain */
  uint64_t hash;
  size_t index;                /* in engine->hosts, order of first use */
  salvo__list_t queue;         /* its requests waiting for a slot: new at the tail, retries at the head */
  salvo__list_t ready_node;    /* in its lane's ready set, at ready_level, while it has queued
                                  requests it may send now; or in its lane's parked list (parked)
                                  while the lane has no connection to spare for it */
  size_t ready_level;
  int parked;
  unsigned conns_used;         /* connections its in-flight requests need: in_flight over the
                                  streams one connection carries, rounded up */
  CURLSH *share;               /* its TLS sessions, shared by the handles that carry its requests;
                                  made on its first https attempt (NULL until then, or none) */
  int lane;                    /* SALVO__LANE_H1 or SALVO__LANE_H2: every request of a host uses one */
  unsigned in_flight;          /* its attempts on the wire, hedges included */
  salvo__limiter_t limiter;    /* with policy.adaptive_concurrency */
  uv_timer_t timer;            /* wakes it when its bucket, pause or circuit allows again; made
                                  with the host, closed with it */
  uint64_t blocked_until_ms;   /* 0 = not blocked */
  salvo_host_policy_t policy;  /* the engine's, or salvo_engine_set_host_policy()'s */
  salvo__bucket_t bucket;
  salvo__window_t budget;      /* a = requests, b = retries and hedges */
  salvo__window_t sends;       /* a = attempts sent in the last second: AIMD's starting rate */
  salvo__breaker_t breaker;
  /* Latency records, made on first need (2.2 KB each): a batch over many
   * hosts should not pay for them up front. */
  salvo__lat_t *lat_all;       /* every response, for stats; NULL until the first */
  salvo__lat_t *lat_recent;    /* [0] this 10 s period, [1] the last; only with hedge_p95 */
  uint64_t lat_rotated_ms;
  unsigned live;               /* its requests from submit to done: it stays while > 0 */
  int pinned;                  /* has a policy of its own: never evicted */
  uint64_t silent_close_ms;    /* loop time it last closed a kept-alive connection without
                                  "Connection: close" (0 = never): for a minute after, its
                                  non-idempotent requests go on fresh connections */
  int http_version;            /* of its last response: 10, 11, 20; 0 = none yet. Over TLS, ALPN
                                  decides: the HTTP/2 lane may carry HTTP/1.1 connections */
  salvo__list_t idle_node;     /* in engine->idle_hosts while live == 0, least recent first */
  salvo_host_stats_t stats;    /* counters; the live fields are filled on demand */
} salvo__host_t;

/* --------------------------------------------------------------- engine */

#define SALVO__SHARE_UNKNOWN ((CURLSH *)(uintptr_t)1)

/* A multi handle and its timer. The engine has two: HTTP/1.1 transfers, which
 * need one connection each, and transfers that may multiplex over HTTP/2,
 * which must be held to a few connections per host (PIPEWAIT alone does not
 * do it in libcurl < 8.0). The per-host cap is a multi option, hence two.
 * Owner: engine.c, but for conns_used, ready and parked, which are host.c's. */
typedef struct salvo__lane_s {
  salvo_engine_t *engine;
  CURLM *multi;
  uv_timer_t timer; /* libcurl's single timeout for this multi */
  int timeout_now;  /* libcurl asked for 0 ms: run it from the idle handle */
  size_t conns_used;/* connections its hosts' in-flight requests need (host.c) */
  size_t max_conns; /* libcurl's total connection cap for it (max_connections), 0 = none */
  long host_conns;  /* its per-host connection cap, 0 = none */
  salvo__fair_t ready;  /* its hosts with queued requests they may send now (host.c) */
  salvo__list_t parked; /* ready hosts waiting for a connection of the lane to free up */
} salvo__lane_t;

enum { SALVO__LANE_H1 = 0, SALVO__LANE_H2 = 1, SALVO__LANES = 2 };

/* One socket libcurl asked us to watch. Holds no per-transfer state: with
 * HTTP/2 one socket carries many transfers. Owner: engine.c. */
typedef struct salvo__socket_s {
  uv_poll_t poll;
  salvo__lane_t *lane;
  curl_socket_t fd;
  int want;    /* UV_READABLE|UV_WRITABLE that libcurl last asked for */
  int armed;   /* events the uv_poll_t is started with (0 = stopped) */
  int closing; /* uv_close() called; freed in the close callback */
  salvo__list_t node; /* in engine->sockets */
} salvo__socket_t;

struct salvo__slot_s;

/* conn.c: what the server's TCP acknowledged, per socket libcurl pooled. */
typedef struct {
  int known;              /* the socket went idle after a response and was read then */
  uint64_t acked;         /* bytes the server's TCP had acknowledged then */
  uint32_t data_segs_out; /* data segments sent by then */
  uint32_t segs_in;       /* segments received by then */
  int closed;             /* the server had already closed or reset it by then */
  uint64_t host_hash;     /* whose connection it is */
  int local_port;         /* its ends, read while it is connected (a reset socket has no */
  int peer_port;          /* peer to ask for) */
  char peer_ip[48];
} salvo__conn_mark_t;

typedef struct {
  salvo__conn_mark_t *idle; /* by fd, while libcurl keeps the socket in its pool */
  size_t cap;
} salvo__conns_t;

/* Pure: 1 if nothing sent on a connection since it went idle (|idle|) can
 * have been read by the server, given the counters when it closed: nothing
 * was sent, or the server had closed first and acknowledged none of it. */
int salvo__conn_unread(const salvo__conn_mark_t *idle, int fin, uint64_t acked,
                       uint32_t data_segs_out);

void salvo__conn_idle(salvo_engine_t *engine, curl_socket_t fd, const struct salvo__slot_s *slot);
/* An HTTP/2 session ended under |dead| without answering it: the other
 * streams on that connection will not be answered either (libcurl 7.88 leaves
 * them waiting); end them from the loop as closed without a response. */
void salvo__conn_session_ended(salvo_engine_t *engine, const struct salvo__slot_s *dead);
int salvo__conn_close_cb(void *clientp, curl_socket_t fd);
void salvo__conns_free(salvo__conns_t *conns);

/* A reusable transfer slot: one easy handle and its attempt timer. Slots are
 * pooled so handles (and their caches) are reused. Owner: attempt.c, but for
 * lane (engine.c: the multi handle it is on), host and host_in_flight (set
 * as it joins its host's count) and what conn.c learns of its connection:
 * local_port, peer_port, peer_ip, conn_closed, unread. */
typedef struct salvo__slot_s {
  salvo_engine_t *engine;
  CURL *easy;
  salvo__lane_t *lane;      /* multi handle the easy handle is on, NULL when off */
  uv_timer_t timer;         /* idle + attempt timeouts of the current attempt */
  salvo_request_t *req;     /* request whose attempt this is, NULL when free */
  struct salvo__slot_s *next_free;
  uint64_t started_ms;      /* loop time the attempt started */
  uint64_t started_ns;      /* uv_hrtime() at attempt start, for timings */
  uint64_t last_activity_ms;/* loop time of the last byte or callback */
  uint64_t timer_due_ms;    /* when the timer is armed for, 0 = not armed */
  int sent;                 /* PREREQFUNCTION ran: the request is being sent */
  int responded;            /* the header callback ran: a response is coming */
  int kick;                 /* a capped HTTP/2 response: its timer has libcurl look at it
                               again once it goes silent (attempt.c, kick()) */
  int head_done;            /* the response's header block ended (the head callback ran) */
  const char *stop_detail;  /* why salvo stopped it, for the result's detail (static), or NULL */
  size_t header_bytes;      /* response header bytes of this attempt */
  unsigned attempt_no;      /* the request's attempt number this slot carries */
  struct salvo__host_s *host; /* whose in-flight count this attempt is in, while on a lane */
  CURLSH *share;            /* the share handle the easy handle is attached to: its host's TLS
                               sessions, or engine->no_share; SALVO__SHARE_UNKNOWN after a reset */
  unsigned host_in_flight;  /* the host's in flight when it was added, itself included */
  unsigned sends;           /* times PREREQFUNCTION ran: libcurl replays count too */
  int local_port;           /* the connection the latest send went out on: local port, */
  int peer_port;            /* peer port */
  char peer_ip[48];         /* and peer address, as libcurl gives it */
  int conn_closed;          /* conn.c saw that connection close under this send */
  int session_ended;        /* its HTTP/2 session ended under it, unanswered */
  int unread;               /* the server's TCP acknowledged nothing of the latest send (conn.c) */
  int local_errno;          /* socket() failed with this errno, 0 = it did not */
  int via_proxy;            /* this attempt goes through a proxy */
  int64_t content_length;   /* the response's Content-Length so far, -1 = none */
  const char *proto_detail; /* why salvo called the response malformed (static), or NULL;
                               salvo__header_cap_detail when it passed max_header_size */
  int resent_read;          /* libcurl resent a send the server may have read (once per attempt) */
  int dirty;                /* libcurl's per-handle state may carry over: reset before reuse */
  int configured;           /* the options that never change are set on the easy handle */
  int accept_encoding;      /* what CURLOPT_ACCEPT_ENCODING is set to on the handle: 1 = all */
  uint64_t recv_speed;      /* what CURLOPT_MAX_RECV_SPEED_LARGE is set to on the handle, 0 = none */
  long recv_buffer;         /* what CURLOPT_BUFFERSIZE is set to on the handle */
  int stop_reason;          /* SALVO_EIDLE, SALVO_EBODYLIMIT, ... set by salvo, 0 = none */
  uint64_t upload_seen;     /* bytes uploaded at the last progress callback */
  salvo__list_t cancel_node; /* in engine->slot_cancels */
  char errbuf[CURL_ERROR_SIZE];
} salvo__slot_t;

/* Requests handed to the engine from other threads
 * (salvo_request_submit_threadsafe): a locked queue that the loop drains when
 * |wake| fires. The one struct of lib/ that other threads touch, and only
 * under |lock|. Owner: inject.c. */
typedef struct {
  uv_mutex_t lock;     /* guards queue and closing */
  salvo__list_t queue; /* handed-over requests (their node), oldest first */
  int closing;         /* salvo_engine_close() was called: nothing more is taken */
  uv_async_t wake;     /* uv_async_send()'d under lock by each hand-over; not referenced:
                          it does not keep the loop alive */
  int made;            /* lock and wake exist (salvo_engine_new() got that far) */
} salvo__injector_t;

/* The engine. Owner: engine.c, but for the blocks marked with another file's
 * name; its counters (stats) are each written by one file: attempts,
 * in_flight (engine.c), submitted, completed, successes, failures, retries,
 * connections_opened, bytes_received (request.c), resends (attempt.c); its
 * percentiles are worked out when asked for, from latency (host.c's). */
struct salvo_engine_s {
  uv_loop_t *loop;
  salvo__lane_t lanes[SALVO__LANES];
  CURLSH *no_share;         /* an empty TLS session share for handles that carry plain http: a
                               handle is never without one, since libcurl 7.88 leaks a handle's
                               own session cache when a share replaces it */
  uv_idle_t deferred;       /* runs work that could not run inside libcurl's callbacks */
  int deferred_active;
  int multi_busy;           /* inside a curl_multi_* call: its callbacks may be running */
  int pumping;              /* inside salvo__engine_pump() */
  int closing;              /* salvo_engine_close() was called */
  int teardown_done;        /* multi cleaned up, handles closing */
  unsigned live_handles;    /* uv handles of the engine and its requests not yet closed */
  salvo_engine_close_cb close_cb;
  void *close_data;
  uint32_t magic;           /* SALVO__ENGINE_LIVE until its close completes (salvo__engine_live);
                               not first in the struct, where free() writes its own links */

  int lane_turn;            /* the lane whose host wins a tie for the next slot */
  long max_streams;
  salvo__list_t unarmed;    /* queued since submit, their own timer not made yet (request.c) */
  /* host.c: the host table */
  salvo__host_t **hosts;    /* by index, order of first use */
  size_t nhosts, hosts_cap;
  salvo__host_t **host_table; /* hash table, chained */
  salvo__list_t idle_hosts; /* hosts with no live request, eviction candidates first */
  size_t max_hosts;         /* 0 = no cap */
  uint64_t hosts_evicted;
  salvo__lat_t latency;     /* every response's time, all hosts: the engine's percentiles */
  size_t table_size;        /* power of two */
  salvo_host_policy_t host_policy;
  salvo_host_event_cb host_event_cb;
  void *host_event_data;
  /* request.c: its lists */
  salvo__list_t waiting;    /* requests in backoff before their next attempt */
  salvo__list_t running;    /* requests with an attempt on the multi handle */
  salvo__list_t cancels;    /* requests whose cancel is pending */
  salvo__list_t slot_cancels; /* attempts to end from the loop (attempt.c: salvo__attempt_stop_later) */
  salvo__list_t sockets;    /* watched sockets */
  salvo__conns_t conns;     /* conn.c */
  salvo__slot_t *free_slots; /* attempt.c: the pool */

  /* copied options */
  size_t max_in_flight;
  size_t max_header_size;
  int follow_redirects;
  unsigned max_redirects;
  int redirect_allow_downgrade;
  int accept_encoding;
  size_t max_body_size;
  salvo_http_version_t http_version;
  int insecure;
  int h2c_supported;        /* libcurl >= 8.0 */
  char *ca_file;
  char *user_agent;
  char *proxy_http;         /* proxy for http:// URLs, NULL = none */
  char *proxy_https;        /* proxy for https:// URLs, NULL = none */
  char *no_proxy;           /* hosts that go direct, NULL = none */
  struct curl_slist *default_headers; /* validated "Name: value" lines */
  struct curl_slist *resolve;    /* opts.resolve, validated: CURLOPT_RESOLVE; NULL = none */
  struct curl_slist *connect_to; /* opts.connect_to, validated: CURLOPT_CONNECT_TO; NULL = none */
  uint64_t max_recv_speed;  /* bytes per second per transfer, 0 = no cap (at most INT64_MAX) */
  long recv_buffer;         /* CURLOPT_BUFFERSIZE of an uncapped transfer (opts.recv_buffer_size) */
  salvo_timeouts_t timeouts; /* resolved: no SALVO_TIMEOUT_INHERIT, none above the max */
  salvo_retry_policy_t retry;
  salvo_log_cb log_cb;      /* NULL = messages dropped */
  void *log_data;
  uint64_t rng;             /* jitter random state (salvo__rng_next) */
  unsigned char random_pool[512]; /* uv_random() bytes for request ids and keys */
  size_t random_left;

  salvo_engine_stats_t stats;
  salvo__injector_t inject; /* inject.c */
  uv_thread_t loop_thread;  /* the thread its loop callbacks run on, once loop_thread_known */
  int loop_thread_known;
};

/* -------------------------------------------------------------- request */

/* A request's life: NEW (being built) -> QUEUED (in its host's queue) ->
 * RUNNING (an attempt on a lane) -> WAITING (backoff) -> QUEUED ... -> DONE.
 * A redirect goes from RUNNING back to QUEUED. Handed over from another
 * thread, NEW -> HANDED (in the injector's queue) -> QUEUED once the loop
 * takes it, or HANDED -> DONE if it never enters the engine (closing, out of
 * memory). Only request.c's set_state() changes it, and asserts the step is
 * one of salvo__request_step_ok(). */
enum { SALVO__NEW = 0, SALVO__QUEUED, SALVO__RUNNING, SALVO__WAITING, SALVO__DONE, SALVO__HANDED };

/* What becomes of the running attempt's body with a data callback (see
 * salvo_data_cb): passed as it comes; held, its first SALVO__HOLD_CAP bytes
 * kept for the caller in case the request ends with it; or dropped (a
 * redirect to follow). */
enum { SALVO__HOLD_NONE = 0, SALVO__HOLD_KEEP = 1, SALVO__HOLD_DROP = 2 };
#define SALVO__HOLD_CAP (64 * 1024)

/* The header list handed to libcurl. Owner: headers.c. */
typedef struct {
  struct curl_slist *user;         /* the caller's, as given, validated */
  struct curl_slist *list;         /* merged list handed to libcurl, built at submit: one block */
  struct curl_slist *tail;         /* its last node; the attempt header hangs off it */
  struct curl_slist *attempt_node; /* "X-Attempt: N" of the current attempt, or NULL */
  char rid[37];                    /* the request id, the same on every attempt and hop */
} salvo__headers_t;

/* A second attempt sent when the first has no response after a delay.
 * Owner: hedge.c. */
typedef struct {
  struct salvo__slot_s *slot;   /* the hedge attempt while two run, else NULL */
  struct salvo__slot_s *winner; /* of two running attempts, the first with a response */
  uint64_t at_ms;               /* loop time to send it if the attempt has no response, 0 = none */
  int sent;                     /* one per request */
} salvo__hedge_t;

/* Owner: request.c, but for hdr (headers.c) and hedge (hedge.c). */
struct salvo_request_s {
  salvo_engine_t *engine;
  salvo__list_t node;        /* in its host's queue, engine->waiting or engine->running; while
                                HANDED, in the injector's queue (inject.c) */
  salvo__list_t cancel_node; /* in engine->cancels */
  salvo__list_t arm_node;    /* in engine->unarmed */
  salvo__host_t *host;
  int probe;                 /* its current attempt is the host circuit's half-open probe */
  int state;
  char *method;
  char *url;
  CURLU *curlu;              /* the parsed URL, handed to libcurl (CURLOPT_CURLU): parsed once */
  int is_https;
  int lane;                  /* SALVO__LANE_H1 or SALVO__LANE_H2 */
  int is_get;
  int is_head;
  char *body;                /* copy of the request body, NULL if none */
  size_t body_size;
  int has_body;
  int has_reader;            /* the body comes from reader (salvo_request_set_body_reader()) */
  salvo_body_reader_t reader;
  uint64_t body_read;        /* bytes the reader gave since its last rewind (or the start) */
  salvo__headers_t hdr;
  const salvo_retry_policy_t *policy; /* the engine's, or own_policy when overridden */
  salvo_retry_policy_t *own_policy;   /* salvo_request_set_retry_policy()'s copy, or NULL */
  int idempotent;                  /* may be retried after reaching the server */
  salvo_timeouts_t timeouts;
  size_t max_body_size;
  int follow_redirects;
  int accept_encoding;       /* send Accept-Encoding and decode the answer */
  uint64_t max_recv_speed;   /* bytes per second each attempt may receive, 0 = no cap */
  unsigned redirects;        /* hops followed */
  int cross_origin;          /* a redirect left the first origin: no Authorization, Cookie, Proxy-Authorization */
  char *url_owned;           /* the URL after a redirect (req->url points here), else NULL */
  salvo_data_cb data_cb;
  salvo_head_cb head_cb;
  salvo_done_cb done_cb;
  void *user_data;
  void *data;                /* salvo_request_set_data(): the caller's, never read */
  int hold;                  /* SALVO__HOLD_*: what becomes of the running attempt's body */
  uint64_t streamed;         /* body bytes of the running attempt passed to data_cb */
  int data_restartable;      /* the data callback's sink starts over at each head: streamed bytes
                                do not stop retries (salvo_request_set_data_restartable) */
  size_t held_len;           /* bytes of a held body kept in resp_body (hold != NONE) */
  struct salvo__slot_s *cb_slot; /* the slot whose response a head or data callback is reading
                                    (salvo_response_header*() use it), NULL outside them */
  int aborted;               /* a head, data or body reader callback stopped the request */

  uv_timer_t timer;          /* deadline and queue timeout while queued, backoff; made on first need */
  int timer_inited;
  uint64_t deadline_at_ms;   /* loop time, 0 = none */
  uint64_t queue_at_ms;      /* loop time, 0 = none */
  uint64_t retry_at_ms;      /* loop time the backoff ends, in SALVO__WAITING */
  salvo__hedge_t hedge;
  uint64_t last_wait_ms;     /* the previous backoff, for decorrelated jitter */
  uint64_t submit_ns;

  struct salvo__slot_s *slot; /* current or last attempt's slot */
  unsigned attempts;
  unsigned sends;            /* times the request went on the wire, libcurl's replays included:
                                the sum of its ended attempts' sends */

  char *resp_body;           /* buffered response body */
  size_t resp_len;
  size_t resp_cap;
  char *header_scratch;      /* copy handed out by salvo_response_header*() */
  salvo_result_t result;
  int stop_set;              /* result.stop_reason was decided */
  salvo_attempt_record_t *history; /* &history_first, or an array once there are two */
  salvo_attempt_record_t history_first;
  size_t history_len_internal;
  size_t history_cap;
  char detail[CURL_ERROR_SIZE];
};

/* What an attempt's end tells, read once from libcurl (attempt.c) and handed
 * on as plain values: to the host's bookkeeping, the decision, the result. */
typedef struct {
  salvo__outcome_t outcome;  /* error class, and whether the request may have reached the server */
  long status;               /* HTTP status, 0 if none (also kept when outcome.error != 0) */
  int http_version;          /* 10, 11, 20; 0 if unknown */
  long connects;             /* new connections libcurl made for it */
  salvo_timings_t timings;
  uint64_t ttfb_us;          /* to the first byte of the answer, 0 = none: timings.ttfb_us */
  uint64_t sent_at_ms;       /* loop time the attempt started */
  unsigned host_in_flight;   /* the host's in flight when it was sent, itself included */
  unsigned sends;            /* times it went on the wire */
  int64_t retry_after_ms;    /* Retry-After of a 413, 429 or 503, -1 if none or garbage */
  int64_t pause_ms;          /* how long a 429 or 503 asks the host to pause: Retry-After, else
                                RateLimit-Reset or X-RateLimit-Reset; -1 if none */
  int session_ended;         /* its HTTP/2 session ended under it, unanswered */
} salvo__attempt_end_t;

/* ------------------------------------------------------------ engine.c */

#define SALVO__ENGINE_LIVE UINT32_C(0x5a1f0e11)
#define SALVO__ENGINE_DEAD UINT32_C(0xdead0e11)
/* 1 if |engine|'s close has not completed, else 0; builds without NDEBUG
 * abort instead (salvo.h, "Lifetimes"). Public functions that take an
 * engine check it first: one compare. */
int salvo__engine_live(const salvo_engine_t *engine);
/* Hands a message to the engine's log callback (salvo_log_cb), if any. */
void salvo__log(salvo_engine_t *engine, salvo_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void salvo__engine_pump(salvo_engine_t *engine);
void salvo__engine_schedule(salvo_engine_t *engine);
/* libcurl's CURLMOPT_TIMERFUNCTION for a lane (|userp|): -1 stops the lane's
 * timer, 0 runs the timeout from the engine's idle pass (never a 0 ms uv
 * timer: see engine.c), more starts the timer. */
int salvo__lane_timer_cb(CURLM *multi, long timeout_ms, void *userp);
/* Puts |slot|'s handle on the lane of its request / takes it off (a no-op
 * when it is on none); the slot joins and leaves its host's count. */
int salvo__engine_add_attempt(salvo_engine_t *engine, salvo__slot_t *slot);
void salvo__engine_remove_attempt(salvo_engine_t *engine, salvo__slot_t *slot);
void salvo__engine_handle_closed(salvo_engine_t *engine);
/* One of the engine's loop callbacks runs: the first tells which thread runs
 * its loop. */
void salvo__engine_saw_loop(salvo_engine_t *engine);
/* 0 if the engine's loop is known to run on a thread other than the
 * caller's, else 1. Only for SALVO__ASSERT_LOOP_THREAD. */
int salvo__engine_on_loop_thread(const salvo_engine_t *engine);
/* In the calls of salvo.h that must be made on the loop's thread: debug
 * builds abort on a call from another thread (compiled out with NDEBUG). */
#define SALVO__ASSERT_LOOP_THREAD(engine)                                                     \
  assert(salvo__engine_on_loop_thread(engine) &&                                              \
         "salvo: called from a thread other than the engine's loop's (salvo.h, Threading)")
/* 16 random bytes from a pool refilled by uv_random(). */
void salvo__engine_random(salvo_engine_t *engine, unsigned char out[16]);
/* A random (version 4) UUID, 36 characters and a NUL. */
void salvo__uuid4(salvo_engine_t *engine, char out[37]);

/* -------------------------------------------------------------- host.c */

salvo__host_t *salvo__host_get(salvo_engine_t *engine, const char *url, int is_https);
/* The lane a request to a URL of this kind goes on. */
int salvo__lane_for(const salvo_engine_t *engine, int is_https);
/* A request holds its host from submit (or redirect) to done. */
void salvo__host_ref(salvo__host_t *host);
void salvo__host_unref(salvo_engine_t *engine, salvo__host_t *host);
/* A request (or a redirect's next hop) comes to the host: counted in its
 * stats and in its retry budget's window. */
void salvo__host_count_request(salvo__host_t *host, uint64_t now);
/* A request of the host ended with |error| and |status|: its stats. */
void salvo__host_count_outcome(salvo__host_t *host, int error, long status);
/* Puts a request's |node| in the host's queue: at the head (a retry, a
 * redirect's next hop) or the tail. The host becomes ready if it may send. */
void salvo__host_enqueue(salvo__host_t *host, salvo__list_t *node, int front);
/* Its queue's head, or NULL. */
salvo__list_t *salvo__host_queue_head(const salvo__host_t *host);
/* Requests now in every host's queue. */
size_t salvo__hosts_queued(const salvo_engine_t *engine);
/* The next host the pump should admit from: fewest in flight, with room. NULL if none. */
salvo__host_t *salvo__host_next_ready(salvo_engine_t *engine);
/* What salvo__host_admit() decides for the head of a ready host's queue. */
enum {
  SALVO__GO = 0,         /* send it now */
  SALVO__GO_PROBE = 1,   /* send it now: it is the half-open circuit's probe */
  SALVO__HOLD = 2,       /* the host waits for its bucket or pause; nothing to do */
  SALVO__NO_CIRCUIT = 3, /* fail it fast: the circuit is open */
  SALVO__NO_RATE = 4     /* fail it fast: the bucket or pause would hold it past |deadline_at|
                            or |queue_at| (loop times, 0 = none) */
};
int salvo__host_admit(salvo__host_t *host, uint64_t now, uint64_t deadline_at, uint64_t queue_at);
/* A retry is due: 1 if the host's retry budget allows it (it is then
 * counted), else 0 (counted as refused). */
int salvo__host_allow_retry(salvo__host_t *host, uint64_t now);
/* A hedge would go now: 1 if the host has room for one more in flight and
 * its budget allows it. salvo__host_count_hedge() once it is sent. */
int salvo__host_may_hedge(salvo__host_t *host, uint64_t now);
void salvo__host_count_hedge(salvo__host_t *host, uint64_t now);
/* An attempt of |host| goes on its lane / comes off it. _added returns the
 * host's in flight, the attempt included. */
unsigned salvo__host_attempt_added(salvo__host_t *host);
void salvo__host_attempt_removed(salvo__host_t *host);
/* Its limit now (see salvo_host_stats_t.limit). */
unsigned salvo__host_limit(const salvo__host_t *host);
/* The share handle holding the host's TLS sessions, made on first need; NULL if it cannot be. */
CURLSH *salvo__host_share(salvo__host_t *host);
void salvo__host_event(salvo_engine_t *engine, salvo__host_t *host, int type);
void salvo__hosts_free(salvo_engine_t *engine);
/* libcurl is about to send a request again by itself: 1 if the host's retry
 * budget allows it (it is then counted like a retry), else 0. */
int salvo__host_allow_resend(salvo__host_t *host, uint64_t now);
/* libcurl sent a request to the host again within one attempt. */
void salvo__host_count_resend(salvo__host_t *host);
void salvo__host_saw_silent_close(salvo_engine_t *engine, uint64_t hash);
/* 1 while the host's recent silent closes call for fresh connections. */
int salvo__host_wants_fresh(const salvo__host_t *host, uint64_t now);
/* A response came in HTTP |version| (10, 11, 20; 0 = unknown): 1 if that is
 * news, and the host may then have room for more (run the pump). */
int salvo__host_saw_version(salvo__host_t *host, int version);
/* 1 if the request's connection to its host speaks HTTP/2, as far as is known. */
int salvo__host_speaks_h2(const salvo__host_t *host, int lane);
/* The hedge delay for the host, 0 = no hedge. */
uint64_t salvo__host_hedge_delay(const salvo__host_t *host);
/* After every attempt of a request to |host|: latency, the adaptive limit,
 * the breaker, AIMD and host pauses. |probe|: the attempt was the circuit's
 * half-open probe. |goes_on|: another attempt of the request (a hedge) is
 * still running, so a probe with no verdict stays with the request. Returns
 * 1 if the request still holds the probe, else 0. */
int salvo__host_after_attempt(salvo__host_t *host, const salvo__attempt_end_t *end, int probe,
                              int goes_on);

/* ----------------------------------------------------------- request.c */

void salvo__request_arm_queued(salvo_engine_t *engine);
/* The head of a ready host's queue: start it, fail it fast, or leave the
 * host held until its bucket, pause or circuit lets the next one go. */
void salvo__request_admit(salvo_request_t *req);
/* |slot|'s attempt ended with |rc| and decides the request: retry or complete. */
void salvo__request_finish_attempt(salvo_request_t *req, salvo__slot_t *slot, CURLcode rc);
/* |slot|'s attempt ended with |rc| while another attempt of the request,
 * |other|, goes on: it gets a record saying |why|; |other| carries on. */
void salvo__request_drop_attempt(salvo_request_t *req, salvo__slot_t *slot, CURLcode rc,
                                 salvo__slot_t *other, const char *why);
void salvo__request_complete(salvo_request_t *req, int error);
void salvo__request_cancel_now(salvo_request_t *req);
/* Body bytes of the running attempt: buffered, or handed to the data
 * callback. 0, or why the attempt must stop (SALVO_EBODYLIMIT, SALVO_EABORTED,
 * SALVO_ENOMEM). */
int salvo__request_body_bytes(salvo_request_t *req, const char *data, size_t len);
/* A header block of |slot|'s response ended: for the response's own (not a
 * 1xx), decides whether its body is held and runs the head callback. 1 for
 * the response's own head, 0 for an interim one, or why the attempt stops
 * (*why then says it in words): SALVO_EABORTED (the callback) or
 * SALVO_EBODYLIMIT (a Content-Length over max_body_size). */
int salvo__request_head(salvo_request_t *req, salvo__slot_t *slot, const char **why);
/* The body reader's next bytes for |slot|'s attempt (libcurl's read callback):
 * 0 with *len, or why the attempt must stop (SALVO_EABORTED). */
int salvo__request_body_read(salvo_request_t *req, char *buf, size_t cap, size_t *len,
                             const char **why);
/* libcurl must send the body again within an attempt: 0 if it was rewound. */
int salvo__request_body_rewind(salvo_request_t *req);
/* One more attempt of the request goes out (a hedge): returns its number. */
unsigned salvo__request_count_attempt(salvo_request_t *req);
/* Pure: 1 if a request may go from state |from| to |to|. */
int salvo__request_step_ok(int from, int to);
/* salvo_request_submit_threadsafe(), on the caller's thread: 0 if |req| may
 * be handed over (not NULL, not submitted, done_cb not NULL), else
 * SALVO_EINVAL, or SALVO_ENOTSUP where salvo_request_submit() would say so.
 * Reads only what never changes after salvo_engine_new(). */
int salvo__request_check_hand_over(const salvo_request_t *req, salvo_done_cb done_cb);
/* ... then, under the injector's lock: the request is HANDED, with its callback. */
void salvo__request_hand_over(salvo_request_t *req, salvo_done_cb done_cb, void *user_data);
/* From the loop: a HANDED request enters the engine as salvo_request_submit()
 * would take it, or, if the engine is closing or refuses it, gets its one
 * done callback now with SALVO_ECANCELED or the refusal, and no attempt. */
void salvo__request_take_handed(salvo_request_t *req);

/* ----------------------------------------------------------- headers.c */

/* Validates and keeps one caller header ("Name", "value"): SALVO_EINVAL
 * (see salvo_request_add_header()), SALVO_ENOMEM or 0. */
int salvo__headers_add(salvo_request_t *req, const char *name, size_t name_len, const char *value,
                       size_t value_len);
/* Builds the list handed to libcurl from the engine's defaults and the
 * caller's headers (credentials dropped once req->cross_origin), with the
 * request id and idempotency key. Sets *idempotent. 0 or SALVO_ENOMEM. */
int salvo__headers_build(salvo_request_t *req, int *idempotent);
/* The attempt header for attempt |n|, if the policy names one. 0 or SALVO_ENOMEM. */
int salvo__headers_set_attempt(salvo_request_t *req, unsigned n);
/* What libcurl is handed (CURLOPT_HTTPHEADER). */
struct curl_slist *salvo__headers_list(const salvo_request_t *req);
/* Frees the built list (a redirect builds it again). */
void salvo__headers_drop(salvo_request_t *req);
void salvo__headers_free(salvo_request_t *req);

/* ------------------------------------------------------------- hedge.c */

/* At an attempt's start: when to send a hedge, if at all. */
void salvo__hedge_plan(salvo_request_t *req, const salvo__slot_t *slot);
/* |slot|'s timer fired at |now|: sends the hedge if it is due. */
void salvo__hedge_check(salvo__slot_t *slot, uint64_t now);
/* The first response byte of |slot| came: 0 to go on, or SALVO_ECANCELED
 * when the other attempt answered first (the transfer must stop). */
int salvo__hedge_on_response(salvo__slot_t *slot);
/* An attempt ended: with a hedge running, the first response decides. */
void salvo__slot_finish(salvo__slot_t *slot, CURLcode rc);
/* Ends a running hedge with |reason| (cancel, deadline). */
void salvo__hedge_stop(salvo_request_t *req, int reason);

/* ------------------------------------------------------------ inject.c */

/* Makes the injector's lock and wake handle on the engine's loop (not
 * referenced). 0, or SALVO_EINTERNAL with nothing made. */
int salvo__inject_init(salvo_engine_t *engine);
/* salvo_engine_close() was called: from now on hand-overs get SALVO_ECLOSING. */
void salvo__inject_close(salvo_engine_t *engine);
/* From the loop, as the engine tears down: what was handed over and not yet
 * taken completes as canceled, and the wake handle closes (counted in
 * engine->live_handles). */
void salvo__inject_teardown(salvo_engine_t *engine);
/* With the engine's memory: destroys the lock. */
void salvo__inject_free(salvo_engine_t *engine);

/* ------------------------------------------------------------ attempt.c */

/* CURLINFO_HTTP_VERSION as salvo reports it: 20, 11, 10, or 0 if unknown. */
int salvo__http_version(long curl_version);
salvo__slot_t *salvo__slot_get(salvo_engine_t *engine);
void salvo__slot_put(salvo__slot_t *slot);
/* Pooled handles attached to |share| move to engine->no_share (before it is cleaned up). */
void salvo__slots_detach_share(salvo_engine_t *engine, CURLSH *share);
/* Closes every pooled slot (engine close). */
void salvo__slots_free(salvo_engine_t *engine);
/* Prepares |slot|'s handle for attempt number |attempt_no| of |req|. 0 or SALVO_EINTERNAL. */
int salvo__attempt_setup(salvo__slot_t *slot, salvo_request_t *req, unsigned attempt_no);
void salvo__attempt_arm_timer(salvo__slot_t *slot);
/* salvo stops the attempt (a timeout, a cancel): libcurl's result is then
 * not the outcome, |reason| is. */
void salvo__attempt_stop(salvo__slot_t *slot, int reason);
/* The same, from inside libcurl's callbacks: the attempt ends from the loop
 * (engine.c drains engine->slot_cancels). */
void salvo__attempt_stop_later(salvo__slot_t *slot, int reason);
/* The attempt is off its lane: stops its timer and reads what libcurl knows
 * into *end; |detail| (|cap| bytes, may be NULL) gets the words for the result. */
void salvo__attempt_end(salvo__slot_t *slot, CURLcode rc, salvo__attempt_end_t *end, char *detail,
                        size_t cap);
/* Value of the last response header |name| of the attempt, or NULL; valid
 * until the next call on the slot. */
const char *salvo__attempt_header(salvo__slot_t *slot, const char *name);
extern const char salvo__header_cap_detail[];

#endif /* SALVO_INTERNAL_H */
