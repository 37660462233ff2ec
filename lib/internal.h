/* Internal declarations shared by the files of lib/. Not installed. */
#ifndef SALVO_INTERNAL_H
#define SALVO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <uv.h>

#include "salvo/salvo.h"

#define SALVO__CONTAINER_OF(ptr, type, field) ((type *)((char *)(ptr)-offsetof(type, field)))

/* Intrusive circular doubly linked list, as in libuv's queue.h. */
typedef struct salvo__list_s {
  struct salvo__list_s *prev;
  struct salvo__list_s *next;
} salvo__list_t;

static inline void salvo__list_init(salvo__list_t *head) { head->prev = head->next = head; }
static inline int salvo__list_empty(const salvo__list_t *head) { return head->next == head; }
static inline int salvo__list_linked(const salvo__list_t *node) {
  return node->next != NULL && node->next != node;
}
static inline void salvo__list_push_back(salvo__list_t *head, salvo__list_t *node) {
  node->prev = head->prev;
  node->next = head;
  head->prev->next = node;
  head->prev = node;
}
static inline void salvo__list_push_front(salvo__list_t *head, salvo__list_t *node) {
  node->next = head->next;
  node->prev = head;
  head->next->prev = node;
  head->next = node;
}
static inline void salvo__list_remove(salvo__list_t *node) {
  node->prev->next = node->next;
  node->next->prev = node->prev;
  node->prev = node->next = node; /* so salvo__list_linked() is false afterwards */
}

/* -------------------------------------------------- per-host protection */

/* protect.c: pure state machines, the clock passed in (loop milliseconds). */
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
  unsigned opens;
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

/* A host: scheme + host + port. Its queue, its protection state, its stats. */
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
  uv_timer_t timer;            /* wakes it when its bucket, pause or circuit allows again */
  int timer_inited;
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

/* One socket libcurl asked us to watch. Holds no per-transfer state: with
 * HTTP/2 one socket carries many transfers. */
/* A multi handle and its timer. The engine has two: HTTP/1.1 transfers, which
 * need one connection each, and transfers that may multiplex over HTTP/2,
 * which must be held to a few connections per host (PIPEWAIT alone does not
 * do it in libcurl < 8.0). The per-host cap is a multi option, hence two. */
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
 * pooled by the engine so handles (and their caches) are reused. */
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
  int stop_reason;          /* SALVO_EIDLE, SALVO_EBODYLIMIT, ... set by salvo, 0 = none */
  uint64_t upload_seen;     /* bytes uploaded at the last progress callback */
  salvo__list_t cancel_node; /* in engine->slot_cancels */
  char errbuf[CURL_ERROR_SIZE];
} salvo__slot_t;

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

  int lane_turn;            /* the lane whose host wins a tie for the next slot */
  long max_streams;
  salvo__list_t unarmed;    /* queued since submit, their own timer not made yet */
  salvo__host_t **hosts;    /* by index, order of first use */
  size_t nhosts, hosts_cap;
  salvo__host_t **host_table; /* hash table, chained */
  salvo__list_t idle_hosts; /* hosts with no live request, eviction candidates first */
  size_t max_hosts;         /* 0 = no cap */
  uint64_t hosts_evicted;
  size_t table_size;        /* power of two */
  salvo_host_policy_t host_policy;
  salvo_host_event_cb host_event_cb;
  void *host_event_data;
  salvo__list_t waiting;    /* requests in backoff before their next attempt */
  salvo__list_t running;    /* requests with an attempt on the multi handle */
  salvo__list_t cancels;    /* requests whose cancel is pending */
  salvo__list_t slot_cancels; /* hedge attempts that lost the race, to end from the loop */
  salvo__list_t sockets;    /* watched sockets */
  salvo__conns_t conns;     /* conn.c */
  salvo__slot_t *free_slots;
  size_t slots_total;

  /* copied options */
  size_t max_in_flight;
  size_t max_header_size;
  int follow_redirects;
  unsigned max_redirects;
  int redirect_allow_downgrade;
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
  salvo_timeouts_t timeouts;
  salvo_retry_policy_t retry;
  uint64_t rng;             /* jitter random state (salvo__rng_next) */
  unsigned char random_pool[512]; /* getrandom() bytes for request ids and keys */
  size_t random_left;

  salvo_engine_stats_t stats;
};

/* -------------------------------------------------------------- request */

enum { SALVO__NEW = 0, SALVO__QUEUED, SALVO__RUNNING, SALVO__WAITING, SALVO__DONE };

struct salvo_request_s {
  salvo_engine_t *engine;
  salvo__list_t node;        /* in its host's queue, engine->waiting or engine->running */
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
  struct curl_slist *user_headers; /* as given, validated */
  struct curl_slist *headers;      /* merged list handed to libcurl, built at submit */
  struct curl_slist *headers_tail; /* its last node; the attempt header hangs off it */
  struct curl_slist *attempt_node; /* "X-Attempt: N" of the current attempt, or NULL */
  const salvo_retry_policy_t *policy; /* the engine's, or own_policy when overridden */
  salvo_retry_policy_t *own_policy;   /* salvo_request_set_retry_policy()'s copy, or NULL */
  int idempotent;                  /* may be retried after reaching the server */
  salvo_timeouts_t timeouts;
  size_t max_body_size;
  int follow_redirects;
  unsigned redirects;        /* hops followed */
  int cross_origin;          /* a redirect left the first origin: no Authorization, Cookie, Proxy-Authorization */
  char *url_owned;           /* the URL after a redirect (req->url points here), else NULL */
  char rid[37];              /* the request id, the same on every attempt and hop */
  salvo_data_cb data_cb;
  salvo_done_cb done_cb;
  void *user_data;

  uv_timer_t timer;          /* deadline and queue timeout while queued, backoff; made on first need */
  int timer_inited;
  int timer_pending;         /* queued since submit and not yet armed (see salvo__request_arm_queued) */
  uint64_t deadline_at_ms;   /* loop time, 0 = none */
  uint64_t queue_at_ms;      /* loop time, 0 = none */
  uint64_t retry_at_ms;      /* loop time the backoff ends, in SALVO__WAITING */
  uint64_t hedge_at_ms;      /* loop time to send a hedge if the attempt has no response, 0 = none */
  salvo__slot_t *hedge;      /* the hedge attempt while two run, else NULL */
  salvo__slot_t *winner;     /* of two running attempts, the first with a response */
  int hedged;                /* a hedge was sent (one per request) */
  uint64_t last_wait_ms;     /* the previous backoff, for decorrelated jitter */
  uint64_t submit_ns;

  salvo__slot_t *slot;       /* current or last attempt's slot */
  unsigned attempts;
  unsigned sends;            /* times the request went on the wire, libcurl's replays included */

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

/* error.c: index of an error class in salvo_host_stats_t.by_error (0 for 0 or unknown) */
int salvo__err_index(int err);

/* engine.c */
void salvo__engine_pump(salvo_engine_t *engine);
/* host.c */
salvo__host_t *salvo__host_get(salvo_engine_t *engine, const char *url, int is_https);
/* The lane a request to a URL of this kind goes on. */
int salvo__lane_for(const salvo_engine_t *engine, int is_https);
/* The next host the pump should admit from: fewest in flight, with room. NULL if none. */
salvo__host_t *salvo__host_next_ready(salvo_engine_t *engine);
/* An attempt of |host| goes on its lane / comes off it. */
void salvo__host_attempt_added(salvo__host_t *host, salvo__slot_t *slot);
void salvo__host_attempt_removed(salvo__host_t *host, salvo__slot_t *slot);
/* 1 if the host may have one more attempt in flight (a hedge). */
int salvo__host_has_room(const salvo__host_t *host);
/* Its limit now (see salvo_host_stats_t.limit). */
unsigned salvo__host_limit(const salvo__host_t *host);
/* The share handle holding the host's TLS sessions, made on first need; NULL if it cannot be. */
CURLSH *salvo__host_share(salvo__host_t *host);
/* engine.c: pooled handles attached to |share| move to engine->no_share (before it is cleaned up). */
void salvo__engine_detach_share(salvo_engine_t *engine, CURLSH *share);
/* "scheme://host:port" of a URL libcurl accepted; returns its length. */
size_t salvo__host_key(const char *url, int is_https, char *out, size_t cap);
void salvo__host_mark_ready(salvo__host_t *host);
/* A request holds its host from submit (or redirect) to done. */
void salvo__host_ref(salvo__host_t *host);
void salvo__host_unref(salvo_engine_t *engine, salvo__host_t *host);
void salvo__host_event(salvo_engine_t *engine, salvo__host_t *host, int type);
void salvo__hosts_free(salvo_engine_t *engine);
void salvo__host_block(salvo__host_t *host, uint64_t wait_ms);
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
uint64_t salvo__host_hedge_delay(const salvo__host_t *host, const salvo_host_policy_t *p);
/* RateLimit-Reset value: ms to wait, -1 if not a number, INT64_MAX if absurdly far. */
int64_t salvo__reset_parse(const char *value, int64_t epoch_above, int64_t now_unix_ms);
/* After every attempt of |req| (its |slot|): latency, the breaker, AIMD,
 * host pauses and the adaptive limit. |goes_on|: another attempt of the
 * request (a hedge) is still running, so a probe stays with the request. */
void salvo__host_after_attempt(salvo_request_t *req, const salvo__slot_t *slot, int error,
                               long status, uint64_t attempt_us, int goes_on);
void salvo__engine_schedule(salvo_engine_t *engine);
/* libcurl's CURLMOPT_TIMERFUNCTION for a lane (|userp|): -1 stops the lane's
 * timer, 0 runs the timeout from the engine's idle pass (never a 0 ms uv
 * timer: see engine.c), more starts the timer. */
int salvo__lane_timer_cb(CURLM *multi, long timeout_ms, void *userp);
int salvo__engine_add_attempt(salvo_engine_t *engine, salvo__slot_t *slot);
void salvo__engine_remove_attempt(salvo_engine_t *engine, salvo__slot_t *slot);
void salvo__engine_handle_closed(salvo_engine_t *engine);
salvo__slot_t *salvo__engine_get_slot(salvo_engine_t *engine);
void salvo__engine_put_slot(salvo_engine_t *engine, salvo__slot_t *slot);

/* engine.c: 16 random bytes from a pool refilled by getrandom() */
void salvo__engine_random(salvo_engine_t *engine, unsigned char out[16]);
/* A random (version 4) UUID, 36 characters and a NUL. */
void salvo__uuid4(salvo_engine_t *engine, char out[37]);
int salvo__retry_policy_check(const salvo_retry_policy_t *p);

/* request.c */
void salvo__request_start(salvo_request_t *req);
void salvo__request_arm_queued(salvo_engine_t *engine);
void salvo__request_enqueue(salvo_request_t *req, int front);
void salvo__request_admit(salvo_request_t *req);
void salvo__request_finish_attempt(salvo_request_t *req, CURLcode rc);
/* An attempt ended: with a hedge running, the first response decides. */
void salvo__slot_finish(salvo__slot_t *slot, CURLcode rc);
void salvo__request_hedge(salvo_request_t *req);
void salvo__request_complete(salvo_request_t *req, int error);
void salvo__request_cancel_now(salvo_request_t *req);

/* attempt.c */
typedef struct {
  int error;   /* 0 or salvo_error_t */
  int reached; /* the request may have reached the server */
} salvo__outcome_t;

/* Pure: maps an attempt's end to an error class and "reached the server".
 * |stop_reason| is salvo's own reason for stopping it (0 if libcurl ended it),
 * |sent| whether PREREQFUNCTION ran, |pretransfer_us| CURLINFO_PRETRANSFER_TIME_T. */
salvo__outcome_t salvo__classify(CURLcode rc, long os_errno, int stop_reason, int sent,
                                 int64_t pretransfer_us);
/* CURLINFO_HTTP_VERSION as salvo reports it: 20, 11, 10, or 0 if unknown. */
int salvo__http_version(long curl_version);
int salvo__attempt_setup(salvo__slot_t *slot, salvo_request_t *req);
extern const char salvo__header_cap_detail[];
void salvo__attempt_arm_timer(salvo__slot_t *slot);
int salvo__slot_init_timer(salvo__slot_t *slot);

/* retry.c: pure decisions and backoff */
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
void salvo__retry_decide(const salvo_retry_policy_t *p, const salvo_attempt_info_t *a,
                         uint64_t streamed_bytes, uint64_t now_ms, uint64_t deadline_at_ms,
                         uint64_t prev_wait_ms, uint64_t *rng, salvo__decision_t *out);

/* retry_after.c: ms to wait from |now_unix_ms|, INT64_MAX if absurdly far,
 * -1 if |value| is absent or garbage. */
int64_t salvo__retry_after_parse(const char *value, int64_t now_unix_ms);

/* validate.c: pure input checks */
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

#endif /* SALVO_INTERNAL_H */
