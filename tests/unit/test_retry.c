/* The retry decision and backoff math, called directly (no I/O). */
#include <string.h>

#include <criterion/criterion.h>

#include "internal.h"

/* The table, written out as data: which error classes are ever
 * retried, and for which statuses. */
static const int retried_errors[] = {SALVO_EDNS,   SALVO_ECONNREFUSED, SALVO_ECONNECT,
                                     SALVO_ECONNTIMEOUT, SALVO_ETLS, SALVO_ECLOSED,
                                     SALVO_ERESET, SALVO_ETRUNCATED,  SALVO_EIDLE,
                                     SALVO_EATTEMPT, SALVO_EHTTP2, SALVO_EPROTO,
                                     SALVO_ELOCAL, SALVO_EPROXY};
static const int never_retried_errors[] = {SALVO_ETLSVERIFY, SALVO_EINVAL,    SALVO_EBODYLIMIT,
                                           SALVO_EABORTED,  SALVO_ENOMEM,
                                           SALVO_EINTERNAL,  SALVO_ENOTSUP,   SALVO_ECLOSING,
                                           SALVO_ERETRYAFTER, SALVO_ECANCELED, SALVO_EDEADLINE,
                                           SALVO_EQUEUE};
static const long statuses[] = {200, 404, 408, 429, 500, 502, 503, 504};

typedef struct {
  const char *method;
  int idempotent; /* as the engine computes it: method list or Idempotency-Key */
} method_case_t;

static const method_case_t methods[] = {
    {"GET", 1}, {"HEAD", 1}, {"PUT", 1}, {"DELETE", 1}, {"POST", 0}, {"PATCH", 0},
    {"POST", 1}, /* POST carrying an Idempotency-Key */
};

static int in(const int *list, size_t n, int v) {
  for (size_t i = 0; i < n; i++)
    if (list[i] == v)
      return 1;
  return 0;
}

/* The oracle, straight from the issue. */
static int expect_retry(int idempotent, int error, int reached, long status) {
  if (error == 0) {
    if (status == 429 || status == 503)
      return 1; /* rejected up front: any method */
    if (status == 408 || status == 500 || status == 502 || status == 504)
      return idempotent;
    return 0;
  }
  if (!in(retried_errors, sizeof(retried_errors) / sizeof(int), error))
    return 0;
  if (!reached)
    return 1; /* never reached the server: any method */
  return idempotent;
}

static salvo__decision_t decide(const salvo_retry_policy_t *p, const char *method, int idempotent,
                                unsigned attempt, int error, int reached, long status,
                                int64_t retry_after_ms) {
  salvo_attempt_info_t a = {method, attempt, error, status, reached, idempotent, retry_after_ms};
  uint64_t rng = 42;
  salvo__decision_t d;
  salvo__retry_decide(p, &a, 0, 1000, 0, 0, &rng, &d);
  return d;
}

Test(retry, the_whole_matrix) {
  salvo_retry_policy_t p;
  salvo_retry_policy_init(&p);
  int all_errors[64];
  size_t nerr = 0;
  all_errors[nerr++] = 0;
  for (size_t i = 0; i < sizeof(retried_errors) / sizeof(int); i++)
    all_errors[nerr++] = retried_errors[i];
  for (size_t i = 0; i < sizeof(never_retried_errors) / sizeof(int); i++)
    all_errors[nerr++] = never_retried_errors[i];
  int checked = 0;
  for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++)
    for (size_t e = 0; e < nerr; e++)
      for (int reached = 0; reached <= 1; reached++)
        for (size_t s = 0; s < sizeof(statuses) / sizeof(long); s++) {
          int error = all_errors[e];
          long status = error == 0 ? statuses[s] : 0;
          if (error != 0 && s > 0)
            continue; /* status is moot with an error */
          salvo__decision_t d =
              decide(&p, methods[m].method, methods[m].idempotent, 1, error, reached, status, -1);
          int want = expect_retry(methods[m].idempotent, error, reached, status);
          cr_expect_eq(d.decision == SALVO_DECIDE_RETRY, want,
                       "%s%s %s reached=%d status %ld: got %s (%s)", methods[m].method,
                       methods[m].idempotent && !strcmp(methods[m].method, "POST") ? "+key" : "",
                       salvo_err_name(error), reached, status,
                       d.decision == SALVO_DECIDE_RETRY ? "retry" : "stop", d.reason);
          cr_expect_neq(d.reason[0], '\0', "every decision has a reason");
          if (d.decision == SALVO_DECIDE_RETRY) {
            cr_expect_leq(d.wait_ms, 250, "first backoff is within base");
          } else if (error == 0 && status < 400) {
            cr_expect_eq(d.stop, SALVO_STOP_SUCCESS);
            cr_expect_eq(d.final_error, 0);
          } else if (error == SALVO_ECANCELED) {
            cr_expect_eq(d.stop, SALVO_STOP_CANCELED);
          } else if (error == SALVO_EDEADLINE) {
            cr_expect_eq(d.stop, SALVO_STOP_DEADLINE);
          } else if (error != SALVO_EQUEUE) {
            cr_expect_eq(d.stop, SALVO_STOP_NOT_RETRYABLE, "%s: %s", salvo_err_name(error),
                         d.reason);
            cr_expect_eq(d.final_error, error);
          }
          checked++;
        }
  cr_assert_gt(checked, 300);
}

Test(retry, reasons_say_why_in_words) {
  salvo_retry_policy_t p;
  salvo_retry_policy_init(&p);
  salvo__decision_t d = decide(&p, "POST", 0, 1, SALVO_ERESET, 1, 0, -1);
  cr_assert_str_eq(d.reason, "not retried: POST reached the server (connection_reset) and is not idempotent");
  d = decide(&p, "POST", 0, 1, SALVO_ECONNREFUSED, 0, 0, -1);
  cr_assert_str_eq(d.reason, "connect_refused: the request never reached the server");
  d = decide(&p, "GET", 1, 1, 0, 1, 404, -1);
  cr_assert_str_eq(d.reason, "not retried: status 404 is not retryable");
}

Test(retry, attempt_limit_edges) {
  salvo_retry_policy_t p;
  salvo_retry_policy_init(&p);
  cr_assert_eq(decide(&p, "GET", 1, 3, SALVO_ERESET, 1, 0, -1).decision, SALVO_DECIDE_RETRY);
  salvo__decision_t d = decide(&p, "GET", 1, 4, SALVO_ERESET, 1, 0, -1);
  cr_assert_eq(d.decision, SALVO_DECIDE_STOP);
  cr_assert_eq(d.stop, SALVO_STOP_EXHAUSTED);
  cr_assert_eq(d.final_error, SALVO_ERESET);
  d = decide(&p, "GET", 1, 4, 0, 1, 503, -1);
  cr_assert_eq(d.stop, SALVO_STOP_EXHAUSTED);
  cr_assert_eq(d.final_error, 0, "a final 503 is a status, not an error");
  p.max_attempts = 1;
  cr_assert_eq(decide(&p, "GET", 1, 1, SALVO_EDNS, 0, 0, -1).stop, SALVO_STOP_EXHAUSTED);
  p.max_attempts = 100;
  cr_assert_eq(decide(&p, "GET", 1, 99, SALVO_EDNS, 0, 0, -1).decision, SALVO_DECIDE_RETRY);
}

Test(retry, retry_after_replaces_backoff_or_ends_the_request) {
  salvo_retry_policy_t p;
  salvo_retry_policy_init(&p);
  salvo__decision_t d = decide(&p, "POST", 0, 1, 0, 1, 429, 1000);
  cr_assert_eq(d.decision, SALVO_DECIDE_RETRY);
  cr_assert_eq(d.wait_ms, 1000);
  d = decide(&p, "GET", 1, 1, 0, 1, 503, 0);
  cr_assert_eq(d.wait_ms, 0, "a date in the past means now");
  d = decide(&p, "GET", 1, 1, 0, 1, 503, 3600 * 1000);
  cr_assert_eq(d.decision, SALVO_DECIDE_STOP);
  cr_assert_eq(d.stop, SALVO_STOP_RETRY_AFTER);
  cr_assert_eq(d.final_error, SALVO_ERETRYAFTER);
  d = decide(&p, "GET", 1, 1, 0, 1, 503, 60000);
  cr_assert_eq(d.decision, SALVO_DECIDE_RETRY, "exactly retry_after_max is allowed");
  d = decide(&p, "GET", 1, 1, 0, 1, 500, 5000);
  cr_assert_leq(d.wait_ms, 250, "Retry-After counts only on 413/429/503");
  p.respect_retry_after = 0;
  d = decide(&p, "GET", 1, 1, 0, 1, 503, 3600 * 1000);
  cr_assert_eq(d.decision, SALVO_DECIDE_RETRY);
  cr_assert_leq(d.wait_ms, 250, "ignored when respect_retry_after is off");
}

Test(retry, a_wait_past_the_deadline_is_not_scheduled) {
  salvo_retry_policy_t p;
  salvo_retry_policy_init(&p);
  p.jitter = SALVO_JITTER_NONE;
  salvo_attempt_info_t a = {"GET", 1, SALVO_ERESET, 0, 1, 1, -1};
  uint64_t rng = 1;
  salvo__decision_t d;
  salvo__retry_decide(&p, &a, 0, 1000, 1200, 0, &rng, &d); /* needs 250, 200 left */
  cr_assert_eq(d.decision, SALVO_DECIDE_STOP);
  cr_assert_eq(d.stop, SALVO_STOP_DEADLINE);
  cr_assert_eq(d.final_error, SALVO_EDEADLINE);
  salvo__retry_decide(&p, &a, 0, 1000, 1300, 0, &rng, &d);
  cr_assert_eq(d.decision, SALVO_DECIDE_RETRY);
  cr_assert_eq(d.wait_ms, 250);
}

Test(retry, streamed_bytes_are_never_sent_twice) {
  salvo_retry_policy_t p;
  salvo_retry_policy_init(&p);
  salvo_attempt_info_t a = {"GET", 1, SALVO_ERESET, 0, 1, 1, -1};
  uint64_t rng = 1;
  salvo__decision_t d;
  salvo__retry_decide(&p, &a, 10, 0, 0, 0, &rng, &d);
  cr_assert_eq(d.decision, SALVO_DECIDE_STOP);
  cr_assert(strstr(d.reason, "data callback") != NULL, "%s", d.reason);
}

Test(retry, custom_lists) {
  salvo_retry_policy_t p;
  salvo_retry_policy_init(&p);
  snprintf(p.idempotent_methods, sizeof(p.idempotent_methods), "GET, POST");
  p.retry_statuses[0] = 404;
  p.retry_statuses[1] = 0;
  p.retry_errors = SALVO_ERRBIT(SALVO_ETLSVERIFY);
  cr_assert_eq(decide(&p, "POST", 1, 1, 0, 1, 404, -1).decision, SALVO_DECIDE_RETRY);
  cr_assert_eq(decide(&p, "GET", 1, 1, 0, 1, 500, -1).decision, SALVO_DECIDE_STOP);
  cr_assert_eq(decide(&p, "GET", 1, 1, SALVO_ETLSVERIFY, 0, 0, -1).decision, SALVO_DECIDE_RETRY);
  cr_assert_eq(decide(&p, "GET", 1, 1, SALVO_ERESET, 1, 0, -1).decision, SALVO_DECIDE_STOP);
  cr_assert(salvo__method_in_list("GET,HEAD", "HEAD"));
  cr_assert_not(salvo__method_in_list("GET,HEAD", "HEA"));
  cr_assert_not(salvo__method_in_list("GET,HEAD", "get"), "methods are case-sensitive");
  cr_assert_not(salvo__method_in_list("", "GET"));
}

/* ------------------------------------------------------------ backoff */

Test(backoff, none_is_exponential_and_capped) {
  salvo_retry_policy_t p;
  salvo_retry_policy_init(&p);
  p.jitter = SALVO_JITTER_NONE;
  uint64_t rng = 7;
  cr_assert_eq(salvo__backoff_ms(&p, 1, 0, &rng), 250);
  cr_assert_eq(salvo__backoff_ms(&p, 2, 0, &rng), 500);
  cr_assert_eq(salvo__backoff_ms(&p, 3, 0, &rng), 1000);
  cr_assert_eq(salvo__backoff_ms(&p, 6, 0, &rng), 8000);
  cr_assert_eq(salvo__backoff_ms(&p, 7, 0, &rng), 10000);
  cr_assert_eq(salvo__backoff_ms(&p, 1000, 0, &rng), 10000, "no overflow at attempt 1000");
  cr_assert_eq(salvo__backoff_ms(&p, UINT32_MAX, 0, &rng), 10000);
  p.backoff_multiplier = 1e6;
  cr_assert_eq(salvo__backoff_ms(&p, 50, 0, &rng), 10000);
  p.backoff_base_ms = 60000; /* base above the cap: the cap wins */
  cr_assert_eq(salvo__backoff_ms(&p, 1, 0, &rng), 10000);
}

static void check_bounds(salvo_jitter_t mode, uint64_t lo_num, uint64_t lo_den) {
  salvo_retry_policy_t p;
  salvo_retry_policy_init(&p);
  p.jitter = mode;
  uint64_t rng = 12345;
  for (unsigned retry = 1; retry <= 12; retry++) {
    uint64_t exp = 250ULL << (retry - 1);
    if (exp > 10000)
      exp = 10000;
    uint64_t sum = 0;
    for (int i = 0; i < 2000; i++) {
      uint64_t w = salvo__backoff_ms(&p, retry, 0, &rng);
      cr_assert_geq(w, exp * lo_num / lo_den, "retry %u: %lu below", retry, (unsigned long)w);
      cr_assert_leq(w, exp, "retry %u: %lu above %lu", retry, (unsigned long)w,
                    (unsigned long)exp);
      sum += w;
    }
    double mean = (double)sum / 2000.0, want = (double)exp * (1.0 + (double)lo_num / lo_den) / 2;
    cr_assert(mean > want * 0.9 && mean < want * 1.1, "retry %u: mean %.0f, want ~%.0f", retry,
              mean, want);
  }
}

Test(backoff, full_jitter_is_uniform_up_to_the_exponential) { check_bounds(SALVO_JITTER_FULL, 0, 1); }
Test(backoff, equal_jitter_keeps_half) { check_bounds(SALVO_JITTER_EQUAL, 1, 2); }

Test(backoff, decorrelated_grows_from_the_previous_wait_within_the_cap) {
  salvo_retry_policy_t p;
  salvo_retry_policy_init(&p);
  p.jitter = SALVO_JITTER_DECORRELATED;
  uint64_t rng = 99, prev = 0;
  for (int i = 0; i < 5000; i++) {
    uint64_t w = salvo__backoff_ms(&p, (unsigned)i + 1, prev, &rng);
    uint64_t hi = (prev > 250 ? prev : 250) * 3;
    cr_assert_geq(w, 250);
    cr_assert_leq(w, hi < 10000 ? hi : 10000);
    prev = w;
  }
  cr_assert_leq(salvo__backoff_ms(&p, 1, UINT64_MAX / 2, &rng), 10000, "no overflow");
}

Test(backoff, the_seed_reproduces_a_run) {
  salvo_retry_policy_t p;
  salvo_retry_policy_init(&p);
  uint64_t a = 2024, b = 2024, c = 2025;
  int same = 1, differs = 0;
  for (unsigned i = 1; i <= 20; i++) {
    uint64_t x = salvo__backoff_ms(&p, 5, 0, &a), y = salvo__backoff_ms(&p, 5, 0, &b);
    same &= x == y;
    differs |= x != salvo__backoff_ms(&p, 5, 0, &c);
  }
  cr_assert(same);
  cr_assert(differs);
}

/* What the head of a response tells before its body: held back from a data
 * callback exactly when the full decision would retry that status, as far as
 * status, method and attempts go. */
Test(retry, may_status_agrees_with_the_decision) {
  salvo_retry_policy_t p;
  salvo_retry_policy_init(&p);
  p.max_attempts = 3;
  for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++)
    for (size_t s = 0; s < sizeof(statuses) / sizeof(statuses[0]); s++)
      for (unsigned attempt = 1; attempt <= 4; attempt++) {
        salvo_attempt_info_t a = {methods[m].method, attempt, 0, statuses[s], 1,
                                  methods[m].idempotent, -1};
        salvo__decision_t d;
        uint64_t rng = 1;
        salvo__retry_decide(&p, &a, 0, 1000, 0, 0, &rng, &d);
        int may = salvo__retry_may_status(&p, statuses[s], methods[m].idempotent, attempt);
        cr_assert_eq(may, d.decision == SALVO_DECIDE_RETRY, "%s %ld attempt %u: may %d, decide %d",
                     methods[m].method, statuses[s], attempt, may, (int)d.decision);
      }
}

/* Waits that do not fit: a backoff of UINT64_MAX (backoff_max_ms and the base
 * huge) and a Retry-After of INT64_MAX (retry_after_max_ms huge) would wrap
 * now + wait below the deadline and retry at once. They pass the deadline. */
Test(retry, a_wait_that_would_wrap_passes_the_deadline) {
  salvo_retry_policy_t p;
  salvo_retry_policy_init(&p);
  p.jitter = SALVO_JITTER_NONE;
  p.backoff_base_ms = UINT64_MAX;
  p.backoff_max_ms = UINT64_MAX;
  salvo_attempt_info_t a = {"GET", 1, SALVO_ERESET, 0, 1, 1, -1};
  uint64_t rng = 1;
  salvo__decision_t d;
  salvo__retry_decide(&p, &a, 0, 1000, 5000, 0, &rng, &d);
  cr_assert_eq(d.decision, SALVO_DECIDE_STOP, "waited %llu ms", (unsigned long long)d.wait_ms);
  cr_assert_eq(d.stop, SALVO_STOP_DEADLINE);
  cr_assert_eq(d.final_error, SALVO_EDEADLINE);
  /* Retry-After INT64_MAX, allowed, on a clock past 2^63 */
  salvo_retry_policy_init(&p);
  p.retry_after_max_ms = UINT64_MAX;
  salvo_attempt_info_t b = {"GET", 1, 0, 503, 1, 1, INT64_MAX};
  uint64_t now = UINT64_MAX - 10;
  salvo__retry_decide(&p, &b, 0, now, now + 5, 0, &rng, &d);
  cr_assert_eq(d.decision, SALVO_DECIDE_STOP, "waited %llu ms", (unsigned long long)d.wait_ms);
  cr_assert_eq(d.stop, SALVO_STOP_DEADLINE);
  /* with no deadline it is a wait like any other */
  salvo__retry_decide(&p, &b, 0, now, 0, 0, &rng, &d);
  cr_assert_eq(d.decision, SALVO_DECIDE_RETRY);
  cr_assert_eq(d.wait_ms, (uint64_t)INT64_MAX);
}
