/* Retry policy: the decision after each attempt and the backoff math. Pure:
 * the clock and the random state come in as arguments, so tests drive it. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pure.h"

void salvo_retry_policy_init(salvo_retry_policy_t *p) {
  if (p == NULL)
    return;
  memset(p, 0, sizeof(*p));
  p->max_attempts = 4;
  p->backoff_base_ms = 250;
  p->backoff_multiplier = 2.0;
  p->backoff_max_ms = 10000;
  p->jitter = SALVO_JITTER_FULL;
  p->retry_errors = SALVO_ERRBIT(SALVO_EDNS) | SALVO_ERRBIT(SALVO_ECONNREFUSED) |
                    SALVO_ERRBIT(SALVO_ECONNECT) | SALVO_ERRBIT(SALVO_ECONNTIMEOUT) |
                    SALVO_ERRBIT(SALVO_ETLS) | SALVO_ERRBIT(SALVO_ECLOSED) |
                    SALVO_ERRBIT(SALVO_ERESET) | SALVO_ERRBIT(SALVO_ETRUNCATED) |
                    SALVO_ERRBIT(SALVO_EIDLE) | SALVO_ERRBIT(SALVO_EATTEMPT) |
                    SALVO_ERRBIT(SALVO_EHTTP2) | SALVO_ERRBIT(SALVO_ELOCAL) |
                    SALVO_ERRBIT(SALVO_EPROXY) | SALVO_ERRBIT(SALVO_EPROTO);
  static const int idempotent_only[] = {408, 500, 502, 504, 0};
  static const int any_method[] = {429, 503, 0};
  memcpy(p->retry_statuses, idempotent_only, sizeof(idempotent_only));
  memcpy(p->retry_any_method_statuses, any_method, sizeof(any_method));
  snprintf(p->idempotent_methods, sizeof(p->idempotent_methods), "GET,HEAD,OPTIONS,PUT,DELETE,TRACE");
  p->respect_retry_after = 1;
  p->retry_after_max_ms = 60000;
  snprintf(p->request_id_header, sizeof(p->request_id_header), "X-Request-ID");
}

const char *salvo_stop_reason_name(salvo_stop_reason_t reason) {
  switch (reason) {
  case SALVO_STOP_SUCCESS:
    return "success";
  case SALVO_STOP_NOT_RETRYABLE:
    return "not_retryable";
  case SALVO_STOP_EXHAUSTED:
    return "attempts_exhausted";
  case SALVO_STOP_DEADLINE:
    return "deadline";
  case SALVO_STOP_RETRY_AFTER:
    return "retry_after_too_long";
  case SALVO_STOP_CANCELED:
    return "canceled";
  case SALVO_STOP_BY_CALLBACK:
    return "stopped_by_callback";
  case SALVO_STOP_QUEUE:
    return "queue_timeout";
  case SALVO_STOP_BUDGET:
    return "retry_budget";
  case SALVO_STOP_CIRCUIT:
    return "circuit_open";
  case SALVO_STOP_RATE_LIMIT:
    return "rate_limited";
  }
  return "unknown";
}

/* splitmix64: small, fast, and good enough for jitter. */
uint64_t salvo__rng_next(uint64_t *state) {
  uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static uint64_t uniform(uint64_t *rng, uint64_t lo, uint64_t hi) {
  if (hi <= lo)
    return lo;
  uint64_t span = hi - lo;
  if (span == UINT64_MAX)
    return salvo__rng_next(rng);
  return lo + salvo__rng_next(rng) % (span + 1);
}

uint64_t salvo__backoff_ms(const salvo_retry_policy_t *p, unsigned retry, uint64_t prev_wait_ms,
                           uint64_t *rng) {
  uint64_t cap = p->backoff_max_ms;
  uint64_t base = p->backoff_base_ms < cap ? p->backoff_base_ms : cap;
  if (p->jitter == SALVO_JITTER_DECORRELATED) {
    /* AWS's "decorrelated jitter": each wait grows from the previous one. */
    uint64_t prev = prev_wait_ms > base ? prev_wait_ms : base;
    uint64_t hi = prev > cap / 3 ? cap : prev * 3;
    return uniform(rng, base, hi);
  }
  /* base * mult^(retry-1) in double, clamped before converting: no overflow
   * at attempt 1000 or with a silly multiplier. */
  double mult = p->backoff_multiplier >= 1.0 ? p->backoff_multiplier : 1.0;
  double grown = (double)base * pow(mult, (double)(retry > 0 ? retry - 1 : 0));
  uint64_t exp = !(grown < (double)cap) ? cap : (uint64_t)grown;
  switch (p->jitter) {
  case SALVO_JITTER_NONE:
    return exp;
  case SALVO_JITTER_EQUAL:
    return exp / 2 + uniform(rng, 0, exp - exp / 2);
  case SALVO_JITTER_FULL:
  default:
    return uniform(rng, 0, exp);
  }
}

int salvo__status_in(const int *list, long status) {
  for (int i = 0; i < SALVO_MAX_RETRY_STATUSES && list[i] != 0; i++)
    if (list[i] == status)
      return 1;
  return 0;
}

int salvo__method_in_list(const char *list, const char *method) {
  size_t n = strlen(method);
  const char *p = list;
  while (*p != '\0') {
    while (*p == ',' || *p == ' ')
      p++;
    size_t len = strcspn(p, ", ");
    if (len == n && len > 0 && strncmp(p, method, n) == 0) /* methods are case-sensitive */
      return 1;
    p += len;
  }
  return 0;
}

/* Decimal digits of v into out (room for 21 bytes), NUL-terminated. */
static void format_long(char *out, long v) {
  char tmp[24];
  int n = 0;
  unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (v < 0)
    *out++ = '-';
  while (n > 0)
    *out++ = tmp[--n];
  *out = '\0';
}

static int retry_after_applies(const salvo_retry_policy_t *p, const salvo_attempt_info_t *a) {
  return p->respect_retry_after && a->error == 0 && a->retry_after_ms >= 0 &&
         (a->status == 429 || a->status == 503 || a->status == 413);
}

/* Whether the outcome may be retried at all (the rule in salvo.h), with the
 * reason in words: 1, or 0 with out->stop set. |what| names the outcome. */
static int safe_to_retry(const salvo_retry_policy_t *p, const salvo_attempt_info_t *a,
                         const char *what, uint64_t streamed_bytes, salvo__decision_t *out) {
  int ok;
  if (a->error == 0) {
    if (salvo__status_in(p->retry_any_method_statuses, a->status)) {
      ok = 1;
      snprintf(out->reason, sizeof(out->reason), "%s was rejected up front: safe for any method",
               what);
    } else if (salvo__status_in(p->retry_statuses, a->status)) {
      ok = a->idempotent;
      if (ok)
        snprintf(out->reason, sizeof(out->reason), "%s on an idempotent %s", what, a->method);
      else
        snprintf(out->reason, sizeof(out->reason),
                 "not retried: %s got %s and is not idempotent", a->method, what);
    } else if (a->status < 400) {
      out->stop = SALVO_STOP_SUCCESS;
      memcpy(out->reason, "success: ", 9);
      memcpy(out->reason + 9, what, strlen(what) + 1); /* what fits: "status " and a long */
      return 0;
    } else {
      ok = 0;
      snprintf(out->reason, sizeof(out->reason), "not retried: %s is not retryable", what);
    }
  } else if ((p->retry_errors & SALVO_ERRBIT(a->error)) == 0) {
    ok = 0;
    snprintf(out->reason, sizeof(out->reason), "not retried: %s is not retryable", what);
  } else if (!a->reached_server) {
    ok = 1;
    snprintf(out->reason, sizeof(out->reason), "%s: the request never reached the server", what);
  } else if (a->idempotent) {
    ok = 1;
    snprintf(out->reason, sizeof(out->reason), "%s on an idempotent %s", what, a->method);
  } else {
    ok = 0;
    snprintf(out->reason, sizeof(out->reason),
             "not retried: %s reached the server (%s) and is not idempotent", a->method, what);
  }
  if (ok && streamed_bytes > 0 && a->attempt < p->max_attempts) { /* else: exhausted, below */
    ok = 0;
    snprintf(out->reason, sizeof(out->reason),
             "not retried: %llu body bytes were already passed to the data callback",
             (unsigned long long)streamed_bytes);
  }
  if (!ok)
    out->stop = SALVO_STOP_NOT_RETRYABLE;
  return ok;
}

/* The wait before the next attempt: 1 with *wait, or 0 with out->stop set
 * when there is none (attempts used up, Retry-After too long, the deadline). */
static int next_wait(const salvo_retry_policy_t *p, const salvo_attempt_info_t *a, const char *what,
                     uint64_t now_ms, uint64_t deadline_at_ms, uint64_t prev_wait_ms, uint64_t *rng,
                     salvo__decision_t *out, uint64_t *wait) {
  if (a->attempt >= p->max_attempts) {
    out->stop = SALVO_STOP_EXHAUSTED;
    snprintf(out->reason, sizeof(out->reason), "gave up: %s after %u of %u attempts", what,
             a->attempt, p->max_attempts);
    return 0;
  }
  if (retry_after_applies(p, a)) {
    if ((uint64_t)a->retry_after_ms > p->retry_after_max_ms) {
      out->stop = SALVO_STOP_RETRY_AFTER;
      out->final_error = SALVO_ERETRYAFTER;
      snprintf(out->reason, sizeof(out->reason),
               "gave up: %s asks to wait %lld ms, over retry_after_max_ms %llu", what,
               (long long)a->retry_after_ms, (unsigned long long)p->retry_after_max_ms);
      return 0;
    }
    *wait = (uint64_t)a->retry_after_ms;
    size_t n = strlen(out->reason);
    snprintf(out->reason + n, sizeof(out->reason) - n, "; waits as Retry-After asks");
  } else {
    *wait = salvo__backoff_ms(p, a->attempt, prev_wait_ms, rng);
  }
  if (deadline_at_ms != 0 && salvo__add_ms(now_ms, *wait) >= deadline_at_ms) {
    out->stop = SALVO_STOP_DEADLINE;
    out->final_error = SALVO_EDEADLINE;
    snprintf(out->reason, sizeof(out->reason),
             "gave up: %s, but waiting %llu ms would pass the deadline", what,
             (unsigned long long)*wait);
    return 0;
  }
  return 1;
}

int salvo__retry_may_status(const salvo_retry_policy_t *p, long status, int idempotent,
                            unsigned attempt) {
  if (attempt >= p->max_attempts)
    return 0;
  return salvo__status_in(p->retry_any_method_statuses, status) ||
         (idempotent && salvo__status_in(p->retry_statuses, status));
}

void salvo__retry_decide(const salvo_retry_policy_t *p, const salvo_attempt_info_t *a,
                         uint64_t streamed_bytes, uint64_t now_ms, uint64_t deadline_at_ms,
                         uint64_t prev_wait_ms, uint64_t *rng, salvo__decision_t *out) {
  memset(out, 0, sizeof(*out));
  out->decision = SALVO_DECIDE_STOP;
  out->final_error = a->error;
  const char *what = a->error ? salvo_err_name(a->error) : NULL;
  char status_word[32];
  if (what == NULL) {
    /* "status NNN" by hand: this runs for every response, and snprintf is
     * a measurable share of a request's cost. */
    memcpy(status_word, "status ", 7);
    format_long(status_word + 7, a->status);
    what = status_word;
  }
  /* Outcomes that end the request whatever the policy says. */
  if (a->error == SALVO_ECANCELED || a->error == SALVO_EDEADLINE || a->error == SALVO_EQUEUE) {
    out->stop = a->error == SALVO_ECANCELED   ? SALVO_STOP_CANCELED
                : a->error == SALVO_EDEADLINE ? SALVO_STOP_DEADLINE
                                              : SALVO_STOP_QUEUE;
    snprintf(out->reason, sizeof(out->reason), "stopped: %s", what);
    return;
  }
  uint64_t wait = 0;
  if (!safe_to_retry(p, a, what, streamed_bytes, out) ||
      !next_wait(p, a, what, now_ms, deadline_at_ms, prev_wait_ms, rng, out, &wait))
    return;
  out->decision = SALVO_DECIDE_RETRY;
  out->wait_ms = wait;
}

/* A header name the policy writes on every attempt: a token, and not one of
 * the framing or hop-by-hop fields, nor Host (salvo_request_add_header()). */
static int policy_header_ok(const char *name) {
  size_t len = strlen(name);
  return salvo__valid_header_name(name, len) && salvo__header_reserved(name, len) == NULL &&
         !salvo__is_host_header(name, len);
}

int salvo__retry_policy_check(const salvo_retry_policy_t *p) {
  if (p->max_attempts < 1 || p->jitter < SALVO_JITTER_FULL || p->jitter > SALVO_JITTER_NONE ||
      !(p->backoff_multiplier >= 1.0 && p->backoff_multiplier <= 1e6) ||
      memchr(p->idempotent_methods, '\0', sizeof(p->idempotent_methods)) == NULL ||
      memchr(p->request_id_header, '\0', sizeof(p->request_id_header)) == NULL ||
      memchr(p->attempt_header, '\0', sizeof(p->attempt_header)) == NULL)
    return SALVO_EINVAL;
  if ((p->request_id_header[0] != '\0' && !policy_header_ok(p->request_id_header)) ||
      (p->attempt_header[0] != '\0' && !policy_header_ok(p->attempt_header)))
    return SALVO_EINVAL;
  return 0;
}
