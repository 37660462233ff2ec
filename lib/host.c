/* Hosts: the per-host table, queues and protection glue between the pure
 * state machines of protect.c and the engine. A host is scheme + host + port. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void mark_ready(salvo__host_t *host);
static void block(salvo__host_t *host, uint64_t wait_ms);

static uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = UINT64_C(14695981039346656037);
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= UINT64_C(1099511628211);
  }
  return h;
}

static int grow_table(salvo_engine_t *engine) {
  size_t size = engine->table_size ? engine->table_size * 2 : 16;
  salvo__host_t **t = calloc(size, sizeof(*t));
  if (t == NULL)
    return -1;
  for (size_t i = 0; i < engine->nhosts; i++) {
    salvo__host_t *h = engine->hosts[i];
    size_t k = (size_t)(h->hash & (size - 1));
    h->hnext = t[k];
    t[k] = h;
  }
  free(engine->host_table);
  engine->host_table = t;
  engine->table_size = size;
  return 0;
}

static void host_timer_cb(uv_timer_t *timer) {
  salvo__host_t *host = SALVO__CONTAINER_OF(timer, salvo__host_t, timer);
  salvo_engine_t *engine = timer->data;
  host->blocked_until_ms = 0;
  mark_ready(host);
  salvo__engine_pump(engine);
}

static void host_closed_cb(uv_handle_t *handle);

static void unready(salvo__host_t *h) {
  if (h->parked) {
    salvo__list_remove(&h->ready_node);
    h->parked = 0;
  } else if (salvo__list_linked(&h->ready_node)) {
    salvo_engine_t *engine = h->timer.data;
    salvo__fair_remove(&engine->lanes[h->lane].ready, &h->ready_node, h->ready_level);
  }
}

static int evictable(const salvo__host_t *h, uint64_t now) {
  return h->live == 0 && !h->pinned && !uv_is_active((const uv_handle_t *)&h->timer) &&
         h->bucket.paused_until_ms <= now && h->breaker.state == SALVO_CIRCUIT_CLOSED;
}

/* The least recently used idle host that holds nothing worth keeping, taken
 * out of the table; NULL if none. Paused hosts and open circuits go to the
 * back of the idle list: they are worth keeping until they clear. A few are
 * looked at, not all: past that the engine keeps one host more. */
static salvo__host_t *evict_one(salvo_engine_t *engine) {
  uint64_t now = uv_now(engine->loop);
  for (int tries = 0; tries < 8 && !salvo__list_empty(&engine->idle_hosts); tries++) {
    salvo__host_t *h = SALVO__CONTAINER_OF(engine->idle_hosts.next, salvo__host_t, idle_node);
    salvo__list_remove(&h->idle_node);
    if (!evictable(h, now)) {
      if (!h->pinned)
        salvo__list_push_back(&engine->idle_hosts, &h->idle_node);
      continue;
    }
    salvo__host_t **p = &engine->host_table[h->hash & (engine->table_size - 1)];
    while (*p != h)
      p = &(*p)->hnext;
    *p = h->hnext;
    /* The ready set drops a host lazily once its queue is empty (a
     * canceled or timed-out request): it may still be in it. */
    unready(h);
    engine->hosts_evicted++;
    if (h->share != NULL)
      salvo__slots_detach_share(engine, h->share); /* idle handles may hold it */
    uv_close((uv_handle_t *)&h->timer, host_closed_cb);
    return h;
  }
  return NULL;
}

void salvo__host_ref(salvo__host_t *host) {
  if (host->live++ == 0 && salvo__list_linked(&host->idle_node))
    salvo__list_remove(&host->idle_node);
}

void salvo__host_unref(salvo_engine_t *engine, salvo__host_t *host) {
  if (--host->live == 0 && !host->pinned)
    salvo__list_push_back(&engine->idle_hosts, &host->idle_node);
}

salvo__host_t *salvo__host_get(salvo_engine_t *engine, const char *url, int is_https) {
  char key[sizeof(((salvo_host_stats_t *)0)->host)];
  size_t n = salvo__host_key(url, is_https, key, sizeof(key));
  uint64_t hash = fnv1a(key, n);
  if (engine->table_size != 0) {
    for (salvo__host_t *h = engine->host_table[hash & (engine->table_size - 1)]; h != NULL;
         h = h->hnext)
      if (h->hash == hash && strcmp(h->stats.host, key) == 0)
        return h;
  }
  if (engine->nhosts == engine->hosts_cap) {
    size_t cap = engine->hosts_cap ? engine->hosts_cap * 2 : 8;
    salvo__host_t **a = realloc(engine->hosts, cap * sizeof(*a));
    if (a == NULL)
      return NULL;
    engine->hosts = a;
    engine->hosts_cap = cap;
  }
  if (engine->nhosts + 1 > engine->table_size / 2 && grow_table(engine) != 0)
    return NULL;
  salvo__host_t *h = calloc(1, sizeof(*h));
  if (h == NULL)
    return NULL;
  /* Past max_hosts, the new host takes an evicted one's index. */
  salvo__host_t *gone = NULL;
  if (engine->max_hosts != 0 && engine->nhosts >= engine->max_hosts)
    gone = evict_one(engine);
  memcpy(h->stats.host, key, n + 1);
  h->hash = hash;
  h->index = gone != NULL ? gone->index : engine->nhosts;
  salvo__list_init(&h->queue);
  salvo__list_init(&h->ready_node);
  salvo__list_init(&h->idle_node);
  uint64_t now = uv_now(engine->loop);
  h->policy = engine->host_policy;
  h->lane = salvo__lane_for(engine, strncmp(key, "https:", 6) == 0);
  salvo__limiter_init(&h->limiter, &h->policy);
  salvo__bucket_init(&h->bucket, &h->policy, now);
  salvo__window_init(&h->budget, h->policy.budget_window_ms);
  salvo__window_init(&h->sends, 1000);
  salvo__breaker_init(&h->breaker, &h->policy);
  h->lat_rotated_ms = now;
  uv_timer_init(engine->loop, &h->timer); /* cannot fail */
  h->timer.data = engine;
  engine->live_handles++;
  if (gone != NULL)
    engine->hosts[h->index] = h;
  else
    engine->hosts[engine->nhosts++] = h;
  /* idle until a request takes it (salvo__host_ref) */
  salvo__list_push_back(&engine->idle_hosts, &h->idle_node);
  size_t k = (size_t)(hash & (engine->table_size - 1));
  h->hnext = engine->host_table[k];
  engine->host_table[k] = h;
  return h;
}

int salvo__lane_for(const salvo_engine_t *engine, int is_https) {
  return (engine->http_version == SALVO_HTTP_AUTO && is_https) ||
                 engine->http_version == SALVO_HTTP_2
             ? SALVO__LANE_H2
             : SALVO__LANE_H1;
}

/* ------------------------------------------------------------ scheduling
 *
 * Each lane keeps its ready hosts in a fair-share set (protect.c) at the
 * level of their in-flight count. A host is in it while it has queued
 * requests, is not held by its timer (bucket, pause, circuit) and is below
 * its limit; its level moves as its attempts come and go. The pump takes
 * the host with the fewest in flight over the lanes that have room. Hosts
 * whose queue emptied or whose limit fell are dropped when met. */

/* Requests one of the host's connections carries: its streams once it is
 * known to speak HTTP/2, else one. Before its first answer it may turn out
 * to be HTTP/1.1 (ALPN), and libcurl would queue what its connections
 * cannot carry. */
static long streams_of(const salvo__host_t *host) {
  const salvo_engine_t *engine = host->timer.data;
  return host->lane == SALVO__LANE_H2 && host->http_version == 20 ? engine->max_streams : 1;
}

unsigned salvo__host_limit(const salvo__host_t *host) {
  const salvo_engine_t *engine = host->timer.data;
  unsigned adaptive = host->policy.adaptive_concurrency ? salvo__limiter_limit(&host->limiter) : 0;
  return salvo__inflight_cap(engine->lanes[host->lane].host_conns, streams_of(host),
                             host->policy.max_in_flight, adaptive);
}

static int below_limit(const salvo__host_t *host) {
  unsigned cap = salvo__host_limit(host);
  return cap == 0 || host->in_flight < cap;
}

/* Whether one more request of the host fits its lane's connection cap:
 * on a connection it already has (a free HTTP/2 stream), or on a new one. */
static int lane_has_room(const salvo__host_t *host) {
  const salvo_engine_t *engine = host->timer.data;
  const salvo__lane_t *lane = &engine->lanes[host->lane];
  return lane->max_conns == 0 || host->in_flight % (unsigned long)streams_of(host) != 0 ||
         lane->conns_used < lane->max_conns;
}

/* Keeps host->conns_used and its lane's sum in step with in_flight and the
 * host's streams per connection. */
static void count_conns(salvo__host_t *host) {
  salvo_engine_t *engine = host->timer.data;
  unsigned long s = (unsigned long)streams_of(host);
  unsigned need = (unsigned)((host->in_flight + s - 1) / s);
  salvo__lane_t *lane = &engine->lanes[host->lane];
  lane->conns_used = lane->conns_used - host->conns_used + need;
  host->conns_used = need;
}

static int host_has_room(const salvo__host_t *host) {
  return below_limit(host) && lane_has_room(host);
}

static void mark_ready(salvo__host_t *host) {
  salvo_engine_t *engine = host->timer.data;
  if (host->blocked_until_ms != 0 || salvo__list_empty(&host->queue) ||
      salvo__list_linked(&host->ready_node) || !below_limit(host))
    return;
  host->ready_level = salvo__fair_add(&engine->lanes[host->lane].ready, &host->ready_node,
                                      host->in_flight);
}

/* A lane at its connection cap parks the hosts that would need a new
 * connection; one comes back for each connection it has to spare. */
static void park(salvo__host_t *host) {
  salvo_engine_t *engine = host->timer.data;
  unready(host);
  salvo__list_push_back(&engine->lanes[host->lane].parked, &host->ready_node);
  host->parked = 1;
}

static void unpark_one(salvo__lane_t *lane) {
  salvo__host_t *host = SALVO__CONTAINER_OF(lane->parked.next, salvo__host_t, ready_node);
  unready(host);
  mark_ready(host);
}

salvo__host_t *salvo__host_next_ready(salvo_engine_t *engine) {
  for (;;) {
    salvo__list_t *best = NULL;
    size_t best_level = 0;
    for (int k = 0; k < SALVO__LANES; k++) {
      int i = (engine->lane_turn + k) % SALVO__LANES;
      salvo__lane_t *lane = &engine->lanes[i];
      if (!salvo__list_empty(&lane->parked) && lane->conns_used < lane->max_conns)
        unpark_one(lane);
      size_t level;
      salvo__list_t *n = salvo__fair_first(&lane->ready, &level);
      if (n != NULL && (best == NULL || level < best_level)) {
        best = n;
        best_level = level;
      }
    }
    if (best == NULL)
      return NULL;
    salvo__host_t *host = SALVO__CONTAINER_OF(best, salvo__host_t, ready_node);
    if (salvo__list_empty(&host->queue) || !below_limit(host)) {
      unready(host); /* its queued requests ended, or its limit fell: dropped when met */
      continue;
    }
    if (!lane_has_room(host)) {
      park(host);
      continue;
    }
    engine->lane_turn = (host->lane + 1) % SALVO__LANES;
    return host;
  }
}

unsigned salvo__host_attempt_added(salvo__host_t *host) {
  host->in_flight++;
  count_conns(host);
  unready(host); /* back in at the tail of the level above: round robin among equals */
  mark_ready(host);
  return host->in_flight;
}

void salvo__host_attempt_removed(salvo__host_t *host) {
  host->in_flight--;
  count_conns(host);
  if (!host->parked) { /* a parked host waits for its lane, not for itself */
    unready(host);
    mark_ready(host);
  }
}

void salvo__host_enqueue(salvo__host_t *host, salvo__list_t *node, int front) {
  if (front)
    salvo__list_push_front(&host->queue, node);
  else
    salvo__list_push_back(&host->queue, node);
  mark_ready(host);
}

salvo__list_t *salvo__host_queue_head(const salvo__host_t *host) {
  return salvo__list_empty(&host->queue) ? NULL : host->queue.next;
}

static size_t queue_length(const salvo__host_t *h) {
  size_t n = 0;
  for (const salvo__list_t *q = h->queue.next; q != &h->queue; q = q->next)
    n++;
  return n;
}

size_t salvo__hosts_queued(const salvo_engine_t *engine) {
  size_t n = 0;
  for (size_t i = 0; i < engine->nhosts; i++)
    n += queue_length(engine->hosts[i]);
  return n;
}

void salvo__host_count_request(salvo__host_t *host, uint64_t now) {
  host->stats.requests++;
  salvo__window_add(&host->budget, now, 1, 0);
}

void salvo__host_count_outcome(salvo__host_t *host, int error, long status) {
  if (error == 0 && status < 400) {
    host->stats.successes++;
  } else {
    host->stats.failures++;
    host->stats.by_error[salvo__err_index(error)]++;
  }
}

int salvo__host_admit(salvo__host_t *host, uint64_t now, uint64_t deadline_at, uint64_t queue_at) {
  salvo_engine_t *engine = host->timer.data;
  const salvo_host_policy_t *p = &host->policy;
  int ev = 0;
  int admit = salvo__breaker_admit(&host->breaker, p, now, &ev);
  salvo__host_event(engine, host, ev);
  if (admit == SALVO__REJECT) {
    host->stats.circuit_rejected++;
    return SALVO__NO_CIRCUIT;
  }
  uint64_t wait = salvo__bucket_wait(&host->bucket, now);
  if (wait > 0) {
    if (admit == SALVO__ADMIT_PROBE)
      salvo__breaker_release(&host->breaker, 1); /* the probe goes later */
    uint64_t until = salvo__add_ms(now, wait);
    if ((deadline_at != 0 && until >= deadline_at) || (queue_at != 0 && until >= queue_at))
      return SALVO__NO_RATE;
    block(host, wait);
    return SALVO__HOLD;
  }
  salvo__bucket_take(&host->bucket, now);
  salvo__window_add(&host->sends, now, 1, 0);
  return admit == SALVO__ADMIT_PROBE ? SALVO__GO_PROBE : SALVO__GO;
}

int salvo__host_allow_retry(salvo__host_t *host, uint64_t now) {
  if (!salvo__budget_allows(&host->budget, &host->policy, now)) {
    host->stats.budget_refused++;
    return 0;
  }
  host->stats.retries++;
  salvo__window_add(&host->budget, now, 0, 1);
  return 1;
}

int salvo__host_may_hedge(salvo__host_t *host, uint64_t now) {
  /* the budget's window moves on to |now| as it is read */
  return host_has_room(host) && salvo__budget_allows(&host->budget, &host->policy, now);
}

void salvo__host_count_hedge(salvo__host_t *host, uint64_t now) {
  host->stats.hedges++;
  salvo__window_add(&host->budget, now, 0, 1);
  salvo__window_add(&host->sends, now, 1, 0);
}

CURLSH *salvo__host_share(salvo__host_t *host) {
  if (host->share == NULL) {
    CURLSH *sh = curl_share_init();
    if (sh == NULL || curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
      curl_share_cleanup(sh);
      return NULL; /* the handle's own session cache then */
    }
    host->share = sh;
  }
  return host->share;
}

static void block(salvo__host_t *host, uint64_t wait_ms) {
  salvo_engine_t *engine = host->timer.data;
  unready(host);
  host->blocked_until_ms = salvo__add_ms(uv_now(engine->loop), wait_ms);
  uv_timer_start(&host->timer, host_timer_cb, wait_ms, 0);
}

void salvo__host_event(salvo_engine_t *engine, salvo__host_t *host, int type) {
  if (engine->host_event_cb == NULL || type == 0)
    return;
  salvo_host_event_t ev;
  ev.type = (salvo_host_event_type_t)type;
  ev.host = host->stats.host;
  ev.rate = host->bucket.rate;
  ev.until_ms = type == SALVO_HOST_CIRCUIT_OPENED ? host->breaker.open_until_ms
                : type == SALVO_HOST_PAUSED       ? host->bucket.paused_until_ms
                                                  : 0;
  ev.limit = salvo__host_limit(host);
  engine->host_event_cb(engine, &ev, engine->host_event_data);
}

static void host_closed_cb(uv_handle_t *handle) {
  salvo__host_t *host = SALVO__CONTAINER_OF((uv_timer_t *)handle, salvo__host_t, timer);
  salvo_engine_t *engine = handle->data;
  curl_share_cleanup(host->share); /* NULL is a no-op; no handle holds it any more */
  free(host->lat_all);
  free(host->lat_recent);
  free(host);
  salvo__engine_handle_closed(engine);
}

void salvo__hosts_free(salvo_engine_t *engine) {
  for (size_t i = 0; i < engine->nhosts; i++)
    uv_close((uv_handle_t *)&engine->hosts[i]->timer, host_closed_cb);
  free(engine->hosts);
  free(engine->host_table);
  engine->hosts = NULL;
  engine->host_table = NULL;
  engine->nhosts = engine->hosts_cap = engine->table_size = 0;
}

/* Failures for the circuit breaker: the host (or the path to it) is in
 * trouble. 4xx, caller-side stops and client limits are not its fault. */
static int is_failure(int error, long status) {
  switch (error) {
  case 0:
    return status == 500 || status == 502 || status == 503 || status == 504;
  case SALVO_EDNS:
  case SALVO_ECONNREFUSED:
  case SALVO_ECONNECT:
  case SALVO_ECONNTIMEOUT:
  case SALVO_ETLS:
  case SALVO_ECLOSED:
  case SALVO_ERESET:
  case SALVO_ETRUNCATED:
  case SALVO_EIDLE:
  case SALVO_EATTEMPT:
  case SALVO_EHTTP2:
  case SALVO_EPROTO:
    return 1;
  default:
    return 0;
  }
}

/* A kept-alive connection to the host with this hash closed without
 * warning. Hosts are found by hash only: a colliding host learns it too,
 * which costs it fresh connections for a while, nothing else. */
void salvo__host_saw_silent_close(salvo_engine_t *engine, uint64_t hash) {
  if (engine->table_size == 0)
    return;
  uint64_t now = uv_now(engine->loop);
  for (salvo__host_t *h = engine->host_table[hash & (engine->table_size - 1)]; h != NULL;
       h = h->hnext)
    if (h->hash == hash)
      h->silent_close_ms = now != 0 ? now : 1;
}

int salvo__host_wants_fresh(const salvo__host_t *host, uint64_t now) {
  return host->silent_close_ms != 0 && now - host->silent_close_ms < 60000;
}

int salvo__host_saw_version(salvo__host_t *host, int version) {
  if (version == 0 || version == host->http_version)
    return 0;
  host->http_version = version;
  count_conns(host); /* what its connections carry changed */
  mark_ready(host);
  return 1;
}

int salvo__host_speaks_h2(const salvo__host_t *host, int lane) {
  return lane == SALVO__LANE_H2 && host->http_version != 11 && host->http_version != 10;
}

int salvo__host_allow_resend(salvo__host_t *host, uint64_t now) {
  if (!salvo__budget_allows(&host->budget, &host->policy, now)) {
    host->stats.budget_refused++;
    return 0;
  }
  salvo__window_add(&host->budget, now, 0, 1);
  salvo__window_add(&host->sends, now, 1, 0);
  return 1;
}

void salvo__host_count_resend(salvo__host_t *host) { host->stats.resends++; }

/* Signs that the host has more than it can serve: the adaptive limit falls. */
static int overloaded(int error, long status) {
  return (error == 0 && (status == 429 || status == 503)) || error == SALVO_EIDLE ||
         error == SALVO_EATTEMPT || error == SALVO_ECONNTIMEOUT;
}

/* Latency of an answer: for stats, and for the hedge delay's p95. */
static void record_latency(salvo__host_t *host, uint64_t now, uint64_t us) {
  salvo_engine_t *engine = host->timer.data;
  salvo__lat_add(&engine->latency, us); /* the engine's, over all hosts */
  if (host->lat_all == NULL)
    host->lat_all = calloc(1, sizeof(*host->lat_all));
  if (host->lat_all != NULL) /* out of memory: stats go without latency */
    salvo__lat_add(host->lat_all, us);
  if (host->policy.hedge_p95 && host->lat_recent == NULL)
    host->lat_recent = calloc(2, sizeof(*host->lat_recent));
  if (host->lat_recent != NULL) {
    if (now - host->lat_rotated_ms >= 10000) {
      host->lat_recent[1] = host->lat_recent[0];
      memset(&host->lat_recent[0], 0, sizeof(host->lat_recent[0]));
      host->lat_rotated_ms = now;
    }
    salvo__lat_add(&host->lat_recent[0], us);
  }
}

/* The adaptive concurrency limit learns from answers and overload. */
static void adapt_limit(salvo__host_t *host, const salvo__attempt_end_t *end, uint64_t now,
                        int error, long status) {
  salvo_engine_t *engine = host->timer.data;
  const salvo_host_policy_t *p = &host->policy;
  int drop = overloaded(error, status);
  if (!p->adaptive_concurrency || error == SALVO_ECANCELED || error == SALVO_EDEADLINE ||
      !(drop || (error == 0 && status > 0)))
    return;
  /* the event says when the host's limit moves, not when an adaptive
   * limit above its connection cap does */
  unsigned before = salvo__host_limit(host);
  /* Latency to the first byte: the server's queueing shows there; the
   * body's download time would make a large answer look like overload. */
  uint64_t us = end->ttfb_us > 0 ? end->ttfb_us : end->timings.total_us;
  if (salvo__limiter_sample(&host->limiter, p, now, us, end->host_in_flight, drop) &&
      salvo__host_limit(host) != before) {
    mark_ready(host); /* it may have room again */
    salvo__host_event(engine, host, SALVO_HOST_LIMIT_CHANGED);
  }
}

/* The breaker's verdict on the attempt; returns whether the request still
 * holds the half-open probe. */
static int breaker_verdict(salvo__host_t *host, uint64_t now, int error, long status, int probe,
                           int goes_on) {
  salvo_engine_t *engine = host->timer.data;
  if (error != SALVO_ECANCELED && error != SALVO_EDEADLINE) {
    int ev = salvo__breaker_record(&host->breaker, &host->policy, now, is_failure(error, status),
                                   probe, &engine->rng);
    salvo__host_event(engine, host, ev);
    return 0;
  }
  if (goes_on)
    return probe; /* with a hedge still running, the probe is the hedge's to answer */
  /* Canceled, or out of the caller's time: no verdict on the host. Kept by
   * a half-open circuit, the probe would hold it half open for good and fail
   * every later request fast; the next request probes instead. */
  salvo__breaker_release(&host->breaker, probe);
  return 0;
}

/* AIMD on 429s and successes; a 429 or 503 that names a wait pauses the host. */
static void rate_and_pause(salvo__host_t *host, const salvo__attempt_end_t *end, uint64_t now,
                           long status) {
  salvo_engine_t *engine = host->timer.data;
  const salvo_host_policy_t *p = &host->policy;
  if (status == 429) {
    host->stats.limited++;
    uint64_t sent, unused;
    salvo__window_sum(&host->sends, now, &sent, &unused);
    double recent = (double)sent; /* attempts in the last second */
    if (salvo__bucket_on_limited(&host->bucket, p, now, end->sent_at_ms, recent))
      salvo__host_event(engine, host, SALVO_HOST_RATE_CHANGED);
  } else if (status < 400) {
    salvo__bucket_on_success(&host->bucket, p, now);
  }
  if (!p->pause_on_retry_after || (status != 429 && status != 503) || end->pause_ms <= 0)
    return;
  uint64_t wait = (uint64_t)end->pause_ms < p->max_pause_ms ? (uint64_t)end->pause_ms : p->max_pause_ms;
  if (salvo__bucket_pause(&host->bucket, salvo__add_ms(now, wait)))
    salvo__host_event(engine, host, SALVO_HOST_PAUSED);
}

int salvo__host_after_attempt(salvo__host_t *host, const salvo__attempt_end_t *end, int probe,
                              int goes_on) {
  salvo_engine_t *engine = host->timer.data;
  uint64_t now = uv_now(engine->loop);
  int error = end->outcome.error;
  long status = error == 0 ? end->status : 0;
  host->stats.attempts++;
  if (error == 0 && status > 0)
    record_latency(host, now, end->timings.total_us);
  adapt_limit(host, end, now, error, status);
  probe = breaker_verdict(host, now, error, status, probe, goes_on);
  if (error == 0 && status > 0)
    rate_and_pause(host, end, now, status);
  return probe;
}

size_t salvo_engine_host_count(const salvo_engine_t *engine) {
  if (engine == NULL || !salvo__engine_live(engine))
    return 0;
  SALVO__ASSERT_LOOP_THREAD(engine);
  return engine->nhosts;
}

int salvo_engine_host_stats(const salvo_engine_t *engine, size_t i, salvo_host_stats_t *out) {
  if (engine == NULL || out == NULL || !salvo__engine_live(engine))
    return SALVO_EINVAL;
  SALVO__ASSERT_LOOP_THREAD(engine);
  if (i >= engine->nhosts)
    return SALVO_EINVAL;
  const salvo__host_t *h = engine->hosts[i];
  uint64_t now = uv_now(engine->loop);
  *out = h->stats;
  out->rate = h->bucket.rate;
  out->circuit = h->breaker.state;
  out->paused_ms = h->bucket.paused_until_ms > now ? h->bucket.paused_until_ms - now : 0;
  out->queued = queue_length(h);
  out->in_flight = h->in_flight;
  out->limit = salvo__host_limit(h);
  out->limit_min = out->limit_max = 0;
  if (h->policy.adaptive_concurrency) {
    /* the adaptive range, within what the host's connections carry */
    unsigned fixed = salvo__inflight_cap(engine->lanes[h->lane].host_conns, streams_of(h),
                                         h->policy.max_in_flight, 0);
    out->limit_min = fixed != 0 && fixed < h->limiter.lowest ? fixed : h->limiter.lowest;
    out->limit_max = fixed != 0 && fixed < h->limiter.highest ? fixed : h->limiter.highest;
  }
  if (h->lat_all != NULL) {
    out->p50_us = salvo__lat_pct(h->lat_all, 0.50);
    out->p90_us = salvo__lat_pct(h->lat_all, 0.90);
    out->p99_us = salvo__lat_pct(h->lat_all, 0.99);
    out->max_us = h->lat_all->max;
  } else {
    out->p50_us = out->p90_us = out->p99_us = out->max_us = 0;
  }
  return 0;
}

/* The hedge delay for this host: its running p95 when asked for and known. */
uint64_t salvo__host_hedge_delay(const salvo__host_t *host) {
  const salvo_host_policy_t *p = &host->policy;
  if (p->hedge_p95 && host->lat_recent != NULL) {
    const salvo__lat_t *l = host->lat_recent[1].count >= 20 ? &host->lat_recent[1] : &host->lat_recent[0];
    if (l->count >= 20) {
      uint64_t ms = (salvo__lat_pct(l, 0.95) + 999) / 1000;
      return ms > 0 ? ms : 1;
    }
  }
  return p->hedge_delay_ms;
}

int salvo_engine_set_host_policy(salvo_engine_t *engine, const char *origin,
                                 const salvo_host_policy_t *policy) {
  int is_https = 0;
  if (engine != NULL && salvo__engine_live(engine))
    SALVO__ASSERT_LOOP_THREAD(engine);
  if (engine == NULL || policy == NULL || !salvo__engine_live(engine) ||
      salvo__host_policy_check(policy) != 0 || salvo__parse_url(origin, &is_https, NULL) != 0)
    return SALVO_EINVAL;
  if (engine->closing) /* as salvo_request_new() and salvo_request_submit() say it */
    return SALVO_ECLOSING;
  salvo__host_t *h = salvo__host_get(engine, origin, is_https);
  if (h == NULL)
    return SALVO_ENOMEM;
  h->pinned = 1; /* a policy of its own is never forgotten */
  if (salvo__list_linked(&h->idle_node))
    salvo__list_remove(&h->idle_node);
  uint64_t now = uv_now(engine->loop);
  int windows_changed = policy->budget_window_ms != h->policy.budget_window_ms ||
                        policy->breaker_window_ms != h->policy.breaker_window_ms;
  h->policy = *policy;
  /* The bucket keeps its tokens and pause; the rate is the new one. */
  h->bucket.rate = policy->rate;
  h->bucket.burst = policy->burst;
  h->bucket.last_ms = now;
  if (windows_changed) {
    salvo__window_init(&h->budget, policy->budget_window_ms);
    salvo__breaker_init(&h->breaker, policy);
  }
  if (!policy->breaker)
    salvo__breaker_init(&h->breaker, policy);
  if (policy->adaptive_concurrency)
    salvo__limiter_init(&h->limiter, policy); /* starts again from adaptive_initial */
  mark_ready(h); /* a higher limit may let it send now; a lower one is met later */
  salvo__engine_schedule(engine); /* and the pump must run for it to send */
  return 0;
}
