/* Scheduling across hosts, pure parts: the fair-share set (levels by
 * requests in flight), the per-host in-flight cap, and the adaptive
 * concurrency limit, driven by a simulated server. No I/O, no real time. */
#include <math.h>

#include <criterion/criterion.h>

#include "internal.h"

typedef struct {
  salvo__list_t node;
  size_t level;
  int id;
} item_t;

static int first_id(salvo__fair_t *f, size_t *level) {
  salvo__list_t *n = salvo__fair_first(f, level);
  return n == NULL ? -1 : SALVO__CONTAINER_OF(n, item_t, node)->id;
}

Test(fair, the_lowest_level_first_and_round_robin_within_it) {
  salvo__fair_t f;
  cr_assert_eq(salvo__fair_init(&f, 65), 0);
  item_t it[4];
  for (int i = 0; i < 4; i++) {
    salvo__list_init(&it[i].node);
    it[i].id = i;
  }
  size_t level = 99;
  cr_assert_eq(first_id(&f, &level), -1, "empty");
  it[0].level = salvo__fair_add(&f, &it[0].node, 3);
  it[1].level = salvo__fair_add(&f, &it[1].node, 1);
  it[2].level = salvo__fair_add(&f, &it[2].node, 1);
  it[3].level = salvo__fair_add(&f, &it[3].node, 7);
  cr_assert_eq(first_id(&f, &level), 1);
  cr_assert_eq(level, 1);
  /* 1 is admitted: it moves to the tail of level 2; 2 is next, then 1 */
  salvo__fair_remove(&f, &it[1].node, it[1].level);
  it[1].level = salvo__fair_add(&f, &it[1].node, 2);
  cr_assert_eq(first_id(&f, &level), 2);
  salvo__fair_remove(&f, &it[2].node, it[2].level);
  it[2].level = salvo__fair_add(&f, &it[2].node, 2);
  cr_assert_eq(first_id(&f, &level), 1, "ties go round robin");
  cr_assert_eq(level, 2);
  salvo__fair_remove(&f, &it[1].node, it[1].level);
  salvo__fair_remove(&f, &it[2].node, it[2].level);
  cr_assert_eq(first_id(&f, &level), 0);
  cr_assert_eq(level, 3);
  /* a host whose attempt ended comes back below the others */
  it[3].level = (salvo__fair_remove(&f, &it[3].node, it[3].level), salvo__fair_add(&f, &it[3].node, 0));
  cr_assert_eq(first_id(&f, &level), 3);
  cr_assert_eq(level, 0);
  cr_assert_eq(f.count, 2);
  salvo__fair_free(&f);
}

Test(fair, levels_past_one_word_and_the_top_level_cap) {
  salvo__fair_t f;
  cr_assert_eq(salvo__fair_init(&f, 200), 0);
  item_t a = {.id = 1}, b = {.id = 2}, c = {.id = 3};
  salvo__list_init(&a.node);
  salvo__list_init(&b.node);
  salvo__list_init(&c.node);
  a.level = salvo__fair_add(&f, &a.node, 150);
  b.level = salvo__fair_add(&f, &b.node, 5000);
  cr_assert_eq(b.level, 199, "past the last level, the last one: %zu", b.level);
  size_t level;
  cr_assert_eq(first_id(&f, &level), 1);
  cr_assert_eq(level, 150);
  c.level = salvo__fair_add(&f, &c.node, 64);
  cr_assert_eq(first_id(&f, &level), 3, "a lower word found after a higher one was searched");
  cr_assert_eq(level, 64);
  salvo__fair_remove(&f, &c.node, c.level);
  salvo__fair_remove(&f, &a.node, a.level);
  cr_assert_eq(first_id(&f, &level), 2);
  cr_assert_eq(level, 199);
  salvo__fair_remove(&f, &b.node, b.level);
  cr_assert_eq(first_id(&f, &level), -1);
  salvo__fair_free(&f);
}

Test(cap, connections_streams_policy_and_adaptive_take_the_least) {
  cr_assert_eq(salvo__inflight_cap(0, 0, 0, 0), 0, "nothing caps it");
  cr_assert_eq(salvo__inflight_cap(4, 1, 0, 0), 4, "HTTP/1.1: one per connection");
  cr_assert_eq(salvo__inflight_cap(4, 100, 0, 0), 400, "HTTP/2: connections x streams");
  cr_assert_eq(salvo__inflight_cap(1, 10, 0, 0), 10);
  cr_assert_eq(salvo__inflight_cap(4, 100, 6, 0), 6);
  cr_assert_eq(salvo__inflight_cap(4, 1, 6, 0), 4);
  cr_assert_eq(salvo__inflight_cap(0, 0, 8, 0), 8);
  cr_assert_eq(salvo__inflight_cap(0, 0, 8, 3), 3);
  cr_assert_eq(salvo__inflight_cap(2, 1, 8, 3), 2);
  cr_assert_eq(salvo__inflight_cap(0, 0, 0, 12), 12);
  cr_assert_eq(salvo__inflight_cap(0x7fffffffL, 0x7fffffffL, 0, 0), UINT32_MAX, "saturates");
}

/* ------------------------------------------------- a fair-share simulation
 *
 * 16 slots; a slow host (2000 ms) and a fast one (1 ms), 64 requests each,
 * all queued at t = 0. A freed slot goes to the host with the fewest in
 * flight, as the engine's pump does. On an injected clock: every fast
 * request ends within a few ms, and the slow host never holds more than
 * its share while the fast one has work. */
typedef struct {
  item_t it;
  unsigned in_flight, queued, cap;
  uint64_t service_ms;
  int linked;
} simhost_t;

static void sim_mark(salvo__fair_t *f, simhost_t *h) {
  if (h->linked) {
    salvo__fair_remove(f, &h->it.node, h->it.level);
    h->linked = 0;
  }
  if (h->queued > 0 && (h->cap == 0 || h->in_flight < h->cap)) {
    h->it.level = salvo__fair_add(f, &h->it.node, h->in_flight);
    h->linked = 1;
  }
}

static void simulate(unsigned slots, unsigned cap, uint64_t *fast_last_ms, unsigned *slow_peak) {
  salvo__fair_t f;
  cr_assert_eq(salvo__fair_init(&f, slots + 1), 0);
  simhost_t h[2] = {{.queued = 64, .service_ms = 2000, .cap = cap},
                    {.queued = 64, .service_ms = 1, .cap = cap}};
  for (int i = 0; i < 2; i++) {
    salvo__list_init(&h[i].it.node);
    h[i].it.id = i;
    sim_mark(&f, &h[i]);
  }
  uint64_t done_at[64];
  int done_host[64];
  unsigned used = 0;
  uint64_t now = 0;
  *fast_last_ms = 0;
  *slow_peak = 0;
  while (h[0].queued + h[1].queued + used > 0) {
    size_t level;
    salvo__list_t *n;
    while (used < slots && (n = salvo__fair_first(&f, &level)) != NULL) {
      simhost_t *s = SALVO__CONTAINER_OF(n, simhost_t, it.node);
      s->queued--;
      s->in_flight++;
      done_at[used] = now + s->service_ms;
      done_host[used] = s->it.id;
      used++;
      sim_mark(&f, s);
    }
    if (h[1].queued > 0 && h[0].in_flight > *slow_peak)
      *slow_peak = h[0].in_flight;
    unsigned k = 0; /* the next to end */
    for (unsigned i = 1; i < used; i++)
      if (done_at[i] < done_at[k])
        k = i;
    now = done_at[k];
    simhost_t *s = &h[done_host[k]];
    if (s->it.id == 1)
      *fast_last_ms = now;
    s->in_flight--;
    done_at[k] = done_at[used - 1];
    done_host[k] = done_host[used - 1];
    used--;
    sim_mark(&f, s);
  }
  salvo__fair_free(&f);
}

Test(fair, a_slow_host_does_not_starve_a_fast_one) {
  uint64_t fast_last;
  unsigned slow_peak;
  simulate(16, 0, &fast_last, &slow_peak);
  cr_assert_leq(fast_last, 10, "the fast host's last request ended at %lu ms",
                (unsigned long)fast_last);
  cr_assert_leq(slow_peak, 8, "the slow host held %u of 16 slots while the fast one had work",
                slow_peak);
  simulate(16, 4, &fast_last, &slow_peak);
  cr_assert_leq(fast_last, 20, "capped at 4: the fast host's last request ended at %lu ms",
                (unsigned long)fast_last);
  cr_assert_leq(slow_peak, 4);
}

/* ------------------------------------------- adaptive concurrency limit */

static salvo_host_policy_t adaptive(void) {
  salvo_host_policy_t p;
  salvo_host_policy_init(&p);
  p.adaptive_concurrency = 1;
  return p;
}

/* The injected clock: each answer moves it on by the time one of |in_flight|
 * requests in parallel takes, as a closed loop at that concurrency would. */
static uint64_t sim_us;

static int sample(salvo__limiter_t *l, const salvo_host_policy_t *p, uint64_t us,
                  unsigned in_flight, int drop) {
  sim_us += (us > 0 ? us : 1) / (in_flight > 0 ? in_flight : 1);
  return salvo__limiter_sample(l, p, sim_us / 1000, us, in_flight, drop);
}

/* A server of capacity |cap| with a fixed service time: at |in_flight| at
 * once, each waits its turn, so latency grows with load past capacity. */
static uint64_t served_us(unsigned in_flight, unsigned cap, uint64_t service_us) {
  return in_flight <= cap ? service_us : service_us * in_flight / cap;
}

/* Runs |windows| windows of a client that keeps the limit in flight; the
 * range it reports leaves out probes. */
static void drive(salvo__limiter_t *l, const salvo_host_policy_t *p, int windows, unsigned cap,
                  uint64_t service_us, unsigned *lo, unsigned *hi) {
  *lo = UINT32_MAX;
  *hi = 0;
  uint64_t start = l->windows;
  while (l->windows - start < (uint64_t)windows) {
    unsigned in = salvo__limiter_limit(l);
    sample(l, p, served_us(in, cap, service_us), in, 0);
    if (l->probing)
      continue;
    unsigned now = salvo__limiter_limit(l);
    if (now < *lo)
      *lo = now;
    if (now > *hi)
      *hi = now;
  }
}

/* The first answers measure the floor at no more than 3 in flight. */
static void end_probe(salvo__limiter_t *l, const salvo_host_policy_t *p, uint64_t us) {
  cr_assert(l->probing, "a probe first");
  cr_assert_eq(salvo__limiter_limit(l), 3, "the probe's limit");
  for (int i = 0; i < 5; i++)
    sample(l, p, us, 3, 0);
  cr_assert(!l->probing);
  cr_assert_float_eq(l->floor_us, (double)us, 1e-9);
}

Test(limiter, probes_first_then_starts_at_adaptive_initial) {
  salvo_host_policy_t p = adaptive();
  salvo__limiter_t l;
  salvo__limiter_init(&l, &p);
  /* answers sent before the probe (at more in flight) do not measure it */
  for (int i = 0; i < 20; i++)
    sample(&l, &p, 90000, 10, 0);
  cr_assert(l.probing);
  end_probe(&l, &p, 5000);
  cr_assert_eq(salvo__limiter_limit(&l), 10, "then adaptive_initial");
}

Test(limiter, settles_near_the_capacity_of_the_server) {
  salvo_host_policy_t p = adaptive();
  salvo__limiter_t l;
  salvo__limiter_init(&l, &p);
  unsigned lo, hi;
  drive(&l, &p, 100, 20, 50000, &lo, &hi); /* settle */
  drive(&l, &p, 200, 20, 50000, &lo, &hi);
  /* tolerance 1.5: up to 30 in flight keeps latency within 1.5 x 50 ms */
  cr_assert_geq(lo, 20, "it fell below what the server serves at once: %u", lo);
  cr_assert_leq(hi, 40, "it queued far past the server's capacity: %u", hi);
  cr_assert_leq(served_us(hi, 20, 50000), 2 * 50000, "latency at its highest %lu us",
                (unsigned long)served_us(hi, 20, 50000));
}

/* A server that serves fewer at once than the starting limit: the probe saw
 * no queueing, and the limit settles near the capacity. */
Test(limiter, a_server_smaller_than_the_starting_limit) {
  salvo_host_policy_t p = adaptive();
  salvo__limiter_t l;
  salvo__limiter_init(&l, &p);
  unsigned lo, hi;
  drive(&l, &p, 200, 4, 10000, &lo, &hi); /* settle */
  drive(&l, &p, 300, 4, 10000, &lo, &hi);
  cr_assert_geq(lo, 3, "it fell below the capacity: %u", lo);
  /* it reached 19 when the floor was measured at the starting limit */
  cr_assert_leq(hi, 10, "it queued past 2.5 x the capacity: %u", hi);
}

Test(limiter, falls_when_latency_rises_and_a_drop_cuts_a_fifth) {
  salvo_host_policy_t p = adaptive();
  p.adaptive_initial = 100;
  salvo__limiter_t l;
  salvo__limiter_init(&l, &p);
  end_probe(&l, &p, 5000);
  for (int i = 0; i < 50; i++)
    sample(&l, &p, 5000, 10, 0);
  unsigned before = salvo__limiter_limit(&l);
  cr_assert_eq(before, 100, "unused, it neither grew nor fell: %u", before);
  /* latency quadruples: the limit falls */
  for (int i = 0; i < 50; i++)
    sample(&l, &p, 20000, 100, 0);
  unsigned after = salvo__limiter_limit(&l);
  cr_assert_lt(after, before, "latency x4 and the limit stayed at %u", after);
  /* a window with a drop in it: x 0.8 */
  double was = l.limit;
  for (int i = 0; i < 4; i++)
    sample(&l, &p, 5000, 10, 0);
  cr_assert_eq(l.limit, was, "no window closed yet");
  int need = (int)ceil(fmax(5.0, l.limit / 2));
  for (int i = 4; i < need - 1; i++)
    sample(&l, &p, 5000, 10, 0);
  sample(&l, &p, 0, 10, 1);
  cr_assert_float_eq(l.limit, fmax(was * 0.8, 1.0), 1e-9, "%f after %f", l.limit, was);
}

Test(limiter, an_unused_limit_does_not_grow) {
  salvo_host_policy_t p = adaptive();
  salvo__limiter_t l;
  salvo__limiter_init(&l, &p);
  end_probe(&l, &p, 1000);
  for (int i = 0; i < 1000; i++)
    sample(&l, &p, 1000, 2, 0); /* the caller sends 2 at a time */
  cr_assert_eq(salvo__limiter_limit(&l), 10);
}

Test(limiter, bounds_hold) {
  salvo_host_policy_t p = adaptive();
  p.adaptive_min = 4;
  p.adaptive_max = 16;
  salvo__limiter_t l;
  salvo__limiter_init(&l, &p);
  cr_assert_eq(salvo__limiter_limit(&l), 4, "a probe never goes below adaptive_min");
  unsigned lo, hi;
  drive(&l, &p, 200, 1000, 1000, &lo, &hi); /* a server that never queues */
  cr_assert_eq(hi, 16);
  for (int i = 0; i < 500; i++)
    sample(&l, &p, 0, 16, 1); /* nothing but drops */
  cr_assert_eq(salvo__limiter_limit(&l), 4);
  cr_assert_eq(l.lowest, 4);
  cr_assert_eq(l.highest, 16);
  p.max_in_flight = 6;
  p.adaptive_max = 0;
  salvo__limiter_init(&l, &p);
  cr_assert_eq((unsigned)l.limit, 6, "max_in_flight caps the start too");
  p.adaptive_min = 7; /* above max_in_flight: the minimum wins */
  salvo__limiter_init(&l, &p);
  cr_assert_eq((unsigned)l.limit, 7);
}

/* The server becomes four times slower for good, and queues past 20: the
 * limit falls, the floor is measured again (by a window at a probe's load
 * or by the next probe) and the limit climbs back near the capacity. */
Test(limiter, learns_a_slower_server_again) {
  salvo_host_policy_t p = adaptive();
  salvo__limiter_t l;
  salvo__limiter_init(&l, &p);
  unsigned lo, hi;
  drive(&l, &p, 100, 20, 10000, &lo, &hi); /* settle */
  drive(&l, &p, 200, 20, 10000, &lo, &hi);
  cr_assert_geq(lo, 15);
  drive(&l, &p, 300, 20, 40000, &lo, &hi);
  drive(&l, &p, 200, 20, 40000, &lo, &hi);
  cr_assert_geq(lo, 15, "it stayed low at %u", lo);
}

/* Latency rises for good without any queueing (a server of capacity 1000
 * whose answers became 4 x slower): the limit dips, then grows back, and no
 * window in between is sent at less than a probe's load. */
Test(limiter, a_slower_server_that_does_not_queue_keeps_its_limit) {
  salvo_host_policy_t p = adaptive();
  p.adaptive_max = 64;
  salvo__limiter_t l;
  salvo__limiter_init(&l, &p);
  unsigned lo, hi;
  drive(&l, &p, 100, 1000, 2000, &lo, &hi);
  cr_assert_eq(hi, 64);
  drive(&l, &p, 100, 1000, 8000, &lo, &hi);
  cr_assert_geq(lo, 3, "it fell to %u", lo);
  drive(&l, &p, 100, 1000, 8000, &lo, &hi);
  cr_assert_eq(lo, 64, "it did not grow back: %u", lo);
}

Test(policy, adaptive_fields_are_checked) {
  salvo_host_policy_t p;
  salvo_host_policy_init(&p);
  cr_assert_eq(p.max_in_flight, 0, "no per-host limit by default");
  cr_assert_eq(p.adaptive_concurrency, 0);
  cr_assert_eq(p.adaptive_initial, 10);
  cr_assert_eq(p.adaptive_min, 1);
  cr_assert_float_eq(p.adaptive_tolerance, 1.5, 1e-12);
  cr_assert_eq(salvo__host_policy_check(&p), 0);
  p.adaptive_tolerance = 0.5;
  cr_assert_eq(salvo__host_policy_check(&p), SALVO_EINVAL);
  p.adaptive_tolerance = NAN;
  cr_assert_eq(salvo__host_policy_check(&p), SALVO_EINVAL);
  salvo_host_policy_init(&p);
  p.adaptive_min = 9;
  p.adaptive_max = 8;
  cr_assert_eq(salvo__host_policy_check(&p), SALVO_EINVAL);
}

/* A host's key: scheme, lower-cased host and port, the default port made
 * explicit, no credentials, path or query; so one origin is one host
 * whichever way its URL is written. */
Test(host_key, one_origin_one_key) {
  static const struct {
    const char *url;
    int https;
    const char *key;
  } rows[] = {
      {"http://127.0.0.1/x", 0, "http://127.0.0.1:80"},
      {"http://127.0.0.1:80/x?y", 0, "http://127.0.0.1:80"},
      {"http://127.0.0.1:8080", 0, "http://127.0.0.1:8080"},
      {"https://127.0.0.1/", 1, "https://127.0.0.1:443"},
      {"https://127.0.0.1:443/a", 1, "https://127.0.0.1:443"},
      {"https://127.0.0.1:80/", 1, "https://127.0.0.1:80"},
      {"http://LocalHost/", 0, "http://localhost:80"},
      {"http://user:pw@127.0.0.1:81/p", 0, "http://127.0.0.1:81"},
      {"http://[::1]/", 0, "http://[::1]:80"},
      {"http://[::1]:8080/", 0, "http://[::1]:8080"},
      {"https://[::1]#f", 1, "https://[::1]:443"},
  };
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    char key[256];
    salvo__host_key(rows[i].url, rows[i].https, key, sizeof(key));
    cr_expect_str_eq(key, rows[i].key, "%s: %s", rows[i].url, key);
  }
}

/* A request's state moves only along its life (request.c's set_state()
 * asserts each step against this table). */
Test(request_state, only_the_steps_of_a_life_are_legal) {
  enum { N = SALVO__NEW, Q = SALVO__QUEUED, R = SALVO__RUNNING, W = SALVO__WAITING, D = SALVO__DONE,
         H = SALVO__HANDED };
  static const int legal[][2] = {{N, Q}, {Q, R}, {R, W}, {R, Q}, {W, Q}, {Q, D}, {R, D}, {W, D},
                                 /* from another thread: taken by the loop, or never */
                                 {N, H}, {H, Q}, {H, D}};
  for (int from = N; from <= H; from++)
    for (int to = N; to <= H; to++) {
      int want = 0;
      for (size_t i = 0; i < sizeof(legal) / sizeof(legal[0]); i++)
        want |= legal[i][0] == from && legal[i][1] == to;
      cr_assert_eq(salvo__request_step_ok(from, to), want, "%d -> %d", from, to);
    }
}
