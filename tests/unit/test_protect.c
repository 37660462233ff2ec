/* Per-host protection state machines with an injected clock (ms): token
 * bucket and AIMD, retry budget, circuit breaker, latency record, reset
 * header values. No I/O, no real time. */
#include <criterion/criterion.h>

#include "internal.h"

static salvo_host_policy_t pol(void) {
  salvo_host_policy_t p;
  salvo_host_policy_init(&p);
  return p;
}

/* How many requests the bucket lets through from t0 to t1, asking every ms. */
static int sends_between(salvo__bucket_t *b, uint64_t t0, uint64_t t1) {
  int n = 0;
  for (uint64_t t = t0; t < t1; t++)
    while (salvo__bucket_wait(b, t) == 0) {
      salvo__bucket_take(b, t);
      n++;
    }
  return n;
}

Test(bucket, no_rate_means_no_wait) {
  salvo_host_policy_t p = pol();
  salvo__bucket_t b;
  salvo__bucket_init(&b, &p, 1000);
  for (int i = 0; i < 1000; i++) {
    cr_assert_eq(salvo__bucket_wait(&b, 1000), 0);
    salvo__bucket_take(&b, 1000);
  }
}

Test(bucket, holds_the_rate_after_the_burst) {
  salvo_host_policy_t p = pol();
  p.rate = 10;
  p.burst = 5;
  salvo__bucket_t b;
  salvo__bucket_init(&b, &p, 0);
  int n = sends_between(&b, 0, 10000);
  /* 5 at once, then 10 per second for 10 s */
  cr_assert(n >= 103 && n <= 106, "%d sends in 10 s at 10/s with a burst of 5", n);
  cr_assert_eq(salvo__bucket_wait(&b, 10000), 0, "the token of t = 10 s");
  salvo__bucket_take(&b, 10000);
  uint64_t w = salvo__bucket_wait(&b, 10000);
  cr_assert(w > 0 && w <= 100, "then the next token is 1..100 ms away (%llu)", (unsigned long long)w);
}

/* A quiet host saves up its burst and no more: after a minute idle, five go
 * at once (burst 5) and the sixth waits for the rate. */
Test(bucket, an_idle_host_saves_up_no_more_than_its_burst) {
  salvo_host_policy_t p = pol();
  p.rate = 10;
  p.burst = 5;
  salvo__bucket_t b;
  salvo__bucket_init(&b, &p, 0);
  for (int i = 0; i < 5; i++) /* the first burst, then a quiet minute */
    salvo__bucket_take(&b, 0);
  int at_once = 0;
  while (salvo__bucket_wait(&b, 60000) == 0 && at_once < 1000) {
    salvo__bucket_take(&b, 60000);
    at_once++;
  }
  cr_assert_eq(at_once, 5, "%d sent at once after a minute idle, with a burst of 5", at_once);
  uint64_t w = salvo__bucket_wait(&b, 60000);
  cr_assert(w > 0 && w <= 100, "the sixth waits for the next token (%llu ms)", (unsigned long long)w);
}

Test(bucket, pause_holds_everything_until_its_end) {
  salvo_host_policy_t p = pol();
  salvo__bucket_t b;
  salvo__bucket_init(&b, &p, 0);
  cr_assert_eq(salvo__bucket_pause(&b, 5000), 1);
  cr_assert_eq(salvo__bucket_pause(&b, 3000), 0, "an earlier end does not shorten a pause");
  cr_assert_eq(salvo__bucket_wait(&b, 1000), 4000);
  cr_assert_eq(salvo__bucket_wait(&b, 4999), 1);
  cr_assert_eq(salvo__bucket_wait(&b, 5000), 0);
}

Test(aimd, a_429_halves_once_per_round_and_successes_add_back) {
  salvo_host_policy_t p = pol();
  p.rate = 100;
  p.adaptive = 1;
  salvo__bucket_t b;
  salvo__bucket_init(&b, &p, 0);
  cr_assert_eq(salvo__bucket_on_limited(&b, &p, 1000, 900, 0), 1);
  cr_assert_float_eq(b.rate, 50.0, 1e-9);
  /* 429s to requests sent before the cut saw the old rate: no second cut */
  cr_assert_eq(salvo__bucket_on_limited(&b, &p, 1010, 950, 0), 0);
  cr_assert_float_eq(b.rate, 50.0, 1e-9);
  /* one sent after the cut does cut again */
  cr_assert_eq(salvo__bucket_on_limited(&b, &p, 1200, 1100, 0), 1);
  cr_assert_float_eq(b.rate, 25.0, 1e-9);
  /* 25 successes at 25/s add about `increase` (1/s) */
  for (int i = 0; i < 25; i++)
    salvo__bucket_on_success(&b, &p, 2000 + (uint64_t)i * 40);
  cr_assert(b.rate > 25.9 && b.rate < 26.1, "rate %.3f after a second of successes", b.rate);
}

Test(aimd, floor_and_ceiling_hold) {
  salvo_host_policy_t p = pol();
  p.rate = 4;
  p.adaptive = 1;
  p.rate_floor = 2;
  p.rate_ceiling = 5;
  salvo__bucket_t b;
  salvo__bucket_init(&b, &p, 0);
  for (uint64_t t = 1; t < 10; t++)
    salvo__bucket_on_limited(&b, &p, t * 1000, t * 1000, 0);
  cr_assert_float_eq(b.rate, 2.0, 1e-9, "never below the floor");
  for (int i = 0; i < 1000; i++)
    salvo__bucket_on_success(&b, &p, 20000);
  cr_assert_float_eq(b.rate, 5.0, 1e-9, "never above the ceiling");
}

Test(aimd, no_rate_yet_starts_from_the_recent_rate) {
  salvo_host_policy_t p = pol();
  p.adaptive = 1;
  salvo__bucket_t b;
  salvo__bucket_init(&b, &p, 0);
  cr_assert_eq(salvo__bucket_on_limited(&b, &p, 1000, 1000, 80.0), 1);
  cr_assert_float_eq(b.rate, 40.0, 1e-9);
  cr_assert_gt(salvo__bucket_wait(&b, 1000), 0, "no burst right after a 429");
}

Test(aimd, off_unless_asked) {
  salvo_host_policy_t p = pol();
  p.rate = 10;
  salvo__bucket_t b;
  salvo__bucket_init(&b, &p, 0);
  cr_assert_eq(salvo__bucket_on_limited(&b, &p, 1000, 1000, 0), 0);
  cr_assert_float_eq(b.rate, 10.0, 1e-9);
}

Test(budget, caps_retries_at_ratio_plus_floor) {
  salvo_host_policy_t p = pol(); /* 20% + 10/s over 10 s */
  salvo__window_t w;
  salvo__window_init(&w, p.budget_window_ms);
  for (int i = 0; i < 1000; i++)
    salvo__window_add(&w, 5000, 1, 0);
  int allowed = 0;
  while (salvo__budget_allows(&w, &p, 5000)) {
    salvo__window_add(&w, 5000, 0, 1);
    allowed++;
  }
  cr_assert_eq(allowed, 300, "0.2 x 1000 requests + 10/s x 10 s = 300 retries, got %d", allowed);
}

/* One count a second into a 10 s window of 10 buckets: the sum holds the
 * last 10 seconds exactly, second by second, and after a jump of any length
 * nothing older is left. */
Test(budget, the_window_holds_exactly_its_last_ten_buckets) {
  salvo__window_t w;
  salvo__window_init(&w, 10000);
  uint64_t a, b;
  for (uint64_t s = 0; s < 30; s++) {
    salvo__window_add(&w, s * 1000, 1, s % 2);
    salvo__window_sum(&w, s * 1000 + 999, &a, &b);
    uint64_t want = s + 1 < 10 ? s + 1 : 10;
    cr_assert_eq(a, want, "at %llu s: %llu counted, want %llu", (unsigned long long)s,
                 (unsigned long long)a, (unsigned long long)want);
  }
  salvo__window_sum(&w, 38999, &a, &b);
  cr_assert_eq(a, 1, "at 38 s only the count of 29 s is left: %llu", (unsigned long long)a);
  salvo__window_sum(&w, 39000, &a, &b);
  cr_assert_eq(a, 0, "at 39 s nothing is left: %llu", (unsigned long long)a);
  salvo__window_add(&w, 100000, 3, 1);
  salvo__window_sum(&w, 100000, &a, &b);
  cr_assert(a == 3 && b == 1, "after a long jump only the new counts: %llu, %llu",
            (unsigned long long)a, (unsigned long long)b);
}

Test(budget, the_window_slides) {
  salvo_host_policy_t p = pol();
  p.budget_floor = 0;
  salvo__window_t w;
  salvo__window_init(&w, p.budget_window_ms);
  for (int i = 0; i < 100; i++)
    salvo__window_add(&w, 0, 1, 0);
  for (int i = 0; i < 20; i++)
    salvo__window_add(&w, 0, 0, 1);
  cr_assert_eq(salvo__budget_allows(&w, &p, 500), 0, "20 of 100 spent");
  cr_assert_eq(salvo__budget_allows(&w, &p, 20000), 0, "and nothing earned back with no requests");
  salvo__window_add(&w, 20000, 10, 0);
  cr_assert_eq(salvo__budget_allows(&w, &p, 20000), 1, "old retries left the window");
  p.budget = 0;
  salvo__window_add(&w, 20000, 0, 1000);
  cr_assert_eq(salvo__budget_allows(&w, &p, 20000), 1, "off means off");
}

Test(breaker, opens_after_consecutive_failures_then_half_opens_and_closes) {
  salvo_host_policy_t p = pol();
  p.breaker = 1;
  salvo__breaker_t br;
  salvo__breaker_init(&br, &p);
  uint64_t rng = 1;
  int ev;
  for (int i = 0; i < 4; i++)
    cr_assert_eq(salvo__breaker_record(&br, &p, 100, 1, 0, &rng), 0);
  cr_assert_eq(salvo__breaker_admit(&br, &p, 100, &ev), SALVO__ADMIT);
  cr_assert_eq(salvo__breaker_record(&br, &p, 100, 1, 0, &rng), SALVO_HOST_CIRCUIT_OPENED);
  cr_assert_eq(br.state, SALVO_CIRCUIT_OPEN);
  /* break 5 s +/-20% */
  cr_assert(br.open_until_ms >= 100 + 4000 && br.open_until_ms <= 100 + 6000, "%llu",
            (unsigned long long)br.open_until_ms);
  cr_assert_eq(salvo__breaker_admit(&br, &p, 3000, &ev), SALVO__REJECT);
  uint64_t t = br.open_until_ms;
  cr_assert_eq(salvo__breaker_admit(&br, &p, t, &ev), SALVO__ADMIT_PROBE);
  cr_assert_eq(ev, SALVO_HOST_CIRCUIT_HALF_OPEN);
  cr_assert_eq(salvo__breaker_admit(&br, &p, t, &ev), SALVO__REJECT, "one probe at a time");
  cr_assert_eq(salvo__breaker_record(&br, &p, t + 10, 0, 1, &rng), SALVO_HOST_CIRCUIT_CLOSED);
  cr_assert_eq(salvo__breaker_admit(&br, &p, t + 10, &ev), SALVO__ADMIT);
}

Test(breaker, a_failed_probe_reopens_for_twice_as_long) {
  salvo_host_policy_t p = pol();
  p.breaker = 1;
  p.breaker_consecutive = 1;
  salvo__breaker_t br;
  salvo__breaker_init(&br, &p);
  uint64_t rng = 7;
  int ev;
  salvo__breaker_record(&br, &p, 0, 1, 0, &rng);
  uint64_t first = br.open_until_ms;
  cr_assert_eq(salvo__breaker_admit(&br, &p, first, &ev), SALVO__ADMIT_PROBE);
  cr_assert_eq(salvo__breaker_record(&br, &p, first, 1, 1, &rng), SALVO_HOST_CIRCUIT_OPENED);
  uint64_t second = br.open_until_ms - first;
  cr_assert(second >= 8000 && second <= 12000, "second break %llu ms", (unsigned long long)second);
  /* an attempt that was in flight when it opened changes nothing */
  cr_assert_eq(salvo__breaker_record(&br, &p, first + 1, 0, 0, &rng), 0);
  cr_assert_eq(br.state, SALVO_CIRCUIT_OPEN);
}

/* Opens the circuit at |now| with failures, and returns its break. */
static uint64_t break_after(salvo__breaker_t *br, const salvo_host_policy_t *p, uint64_t now,
                            int probe, uint64_t *rng) {
  cr_assert_eq(salvo__breaker_record(br, p, now, 1, probe, rng), SALVO_HOST_CIRCUIT_OPENED);
  return br->open_until_ms - now;
}

/* The break: breaker_break_ms, doubling on each failed probe, never past
 * breaker_max_break_ms, and back to breaker_break_ms once a probe closed it.
 * +/-20% jitter each time. */
Test(breaker, break_time_doubles_up_to_the_cap_and_starts_over_after_closing) {
  salvo_host_policy_t p = pol();
  p.breaker = 1;
  p.breaker_consecutive = 1;
  p.breaker_break_ms = 1000;
  p.breaker_max_break_ms = 5000;
  salvo__breaker_t br;
  salvo__breaker_init(&br, &p);
  uint64_t rng = 11, now = 1000;
  int ev;
  static const uint64_t nominal[] = {1000, 2000, 4000, 5000, 5000};
  for (int i = 0; i < 5; i++) {
    uint64_t b = break_after(&br, &p, now, i > 0, &rng);
    cr_assert(b >= nominal[i] * 8 / 10 && b <= nominal[i] * 12 / 10,
              "break %d: %llu ms, expected %llu +/-20%%", i, (unsigned long long)b,
              (unsigned long long)nominal[i]);
    now = br.open_until_ms;
    cr_assert_eq(salvo__breaker_admit(&br, &p, now, &ev), SALVO__ADMIT_PROBE, "break %d", i);
  }
  cr_assert_eq(salvo__breaker_record(&br, &p, now, 0, 1, &rng), SALVO_HOST_CIRCUIT_CLOSED);
  uint64_t b = break_after(&br, &p, now + 10, 0, &rng);
  cr_assert(b >= 800 && b <= 1200, "reopened after closing: %llu ms, not the last break",
            (unsigned long long)b);
}

/* A probe canceled or out of its own deadline says nothing of the host: it
 * hands its place to the next request, and the circuit stays half open. A
 * non-probe's release changes nothing. */
Test(breaker, a_probe_with_no_verdict_lets_the_next_request_probe) {
  salvo_host_policy_t p = pol();
  p.breaker = 1;
  p.breaker_consecutive = 1;
  p.breaker_break_ms = 1000;
  salvo__breaker_t br;
  salvo__breaker_init(&br, &p);
  uint64_t rng = 5, now = 1000;
  int ev;
  cr_assert_eq(salvo__breaker_record(&br, &p, now, 1, 0, &rng), SALVO_HOST_CIRCUIT_OPENED);
  now = br.open_until_ms;
  cr_assert_eq(salvo__breaker_admit(&br, &p, now, &ev), SALVO__ADMIT_PROBE);
  cr_assert_eq(ev, SALVO_HOST_CIRCUIT_HALF_OPEN);
  cr_assert_eq(salvo__breaker_admit(&br, &p, now, &ev), SALVO__REJECT, "one probe at a time");
  salvo__breaker_release(&br, 0); /* not the probe: nothing changes */
  cr_assert_eq(salvo__breaker_admit(&br, &p, now, &ev), SALVO__REJECT);
  salvo__breaker_release(&br, 1);
  cr_assert_eq(br.state, SALVO_CIRCUIT_HALF_OPEN);
  cr_assert_eq(salvo__breaker_admit(&br, &p, now + 1, &ev), SALVO__ADMIT_PROBE, "the next one probes");
  cr_assert_eq(ev, 0, "still the same half-open period");
  cr_assert_eq(salvo__breaker_record(&br, &p, now + 2, 0, 1, &rng), SALVO_HOST_CIRCUIT_CLOSED);
  salvo__breaker_release(&br, 1); /* a late release once closed changes nothing */
  cr_assert_eq(br.state, SALVO_CIRCUIT_CLOSED);
  cr_assert_eq(salvo__breaker_admit(&br, &p, now + 3, &ev), SALVO__ADMIT);
}

/* A good probe closes the circuit with a clean slate: the failures that
 * opened it no longer count toward the ratio. */
Test(breaker, closing_forgets_the_failures_that_opened_it) {
  salvo_host_policy_t p = pol();
  p.breaker = 1;
  p.breaker_consecutive = 100; /* only the ratio decides here */
  p.breaker_min_requests = 4;
  p.breaker_ratio = 0.5;
  p.breaker_break_ms = 1000;
  salvo__breaker_t br;
  salvo__breaker_init(&br, &p);
  uint64_t rng = 3, now = 1000;
  int ev;
  cr_assert_eq(salvo__breaker_record(&br, &p, now, 0, 0, &rng), 0);
  cr_assert_eq(salvo__breaker_record(&br, &p, now, 1, 0, &rng), 0);
  cr_assert_eq(salvo__breaker_record(&br, &p, now, 0, 0, &rng), 0);
  cr_assert_eq(salvo__breaker_record(&br, &p, now, 1, 0, &rng), SALVO_HOST_CIRCUIT_OPENED,
               "2 of 4 failed");
  now = br.open_until_ms;
  cr_assert_eq(salvo__breaker_admit(&br, &p, now, &ev), SALVO__ADMIT_PROBE);
  cr_assert_eq(salvo__breaker_record(&br, &p, now, 0, 1, &rng), SALVO_HOST_CIRCUIT_CLOSED);
  /* within the same window: 1 failure of 1 attempt, under the minimum of 4 */
  cr_assert_eq(salvo__breaker_record(&br, &p, now + 1, 1, 0, &rng), 0,
               "the failures before the break were counted again");
  cr_assert_eq(br.state, SALVO_CIRCUIT_CLOSED);
}

Test(breaker, a_success_starts_the_consecutive_count_again) {
  salvo_host_policy_t p = pol();
  p.breaker = 1; /* 5 in a row */
  p.breaker_min_requests = 1000; /* the ratio never decides here */
  salvo__breaker_t br;
  salvo__breaker_init(&br, &p);
  uint64_t rng = 5;
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 4; i++)
      cr_assert_eq(salvo__breaker_record(&br, &p, 100, 1, 0, &rng), 0, "round %d failure %d", round, i);
    cr_assert_eq(salvo__breaker_record(&br, &p, 100, 0, 0, &rng), 0);
  }
  cr_assert_eq(br.state, SALVO_CIRCUIT_CLOSED, "12 failures, never 5 in a row");
  for (int i = 0; i < 4; i++)
    salvo__breaker_record(&br, &p, 100, 1, 0, &rng);
  cr_assert_eq(salvo__breaker_record(&br, &p, 100, 1, 0, &rng), SALVO_HOST_CIRCUIT_OPENED);
}

Test(breaker, opens_on_failure_ratio_over_the_minimum) {
  salvo_host_policy_t p = pol();
  p.breaker = 1; /* 50% over at least 20, 5 in a row */
  salvo__breaker_t br;
  salvo__breaker_init(&br, &p);
  uint64_t rng = 3;
  int opened = 0;
  /* alternate: never 5 failures in a row, but 50% */
  for (int i = 0; i < 40 && !opened; i++)
    opened = salvo__breaker_record(&br, &p, 1000, i % 2, 0, &rng) == SALVO_HOST_CIRCUIT_OPENED;
  cr_assert(opened, "50%% failures over 20 attempts opens it");
  salvo__breaker_init(&br, &p);
  for (int i = 0; i < 19; i++) /* 2 of 3 fail, never 5 in a row, but fewer than 20 attempts */
    cr_assert_eq(salvo__breaker_record(&br, &p, 1000, i % 3 != 0, 0, &rng), 0, "attempt %d", i);
  cr_assert_eq(salvo__breaker_record(&br, &p, 1000, 1, 0, &rng), SALVO_HOST_CIRCUIT_OPENED,
               "the 20th makes the minimum");
}

Test(breaker, off_by_default) {
  salvo_host_policy_t p = pol();
  salvo__breaker_t br;
  salvo__breaker_init(&br, &p);
  uint64_t rng = 1;
  int ev;
  for (int i = 0; i < 100; i++)
    cr_assert_eq(salvo__breaker_record(&br, &p, 0, 1, 0, &rng), 0);
  cr_assert_eq(salvo__breaker_admit(&br, &p, 0, &ev), SALVO__ADMIT);
}

Test(latency, percentiles_within_the_bucket_width) {
  static salvo__lat_t l;
  memset(&l, 0, sizeof(l));
  for (uint64_t v = 1; v <= 10000; v++)
    salvo__lat_add(&l, v * 100); /* 100 us .. 1 s */
  uint64_t p50 = salvo__lat_pct(&l, 0.5), p95 = salvo__lat_pct(&l, 0.95);
  cr_assert(p50 > 500000 * 0.94 && p50 < 500000 * 1.06, "p50 %llu", (unsigned long long)p50);
  cr_assert(p95 > 950000 * 0.94 && p95 < 950000 * 1.06, "p95 %llu", (unsigned long long)p95);
  cr_assert_eq(salvo__lat_pct(&l, 1.0), 1000000);
  salvo__lat_add(&l, UINT64_C(1) << 62);
  cr_assert_eq(l.max, UINT64_C(1) << 62, "huge values land in the last bucket");
}

/* What salvo.h says of the host and engine percentiles: within 1/32 of the
 * value at the rank, exact below 16 us, up to 2^38 us (76 hours). Every
 * bucket's first, middle and last value. */
Test(latency, the_stated_precision_holds_at_every_bucket_edge) {
  static salvo__lat_t l;
  uint64_t values[3 * 16 * 34 + 16];
  size_t n = 0;
  for (uint64_t v = 0; v < 16; v++)
    values[n++] = v;
  for (unsigned e = 4; e < 38; e++) {
    for (uint64_t sub = 0; sub < 16; sub++) {
      uint64_t width = UINT64_C(1) << (e - 4), lo = (16 + sub) * width;
      values[n++] = lo;
      values[n++] = lo + width / 2;
      values[n++] = lo + width - 1;
    }
  }
  for (size_t i = 0; i < n; i++) {
    uint64_t v = values[i];
    memset(&l, 0, sizeof(l));
    salvo__lat_add(&l, v);
    salvo__lat_add(&l, UINT64_C(1) << 40); /* max elsewhere: p50 is v's bucket */
    uint64_t got = salvo__lat_pct(&l, 0.5);
    uint64_t off = got > v ? got - v : v - got;
    if (v < 16)
      cr_assert_eq(got, v, "below 16 us exact: %llu for %llu", (unsigned long long)got,
                   (unsigned long long)v);
    else
      cr_assert_leq(off * 32, v, "p50 %llu for %llu: off by more than 1/32",
                    (unsigned long long)got, (unsigned long long)v);
  }
}

Test(reset_header, seconds_or_unix_time) {
  int64_t now = INT64_C(1700000000000);
  cr_assert_eq(salvo__reset_parse("30", 1000000000, now), 30000);
  cr_assert_eq(salvo__reset_parse(" 7 ", 1000000000, now), 7000);
  cr_assert_eq(salvo__reset_parse("1700000012", 1000000000, now), 12000, "a Unix time");
  cr_assert_eq(salvo__reset_parse("1600000000", 1000000000, now), 0, "a time in the past");
  cr_assert_eq(salvo__reset_parse("1700000012", INT64_C(2000000000), now), INT64_C(1700000012000),
               "below the bound it counts as seconds");
  cr_assert_eq(salvo__reset_parse("", 1000000000, now), -1);
  cr_assert_eq(salvo__reset_parse("soon", 1000000000, now), -1);
  cr_assert_eq(salvo__reset_parse("12abc", 1000000000, now), -1);
  cr_assert_eq(salvo__reset_parse("99999999999999999999999", 1000000000, now), INT64_MAX);
}

/* Every bound of a host policy, on both sides: the last good value is
 * accepted, the first bad one refused (a NaN is refused wherever a number is). */
Test(policy, each_bound_accepts_its_edge_and_refuses_past_it) {
  const double nan = __builtin_nan("");
  struct {
    const char *what;
    salvo_host_policy_t p;
    int ok;
  } cases[40];
  size_t n = 0;
#define CASE(expr, want)                                                                           \
  do {                                                                                             \
    salvo_host_policy_t q = pol();                                                                 \
    q.expr;                                                                                        \
    cases[n].what = #expr;                                                                         \
    cases[n].p = q;                                                                                \
    cases[n].ok = (want);                                                                          \
    n++;                                                                                           \
  } while (0)
  CASE(rate = 0, 1);
  CASE(rate = -0.001, 0);
  CASE(rate = nan, 0);
  CASE(burst = 0, 1);
  CASE(burst = -1, 0);
  CASE(decrease = 0.999, 1);
  CASE(decrease = 1, 0);
  CASE(decrease = 0, 0);
  CASE(increase = 0, 1);
  CASE(increase = -1, 0);
  CASE(rate_floor = 0.001, 1);
  CASE(rate_floor = 0, 0);
  CASE(rate_ceiling = 0, 1);
  CASE(rate_ceiling = -1, 0);
  CASE(budget_ratio = 0, 1);
  CASE(budget_ratio = -0.1, 0);
  CASE(budget_floor = 0, 1);
  CASE(budget_floor = -1, 0);
  CASE(budget_window_ms = 1, 1);
  CASE(budget_window_ms = 0, 0);
  CASE(breaker_consecutive = 1, 1);
  CASE(breaker_consecutive = 0, 0);
  CASE(breaker_ratio = 1, 1);
  CASE(breaker_ratio = 0.01, 1);
  CASE(breaker_ratio = 0, 0); /* it would open on the first attempt */
  CASE(breaker_ratio = 1.01, 0);
  CASE(breaker_ratio = nan, 0);
  CASE(breaker_window_ms = 0, 0);
  CASE(breaker_break_ms = 0, 0);
  CASE(breaker_max_break_ms = q.breaker_break_ms, 1);
  CASE(breaker_max_break_ms = q.breaker_break_ms - 1, 0);
  CASE(reset_epoch_above = 0, 1);
  CASE(reset_epoch_above = -1, 0);
  CASE(adaptive_tolerance = 1.0, 1);
  CASE(adaptive_tolerance = 100.0, 1);
  CASE(adaptive_tolerance = 0.99, 0);
  CASE(adaptive_tolerance = 100.5, 0);
  CASE(adaptive_max = q.adaptive_min, 1);
  CASE(adaptive_min = 5; q.adaptive_max = 4, 0);
#undef CASE
  for (size_t i = 0; i < n; i++)
    cr_expect_eq(salvo__host_policy_check(&cases[i].p), cases[i].ok ? 0 : SALVO_EINVAL, "%s: %s",
                 cases[i].what, cases[i].ok ? "refused" : "accepted");
}

Test(policy, defaults_are_valid_and_bad_values_refused) {
  salvo_host_policy_t p = pol();
  cr_assert_eq(salvo__host_policy_check(&p), 0);
  cr_assert_eq(p.budget, 1);
  cr_assert_eq(p.breaker, 0);
  cr_assert_eq(p.hedge_delay_ms, 0);
  p.decrease = 1.5;
  cr_assert_eq(salvo__host_policy_check(&p), SALVO_EINVAL);
  p = pol();
  p.rate = -1;
  cr_assert_eq(salvo__host_policy_check(&p), SALVO_EINVAL);
  p = pol();
  p.breaker_max_break_ms = 10;
  cr_assert_eq(salvo__host_policy_check(&p), SALVO_EINVAL);
  cr_assert_str_eq(salvo_circuit_name(SALVO_CIRCUIT_HALF_OPEN), "half_open");
  cr_assert_str_eq(salvo_err_name(SALVO_ECIRCUIT), "circuit_open");
  cr_assert_str_eq(salvo_stop_reason_name(SALVO_STOP_BUDGET), "retry_budget");
}

/* ------------------------------------------------ durations that do not fit */

/* A break of UINT64_MAX ms (any value is accepted) keeps the circuit open:
 * break x jitter (up to 1.2) does not fit in 64 bits, and now + break would
 * wrap. Several seeds, so that jitter above 1 comes up. */
Test(breaker, a_break_of_uint64_max_stays_open) {
  salvo_host_policy_t p = pol();
  p.breaker = 1;
  p.breaker_consecutive = 1;
  p.breaker_break_ms = UINT64_MAX;
  p.breaker_max_break_ms = UINT64_MAX;
  for (uint64_t seed = 1; seed <= 16; seed++) {
    salvo__breaker_t br;
    salvo__breaker_init(&br, &p);
    uint64_t rng = seed;
    int ev;
    cr_assert_eq(salvo__breaker_record(&br, &p, 5000, 1, 0, &rng), SALVO_HOST_CIRCUIT_OPENED);
    cr_assert_geq(br.open_until_ms, UINT64_MAX / 10 * 8, "seed %llu: open until %llu",
                  (unsigned long long)seed, (unsigned long long)br.open_until_ms);
    cr_assert_eq(salvo__breaker_admit(&br, &p, 5000 + 86400000, &ev), SALVO__REJECT,
                 "seed %llu: still open a day later", (unsigned long long)seed);
  }
}

/* Doubling a break past 2^63 stays at the cap instead of wrapping to 0. */
Test(breaker, a_doubled_break_past_two_to_the_63_stays_at_the_cap) {
  salvo_host_policy_t p = pol();
  p.breaker = 1;
  p.breaker_consecutive = 1;
  p.breaker_break_ms = UINT64_C(1) << 63;
  p.breaker_max_break_ms = UINT64_MAX;
  salvo__breaker_t br;
  salvo__breaker_init(&br, &p);
  uint64_t rng = 3;
  int ev;
  salvo__breaker_record(&br, &p, 0, 1, 0, &rng);
  uint64_t t = br.open_until_ms;
  cr_assert_eq(salvo__breaker_admit(&br, &p, t, &ev), SALVO__ADMIT_PROBE);
  cr_assert_eq(salvo__breaker_record(&br, &p, t, 1, 1, &rng), SALVO_HOST_CIRCUIT_OPENED);
  cr_assert_eq(br.break_ms, UINT64_MAX, "2^64 capped, not 0: %llu", (unsigned long long)br.break_ms);
  cr_assert_eq(br.open_until_ms, UINT64_MAX, "open for good");
  cr_assert_eq(salvo__breaker_admit(&br, &p, UINT64_MAX - 1, &ev), SALVO__REJECT);
}

/* A rate of 1e-300 per second is valid: the wait for the next token does
 * not fit in 64 bits, and is "never", not a garbage conversion. */
Test(bucket, a_tiny_rate_waits_forever) {
  salvo_host_policy_t p = pol();
  p.rate = 1e-300;
  p.burst = 1;
  salvo__bucket_t b;
  salvo__bucket_init(&b, &p, 1000);
  cr_assert_eq(salvo__bucket_wait(&b, 1000), 0, "the burst");
  salvo__bucket_take(&b, 1000);
  cr_assert_eq(salvo__bucket_wait(&b, 1001), UINT64_MAX);
}
