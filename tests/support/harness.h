/* Helpers shared by the tests: record what a done callback saw. */
#ifndef SALVO_HARNESS_H
#define SALVO_HARNESS_H

#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <salvo/salvo.h>

typedef struct {
  int calls;           /* times the done callback ran for this request */
  int error;
  long status;
  unsigned attempts;
  unsigned sends;
  int reached;
  int http_version;
  size_t body_len;
  char body[128];
  uint64_t elapsed_us;
  char header[128];    /* value of X-Test if any */
  char detail[256];
  int stop;            /* salvo_stop_reason_t */
  int *done_counter;   /* incremented on every completion, if set */
} outcome_t;

static inline void record_cb(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  outcome_t *o = ud;
  o->calls++;
  o->error = r->error;
  o->status = r->status;
  o->attempts = r->attempts;
  o->sends = r->sends;
  o->reached = r->reached_server;
  o->http_version = r->http_version;
  o->body_len = r->body_len;
  o->elapsed_us = r->elapsed_us;
  o->stop = (int)r->stop_reason;
  snprintf(o->detail, sizeof(o->detail), "%s", r->detail);
  if (r->body != NULL)
    snprintf(o->body, sizeof(o->body), "%s", r->body);
  const char *h = salvo_response_header(req, "x-test");
  snprintf(o->header, sizeof(o->header), "%s", h ? h : "");
  if (o->done_counter)
    (*o->done_counter)++;
}

/* How many of |n| requests have completed; fails the test if one completed twice. */
static inline size_t outcomes_done(const outcome_t *o, size_t n) {
  size_t done = 0;
  for (size_t i = 0; i < n; i++) {
    cr_assert_leq(o[i].calls, 1, "request %zu completed %d times", i, o[i].calls);
    done += (size_t)o[i].calls;
  }
  return done;
}

/* Submits method+url with the given per-request timeouts (NULL = engine's). */
static inline salvo_request_t *submit_to(salvo_engine_t *engine, const char *method,
                                         const char *url, const salvo_timeouts_t *t,
                                         outcome_t *o) {
  salvo_request_t *req = NULL;
  cr_assert_eq(salvo_request_new(engine, method, url, &req), 0, "request_new %s", url);
  if (t != NULL)
    cr_assert_eq(salvo_request_set_timeouts(req, t), 0);
  cr_assert_eq(salvo_request_submit(req, record_cb, o), 0);
  return req;
}

/* Runs |loop| until each of the |n| requests has completed. */
static inline void outcomes_run(uv_loop_t *loop, const outcome_t *o, size_t n) {
  for (;;) {
    size_t done = 0;
    for (size_t i = 0; i < n; i++)
      done += o[i].calls > 0;
    if (done == n)
      break;
    uv_run(loop, UV_RUN_ONCE);
  }
}

static inline uint64_t ms_since(uint64_t start_ns) { return (uv_hrtime() - start_ns) / 1000000; }

#endif
