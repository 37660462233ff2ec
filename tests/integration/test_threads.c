/* Requests handed to an engine from other threads
 * (salvo_request_submit_threadsafe), against salvo-faultd on the engine's
 * loop: each one completes exactly once, on the loop's thread, also when the
 * engine closes under the producers. Meant to run under ThreadSanitizer too
 * (meson test --setup tsan). */
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <salvo/salvo.h>

#include "fixture.h"
#include "harness.h"

#define PRODUCERS 4
#define MAX_PER_PRODUCER 10000 /* ids: producer * MAX_PER_PRODUCER + n */
#define MAX_IDS (PRODUCERS * MAX_PER_PRODUCER)

/* Each request's outcome, by id. Written on the loop's thread only (the done
 * callbacks), except accepted and refused: each id's by its producer, read
 * once the producers are joined. */
typedef struct {
  unsigned char calls;    /* done callbacks for it */
  unsigned char accepted; /* salvo_request_submit_threadsafe() returned 0 */
  unsigned char refused;  /* ... returned SALVO_ECLOSING */
  int error;
  long status;
  unsigned attempts;
  size_t history_len;
  int stop;
  int body_ok;
} slot_t;

static slot_t *slots;
static unsigned completed;             /* done callbacks: the loop's thread only */
static atomic_uint done_by[PRODUCERS]; /* done callbacks per producer, for the producers to read */
static atomic_int unthrottle;          /* producers with a window stop waiting */
static uv_thread_t loop_thread;
static unsigned off_loop_thread;       /* done callbacks that ran on another thread */

typedef struct {
  int index;
  unsigned count;        /* requests to hand over, unless SALVO_ECLOSING comes first */
  unsigned window;       /* 0, or at most this many not done, until unthrottle */
  /* what happened, read after the join */
  unsigned handed;       /* returned 0 */
  unsigned closing;      /* returned SALVO_ECLOSING (then it stopped) */
  unsigned other;        /* anything else, from any call */
  int last_other;
} producer_t;

static void count_cb(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  (void)req;
  uintptr_t id = (uintptr_t)ud;
  uv_thread_t self = uv_thread_self();
  if (!uv_thread_equal(&self, &loop_thread))
    off_loop_thread++;
  slot_t *s = &slots[id];
  s->calls++;
  s->error = r->error;
  s->status = r->status;
  s->attempts = r->attempts;
  s->history_len = r->history_len;
  s->stop = (int)r->stop_reason;
  s->body_ok = r->body != NULL && r->body_len == 3 && memcmp(r->body, "ok\n", 3) == 0;
  completed++;
  atomic_fetch_add(&done_by[id / MAX_PER_PRODUCER], 1);
}

static void produce(void *arg) {
  producer_t *p = arg;
  char u[96];
  snprintf(u, sizeof(u), "%s/ok", base);
  for (unsigned n = 0; n < p->count; n++) {
    uintptr_t id = (uintptr_t)p->index * MAX_PER_PRODUCER + n;
    while (p->window != 0 && n - atomic_load(&done_by[p->index]) >= p->window &&
           !atomic_load(&unthrottle))
      usleep(100);
    salvo_request_t *req = NULL;
    int rc = salvo_request_new(engine, "GET", u, &req);
    if (rc == 0) {
      rc = salvo_request_submit_threadsafe(req, count_cb, (void *)id);
      if (rc != 0)
        salvo_request_free(req); /* refused: still ours */
    }
    if (rc == 0) {
      slots[id].accepted = 1;
      p->handed++;
    } else if (rc == SALVO_ECLOSING) {
      slots[id].refused = 1;
      p->closing++;
      break;
    } else {
      p->other++;
      p->last_other = rc;
    }
  }
}

static void noop_cb(uv_timer_t *t) { (void)t; }

static void setup(void) {
  fixture_setup();
  slots = calloc(MAX_IDS, sizeof(*slots));
  cr_assert_not_null(slots);
  completed = 0;
  off_loop_thread = 0;
  for (int i = 0; i < PRODUCERS; i++)
    atomic_store(&done_by[i], 0);
  atomic_store(&unthrottle, 0);
  loop_thread = uv_thread_self(); /* the tests run the loop on their own thread */
}

static void teardown(void) {
  fixture_teardown();
  free(slots);
}

/* Runs the loop until done() or |limit_ms|. A repeating timer wakes it: the
 * engine's own wake handle does not keep the loop alive. */
static void run_until(int (*done)(unsigned), unsigned arg, uint64_t limit_ms) {
  uv_timer_t tick;
  uv_timer_init(&loop, &tick);
  uv_timer_start(&tick, noop_cb, 20, 20);
  uint64_t start = uv_hrtime();
  while (!done(arg) && ms_since(start) < limit_ms)
    uv_run(&loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
}

static int completed_at_least(unsigned want) { return completed >= want; }

static void run_until_completed(unsigned want, uint64_t limit_ms) {
  run_until(completed_at_least, want, limit_ms);
}

static unsigned per_producer(void) {
  /* valgrind runs the threads one at a time, some 50x slower */
  return getenv("SALVO_UNDER_VALGRIND") != NULL ? 500 : 10000;
}

TestSuite(threads, .init = setup, .fini = teardown, .timeout = 240);

/* The test: 4 threads x 10,000 requests, each done exactly once, on
 * the loop's thread, each a 200 the server counted. */
Test(threads, four_producers_each_request_done_exactly_once) {
  cr_assert_eq(salvo_engine_new(&loop, NULL, &engine), 0);
  unsigned per = per_producer(), total = PRODUCERS * per;
  producer_t p[PRODUCERS];
  uv_thread_t tid[PRODUCERS];
  memset(p, 0, sizeof(p));
  uint64_t start = uv_hrtime();
  for (int i = 0; i < PRODUCERS; i++) {
    p[i].index = i;
    p[i].count = per;
    cr_assert_eq(uv_thread_create(&tid[i], produce, &p[i]), 0);
  }
  run_until_completed(total, 120000);
  for (int i = 0; i < PRODUCERS; i++)
    uv_thread_join(&tid[i]);
  uint64_t took_ms = ms_since(start);
  for (int i = 0; i < PRODUCERS; i++) {
    cr_assert_eq(p[i].other, 0, "producer %d: %u calls failed, the last with %s", i, p[i].other,
                 salvo_err_name(p[i].last_other));
    cr_assert_eq(p[i].handed, per, "producer %d handed over %u of %u", i, p[i].handed, per);
  }
  cr_assert_eq(completed, total, "%u of %u done in %llu ms", completed, total,
               (unsigned long long)took_ms);
  unsigned not_ok = 0;
  for (int i = 0; i < PRODUCERS; i++)
    for (unsigned n = 0; n < per; n++) {
      const slot_t *s = &slots[i * MAX_PER_PRODUCER + n];
      cr_assert_eq(s->calls, 1, "request %d/%u: %u done callbacks", i, n, s->calls);
      not_ok += s->error != 0 || s->status != 200 || !s->body_ok || s->attempts != 1;
    }
  cr_assert_eq(not_ok, 0, "%u requests did not end as one 200 \"ok\"", not_ok);
  cr_assert_eq(off_loop_thread, 0, "done callbacks ran off the loop's thread");
  salvo_engine_stats_t st;
  salvo_engine_stats(engine, &st);
  cr_assert_eq(st.submitted, total);
  cr_assert_eq(st.completed, total);
  cr_assert_eq(faultd_count(srv, "/ok"), total, "the server counted each request once");
  cr_log_info("threads: %u requests from %d threads in %llu ms", total, PRODUCERS,
              (unsigned long long)took_ms);
}

/* Producers hand over while the engine closes under them: every request a
 * call accepted gets exactly one done callback (a 200, or canceled by the
 * close), every one refused with SALVO_ECLOSING none. Until the close each
 * producer keeps at most 500 requests not done, so the loop answers some
 * first; then they are let go at once, as the close comes. The test closes
 * the engine, then joins the producers, then runs the loop to close_cb: no
 * call after close_cb (salvo.h's rule). */

Test(threads, producers_racing_close_accepted_once_refused_never) {
  cr_assert_eq(salvo_engine_new(&loop, NULL, &engine), 0);
  unsigned per = getenv("SALVO_UNDER_VALGRIND") != NULL ? 2000 : 10000;
  unsigned close_at = per / 10; /* done callbacks */
  producer_t p[PRODUCERS];
  uv_thread_t tid[PRODUCERS];
  memset(p, 0, sizeof(p));
  for (int i = 0; i < PRODUCERS; i++) {
    p[i].index = i;
    p[i].count = per;
    p[i].window = 500;
    cr_assert_eq(uv_thread_create(&tid[i], produce, &p[i]), 0);
  }
  run_until_completed(close_at, 60000);
  cr_assert_geq(completed, close_at);
  atomic_store(&unthrottle, 1);
  salvo_engine_close(engine, on_closed, NULL); /* on the loop's thread, between two passes */
  unsigned done_at_close = completed;
  for (int i = 0; i < PRODUCERS; i++)
    uv_thread_join(&tid[i]);
  while (!engine_closed)
    uv_run(&loop, UV_RUN_ONCE);
  unsigned accepted = 0, refused = 0, ok = 0, canceled = 0, stopped = 0;
  for (int i = 0; i < PRODUCERS; i++) {
    cr_assert_eq(p[i].other, 0, "producer %d: %u calls failed, the last with %s", i, p[i].other,
                 salvo_err_name(p[i].last_other));
    /* it stopped at its first SALVO_ECLOSING, or handed over all it had first */
    cr_assert(p[i].closing == 1 || (p[i].closing == 0 && p[i].handed == per),
              "producer %d: %u SALVO_ECLOSING, %u handed over", i, p[i].closing, p[i].handed);
    stopped += p[i].closing;
  }
  cr_assert_geq(stopped, 1, "the close came after every producer was done: no race");
  for (unsigned id = 0; id < MAX_IDS; id++) {
    const slot_t *s = &slots[id];
    if (s->accepted) {
      accepted++;
      cr_assert_eq(s->calls, 1, "accepted request %u: %u done callbacks", id, s->calls);
      if (s->error == 0 && s->status == 200)
        ok++;
      else if (s->error == SALVO_ECANCELED && s->stop == SALVO_STOP_CANCELED)
        canceled++;
      else
        cr_assert_fail("request %u ended with %s, status %ld", id, salvo_err_name(s->error),
                       s->status);
    } else {
      refused += s->refused;
      cr_assert_eq(s->calls, 0, "request %u was not accepted, yet had %u done callbacks", id,
                   s->calls);
    }
  }
  cr_assert_eq(refused, stopped);
  cr_assert_eq(ok + canceled, accepted);
  cr_assert_eq(completed, accepted, "one done callback per accepted request");
  cr_assert_geq(ok, done_at_close, "what was done before the close stays done");
  cr_assert(faultd_count(srv, "/ok") >= ok, "every 200 reached the server");
  cr_log_info("close race: %u accepted (%u ok, %u done before the close; %u canceled), %u refused",
              accepted, ok, done_at_close, canceled, refused);
}

/* One engine per thread, each on its own loop (salvo keeps no global state),
 * all at once against the test's salvo-faultd on the main thread. */
typedef struct {
  unsigned count;
  int new_rc;
  unsigned submitted, done, ok, closed;
  salvo_engine_stats_t stats;
  int loop_close_rc;
} worker_t;

static atomic_uint workers_finished;

static void worker_done_cb(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  (void)req;
  worker_t *w = ud;
  w->done++;
  w->ok += r->error == 0 && r->status == 200 && r->attempts == 1;
}

static void worker_closed_cb(salvo_engine_t *e, void *ud) {
  (void)e;
  ((worker_t *)ud)->closed++;
}

static void engine_worker(void *arg) {
  worker_t *w = arg;
  uv_loop_t own;
  uv_loop_init(&own);
  salvo_engine_t *e = NULL;
  char u[96];
  snprintf(u, sizeof(u), "%s/ok", base);
  w->new_rc = salvo_engine_new(&own, NULL, &e); /* curl_global_init() on four threads at once */
  if (w->new_rc == 0) {
    for (unsigned n = 0; n < w->count; n++) {
      salvo_request_t *req = NULL;
      if (salvo_request_new(e, "GET", u, &req) == 0) {
        if (salvo_request_submit(req, worker_done_cb, w) == 0)
          w->submitted++;
        else
          salvo_request_free(req);
      }
    }
    while (w->done < w->submitted)
      uv_run(&own, UV_RUN_ONCE);
    salvo_engine_stats(e, &w->stats);
    salvo_engine_close(e, worker_closed_cb, w);
    uv_run(&own, UV_RUN_DEFAULT);
  }
  w->loop_close_rc = uv_loop_close(&own);
  atomic_fetch_add(&workers_finished, 1);
}

static int workers_done(unsigned n) { return atomic_load(&workers_finished) == n; }

Test(threads, an_engine_per_thread_on_four_threads_at_once) {
  unsigned per = getenv("SALVO_UNDER_VALGRIND") != NULL ? 200 : 2000;
  worker_t w[PRODUCERS];
  uv_thread_t tid[PRODUCERS];
  memset(w, 0, sizeof(w));
  atomic_store(&workers_finished, 0);
  for (int i = 0; i < PRODUCERS; i++) {
    w[i].count = per;
    cr_assert_eq(uv_thread_create(&tid[i], engine_worker, &w[i]), 0);
  }
  run_until(workers_done, PRODUCERS, 120000); /* salvo-faultd answers from this thread */
  for (int i = 0; i < PRODUCERS; i++)
    uv_thread_join(&tid[i]);
  for (int i = 0; i < PRODUCERS; i++) {
    cr_assert_eq(w[i].new_rc, 0, "engine %d: %s", i, salvo_err_name(w[i].new_rc));
    cr_assert_eq(w[i].submitted, per, "engine %d", i);
    cr_assert_eq(w[i].done, per, "engine %d: %u done of %u", i, w[i].done, per);
    cr_assert_eq(w[i].ok, per, "engine %d: %u of %u were one 200", i, w[i].ok, per);
    cr_assert_eq(w[i].stats.submitted, per);
    cr_assert_eq(w[i].stats.completed, per);
    cr_assert_eq(w[i].closed, 1, "engine %d: close_cb ran %u times", i, w[i].closed);
    cr_assert_eq(w[i].loop_close_rc, 0, "engine %d left handles on its loop", i);
  }
  cr_assert_eq(faultd_count(srv, "/ok"), PRODUCERS * per);
}

/* Handed over before the loop ever ran, then the engine closes: they never
 * enter the engine. Each ends once, canceled, with no attempt and nothing
 * sent; the stats count them as submitted and completed. A hand-over after
 * the close is refused, and the request stays the caller's. */
static salvo_engine_stats_t stats_at_last;

static void canceled_cb(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  count_cb(req, r, ud);
  if (completed == 100)
    salvo_engine_stats(engine, &stats_at_last);
}

static void hand_over_100(void *arg) {
  (void)arg;
  /* the loop has not run yet: its thread is not known, nothing is checked
   * (a daemon may set an engine up before it starts the loop's thread) */
  salvo_engine_stats_t st;
  salvo_engine_stats(engine, &st);
  char u[96];
  snprintf(u, sizeof(u), "%s/ok", base);
  for (uintptr_t id = 0; id < 100; id++) {
    salvo_request_t *req = NULL;
    if (salvo_request_new(engine, "GET", u, &req) == 0 &&
        salvo_request_submit_threadsafe(req, canceled_cb, (void *)id) == 0)
      slots[id].accepted = 1;
  }
}

Test(threads, handed_over_then_closed_end_canceled_without_an_attempt) {
  cr_assert_eq(salvo_engine_new(&loop, NULL, &engine), 0);
  uv_thread_t tid;
  cr_assert_eq(uv_thread_create(&tid, hand_over_100, NULL), 0);
  uv_thread_join(&tid);
  salvo_request_t *late = NULL, *later = NULL;
  char u[96];
  snprintf(u, sizeof(u), "%s/ok", base);
  cr_assert_eq(salvo_request_new(engine, "GET", u, &late), 0); /* built before the close */
  salvo_engine_close(engine, on_closed, NULL);
  cr_assert_eq(salvo_request_new(engine, "GET", u, &later), SALVO_ECLOSING);
  cr_assert_eq(salvo_request_submit_threadsafe(late, count_cb, (void *)(uintptr_t)100),
               SALVO_ECLOSING);
  salvo_request_free(late);
  cr_assert_eq(completed, 0, "no done callback before the loop runs");
  while (!engine_closed)
    uv_run(&loop, UV_RUN_ONCE);
  for (unsigned id = 0; id < 100; id++) {
    const slot_t *s = &slots[id];
    cr_assert_eq(s->accepted, 1);
    cr_assert_eq(s->calls, 1, "request %u: %u done callbacks", id, s->calls);
    cr_assert_eq(s->error, SALVO_ECANCELED, "request %u: %s", id, salvo_err_name(s->error));
    cr_assert_eq(s->stop, SALVO_STOP_CANCELED);
    cr_assert_eq(s->attempts, 0);
    cr_assert_eq(s->history_len, 0);
    cr_assert_eq(s->status, 0);
  }
  cr_assert_eq(slots[100].calls, 0, "the refused one never completes");
  cr_assert_eq(stats_at_last.submitted, 100);
  cr_assert_eq(stats_at_last.completed, 100);
  cr_assert_eq(stats_at_last.failures, 100, "each canceled hand-over is a failure");
  cr_assert_eq(stats_at_last.successes, 0);
  cr_assert_eq(faultd_count(srv, "/ok"), 0, "nothing was sent");
}

/* Bad input is refused on the caller's thread, the request left to it. */
Test(threads, refusals_leave_the_request_to_the_caller) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.http_version = SALVO_HTTP_2; /* plaintext: h2c, which libcurl < 8.0 breaks */
  cr_assert_eq(salvo_engine_new(&loop, &opts, &engine), 0);
  char u[96];
  snprintf(u, sizeof(u), "%s/ok", base);
  salvo_request_t *req = NULL;
  cr_assert_eq(salvo_request_new(engine, "GET", u, &req), 0);
  cr_assert_eq(salvo_request_submit_threadsafe(NULL, count_cb, NULL), SALVO_EINVAL);
  cr_assert_eq(salvo_request_submit_threadsafe(req, NULL, NULL), SALVO_EINVAL);
  if (curl_version_info(CURLVERSION_NOW)->version_num < 0x080000)
    cr_assert_eq(salvo_request_submit_threadsafe(req, count_cb, NULL), SALVO_ENOTSUP);
  salvo_request_free(req);
  fixture_close_engine();

  cr_assert_eq(salvo_engine_new(&loop, NULL, &engine), 0);
  cr_assert_eq(salvo_request_new(engine, "GET", u, &req), 0);
  cr_assert_eq(salvo_request_submit(req, count_cb, (void *)(uintptr_t)0), 0);
  cr_assert_eq(salvo_request_submit_threadsafe(req, count_cb, (void *)(uintptr_t)0), SALVO_EINVAL,
               "already submitted");
  run_until_completed(1, 10000);
  cr_assert_eq(slots[0].calls, 1);
  cr_assert_eq(slots[0].status, 200);
}

/* Debug builds catch a call of the loop-only API from another thread. */
static void stats_from_elsewhere(void *arg) {
  (void)arg;
  salvo_engine_stats_t st;
  salvo_engine_stats(engine, &st); /* asserts: not the loop's thread */
}

#ifdef NDEBUG
#define DEBUG_ABORT 0 /* criterion counts a skipped test that expects a signal as failed */
#else
#define DEBUG_ABORT SIGABRT
#endif

Test(threads, a_loop_only_call_from_another_thread_aborts_in_debug_builds,
     .signal = DEBUG_ABORT) {
#ifdef NDEBUG
  cr_skip_test("the thread check is an assert(): compiled out with NDEBUG");
#endif
  cr_assert_eq(salvo_engine_new(&loop, NULL, &engine), 0);
  uv_thread_t tid;
  char u[96];
  snprintf(u, sizeof(u), "%s/ok", base);
  salvo_request_t *req = NULL;
  cr_assert_eq(salvo_request_new(engine, "GET", u, &req), 0);
  cr_assert_eq(salvo_request_submit(req, count_cb, (void *)(uintptr_t)0), 0);
  run_until_completed(1, 10000); /* the loop has run the engine on this thread */
  cr_assert_eq(slots[0].calls, 1);
  cr_assert_eq(uv_thread_create(&tid, stats_from_elsewhere, NULL), 0);
  uv_thread_join(&tid);
  cr_assert_fail("salvo_engine_stats() from another thread did not abort");
}
