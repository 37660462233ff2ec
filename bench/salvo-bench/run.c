/* The load: one loop and one engine per thread, each recording into its own
 * result; the results are merged when the threads end. Owner of worker_t. */
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"

static atomic_int stop_requested;

void bench_request_stop(void) { atomic_store(&stop_requested, 1); }

typedef struct worker_s worker_t;

typedef struct {
  worker_t *w;
  uv_timer_t timer; /* --think */
} user_t;

struct worker_s {
  const bench_opts_t *o;
  const bench_mix_t *mix;
  salvo_engine_opts_t engine_opts;
  shape_t shape;             /* this thread's share */
  double phase;              /* in [0, 1): where in the whole schedule this thread's requests fall,
                                so that threads and shards interleave instead of sending together */
  long total;                /* this thread's share of -n; 0 = none */
  bench_rng_t rng;
  bench_result_t *result;
  uv_loop_t loop;
  salvo_engine_t *engine;
  uv_timer_t tick;
  uint64_t start_ns;
  long scheduled;            /* open loop: requests whose time has come */
  long submitted, completed;
  long in_flight;
  uint64_t *pending;         /* open loop: due times of requests waiting for a slot (FIFO) */
  size_t pending_head, pending_len, pending_cap;
  user_t *users;             /* closed loop */
  int stopping, failed;
};

typedef struct {
  worker_t *w;
  const mix_entry_t *entry;
  uint64_t due_ns;           /* open loop: when it should have been sent */
  uint64_t sent_ns;          /* handed to the engine */
  user_t *user;              /* closed loop */
} tag_t;

static double elapsed_s(const worker_t *w) { return (double)(uv_hrtime() - w->start_ns) / 1e9; }

/* When the next open-loop request is due, in seconds from the start. */
static double next_due(const worker_t *w) {
  return shape_time_of(&w->shape, (double)w->scheduled + w->phase);
}

/* No more requests to start: by count, by duration, by the shape's end, or
 * asked to stop. An open loop ends by its schedule, not the clock, so a
 * late tick still sends what was due before the end. */
static int done_sending(const worker_t *w) {
  if (atomic_load(&stop_requested) || w->failed)
    return 1;
  if (w->total != 0 && w->submitted + (long)w->pending_len >= (w->total < 0 ? 0 : w->total))
    return 1; /* -1: this thread's share of -n is nothing */
  if (w->shape.n > 0) {
    double at = next_due(w);
    return at >= w->shape.end_s || (w->o->duration_s > 0 && at >= w->o->duration_s);
  }
  return w->o->duration_s > 0 && elapsed_s(w) >= w->o->duration_s;
}

static void on_closed(uv_handle_t *h) { (void)h; }

static void finish_if_done(worker_t *w) {
  if (atomic_load(&stop_requested) && w->pending_len > 0) {
    w->result->unsent += w->pending_len; /* due, never sent: stopped */
    w->pending_len = 0;
  }
  if (w->stopping || w->in_flight > 0 || w->pending_len > 0 || !done_sending(w))
    return;
  w->stopping = 1;
  if (salvo_engine_host_count(w->engine) == 1 &&
      salvo_engine_host_stats(w->engine, 0, &w->result->host) == 0)
    w->result->has_host = 1;
  uv_timer_stop(&w->tick);
  uv_close((uv_handle_t *)&w->tick, on_closed);
  if (w->users != NULL)
    for (long i = 0; i < w->o->concurrency; i++)
      uv_close((uv_handle_t *)&w->users[i].timer, on_closed);
  salvo_engine_close(w->engine, NULL, NULL);
}

static void submit(worker_t *w, uint64_t due_ns, user_t *user);

static void user_wake(uv_timer_t *t) {
  user_t *u = t->data;
  if (!done_sending(u->w))
    submit(u->w, 0, u);
  finish_if_done(u->w);
}

static void done(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  (void)req;
  tag_t *tag = ud;
  worker_t *w = tag->w;
  uint64_t now = uv_hrtime();
  uint64_t service_us = (now - tag->sent_ns) / 1000;
  /* From the due time; but a request sent within the loop timer's
   * resolution (1 ms) of it was sent on time, and counts from its send. */
  uint64_t from = tag->due_ns != 0 && tag->sent_ns > tag->due_ns + BENCH_ON_TIME_NS ? tag->due_ns
                                                                                  : tag->sent_ns;
  uint64_t latency_us = (now - from) / 1000;
  size_t sec = (size_t)((now - w->start_ns) / 1000000000ULL);
  result_record(w->result, tag->entry->name_index, sec, r->error, r->status, r->attempts, r->sends,
                (int64_t)latency_us, (int64_t)service_us);
  user_t *user = tag->user;
  free(tag);
  w->completed++;
  w->in_flight--;
  if (w->pending_len > 0 && !atomic_load(&stop_requested)) { /* open loop: the oldest waiting request takes the slot */
    uint64_t due = w->pending[w->pending_head];
    w->pending_head = (w->pending_head + 1) % w->pending_cap;
    w->pending_len--;
    submit(w, due, NULL);
  } else if (user != NULL && !done_sending(w) && !w->stopping) {
    if (w->o->think_ms > 0)
      uv_timer_start(&user->timer, user_wake, (uint64_t)w->o->think_ms, 0);
    else
      submit(w, 0, user);
  }
  finish_if_done(w);
}

static int drop_body(salvo_request_t *req, const char *data, size_t len, void *user_data) {
  (void)req;
  (void)data;
  (void)len;
  (void)user_data;
  return 0;
}

/* Every entry of the mix as a request the engine accepts, before anything is
 * sent: a bad URL, method or header stops the run at once (exit 2). */
static int check_mix(worker_t *w) {
  for (size_t i = 0; i < w->mix->n; i++) {
    const mix_entry_t *e = &w->mix->entries[i];
    salvo_request_t *req = NULL;
    int rc = salvo_request_new(w->engine, e->method != NULL ? e->method : (e->has_body ? "POST" : "GET"),
                               e->url, &req);
    for (char **h = e->headers; rc == 0 && h != NULL && *h != NULL; h++)
      rc = salvo_request_add_header_line(req, *h);
    if (rc == 0 && e->has_body)
      rc = salvo_request_set_body(req, e->body, e->body_len);
    if (req != NULL)
      salvo_request_free(req);
    if (rc != 0) {
      if (w->mix->n > 1)
        fprintf(stderr, "salvo-bench: mix entry %zu (%s): %s\n", i + 1, e->name, salvo_strerror(rc));
      else
        fprintf(stderr, "salvo-bench: the URL, method or a header: %s\n", salvo_strerror(rc));
      return -1;
    }
  }
  return 0;
}

static void submit(worker_t *w, uint64_t due_ns, user_t *user) {
  const mix_entry_t *e = mix_draw(w->mix, &w->rng);
  tag_t *tag = calloc(1, sizeof(*tag));
  salvo_request_t *req = NULL;
  int rc = tag != NULL ? salvo_request_new(w->engine, e->method != NULL ? e->method : (e->has_body ? "POST" : "GET"),
                                           e->url, &req)
                       : SALVO_ENOMEM;
  for (char **h = e->headers; rc == 0 && h != NULL && *h != NULL; h++)
    rc = salvo_request_add_header_line(req, *h);
  if (rc == 0 && e->has_body)
    rc = salvo_request_set_body(req, e->body, e->body_len);
  if (rc == 0) /* bodies are dropped as they come, never held in memory */
    rc = salvo_request_set_data_cb(req, drop_body);
  if (rc == 0)
    rc = salvo_request_set_data_restartable(req, 1);
  if (rc == 0) {
    tag->w = w;
    tag->entry = e;
    tag->due_ns = due_ns;
    tag->user = user;
    tag->sent_ns = uv_hrtime();
    if (due_ns > 0 && tag->sent_ns > due_ns + (uint64_t)BENCH_LATE_US * 1000) {
      w->result->late++;
      int64_t late_us = (int64_t)((tag->sent_ns - due_ns) / 1000);
      if (late_us > w->result->late_max_us)
        w->result->late_max_us = late_us;
    }
    rc = salvo_request_submit(req, done, tag);
  }
  if (rc != 0) {
    if (req != NULL)
      salvo_request_free(req);
    free(tag);
    fprintf(stderr, "salvo-bench: %s: %s\n", e->name, salvo_strerror(rc));
    w->failed = 2;
    return;
  }
  w->submitted++;
  w->in_flight++;
}

static int push_pending(worker_t *w, uint64_t due) {
  if (w->pending_len == w->pending_cap) {
    size_t cap = w->pending_cap ? 2 * w->pending_cap : 1024;
    uint64_t *p = malloc(cap * sizeof(*p));
    if (p == NULL)
      return -1;
    for (size_t i = 0; i < w->pending_len; i++)
      p[i] = w->pending[(w->pending_head + i) % w->pending_cap];
    free(w->pending);
    w->pending = p;
    w->pending_cap = cap;
    w->pending_head = 0;
  }
  w->pending[(w->pending_head + w->pending_len++) % w->pending_cap] = due;
  return 0;
}

/* Open loop: every request whose time has come is sent, or waits for a
 * slot. Request j (from 0) is due at shape_time_of(j): the first at once. */
static void tick(uv_timer_t *t) {
  worker_t *w = t->data;
  double now = elapsed_s(w);
  while (!done_sending(w)) {
    double at_s = next_due(w);
    if (at_s > now)
      break;
    w->scheduled++;
    uint64_t at = w->start_ns + (uint64_t)(at_s * 1e9);
    result_offered(w->result, (size_t)at_s);
    if (w->in_flight < w->o->concurrency) {
      submit(w, at, NULL);
    } else if (push_pending(w, at) != 0) {
      fprintf(stderr, "salvo-bench: out of memory for waiting requests\n");
      w->failed = 2;
    }
  }
  finish_if_done(w);
}

/* Closed loop: the tick only notices the end of a -D run or a stop. */
static void check(uv_timer_t *t) { finish_if_done(t->data); }

static void log_to_stderr(salvo_engine_t *engine, salvo_log_level_t level, const char *message,
                          void *user_data) {
  (void)engine;
  (void)user_data;
  fprintf(stderr, "salvo: %s: %s\n", salvo_log_level_name(level), message);
}

static void worker_run(void *arg) {
  worker_t *w = arg;
  uv_loop_init(&w->loop);
  salvo_engine_opts_t o = w->engine_opts;
  o.max_in_flight = (size_t)w->o->concurrency;
  o.log_cb = log_to_stderr;
  if (salvo_engine_new(&w->loop, &o, &w->engine) != 0) {
    fprintf(stderr, "salvo-bench: cannot start an engine (check the options)\n");
    w->failed = 2;
    uv_loop_close(&w->loop);
    return;
  }
  if (check_mix(w) != 0) {
    w->failed = 2;
    salvo_engine_close(w->engine, NULL, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    return;
  }
  w->start_ns = uv_hrtime();
  uv_timer_init(&w->loop, &w->tick);
  w->tick.data = w;
  if (w->shape.n > 0) {
    uv_timer_start(&w->tick, tick, 0, 1);
  } else {
    w->users = calloc((size_t)w->o->concurrency, sizeof(*w->users));
    if (w->users == NULL) {
      fprintf(stderr, "salvo-bench: out of memory for %ld users\n", w->o->concurrency);
      w->failed = 2;
    } else {
      for (long i = 0; i < w->o->concurrency; i++) {
        w->users[i].w = w;
        uv_timer_init(&w->loop, &w->users[i].timer);
        w->users[i].timer.data = &w->users[i];
      }
      for (long i = 0; i < w->o->concurrency && !done_sending(w); i++)
        submit(w, 0, &w->users[i]);
    }
    uv_timer_start(&w->tick, check, 100, 100);
  }
  finish_if_done(w);
  uv_run(&w->loop, UV_RUN_DEFAULT);
  uv_loop_close(&w->loop);
  result_finish(w->result);
  free(w->users);
  free(w->pending);
}

static void wait_until(double unix_s) {
  for (;;) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    double left = unix_s - ((double)now.tv_sec + (double)now.tv_nsec / 1e9);
    if (left <= 0 || atomic_load(&stop_requested))
      return;
    struct timespec d = {(time_t)left, (long)((left - floor(left)) * 1e9)};
    nanosleep(&d, NULL); /* before any loop runs: nothing else waits on this thread */
  }
}

bench_result_t *bench_run(const bench_opts_t *o, const bench_mix_t *m, const salvo_engine_opts_t *e) {
  long threads = o->threads;
  worker_t *workers = calloc((size_t)threads, sizeof(*workers));
  uv_thread_t *tids = calloc((size_t)threads, sizeof(*tids));
  bench_result_t *all = result_new(m->names, m->nnames);
  if (workers == NULL || tids == NULL || all == NULL) {
    fprintf(stderr, "salvo-bench: out of memory\n");
    free(workers);
    free(tids);
    result_free(all);
    return NULL;
  }
  /* This process's share of the whole (--shard), then each thread's. */
  double share = 1.0 / (double)o->shard_n / (double)threads;
  long total = o->total;
  if (total > 0 && o->shard_n > 1) {
    total = total / (long)o->shard_n + ((long)o->shard_k - 1 < total % (long)o->shard_n);
    if (total == 0)
      total = -1; /* -n smaller than the shards: nothing for this one */
  }
  int failed = 0;
  for (long i = 0; i < threads && !failed; i++) {
    worker_t *w = &workers[i];
    w->o = o;
    w->mix = m;
    w->engine_opts = *e;
    w->shape = o->shape;
    shape_scale(&w->shape, share);
    w->phase = ((double)(o->shard_k - 1) * (double)threads + (double)i) / ((double)o->shard_n * (double)threads);
    w->total = total > 0 ? total / threads + (i < total % threads) : total;
    if (total > 0 && w->total == 0)
      w->total = -1; /* nothing for this thread */
    rng_seed(&w->rng, o->seed + o->shard_k - 1 + (uint64_t)i * UINT64_C(0x9e3779b97f4a7c15));
    if ((w->result = result_new(m->names, m->nnames)) == NULL)
      failed = 1;
  }
  if (o->start_at > 0)
    wait_until(o->start_at);
  struct timespec wall;
  clock_gettime(CLOCK_REALTIME, &wall);
  uint64_t t0 = uv_hrtime();
  for (long i = 0; i < threads && !failed; i++)
    uv_thread_create(&tids[i], worker_run, &workers[i]);
  for (long i = 0; i < threads && !failed; i++)
    uv_thread_join(&tids[i]);
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  struct {
    int has;
    salvo_host_stats_t stats;
  } workers_host = {0};
  if (threads == 1 && workers[0].result != NULL && workers[0].result->has_host) {
    workers_host.has = 1;
    workers_host.stats = workers[0].result->host;
  }
  for (long i = 0; i < threads; i++) {
    if (workers[i].failed == 2)
      failed = 1;
    if (workers[i].result != NULL && !failed && result_merge(all, workers[i].result) != 0)
      failed = 1;
    result_free(workers[i].result);
  }
  free(workers);
  free(tids);
  if (failed) {
    result_free(all);
    return NULL;
  }
  if (threads == 1 && workers_host.has) {
    all->has_host = 1;
    all->host = workers_host.stats;
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  all->max_rss_kib = ru.ru_maxrss;
  all->seconds = secs;
  all->start_unix_s = (double)wall.tv_sec + (double)wall.tv_nsec / 1e9;
  all->open_loop = o->shape.n > 0;
  all->concurrency = o->concurrency * threads; /* in flight at most, over the threads */
  all->threads = threads;
  snprintf(all->shape, sizeof(all->shape), "%s", o->shape_text);
  if (o->shard_n > 1)
    snprintf(all->shard, sizeof(all->shard), "%u/%u", o->shard_k, o->shard_n);
  if (o->label != NULL)
    snprintf(all->label, sizeof(all->label), "%s", o->label);
  return all;
}
