/* Streaming both ways against salvo-faultd: a data callback gets only the
 * body of the response the request ends with (a 503 the policy retries is
 * held back, not passed), the head callback sees every response and can
 * stop the request, response headers are readable in both, per-request data
 * reaches every callback, and request bodies come from a reader or a file:
 * rewound for a retry, never re-sent when they cannot be. */
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <salvo/salvo.h>

#include "../../tools/rss.h"
#include "fixture.h"

TestSuite(stream, .init = fixture_setup, .fini = fixture_teardown, .timeout = 120);

/* What one request's callbacks saw. */
typedef struct {
  int heads;               /* head callback calls */
  long head_status[8];
  int head_held[8];
  unsigned head_attempt[8];
  char head_header[64];    /* the first head's Content-Length, read inside the callback */
  char data_header[64];    /* the Content-Length read inside the first data callback call */
  int stop_at_head;        /* the head callback returns non-zero at this call (1-based) */
  int stop_in_data;        /* the data callback returns non-zero */
  uint64_t bytes;          /* body bytes the data callback got */
  char data[256];          /* their first 255 */
  int data_calls;
  int data_seen_ok;        /* salvo_request_data() in the data callback was this struct */
  int decide_seen_ok, event_seen_ok, done_seen_ok;
  /* from the done callback */
  int calls;
  int error;
  long status;
  unsigned attempts;
  unsigned sends;
  int stop;
  size_t body_len;
  int body_null;
  char detail[256];
  char body[128];          /* the buffered body, if any */
  char last_reason[128];
} st_t;

static void start_engine(unsigned max_attempts) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.retry.max_attempts = max_attempts;
  opts.retry.backoff_base_ms = 10;
  opts.retry.backoff_max_ms = 20;
  opts.ca_file = faultd_cert_file(srv);
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
}

static int head_cb(salvo_request_t *req, const salvo_response_head_t *h, void *ud) {
  st_t *s = ud;
  if (s->heads < 8) {
    s->head_status[s->heads] = h->status;
    s->head_held[s->heads] = h->held;
    s->head_attempt[s->heads] = h->attempt;
  }
  if (s->heads == 0) {
    const char *v = salvo_response_header(req, "content-length");
    snprintf(s->head_header, sizeof(s->head_header), "%s", v ? v : "(none)");
  }
  s->heads++;
  return s->stop_at_head == s->heads;
}

static int data_cb(salvo_request_t *req, const char *data, size_t len, void *ud) {
  st_t *s = ud;
  if (s->data_calls++ == 0) {
    const char *v = salvo_response_header(req, "content-length");
    snprintf(s->data_header, sizeof(s->data_header), "%s", v ? v : "(none)");
  }
  s->data_seen_ok = salvo_request_data(req) == s;
  size_t have = strlen(s->data);
  size_t room = sizeof(s->data) - 1 - have;
  memcpy(s->data + have, data, len < room ? len : room);
  s->bytes += len;
  return s->stop_in_data;
}

static void done_cb(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  st_t *s = ud;
  s->calls++;
  s->error = r->error;
  s->status = r->status;
  s->attempts = r->attempts;
  s->sends = r->sends;
  s->stop = (int)r->stop_reason;
  s->body_len = r->body_len;
  s->body_null = r->body == NULL;
  s->done_seen_ok = salvo_request_data(req) == s;
  snprintf(s->detail, sizeof(s->detail), "%s", r->detail);
  snprintf(s->body, sizeof(s->body), "%s", r->body ? r->body : "");
  if (r->history_len > 0)
    snprintf(s->last_reason, sizeof(s->last_reason), "%s", r->history[r->history_len - 1].reason);
}

static salvo_request_t *make(const char *method, const char *path, st_t *s, int stream) {
  char u[256];
  snprintf(u, sizeof(u), "%s%s", base, path);
  salvo_request_t *req = NULL;
  cr_assert_eq(salvo_request_new(engine, method, u, &req), 0, "%s", u);
  cr_assert_eq(salvo_request_set_head_cb(req, head_cb), 0);
  if (stream)
    cr_assert_eq(salvo_request_set_data_cb(req, data_cb), 0);
  cr_assert_eq(salvo_request_set_data(req, s), 0);
  return req;
}

static void submit_and_wait(salvo_request_t *req, st_t *s) {
  cr_assert_eq(salvo_request_submit(req, done_cb, s), 0);
  fixture_run_until(&s->calls);
  cr_assert_eq(s->calls, 1);
}

/* The bug of issue 16: a streamed 503 was passed to the data callback and so
 * never retried. Now it is held, retried, and only the 200's body arrives. */
Test(stream, retried_503_body_is_never_passed) {
  start_engine(4);
  st_t s = {0};
  salvo_request_t *req = make("GET", "/fail-until/3/stream503", &s, 1);
  submit_and_wait(req, &s);
  cr_assert_eq(s.error, 0, "%s: %s", salvo_err_name(s.error), s.detail);
  cr_assert_eq(s.status, 200);
  cr_assert_eq(s.attempts, 3);
  cr_assert_str_eq(s.data, "ok\n", "the data callback got \"%s\"", s.data);
  cr_assert_eq(s.bytes, 3);
  cr_assert_eq(s.heads, 3);
  cr_assert_eq(s.head_status[0], 503);
  cr_assert_eq(s.head_held[0], 1);
  cr_assert_eq(s.head_status[1], 503);
  cr_assert_eq(s.head_held[1], 1);
  cr_assert_eq(s.head_status[2], 200);
  cr_assert_eq(s.head_held[2], 0);
  cr_assert_eq(s.head_attempt[2], 3);
  cr_assert_eq(s.body_len, 3);
  cr_assert(s.body_null, "no buffered body with a data callback");
  cr_assert_eq(faultd_key_count(srv, "stream503", NULL, NULL), 3);
}

/* A body cut short after some of it was passed: not retried by default (the
 * caller would get the bytes twice), retried whole when the caller says its
 * sink starts over at each head (salvo-fetch's files). */
Test(stream, restartable_sink_lets_a_cut_body_be_retried) {
  start_engine(3);
  st_t plain = {0}, again = {0};
  salvo_request_t *a = make("GET", "/truncate", &plain, 1);
  submit_and_wait(a, &plain); /* the request is freed after its done callback */
  cr_assert_eq(plain.attempts, 1, "attempts %u: %s", plain.attempts, plain.last_reason);
  cr_assert_eq(plain.bytes, 10);
  cr_assert_neq(plain.error, 0);
  salvo_request_t *b = make("GET", "/truncate", &again, 1);
  cr_assert_eq(salvo_request_set_data_restartable(b, 1), 0);
  cr_assert_eq(salvo_request_submit(b, done_cb, &again), 0);
  cr_assert_eq(salvo_request_set_data_restartable(b, 0), SALVO_EINVAL, "only before submit");
  fixture_run_until(&again.calls);
  cr_assert_eq(again.attempts, 3, "attempts %u: %s", again.attempts, again.last_reason);
  cr_assert_eq(again.heads, 3, "each attempt's head says a new body begins");
  cr_assert_eq(again.bytes, 30, "10 bytes from each of the 3 attempts");
  cr_assert_eq(again.error, plain.error, "%s", salvo_err_name(again.error));
  cr_assert_eq(again.stop, SALVO_STOP_EXHAUSTED, "stop %d: %s", again.stop, again.last_reason);
  cr_assert_eq(again.calls, 1);
  cr_assert_eq(faultd_count(srv, "/truncate"), 4);
  cr_assert_eq(salvo_request_set_data_restartable(NULL, 1), SALVO_EINVAL);
}

/* A 429 to a POST is retried too (any method), and the last attempt's 503,
 * with no attempts left, is not held: its body is the answer, passed once. */
Test(stream, last_attempt_body_passed_once) {
  start_engine(2);
  st_t s = {0};
  salvo_request_t *req = make("POST", "/fail-until/9/streamlast", &s, 1);
  submit_and_wait(req, &s);
  cr_assert_eq(s.error, 0);
  cr_assert_eq(s.status, 503);
  cr_assert_eq(s.attempts, 2);
  cr_assert_eq(s.stop, SALVO_STOP_EXHAUSTED, "stop %d: %s", s.stop, s.last_reason);
  cr_assert_str_eq(s.data, "failed\n");
  cr_assert_eq(s.data_calls, 1);
  cr_assert_eq(s.heads, 2);
  cr_assert_eq(s.head_held[0], 1);
  cr_assert_eq(s.head_held[1], 0);
}

static salvo_decision_t stop_decider(salvo_request_t *req, const salvo_attempt_info_t *info,
                                     salvo_decision_t def, uint64_t *wait_ms, void *ud) {
  (void)info;
  (void)def;
  (void)wait_ms;
  (void)ud;
  st_t *s = salvo_request_data(req);
  s->decide_seen_ok = 1;
  return SALVO_DECIDE_STOP;
}

static void event_cb(salvo_request_t *req, const salvo_attempt_record_t *rec, void *ud) {
  (void)rec;
  (void)ud;
  st_t *s = salvo_request_data(req);
  s->event_seen_ok = 1;
}

/* A held response the request ends with (the decision callback stopped the
 * retry) reaches the data callback before the done callback, once; the
 * policy's callbacks find the request's own data without a policy per request. */
Test(stream, held_body_passed_when_the_request_ends_with_it) {
  start_engine(4);
  salvo_retry_policy_t p;
  salvo_retry_policy_init(&p);
  p.decide_cb = stop_decider;
  p.event_cb = event_cb;
  st_t s = {0};
  salvo_request_t *req = make("GET", "/fail-until/5/streamheld", &s, 1);
  cr_assert_eq(salvo_request_set_retry_policy(req, &p), 0);
  submit_and_wait(req, &s);
  cr_assert_eq(s.status, 503);
  cr_assert_eq(s.attempts, 1);
  cr_assert_eq(s.stop, SALVO_STOP_BY_CALLBACK);
  cr_assert_eq(s.head_held[0], 1);
  cr_assert_str_eq(s.data, "failed\n");
  cr_assert_eq(s.data_calls, 1);
  cr_assert(s.decide_seen_ok && s.event_seen_ok && s.data_seen_ok && s.done_seen_ok,
            "salvo_request_data() in decide %d, event %d, data %d, done %d", s.decide_seen_ok,
            s.event_seen_ok, s.data_seen_ok, s.done_seen_ok);
}

/* A held body that outgrows 64 KiB is passed from there on, whole and once,
 * and the response is then not retried. 200 is made a retried status here
 * to get a large held body from salvo-faultd. */
Test(stream, held_body_over_64k_is_passed_and_not_retried) {
  start_engine(4);
  salvo_retry_policy_t p;
  salvo_retry_policy_init(&p);
  p.retry_statuses[0] = 200;
  p.retry_statuses[1] = 0;
  st_t s = {0};
  salvo_request_t *req = make("GET", "/bytes/200000", &s, 1);
  cr_assert_eq(salvo_request_set_retry_policy(req, &p), 0);
  submit_and_wait(req, &s);
  cr_assert_eq(s.status, 200);
  cr_assert_eq(s.attempts, 1, "passed bytes: not retried");
  cr_assert_eq(s.bytes, 200000);
  cr_assert_eq(s.body_len, 200000);
  cr_assert_eq(s.head_held[0], 1);
  cr_assert(strstr(s.last_reason, "passed to the data callback") != NULL, "%s", s.last_reason);
}

/* Headers inside the head and data callbacks are the response's own. */
Test(stream, headers_readable_in_head_and_data_callbacks) {
  start_engine(1);
  st_t s = {0};
  salvo_request_t *req = make("GET", "/bytes/1000", &s, 1);
  submit_and_wait(req, &s);
  cr_assert_str_eq(s.head_header, "1000");
  cr_assert_str_eq(s.data_header, "1000");
  cr_assert_eq(s.bytes, 1000);
  /* outside the callbacks there is nothing to read */
  salvo_request_t *idle = NULL;
  cr_assert_eq(salvo_request_new(engine, "GET", base, &idle), 0);
  cr_assert_null(salvo_response_header(idle, "content-length"));
  salvo_request_free(idle);
}

/* The head callback stops the request: no body byte passed, never retried. */
Test(stream, head_callback_stops_the_request) {
  start_engine(4);
  st_t s = {.stop_at_head = 1};
  salvo_request_t *req = make("GET", "/fail-until/3/streamstop", &s, 1);
  submit_and_wait(req, &s);
  cr_assert_eq(s.error, SALVO_EABORTED, "%s", salvo_err_name(s.error));
  cr_assert_eq(s.stop, SALVO_STOP_BY_CALLBACK);
  cr_assert_eq(s.attempts, 1);
  cr_assert_eq(s.bytes, 0);
  cr_assert_eq(s.data_calls, 0);
  cr_assert_str_eq(s.detail, "stopped by the head callback");
  cr_assert_eq(faultd_key_count(srv, "streamstop", NULL, NULL), 1);
}

/* The data callback stops it: SALVO_EABORTED, not retried. */
Test(stream, data_callback_stops_the_request) {
  start_engine(4);
  st_t s = {.stop_in_data = 1};
  salvo_request_t *req = make("GET", "/bytes/5000", &s, 1);
  submit_and_wait(req, &s);
  cr_assert_eq(s.error, SALVO_EABORTED);
  cr_assert_eq(s.stop, SALVO_STOP_BY_CALLBACK);
  cr_assert_eq(s.attempts, 1);
  cr_assert_eq(s.data_calls, 1);
  cr_assert_str_eq(s.detail, "stopped by the data callback");
}

/* A redirect followed with a data callback: the 3xx body is not passed. */
Test(stream, followed_redirect_body_not_passed) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.follow_redirects = 1;
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
  st_t s = {0};
  salvo_request_t *req = make("GET", "/redirect-chain/2", &s, 1);
  submit_and_wait(req, &s);
  cr_assert_eq(s.status, 200);
  cr_assert_eq(s.attempts, 3);
  cr_assert_str_eq(s.data, "ok\n", "the data callback got \"%s\"", s.data);
  cr_assert_eq(s.heads, 3);
  cr_assert_eq(s.head_status[0], 302);
  cr_assert_eq(s.head_held[0], 1);
  cr_assert_eq(s.head_held[2], 0);
}

/* Over HTTP/2 too: the head is found at the end of the header block. */
Test(stream, http2_head_and_held_503) {
  start_engine(3);
  st_t s = {0};
  char u[256];
  snprintf(u, sizeof(u), "%s/fail-until/2/streamh2", tls_base);
  salvo_request_t *req = NULL;
  cr_assert_eq(salvo_request_new(engine, "GET", u, &req), 0);
  cr_assert_eq(salvo_request_set_head_cb(req, head_cb), 0);
  cr_assert_eq(salvo_request_set_data_cb(req, data_cb), 0);
  submit_and_wait(req, &s);
  cr_assert_eq(s.status, 200, "%s: %s", salvo_err_name(s.error), s.detail);
  cr_assert_eq(s.heads, 2);
  cr_assert_eq(s.head_held[0], 1);
  cr_assert_str_eq(s.data, "ok\n");
}

/* ------------------------------------------------------------ bodies */

typedef struct {
  const char *data;
  size_t len, off;
  int rewinds;
  int closed;
  int can_rewind;
  size_t stop_at;          /* ends early: announces len, gives only this many (0 = no) */
} mem_reader_t;

static int mem_read(salvo_request_t *req, char *buf, size_t cap, size_t *len, void *ud) {
  (void)req;
  mem_reader_t *m = ud;
  size_t end = m->stop_at ? m->stop_at : m->len;
  size_t n = end - m->off < cap ? end - m->off : cap;
  if (n > 7)
    n = 7; /* small pieces: more reads, more chances to get the offsets wrong */
  memcpy(buf, m->data + m->off, n);
  m->off += n;
  *len = n;
  return 0;
}

static int mem_rewind(salvo_request_t *req, void *ud) {
  (void)req;
  mem_reader_t *m = ud;
  m->rewinds++;
  m->off = 0;
  return m->can_rewind ? 0 : -1;
}

static void mem_close(void *ud) { ((mem_reader_t *)ud)->closed++; }

static salvo_request_t *with_reader(const char *method, const char *path, st_t *s,
                                    mem_reader_t *m, int64_t length, int rewind) {
  salvo_request_t *req = make(method, path, s, 0);
  salvo_body_reader_t r;
  salvo_body_reader_init(&r);
  cr_assert_eq(r.length, -1);
  r.read = mem_read;
  r.rewind = rewind ? mem_rewind : NULL;
  r.close = mem_close;
  r.length = length;
  r.user_data = m;
  cr_assert_eq(salvo_request_set_body_reader(req, &r), 0);
  return req;
}

static const char text[] = "the quick brown fox jumps over the lazy dog";

/* A POST whose body is read as it is sent, retried after a 503: rewound once,
 * and the server read the whole body on both attempts. */
Test(stream, reader_rewound_for_a_retry) {
  start_engine(3);
  st_t s = {0};
  mem_reader_t m = {.data = text, .len = strlen(text), .can_rewind = 1};
  salvo_request_t *req =
      with_reader("POST", "/fail-until/2/readerretry", &s, &m, (int64_t)m.len, 1);
  submit_and_wait(req, &s);
  cr_assert_eq(s.status, 200, "%s: %s", salvo_err_name(s.error), s.detail);
  cr_assert_eq(s.attempts, 2);
  cr_assert_eq(m.rewinds, 1);
  cr_assert_eq(m.closed, 1, "closed once, when the request was freed");
  cr_assert_eq(faultd_body_bytes(srv), 2 * m.len);
}

/* Unknown length: chunked over HTTP/1.1, the server reads all of it. */
Test(stream, reader_of_unknown_length_is_sent_chunked) {
  start_engine(1);
  st_t s = {0};
  mem_reader_t m = {.data = text, .len = strlen(text)};
  salvo_request_t *req = with_reader("PUT", "/echo", &s, &m, -1, 0);
  submit_and_wait(req, &s);
  cr_assert_eq(s.status, 200);
  char want[64];
  snprintf(want, sizeof(want), "PUT %zu", m.len);
  cr_assert_str_eq(s.body, want);
  cr_assert_eq(faultd_body_bytes(srv), m.len);
}

/* No rewind: the 503 is not retried, and the history says why. */
Test(stream, reader_without_rewind_is_not_retried) {
  start_engine(3);
  st_t s = {0};
  mem_reader_t m = {.data = text, .len = strlen(text)};
  salvo_request_t *req = with_reader("POST", "/fail-until/2/noreader", &s, &m, (int64_t)m.len, 0);
  submit_and_wait(req, &s);
  cr_assert_eq(s.status, 503);
  cr_assert_eq(s.attempts, 1);
  cr_assert_eq(s.stop, SALVO_STOP_NOT_RETRYABLE);
  cr_assert(strstr(s.last_reason, "cannot be rewound") != NULL, "%s", s.last_reason);
  cr_assert_eq(faultd_key_count(srv, "noreader", NULL, NULL), 1);
}

/* A rewind that fails is the same as none. */
Test(stream, failed_rewind_is_not_retried) {
  start_engine(3);
  st_t s = {0};
  mem_reader_t m = {.data = text, .len = strlen(text), .can_rewind = 0};
  salvo_request_t *req = with_reader("POST", "/fail-until/2/badrewind", &s, &m, (int64_t)m.len, 1);
  submit_and_wait(req, &s);
  cr_assert_eq(s.attempts, 1);
  cr_assert_eq(m.rewinds, 1);
  cr_assert(strstr(s.last_reason, "cannot be rewound") != NULL, "%s", s.last_reason);
}

/* A body that ends before its announced length: the attempt stops, not retried. */
Test(stream, reader_ending_early_stops_the_attempt) {
  start_engine(3);
  st_t s = {0};
  mem_reader_t m = {.data = text, .len = strlen(text), .stop_at = 10, .can_rewind = 1};
  salvo_request_t *req = with_reader("POST", "/echo", &s, &m, (int64_t)m.len, 1);
  submit_and_wait(req, &s);
  cr_assert_eq(s.error, SALVO_EABORTED, "%s", salvo_err_name(s.error));
  cr_assert_eq(s.attempts, 1);
  cr_assert_str_eq(s.detail, "the body reader ended before the length it announced");
}

/* A 307 keeps the body: rewound for the next hop, or refused without rewind. */
Test(stream, redirect_307_needs_a_rewind) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.follow_redirects = 1;
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
  st_t s = {0}, t = {0};
  mem_reader_t m = {.data = text, .len = strlen(text), .can_rewind = 1};
  mem_reader_t n = {.data = text, .len = strlen(text)};
  salvo_request_t *a = with_reader("POST", "/redirect/307?to=/echo", &s, &m, (int64_t)m.len, 1);
  salvo_request_t *b = with_reader("POST", "/redirect/307?to=/echo", &t, &n, (int64_t)n.len, 0);
  submit_and_wait(a, &s);
  cr_assert_eq(s.status, 200, "%s: %s", salvo_err_name(s.error), s.detail);
  cr_assert_eq(m.rewinds, 1);
  submit_and_wait(b, &t);
  cr_assert_eq(t.error, SALVO_EREDIRECT);
  cr_assert(strstr(t.detail, "cannot be rewound") != NULL, "%s", t.detail);
}

Test(stream, body_reader_input_checks) {
  start_engine(1);
  salvo_request_t *req = NULL;
  cr_assert_eq(salvo_request_new(engine, "POST", base, &req), 0);
  salvo_body_reader_t r;
  salvo_body_reader_init(&r);
  cr_assert_eq(salvo_request_set_body_reader(req, &r), SALVO_EINVAL, "no read callback");
  r.read = mem_read;
  r.length = -2;
  cr_assert_eq(salvo_request_set_body_reader(req, &r), SALVO_EINVAL, "length below -1");
  cr_assert_eq(salvo_request_set_body_reader(NULL, &r), SALVO_EINVAL);
  cr_assert_eq(salvo_request_set_body_reader(req, NULL), SALVO_EINVAL);
  cr_assert_eq(salvo_request_set_body_file(req, "/nonexistent/salvo-test"), SALVO_EINVAL);
  cr_assert_eq(salvo_request_set_body_file(req, "/tmp"), SALVO_EINVAL, "a directory");
  cr_assert_eq(salvo_request_set_body_file(req, NULL), SALVO_EINVAL);
  cr_assert_eq(salvo_request_set_data(NULL, NULL), SALVO_EINVAL);
  cr_assert_null(salvo_request_data(NULL));
  /* a reader replaced is closed; one freed with its request too */
  mem_reader_t m = {.data = text, .len = 3};
  r.length = 3;
  r.close = mem_close;
  r.user_data = &m;
  cr_assert_eq(salvo_request_set_body_reader(req, &r), 0);
  cr_assert_eq(salvo_request_set_body(req, "abc", 3), 0);
  cr_assert_eq(m.closed, 1);
  cr_assert_eq(salvo_request_set_body_reader(req, &r), 0);
  salvo_request_free(req);
  cr_assert_eq(m.closed, 2);
}

/* A large upload from a file: read as it is sent (resident memory stays
 * flat), retried after a 503 that came once the server had read it all, so
 * the server counts the same bytes twice. 1 GiB natively; 64 MiB under
 * valgrind and the sanitizers, which are 20 to 50 times slower and keep
 * freed memory resident (so RSS is checked natively only). */
Test(stream, file_upload_retried_with_flat_memory, .timeout = 300) {
  int native = !getenv("SALVO_UNDER_VALGRIND") && !getenv("SALVO_UNDER_SANITIZER");
  uint64_t size = native ? (uint64_t)1 << 30 : (uint64_t)64 << 20;
  char path[] = "/tmp/salvo-upload-XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  cr_assert_eq(ftruncate(fd, (off_t)size), 0); /* sparse: reads as zeros, takes no disk */
  close(fd);
  start_engine(3);
  st_t s = {0};
  salvo_request_t *req = make("PUT", "/fail-until/2/bigfile", &s, 0);
  cr_assert_eq(salvo_request_set_body_file(req, path), 0);
  unlink(path); /* the request holds it open */
  long rss_before = salvo_tool_rss_kb();
  submit_and_wait(req, &s);
  long rss_after = salvo_tool_rss_kb();
  cr_assert_eq(s.status, 200, "%s: %s", salvo_err_name(s.error), s.detail);
  cr_assert_eq(s.attempts, 2);
  cr_assert_eq(faultd_body_bytes(srv), 2 * size, "the server read %llu bytes",
               (unsigned long long)faultd_body_bytes(srv));
  cr_log_info("RSS %ld -> %ld KiB for 2 x %llu MiB sent", rss_before, rss_after,
              (unsigned long long)(size >> 20));
  /* ASan's quarantine and valgrind's allocator keep freed buffers resident:
   * the memory bound holds natively */
  if (native)
    cr_assert_lt(rss_after - rss_before, 32 * 1024, "RSS grew by %ld KiB",
                 rss_after - rss_before);
}

/* A body that gives nothing at all of its announced length: stopped at once,
 * not left waiting for the idle timeout. */
Test(stream, reader_empty_at_start_stops_at_once) {
  start_engine(1);
  st_t s = {0};
  mem_reader_t m = {.data = text, .len = strlen(text)};
  m.off = m.len; /* already at its end */
  salvo_request_t *req = with_reader("POST", "/echo", &s, &m, (int64_t)m.len, 0);
  uint64_t t0 = uv_hrtime();
  submit_and_wait(req, &s);
  uint64_t ms = (uv_hrtime() - t0) / 1000000;
  cr_assert_eq(s.error, SALVO_EABORTED, "%s: %s", salvo_err_name(s.error), s.detail);
  cr_assert_lt(ms, 5000, "took %llu ms", (unsigned long long)ms);
}

/* libcurl sends an idempotent request again by itself when a kept-alive
 * connection closes under it: a reader body is rewound for that send, and
 * one that cannot rewind is not sent again (the attempt ends as closed). */
static void resend_case(int can_rewind, st_t *s, mem_reader_t *m) {
  start_engine(1);
  st_t warm = {0};
  submit_and_wait(make("GET", "/ok", &warm, 0), &warm); /* a connection to reuse */
  cr_assert_eq(warm.status, 200);
  salvo_request_t *req = with_reader("PUT", "/close", s, m, (int64_t)m->len, can_rewind);
  submit_and_wait(req, s);
}

Test(stream, libcurl_resend_rewinds_the_reader) {
  st_t s = {0};
  mem_reader_t m = {.data = text, .len = strlen(text), .can_rewind = 1};
  resend_case(1, &s, &m);
  cr_assert_eq(s.attempts, 1);
  cr_assert_eq(s.sends, 2, "sent again on a fresh connection (%u sends)", s.sends);
  cr_assert_eq(m.rewinds, 1);
  cr_assert_eq(faultd_count(srv, "/close"), 2);
  cr_assert_eq(faultd_body_bytes(srv), 2 * m.len, "the whole body both times");
}

Test(stream, libcurl_resend_without_rewind_is_not_made) {
  st_t s = {0};
  mem_reader_t m = {.data = text, .len = strlen(text)};
  resend_case(0, &s, &m);
  cr_assert_eq(s.error, SALVO_ECLOSED, "%s: %s", salvo_err_name(s.error), s.detail);
  cr_assert_eq(faultd_count(srv, "/close"), 1, "sent once");
  cr_assert(strstr(s.detail, "cannot be rewound") != NULL, "%s", s.detail);
}

/* A Content-Length over max_body_size: the head callback still sees the
 * response, then the attempt ends with body_too_large (salvo's check, at the
 * end of the header block; libcurl's own would fail it mid-headers). Chunked,
 * the cap stops it at the first byte past it. A HEAD is not refused for it. */
static void over_cap_case(const char *base_url, const char *method, const char *path, st_t *s) {
  char u[256];
  snprintf(u, sizeof(u), "%s%s", base_url, path);
  salvo_request_t *req = NULL;
  cr_assert_eq(salvo_request_new(engine, method, u, &req), 0);
  cr_assert_eq(salvo_request_set_head_cb(req, head_cb), 0);
  cr_assert_eq(salvo_request_set_max_body_size(req, 10), 0);
  submit_and_wait(req, s);
}

Test(stream, content_length_over_the_cap_reaches_the_head_callback) {
  start_engine(1);
  const char *bases[] = {base, tls_base};
  for (int b = 0; b < 2; b++) {
    st_t s = {0}, c = {0}, h = {0};
    over_cap_case(bases[b], "GET", "/bytes/100", &s);
    cr_assert_eq(s.error, SALVO_EBODYLIMIT, "%s: %s", salvo_err_name(s.error), s.detail);
    cr_assert_eq(s.heads, 1, "%s: the head callback ran %d times", bases[b], s.heads);
    cr_assert_eq(s.head_status[0], 200);
    cr_assert_str_eq(s.detail, "its Content-Length is larger than max_body_size");
    over_cap_case(bases[b], "GET", "/bytes/100?chunked=1", &c);
    cr_assert_eq(c.error, SALVO_EBODYLIMIT, "%s", salvo_err_name(c.error));
    cr_assert_eq(c.heads, 1);
    over_cap_case(bases[b], "HEAD", "/bytes/100", &h);
    cr_assert_eq(h.error, 0, "HEAD: %s: %s", salvo_err_name(h.error), h.detail);
    cr_assert_eq(h.status, 200);
    cr_assert_eq(h.heads, 1);
  }
}

/* A FIFO is not a regular file: refused at once, not opened waiting for a
 * writer (which would freeze the loop's thread). */
Test(stream, body_file_refuses_a_fifo_without_blocking, .timeout = 10) {
  start_engine(1);
  char path[] = "/tmp/salvo-fifo-XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  close(fd);
  unlink(path);
  cr_assert_eq(mkfifo(path, 0600), 0);
  salvo_request_t *req = NULL;
  cr_assert_eq(salvo_request_new(engine, "PUT", base, &req), 0);
  int rc = salvo_request_set_body_file(req, path);
  unlink(path);
  cr_assert_eq(rc, SALVO_EINVAL);
  salvo_request_free(req);
}
