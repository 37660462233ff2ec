/* Per-host protection state machines: token bucket with AIMD and pauses,
 * sliding-window counters (retry budget), circuit breaker, latency record.
 * Pure: the clock (loop milliseconds) and the random state come in as
 * arguments, so unit tests drive them with an injected clock. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pure.h"

void salvo_host_policy_init(salvo_host_policy_t *p) {
  if (p == NULL)
    return;
  memset(p, 0, sizeof(*p));
  p->decrease = 0.5;
  p->increase = 1.0;
  p->rate_floor = 1.0;
  p->pause_on_retry_after = 1;
  p->max_pause_ms = 60000;
  p->reset_epoch_above = 1000000000;
  p->budget = 1;
  p->budget_ratio = 0.2;
  p->budget_floor = 10.0;
  p->budget_window_ms = 10000;
  p->breaker_consecutive = 5;
  p->breaker_ratio = 0.5;
  p->breaker_min_requests = 20;
  p->breaker_window_ms = 10000;
  p->breaker_break_ms = 5000;
  p->breaker_max_break_ms = 60000;
  p->adaptive_initial = 10;
  p->adaptive_min = 1;
  p->adaptive_tolerance = 1.5;
}

int salvo__host_policy_check(const salvo_host_policy_t *p) {
  if (!(p->rate >= 0) || !(p->burst >= 0) || !(p->decrease > 0 && p->decrease < 1) ||
      !(p->increase >= 0) || !(p->rate_floor > 0) || !(p->rate_ceiling >= 0) ||
      !(p->budget_ratio >= 0) || !(p->budget_floor >= 0) || p->budget_window_ms == 0 ||
      p->breaker_consecutive == 0 || !(p->breaker_ratio > 0 && p->breaker_ratio <= 1) ||
      p->breaker_window_ms == 0 || p->breaker_break_ms == 0 ||
      p->breaker_max_break_ms < p->breaker_break_ms || p->reset_epoch_above < 0 ||
      !(p->adaptive_tolerance >= 1.0 && p->adaptive_tolerance <= 100.0) ||
      (p->adaptive_max != 0 && p->adaptive_min > p->adaptive_max))
    return SALVO_EINVAL;
  return 0;
}

const char *salvo_circuit_name(salvo_circuit_t state) {
  switch (state) {
  case SALVO_CIRCUIT_CLOSED:
    return "closed";
  case SALVO_CIRCUIT_OPEN:
    return "open";
  case SALVO_CIRCUIT_HALF_OPEN:
    return "half_open";
  }
  return "unknown";
}

/* ------------------------------------------------------------ bucket */

static double bucket_size(const salvo__bucket_t *b) { return b->burst > 0 ? b->burst : fmax(1.0, b->rate); }

void salvo__bucket_init(salvo__bucket_t *b, const salvo_host_policy_t *p, uint64_t now) {
  memset(b, 0, sizeof(*b));
  b->rate = p->rate;
  b->burst = p->burst;
  b->tokens = bucket_size(b);
  b->last_ms = now;
}

static void refill(salvo__bucket_t *b, uint64_t now) {
  if (now > b->last_ms) {
    b->tokens = fmin(bucket_size(b), b->tokens + b->rate * (double)(now - b->last_ms) / 1000.0);
    b->last_ms = now;
  }
}

uint64_t salvo__bucket_wait(salvo__bucket_t *b, uint64_t now) {
  if (now < b->paused_until_ms)
    return b->paused_until_ms - now;
  if (b->rate <= 0)
    return 0;
  refill(b, now);
  if (b->tokens >= 1.0)
    return 0;
  /* a rate of 1e-300 is valid: the wait then does not fit, and stays "never" */
  uint64_t ms = salvo__ms_from_double(ceil((1.0 - b->tokens) * 1000.0 / b->rate));
  return ms > 0 ? ms : 1;
}

void salvo__bucket_take(salvo__bucket_t *b, uint64_t now) {
  if (b->rate <= 0)
    return;
  refill(b, now);
  b->tokens -= 1.0;
}

int salvo__bucket_on_limited(salvo__bucket_t *b, const salvo_host_policy_t *p, uint64_t now,
                             uint64_t sent_at_ms, double recent_rate) {
  if (!p->adaptive)
    return 0;
  /* Requests sent before the last cut saw the old rate: one cut per round. */
  if (b->last_cut_ms != 0 && sent_at_ms <= b->last_cut_ms)
    return 0;
  double from = b->rate > 0 ? b->rate : recent_rate;
  double to = fmax(p->rate_floor, from * p->decrease);
  refill(b, now);
  b->rate = to;
  b->tokens = fmin(b->tokens, bucket_size(b));
  if (b->tokens > 0)
    b->tokens = 0; /* the server just said "too many": no burst right after */
  b->last_cut_ms = now;
  return 1;
}

void salvo__bucket_on_success(salvo__bucket_t *b, const salvo_host_policy_t *p, uint64_t now) {
  if (!p->adaptive || b->rate <= 0)
    return;
  refill(b, now);
  double r = b->rate + p->increase / b->rate;
  if (p->rate_ceiling > 0 && r > p->rate_ceiling)
    r = p->rate_ceiling;
  b->rate = r;
}

int salvo__bucket_pause(salvo__bucket_t *b, uint64_t until_ms) {
  if (until_ms <= b->paused_until_ms)
    return 0;
  b->paused_until_ms = until_ms;
  return 1;
}

/* ------------------------------------------------------------ window */

void salvo__window_init(salvo__window_t *w, uint64_t window_ms) {
  memset(w, 0, sizeof(*w));
  w->slot_ms = window_ms / SALVO__WIN > 0 ? window_ms / SALVO__WIN : 1;
}

/* Clears the buckets that fell out of the window since the last call. */
static void advance(salvo__window_t *w, uint64_t now) {
  uint64_t slot = now / w->slot_ms;
  if (slot <= w->slot)
    return;
  uint64_t gone = slot - w->slot;
  if (gone > SALVO__WIN)
    gone = SALVO__WIN;
  for (uint64_t i = 1; i <= gone; i++) {
    unsigned k = (unsigned)((w->slot + i) % SALVO__WIN);
    w->a[k] = 0;
    w->b[k] = 0;
  }
  w->slot = slot;
}

void salvo__window_add(salvo__window_t *w, uint64_t now, uint32_t da, uint32_t db) {
  advance(w, now);
  unsigned k = (unsigned)(w->slot % SALVO__WIN);
  w->a[k] += da;
  w->b[k] += db;
}

void salvo__window_sum(salvo__window_t *w, uint64_t now, uint64_t *a, uint64_t *b) {
  advance(w, now);
  uint64_t sa = 0, sb = 0;
  for (unsigned i = 0; i < SALVO__WIN; i++) {
    sa += w->a[i];
    sb += w->b[i];
  }
  *a = sa;
  *b = sb;
}

int salvo__budget_allows(salvo__window_t *w, const salvo_host_policy_t *p, uint64_t now) {
  if (!p->budget)
    return 1;
  uint64_t requests, retries;
  salvo__window_sum(w, now, &requests, &retries);
  double allowed = p->budget_ratio * (double)requests +
                   p->budget_floor * (double)p->budget_window_ms / 1000.0;
  return (double)retries + 1.0 <= allowed;
}

/* ----------------------------------------------------------- breaker */

void salvo__breaker_init(salvo__breaker_t *br, const salvo_host_policy_t *p) {
  memset(br, 0, sizeof(*br));
  salvo__window_init(&br->win, p->breaker_window_ms);
  br->break_ms = p->breaker_break_ms;
}

int salvo__breaker_admit(salvo__breaker_t *br, const salvo_host_policy_t *p, uint64_t now,
                         int *event) {
  *event = 0;
  if (!p->breaker || br->state == SALVO_CIRCUIT_CLOSED)
    return SALVO__ADMIT;
  if (br->state == SALVO_CIRCUIT_OPEN) {
    if (now < br->open_until_ms)
      return SALVO__REJECT;
    br->state = SALVO_CIRCUIT_HALF_OPEN;
    br->probe_out = 0;
    *event = SALVO_HOST_CIRCUIT_HALF_OPEN;
  }
  if (br->probe_out)
    return SALVO__REJECT;
  br->probe_out = 1;
  return SALVO__ADMIT_PROBE;
}

static void open_circuit(salvo__breaker_t *br, uint64_t now, uint64_t *rng) {
  /* +/-20% so that many clients do not come back at the same moment. */
  double jitter = 0.8 + 0.4 * (double)(salvo__rng_next(rng) >> 11) / 9007199254740992.0;
  br->state = SALVO_CIRCUIT_OPEN;
  br->open_until_ms = salvo__add_ms(now, salvo__ms_from_double((double)br->break_ms * jitter));
  br->probe_out = 0;
}

void salvo__breaker_release(salvo__breaker_t *br, int probe) {
  if (probe && br->state == SALVO_CIRCUIT_HALF_OPEN)
    br->probe_out = 0;
}

int salvo__breaker_record(salvo__breaker_t *br, const salvo_host_policy_t *p, uint64_t now,
                          int failure, int probe, uint64_t *rng) {
  if (!p->breaker)
    return 0;
  if (br->state == SALVO_CIRCUIT_HALF_OPEN && probe) {
    br->probe_out = 0;
    if (failure) {
      uint64_t next = salvo__add_ms(br->break_ms, br->break_ms);
      br->break_ms = next < p->breaker_max_break_ms ? next : p->breaker_max_break_ms;
      open_circuit(br, now, rng);
      return SALVO_HOST_CIRCUIT_OPENED;
    }
    br->state = SALVO_CIRCUIT_CLOSED;
    br->consecutive = 0;
    br->break_ms = p->breaker_break_ms;
    salvo__window_init(&br->win, p->breaker_window_ms);
    return SALVO_HOST_CIRCUIT_CLOSED;
  }
  if (br->state != SALVO_CIRCUIT_CLOSED)
    return 0; /* attempts that were in flight when it opened */
  salvo__window_add(&br->win, now, 1, failure ? 1 : 0);
  br->consecutive = failure ? br->consecutive + 1 : 0;
  uint64_t attempts, failures;
  salvo__window_sum(&br->win, now, &attempts, &failures);
  if (br->consecutive >= p->breaker_consecutive ||
      (attempts >= p->breaker_min_requests &&
       (double)failures >= p->breaker_ratio * (double)attempts)) {
    open_circuit(br, now, rng);
    return SALVO_HOST_CIRCUIT_OPENED;
  }
  return 0;
}

/* ----------------------------------------------------------- latency */

/* Log-linear buckets: values below 16 us exactly, then 16 sub-buckets per
 * power of two (about 6% wide). */
static unsigned lat_index(uint64_t us) {
  if (us < 16)
    return (unsigned)us;
  unsigned e = 63u - (unsigned)__builtin_clzll(us); /* >= 4 */
  unsigned sub = (unsigned)((us >> (e - 4)) & 15u);
  unsigned i = 16u + (e - 4u) * 16u + sub;
  return i < SALVO__LAT_BUCKETS ? i : SALVO__LAT_BUCKETS - 1;
}

static uint64_t lat_value(unsigned i) {
  if (i < 16)
    return i;
  unsigned e = (i - 16u) / 16u + 4u, sub = (i - 16u) % 16u;
  uint64_t lo = ((uint64_t)(16u + sub)) << (e - 4u);
  uint64_t width = (uint64_t)1 << (e - 4u);
  return lo + width / 2; /* the middle of the bucket */
}

void salvo__lat_add(salvo__lat_t *l, uint64_t us) {
  l->n[lat_index(us)]++;
  l->count++;
  if (us > l->max)
    l->max = us;
}

uint64_t salvo__lat_pct(const salvo__lat_t *l, double q) {
  if (l->count == 0)
    return 0;
  uint64_t rank = (uint64_t)ceil(q * (double)l->count);
  if (rank < 1)
    rank = 1;
  if (rank >= l->count)
    return l->max;
  uint64_t seen = 0;
  for (unsigned i = 0; i < SALVO__LAT_BUCKETS; i++) {
    seen += l->n[i];
    if (seen >= rank) {
      uint64_t v = lat_value(i);
      return v < l->max ? v : l->max;
    }
  }
  return l->max;
}

/* ------------------------------------------------------------ fair share */

int salvo__fair_init(salvo__fair_t *f, size_t nlevels) {
  memset(f, 0, sizeof(*f));
  if (nlevels == 0)
    nlevels = 1;
  size_t words = (nlevels + 63) / 64;
  f->level = malloc(nlevels * sizeof(*f->level));
  f->bits = calloc(words, sizeof(*f->bits));
  if (f->level == NULL || f->bits == NULL) {
    salvo__fair_free(f);
    return -1;
  }
  for (size_t i = 0; i < nlevels; i++)
    salvo__list_init(&f->level[i]);
  f->nlevels = nlevels;
  f->lo = words;
  return 0;
}

void salvo__fair_free(salvo__fair_t *f) {
  free(f->level);
  free(f->bits);
  f->level = NULL;
  f->bits = NULL;
  f->nlevels = 0;
}

size_t salvo__fair_add(salvo__fair_t *f, salvo__list_t *node, size_t level) {
  if (level >= f->nlevels)
    level = f->nlevels - 1;
  salvo__list_push_back(&f->level[level], node);
  f->bits[level / 64] |= UINT64_C(1) << (level % 64);
  if (level / 64 < f->lo)
    f->lo = level / 64;
  f->count++;
  return level;
}

void salvo__fair_remove(salvo__fair_t *f, salvo__list_t *node, size_t level) {
  salvo__list_remove(node);
  if (salvo__list_empty(&f->level[level]))
    f->bits[level / 64] &= ~(UINT64_C(1) << (level % 64));
  f->count--;
}

salvo__list_t *salvo__fair_first(salvo__fair_t *f, size_t *level) {
  size_t words = (f->nlevels + 63) / 64;
  for (; f->lo < words; f->lo++) {
    uint64_t w = f->bits[f->lo];
    if (w != 0) {
      size_t k = f->lo * 64 + (size_t)__builtin_ctzll(w);
      *level = k;
      return f->level[k].next;
    }
  }
  return NULL;
}

unsigned salvo__inflight_cap(long conns, long streams, unsigned policy_max, unsigned adaptive) {
  uint64_t cap = 0; /* none */
  if (conns > 0)
    cap = (uint64_t)conns * (uint64_t)(streams > 1 ? streams : 1);
  if (cap > UINT32_MAX)
    cap = UINT32_MAX;
  if (policy_max != 0 && (cap == 0 || policy_max < cap))
    cap = policy_max;
  if (adaptive != 0 && (cap == 0 || adaptive < cap))
    cap = adaptive;
  return (unsigned)cap;
}

/* ------------------------------------------------------------ adaptive limit */

static double limiter_min(const salvo_host_policy_t *p) {
  return p->adaptive_min != 0 ? (double)p->adaptive_min : 1.0;
}

static double limiter_max(const salvo_host_policy_t *p) {
  double hi = p->adaptive_max != 0     ? (double)p->adaptive_max
              : p->max_in_flight != 0 ? (double)p->max_in_flight
                                      : 1000.0;
  return fmax(hi, limiter_min(p));
}

static double probe_limit(const salvo_host_policy_t *p) {
  return fmin(fmax((double)SALVO__PROBE_LIMIT, limiter_min(p)), limiter_max(p));
}

void salvo__limiter_init(salvo__limiter_t *l, const salvo_host_policy_t *p) {
  memset(l, 0, sizeof(*l));
  double start = p->adaptive_initial != 0 ? (double)p->adaptive_initial : 10.0;
  l->limit = fmin(fmax(start, limiter_min(p)), limiter_max(p));
  l->lowest = l->highest = l->limit >= 1.0 ? (unsigned)l->limit : 1u;
  l->probe_cap = probe_limit(p);
  l->probing = 1; /* the floor is measured first, at low load */
}

unsigned salvo__limiter_limit(const salvo__limiter_t *l) {
  double v = l->limit;
  if (l->probing && l->probe_cap < v)
    v = l->probe_cap;
  return v >= 1.0 ? (unsigned)v : 1u;
}

static void window_reset(salvo__limiter_t *l) {
  l->win_n = 0;
  l->win_sum_us = 0;
  l->win_peak = 0;
  l->win_drops = 0;
}

/* A probe measures the floor from answers sent at no more than the probe's
 * limit (samples sent before it began do not count); after 5 samples the
 * limit comes back. */
static void probe_sample(salvo__limiter_t *l, const salvo_host_policy_t *p, uint64_t now,
                         uint64_t us, unsigned in_flight, int drop) {
  (void)p;
  if ((double)in_flight > l->probe_cap)
    return;
  if (drop)
    l->probe_drops++;
  else {
    l->probe_n++;
    l->probe_sum_us += (double)us;
  }
  if (l->probe_n + l->probe_drops < 5)
    return;
  if (l->probe_n > 0) {
    double mean = l->probe_sum_us / l->probe_n;
    l->floor_us = mean > 1.0 ? mean : 1.0;
  }
  l->probing = 0;
  l->next_probe_ms = now + SALVO__PROBE_EVERY_MS;
  window_reset(l);
}

/* At the end of a window:
 * - a window mean below the floor lowers it (the probe may have met a busy
 *   moment), and a window sent at no more than a probe's limit measures it
 *   as a probe does (a limit that fell that far recovers at once);
 * - a drop (429, 503, timeout) in the window cuts the limit by a fifth;
 * - else, with latency within tolerance x floor, the limit grows by its
 *   square root, but only if the window used at least half of it (a limit
 *   the host never reaches proves nothing);
 * - else it falls halfway towards limit x tolerance x floor / latency
 *   (at most a quarter off in one window).
 * A floor that went stale (the host became slower for good) is measured
 * again by the next probe, within SALVO__PROBE_EVERY_MS. */
int salvo__limiter_sample(salvo__limiter_t *l, const salvo_host_policy_t *p, uint64_t now,
                          uint64_t us, unsigned in_flight, int drop) {
  unsigned before = salvo__limiter_limit(l);
  if (!l->probing && now >= l->next_probe_ms) {
    l->probing = 1;
    l->probe_n = l->probe_drops = 0;
    l->probe_sum_us = 0;
  }
  if (l->probing) {
    probe_sample(l, p, now, us, in_flight, drop);
    return salvo__limiter_limit(l) != before;
  }
  if (drop) {
    l->win_drops++;
  } else {
    l->win_n++;
    l->win_sum_us += (double)us;
  }
  if (in_flight > l->win_peak)
    l->win_peak = in_flight;
  double need = fmax(5.0, l->limit / 2);
  if ((double)(l->win_n + l->win_drops) < need)
    return 0;

  double lim = l->limit;
  double tol = p->adaptive_tolerance >= 1.0 ? p->adaptive_tolerance : 1.5;
  double mean = l->win_n > 0 ? l->win_sum_us / l->win_n : 0;
  if (l->win_n > 0 && (mean < l->floor_us || (double)l->win_peak <= l->probe_cap))
    l->floor_us = mean > 1.0 ? mean : 1.0; /* lower, or sent as a probe's would be */
  if (l->win_drops > 0) {
    lim *= 0.8;
  } else if (l->win_n > 0) {
    double g = mean > 0 && l->floor_us > 0 ? tol * l->floor_us / mean : tol;
    if (g >= 1.0) {
      if (2.0 * l->win_peak >= lim)
        lim += sqrt(lim);
    } else {
      lim *= 0.5 + 0.5 * fmax(g, 0.5) /* halfway towards lim x g */;
    }
  }
  l->limit = fmin(fmax(lim, limiter_min(p)), limiter_max(p));
  window_reset(l);
  l->windows++;
  unsigned now_lim = salvo__limiter_limit(l);
  if (now_lim < l->lowest)
    l->lowest = now_lim;
  if (now_lim > l->highest)
    l->highest = now_lim;
  return now_lim != before;
}
