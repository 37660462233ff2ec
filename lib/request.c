/* A request's life: build, submit, queue, attempt, decide, complete exactly
 * once. Owns salvo_request_t (but for its headers, headers.c, and its hedge,
 * hedge.c). The host decides admission and budgets (host.c), the attempt
 * reads what libcurl knows (attempt.c), redirect.c plans the next hop; this
 * file applies their answers. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* Scratch strings handed out by salvo_response_header*(); freed with the request. */
typedef struct scratch_s {
  struct scratch_s *next;
  char data[];
} scratch_t;

static void request_timer_cb(uv_timer_t *timer);
static void start(salvo_request_t *req);
static void close_reader(salvo_request_t *req);

int salvo_request_new(salvo_engine_t *engine, const char *method, const char *url,
                      salvo_request_t **out) {
  if (engine == NULL || out == NULL || !salvo__valid_method(method))
    return SALVO_EINVAL;
  /* other threads may call this: closing is read as engine.c writes it */
  if (!salvo__engine_live(engine) || __atomic_load_n(&engine->closing, __ATOMIC_RELAXED))
    return SALVO_ECLOSING;
  int is_https = 0;
  CURLU *curlu = NULL;
  int rc = salvo__parse_url(url, &is_https, &curlu);
  if (rc != 0)
    return rc;
  /* The method and URL live after the struct: one allocation. */
  size_t mlen = strlen(method), ulen = strlen(url);
  salvo_request_t *req = malloc(sizeof(*req) + mlen + 1 + ulen + 1);
  if (req == NULL) {
    curl_url_cleanup(curlu);
    return SALVO_ENOMEM;
  }
  memset(req, 0, sizeof(*req));
  req->curlu = curlu;
  req->method = (char *)(req + 1);
  memcpy(req->method, method, mlen + 1);
  req->url = req->method + mlen + 1;
  memcpy(req->url, url, ulen + 1);
  req->engine = engine;
  req->is_https = is_https;
  req->lane = salvo__lane_for(engine, is_https);
  req->is_get = strcmp(method, "GET") == 0;
  req->is_head = strcmp(method, "HEAD") == 0;
  /* Methods whose semantics carry a body send Content-Length: 0 when empty. */
  req->has_body = strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
                  strcmp(method, "PATCH") == 0;
  req->timeouts = engine->timeouts;
  req->policy = &engine->retry;
  req->max_body_size = engine->max_body_size;
  req->follow_redirects = engine->follow_redirects;
  req->accept_encoding = engine->accept_encoding;
  req->max_recv_speed = engine->max_recv_speed;
  salvo__list_init(&req->node);
  salvo__list_init(&req->cancel_node);
  salvo__list_init(&req->arm_node);
  *out = req;
  return 0;
}

int salvo_request_add_header(salvo_request_t *req, const char *name, const char *value) {
  if (req == NULL || name == NULL || value == NULL || req->state != SALVO__NEW)
    return SALVO_EINVAL;
  return salvo__headers_add(req, name, strlen(name), value, strlen(value));
}

int salvo_request_add_header_line(salvo_request_t *req, const char *line) {
  const char *name, *value;
  size_t name_len, value_len;
  if (req == NULL || line == NULL || req->state != SALVO__NEW ||
      salvo__split_header_line(line, &name, &name_len, &value, &value_len) != 0)
    return SALVO_EINVAL;
  return salvo__headers_add(req, name, name_len, value, value_len);
}

int salvo_request_set_body(salvo_request_t *req, const void *body, size_t len) {
  if (req == NULL || req->state != SALVO__NEW || (body == NULL && len > 0))
    return SALVO_EINVAL;
  char *copy = NULL;
  if (len > 0) {
    copy = malloc(len);
    if (copy == NULL)
      return SALVO_ENOMEM;
    memcpy(copy, body, len);
  }
  close_reader(req);
  free(req->body);
  req->body = copy;
  req->body_size = len;
  req->has_body = 1;
  return 0;
}

static void close_reader(salvo_request_t *req) {
  if (req->has_reader && req->reader.close != NULL)
    req->reader.close(req->reader.user_data);
  req->has_reader = 0;
}

void salvo_body_reader_init(salvo_body_reader_t *r) {
  if (r == NULL)
    return;
  memset(r, 0, sizeof(*r));
  r->length = -1;
}

int salvo_request_set_body_reader(salvo_request_t *req, const salvo_body_reader_t *reader) {
  if (req == NULL || reader == NULL || reader->read == NULL || reader->length < -1 ||
      req->state != SALVO__NEW)
    return SALVO_EINVAL;
  close_reader(req);
  free(req->body);
  req->body = NULL;
  req->body_size = 0;
  req->reader = *reader;
  req->has_reader = 1;
  req->has_body = 1;
  req->body_read = 0;
  return 0;
}

/* salvo_request_set_body_file()'s reader: the file, read where the last
 * read ended, back to 0 on rewind. */
typedef struct {
  int fd;
  uint64_t off;
} file_body_t;

static int file_read(salvo_request_t *req, char *buf, size_t cap, size_t *len, void *data) {
  (void)req;
  file_body_t *f = data;
  ssize_t n;
  do
    n = pread(f->fd, buf, cap, (off_t)f->off);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return -1;
  f->off += (uint64_t)n;
  *len = (size_t)n;
  return 0;
}

static int file_rewind(salvo_request_t *req, void *data) {
  (void)req;
  ((file_body_t *)data)->off = 0;
  return 0;
}

static void file_close(void *data) {
  file_body_t *f = data;
  close(f->fd);
  free(f);
}

int salvo_request_set_body_file(salvo_request_t *req, const char *path) {
  if (req == NULL || path == NULL || req->state != SALVO__NEW)
    return SALVO_EINVAL;
  file_body_t *f = malloc(sizeof(*f));
  if (f == NULL)
    return SALVO_ENOMEM;
  struct stat st;
  f->off = 0;
  /* O_NONBLOCK: opening a FIFO would wait for a writer; a regular file
   * ignores the flag, and anything else is refused below */
  f->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (f->fd < 0 || fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (f->fd >= 0)
      close(f->fd);
    free(f);
    return SALVO_EINVAL;
  }
  salvo_body_reader_t r;
  salvo_body_reader_init(&r);
  r.read = file_read;
  r.rewind = file_rewind;
  r.close = file_close;
  r.length = (int64_t)st.st_size;
  r.user_data = f;
  return salvo_request_set_body_reader(req, &r); /* cannot fail now */
}

int salvo_request_set_head_cb(salvo_request_t *req, salvo_head_cb cb) {
  if (req == NULL || req->state != SALVO__NEW)
    return SALVO_EINVAL;
  req->head_cb = cb;
  return 0;
}

int salvo_request_set_data(salvo_request_t *req, void *data) {
  if (req == NULL)
    return SALVO_EINVAL;
  req->data = data;
  return 0;
}

void *salvo_request_data(const salvo_request_t *req) { return req != NULL ? req->data : NULL; }

int salvo_request_set_timeouts(salvo_request_t *req, const salvo_timeouts_t *t) {
  if (req == NULL || t == NULL || req->state != SALVO__NEW)
    return SALVO_EINVAL;
  salvo__timeouts_apply(&req->timeouts, t);
  return 0;
}

int salvo_request_set_deadline(salvo_request_t *req, uint64_t deadline_ms) {
  if (req == NULL || req->state != SALVO__NEW)
    return SALVO_EINVAL;
  salvo_timeouts_t t;
  salvo_timeouts_inherit(&t);
  t.deadline_ms = deadline_ms;
  salvo__timeouts_apply(&req->timeouts, &t);
  return 0;
}

int salvo_request_set_retry_policy(salvo_request_t *req, const salvo_retry_policy_t *p) {
  if (req == NULL || p == NULL || req->state != SALVO__NEW || salvo__retry_policy_check(p) != 0)
    return SALVO_EINVAL;
  if (req->own_policy == NULL && (req->own_policy = malloc(sizeof(*p))) == NULL)
    return SALVO_ENOMEM;
  *req->own_policy = *p;
  req->policy = req->own_policy;
  return 0;
}

int salvo_request_set_data_cb(salvo_request_t *req, salvo_data_cb cb) {
  if (req == NULL || req->state != SALVO__NEW)
    return SALVO_EINVAL;
  req->data_cb = cb;
  return 0;
}

int salvo_request_set_data_restartable(salvo_request_t *req, int restartable) {
  if (req == NULL || req->state != SALVO__NEW)
    return SALVO_EINVAL;
  req->data_restartable = restartable != 0;
  return 0;
}

int salvo_request_set_follow_redirects(salvo_request_t *req, int follow) {
  if (req == NULL || req->state != SALVO__NEW)
    return SALVO_EINVAL;
  req->follow_redirects = follow != 0;
  return 0;
}

int salvo_request_set_accept_encoding(salvo_request_t *req, int on) {
  if (req == NULL || req->state != SALVO__NEW)
    return SALVO_EINVAL;
  req->accept_encoding = on != 0;
  return 0;
}

int salvo_request_set_max_body_size(salvo_request_t *req, size_t max) {
  if (req == NULL || req->state != SALVO__NEW)
    return SALVO_EINVAL;
  req->max_body_size = max;
  return 0;
}

int salvo_request_set_max_recv_speed(salvo_request_t *req, uint64_t bytes_per_second) {
  if (req == NULL || req->state != SALVO__NEW || bytes_per_second > (uint64_t)INT64_MAX)
    return SALVO_EINVAL;
  req->max_recv_speed = bytes_per_second;
  return 0;
}

static void free_request(salvo_request_t *req) {
  close_reader(req);
  salvo__headers_free(req);
  free(req->own_policy);
  curl_url_cleanup(req->curlu);
  if (req->history != &req->history_first)
    free(req->history);
  free(req->body);
  free(req->resp_body);
  free(req->url_owned);
  scratch_t *s = (scratch_t *)req->header_scratch;
  while (s != NULL) {
    scratch_t *next = s->next;
    free(s);
    s = next;
  }
  free(req);
}

void salvo_request_free(salvo_request_t *req) {
  /* A submitted request belongs to the engine: it frees it after done_cb. */
  if (req == NULL || req->state != SALVO__NEW)
    return;
  free_request(req);
}

salvo_engine_t *salvo_request_engine(const salvo_request_t *req) { return req ? req->engine : NULL; }
const char *salvo_request_method(const salvo_request_t *req) { return req ? req->method : NULL; }
const char *salvo_request_url(const salvo_request_t *req) { return req ? req->url : NULL; }

/* ------------------------------------------------------------ state */

int salvo__request_step_ok(int from, int to) {
  switch (to) {
  case SALVO__QUEUED: /* submitted (or taken from the injector), the backoff over, or a
                        redirect's next hop */
    return from == SALVO__NEW || from == SALVO__HANDED || from == SALVO__WAITING ||
           from == SALVO__RUNNING;
  case SALVO__RUNNING:
    return from == SALVO__QUEUED;
  case SALVO__WAITING:
    return from == SALVO__RUNNING;
  case SALVO__DONE: /* HANDED: it never entered the engine (refuse_handed) */
    return from == SALVO__QUEUED || from == SALVO__RUNNING || from == SALVO__WAITING ||
           from == SALVO__HANDED;
  case SALVO__HANDED:
    return from == SALVO__NEW;
  default:
    return 0;
  }
}

/* Every change of state goes through here (curl's mstate() is the model). */
static void set_state(salvo_request_t *req, int to) {
  assert(salvo__request_step_ok(req->state, to) && "illegal request state change");
  req->state = to;
}

/* ------------------------------------------------------------ timers */

static void arm_request_timer(salvo_request_t *req) {
  salvo_engine_t *engine = req->engine;
  uint64_t due = req->deadline_at_ms;
  if (req->state == SALVO__RUNNING)
    due = 0; /* the attempt's slot timer watches the deadline */
  if (req->state == SALVO__WAITING && (due == 0 || req->retry_at_ms < due))
    due = req->retry_at_ms;
  if (req->state == SALVO__QUEUED && req->queue_at_ms != 0 && (due == 0 || req->queue_at_ms < due))
    due = req->queue_at_ms;
  if (due == 0) {
    if (req->timer_inited)
      uv_timer_stop(&req->timer);
    return;
  }
  if (!req->timer_inited) {
    uv_timer_init(engine->loop, &req->timer); /* cannot fail */
    req->timer_inited = 1;
    engine->live_handles++;
  }
  uint64_t now = uv_now(engine->loop);
  uv_timer_start(&req->timer, request_timer_cb, due > now ? due - now : 0, 0);
}

/* A request submitted gets no timer of its own until it is seen to wait:
 * most start on the next pump, and their deadline is then watched by the
 * attempt's pooled slot timer. After a pump, the ones still queued get it. */
void salvo__request_arm_queued(salvo_engine_t *engine) {
  while (!salvo__list_empty(&engine->unarmed)) {
    salvo_request_t *req = SALVO__CONTAINER_OF(engine->unarmed.next, salvo_request_t, arm_node);
    salvo__list_remove(&req->arm_node);
    if (req->state == SALVO__QUEUED)
      arm_request_timer(req);
  }
}

/* ------------------------------------------------------------ steps */

static void enqueue(salvo_request_t *req, int front) {
  set_state(req, SALVO__QUEUED);
  salvo__host_enqueue(req->host, &req->node, front);
}

/* Back in the host's queue at its head after an attempt (a redirect's next
 * hop, a backoff over): it may wait there, so its queue timeout runs from now. */
static void requeue(salvo_request_t *req, uint64_t now) {
  enqueue(req, 1);
  req->queue_at_ms = req->timeouts.queue_ms ? salvo__add_ms(now, req->timeouts.queue_ms) : 0;
  arm_request_timer(req);
}

/* The attempt is over and another comes: its slot goes back to the pool, and
 * only the final attempt's body is reported. */
static void release_attempt(salvo_request_t *req) {
  free(req->resp_body);
  req->resp_body = NULL;
  req->resp_cap = req->resp_len = req->held_len = 0;
  salvo__slot_put(req->slot);
  req->slot = NULL;
  salvo__list_remove(&req->node);
}

/* The request stops here for |stop| with |error|. */
static void finish(salvo_request_t *req, salvo_stop_reason_t stop, int error, int64_t retry_after_ms) {
  req->result.stop_reason = stop;
  req->stop_set = 1;
  req->result.retry_after_ms = retry_after_ms;
  salvo__request_complete(req, error);
}

/* It stops before any attempt of its own decided: |why| is the detail. */
static void end_early(salvo_request_t *req, salvo_stop_reason_t stop, int error, const char *why) {
  snprintf(req->detail, sizeof(req->detail), "%s", why);
  finish(req, stop, error, -1);
}

/* A new entry at the end of the history, written in place: the caller
 * fills what is left (wait, Retry-After, sends) and hands it to recorded().
 * NULL if it could not be kept (out of memory). */
static salvo_attempt_record_t *new_record(salvo_request_t *req, unsigned attempt, int error,
                                          long status, int reached, salvo_decision_t decision,
                                          const char *reason) {
  if (req->history_cap == 0) { /* most requests make one attempt: its record is inline */
    req->history = &req->history_first;
    req->history_cap = 1;
  } else if (req->history_len_internal == req->history_cap) {
    size_t cap = req->history_cap * 2;
    salvo_attempt_record_t *h;
    if (req->history == &req->history_first) {
      h = malloc(cap * sizeof(*h));
      if (h != NULL)
        *h = req->history_first;
    } else {
      h = realloc(req->history, cap * sizeof(*h));
    }
    if (h == NULL)
      return NULL;
    req->history = h;
    req->history_cap = cap;
  }
  salvo_attempt_record_t *rec = &req->history[req->history_len_internal++];
  rec->attempt = attempt;
  rec->error = error;
  rec->status = status;
  rec->reached_server = reached;
  rec->decision = decision;
  rec->wait_ms = 0;
  rec->retry_after_ms = -1;
  rec->sends = 0;
  size_t n = strlen(reason);
  if (n >= sizeof(rec->reason))
    n = sizeof(rec->reason) - 1;
  memcpy(rec->reason, reason, n);
  rec->reason[n] = '\0';
  return rec;
}

/* The record is complete: the event callback sees it. */
static void recorded(salvo_request_t *req, const salvo_attempt_record_t *rec) {
  if (req->policy->event_cb != NULL)
    req->policy->event_cb(req, rec, req->policy->event_data);
}

/* ------------------------------------------------------------ admission */

void salvo__request_admit(salvo_request_t *req) {
  uint64_t now = uv_now(req->engine->loop);
  int go = salvo__host_admit(req->host, now, req->deadline_at_ms, req->queue_at_ms);
  if (go == SALVO__NO_CIRCUIT) {
    end_early(req, SALVO_STOP_CIRCUIT, SALVO_ECIRCUIT,
              "the host's circuit is open after repeated failures: not sent");
  } else if (go == SALVO__NO_RATE) {
    end_early(req, SALVO_STOP_RATE_LIMIT, SALVO_ERATELIMIT,
              "the host's rate limit or pause would hold it past its deadline or queue timeout");
  } else if (go == SALVO__GO || go == SALVO__GO_PROBE) {
    req->probe = go == SALVO__GO_PROBE;
    start(req); /* the host moves up a level of the fair share (host.c) */
  } /* else SALVO__HOLD: the host waits on its timer, the request in its queue */
}

/* Stops the running attempt (and a hedge) for |reason|: the decision then
 * sees that reason, not libcurl's result. */
static void stop_running(salvo_request_t *req, int reason) {
  salvo__hedge_stop(req, reason);
  salvo__attempt_stop(req->slot, reason);
  salvo__request_finish_attempt(req, req->slot, CURLE_OK);
}

static void request_timer_cb(uv_timer_t *timer) {
  salvo_request_t *req = SALVO__CONTAINER_OF(timer, salvo_request_t, timer);
  salvo_engine_t *engine = req->engine;
  uint64_t now = uv_now(engine->loop);
  int held = req->state == SALVO__QUEUED && req->host->blocked_until_ms != 0;
  if (req->deadline_at_ms != 0 && now >= req->deadline_at_ms) {
    if (req->state == SALVO__RUNNING)
      stop_running(req, SALVO_EDEADLINE);
    else if (held)
      end_early(req, SALVO_STOP_RATE_LIMIT, SALVO_ERATELIMIT,
                "held by the host's rate limit or pause until its deadline");
    else
      salvo__request_complete(req, SALVO_EDEADLINE);
  } else if (req->state == SALVO__QUEUED && req->queue_at_ms != 0 && now >= req->queue_at_ms) {
    if (held)
      end_early(req, SALVO_STOP_RATE_LIMIT, SALVO_ERATELIMIT,
                "held by the host's rate limit or pause past its queue timeout");
    else
      salvo__request_complete(req, SALVO_EQUEUE);
  } else if (req->state == SALVO__WAITING && now >= req->retry_at_ms) {
    /* Backoff over: back in the host's queue, ahead of requests not yet tried. */
    salvo__list_remove(&req->node);
    requeue(req, now);
  } else {
    arm_request_timer(req);
    return;
  }
  salvo__engine_pump(engine);
}

/* libcurl < 8.0 breaks h2c (ENGINEERING.md): refused up front. */
static int h2c_refused(const salvo_request_t *req) {
  const salvo_engine_t *engine = req->engine;
  return engine->http_version == SALVO_HTTP_2 && !req->is_https && !engine->h2c_supported;
}

static int enter_engine(salvo_request_t *req, salvo_done_cb done_cb, void *user_data);

int salvo_request_submit(salvo_request_t *req, salvo_done_cb done_cb, void *user_data) {
  if (req == NULL || done_cb == NULL || req->state != SALVO__NEW)
    return SALVO_EINVAL;
  salvo_engine_t *engine = req->engine;
  if (!salvo__engine_live(engine))
    return SALVO_ECLOSING;
  SALVO__ASSERT_LOOP_THREAD(engine);
  if (engine->closing)
    return SALVO_ECLOSING;
  if (h2c_refused(req))
    return SALVO_ENOTSUP;
  req->submit_ns = uv_hrtime();
  return enter_engine(req, done_cb, user_data);
}

/* What submit does once the request passed its checks: on error the request
 * is as it was. */
static int enter_engine(salvo_request_t *req, salvo_done_cb done_cb, void *user_data) {
  salvo_engine_t *engine = req->engine;
  req->host = salvo__host_get(engine, req->url, req->is_https);
  if (req->host == NULL)
    return SALVO_ENOMEM;
  int rc = salvo__headers_build(req, &req->idempotent);
  if (rc != 0)
    return rc;
  /* The deadline and queue timeout run from now, not from when the loop last
   * looked at its clock: a caller may submit long after that (found under
   * valgrind, where a test's set-up made the deadline fire early). */
  uv_update_time(engine->loop);
  uint64_t now = uv_now(engine->loop);
  req->deadline_at_ms = req->timeouts.deadline_ms ? salvo__add_ms(now, req->timeouts.deadline_ms) : 0;
  req->queue_at_ms = req->timeouts.queue_ms ? salvo__add_ms(now, req->timeouts.queue_ms) : 0;
  /* Deadline, queue timeout and backoff share one timer, made when the
   * request is first seen waiting (salvo__request_arm_queued). */
  if (req->deadline_at_ms != 0 || req->queue_at_ms != 0)
    salvo__list_push_back(&engine->unarmed, &req->arm_node);
  req->done_cb = done_cb;
  req->user_data = user_data;
  salvo__host_ref(req->host);
  salvo__host_count_request(req->host, now);
  enqueue(req, 0);
  engine->stats.submitted++;
  /* Never start here: starting can fail, and done_cb must not run before
   * submit returns. The engine starts queued requests from the loop. */
  salvo__engine_schedule(engine);
  return 0;
}

/* ------------------------------------------------ from other threads */

int salvo__request_check_hand_over(const salvo_request_t *req, salvo_done_cb done_cb) {
  if (req == NULL || done_cb == NULL || req->state != SALVO__NEW)
    return SALVO_EINVAL;
  return h2c_refused(req) ? SALVO_ENOTSUP : 0;
}

void salvo__request_hand_over(salvo_request_t *req, salvo_done_cb done_cb, void *user_data) {
  set_state(req, SALVO__HANDED);
  req->done_cb = done_cb;
  req->user_data = user_data;
  req->submit_ns = uv_hrtime(); /* elapsed_us counts the wait for the loop too */
}

/* A handed-over request that never entered the engine: its one done
 * callback, with |error| and no attempt, then it is freed (it has no timer). */
static void refuse_handed(salvo_request_t *req, int error) {
  salvo_engine_t *engine = req->engine;
  set_state(req, SALVO__DONE);
  if (error == SALVO_ECANCELED)
    snprintf(req->detail, sizeof(req->detail),
             "canceled: the engine closed before its loop took the request from another thread");
  else
    snprintf(req->detail, sizeof(req->detail), "not taken from another thread: %s",
             salvo_strerror(error));
  salvo_result_t *r = &req->result; /* zero since salvo_request_new(): no attempt, no history */
  r->error = error;
  r->stop_reason = error == SALVO_ECANCELED ? SALVO_STOP_CANCELED : SALVO_STOP_NOT_RETRYABLE;
  r->retry_after_ms = -1;
  r->body = req->data_cb == NULL ? "" : NULL;
  r->elapsed_us = (uv_hrtime() - req->submit_ns) / 1000;
  r->detail = req->detail;
  engine->stats.submitted++; /* accepted by the thread-safe call: counted like the others */
  engine->stats.completed++;
  engine->stats.failures++; /* successes + failures == completed, as for the others */
  req->done_cb(req, r, req->user_data);
  free_request(req);
}

void salvo__request_take_handed(salvo_request_t *req) {
  int rc = SALVO_ECANCELED; /* accepted before the close: ends as the engine's queued ones do */
  if (!req->engine->closing)
    rc = enter_engine(req, req->done_cb, req->user_data);
  if (rc != 0)
    refuse_handed(req, rc);
}

int salvo_request_cancel(salvo_request_t *req) {
  if (req == NULL ||
      (req->state != SALVO__QUEUED && req->state != SALVO__RUNNING && req->state != SALVO__WAITING))
    return SALVO_EINVAL;
  SALVO__ASSERT_LOOP_THREAD(req->engine);
  if (!salvo__list_linked(&req->cancel_node)) {
    salvo__list_push_back(&req->engine->cancels, &req->cancel_node);
    salvo__engine_schedule(req->engine);
  }
  return 0;
}

void salvo__request_cancel_now(salvo_request_t *req) {
  if (req->state == SALVO__RUNNING)
    stop_running(req, SALVO_ECANCELED);
  else if (req->state == SALVO__QUEUED || req->state == SALVO__WAITING)
    salvo__request_complete(req, SALVO_ECANCELED);
}

unsigned salvo__request_count_attempt(salvo_request_t *req) { return ++req->attempts; }

static void start(salvo_request_t *req) {
  salvo_engine_t *engine = req->engine;
  salvo__slot_t *slot = salvo__slot_get(engine);
  if (slot == NULL) {
    salvo__request_complete(req, SALVO_ENOMEM);
    return;
  }
  req->slot = slot;
  req->attempts++;
  req->resp_len = 0; /* a retry starts the body afresh */
  req->streamed = 0;
  req->held_len = 0;
  req->hold = SALVO__HOLD_NONE;
  int rc = salvo__headers_set_attempt(req, req->attempts);
  if (rc == 0)
    rc = salvo__attempt_setup(slot, req, req->attempts);
  if (rc == 0)
    rc = salvo__engine_add_attempt(engine, slot);
  if (rc != 0) {
    snprintf(req->detail, sizeof(req->detail), "could not start the transfer");
    salvo__request_complete(req, rc);
    return;
  }
  salvo__list_remove(&req->node);
  salvo__list_push_back(&engine->running, &req->node);
  set_state(req, SALVO__RUNNING);
  salvo__hedge_plan(req, slot);
  if (salvo__list_linked(&req->arm_node))
    salvo__list_remove(&req->arm_node);
  if (req->timer_inited)
    uv_timer_stop(&req->timer); /* the slot timer watches the deadline now */
  salvo__attempt_arm_timer(slot);
}

/* Copies |len| bytes to resp_body at |at|, growing it (one byte more for a NUL). */
static int keep_bytes(salvo_request_t *req, size_t at, const char *data, size_t len) {
  if (at + len + 1 > req->resp_cap) {
    size_t cap = req->resp_cap ? req->resp_cap : 512; /* small bodies are the common case */
    while (cap < at + len + 1)
      cap *= 2;
    char *p = realloc(req->resp_body, cap);
    if (p == NULL)
      return SALVO_ENOMEM;
    req->resp_body = p;
    req->resp_cap = cap;
  }
  memcpy(req->resp_body + at, data, len);
  return 0;
}

/* Hands bytes to the data callback: 0, or SALVO_EABORTED when it says stop. */
static int pass(salvo_request_t *req, const char *data, size_t len) {
  req->streamed += len;
  req->cb_slot = req->slot;
  int stop = req->data_cb(req, data, len, req->user_data);
  req->cb_slot = NULL;
  if (stop == 0)
    return 0;
  req->aborted = 1;
  return SALVO_EABORTED;
}

/* Hands what is held of the body to the data callback, once. */
static int pass_held(salvo_request_t *req) {
  size_t n = req->held_len;
  req->held_len = 0;
  return n > 0 ? pass(req, req->resp_body, n) : 0;
}

/* A held body outgrew what is kept of it: a response to retry is passed
 * from here on (and is then not retried); a redirect's is dropped. */
static int hold_overflow(salvo_request_t *req) {
  if (req->hold == SALVO__HOLD_DROP)
    return 0;
  req->hold = SALVO__HOLD_NONE;
  return pass_held(req);
}

int salvo__request_body_bytes(salvo_request_t *req, const char *data, size_t len) {
  if (len > req->max_body_size - req->resp_len) /* resp_len <= max_body_size always */
    return SALVO_EBODYLIMIT;
  req->engine->stats.bytes_received += len;
  if (req->data_cb == NULL) {
    if (keep_bytes(req, req->resp_len, data, len) != 0)
      return SALVO_ENOMEM;
    req->resp_len += len;
    return 0;
  }
  req->resp_len += len;
  if (req->hold != SALVO__HOLD_NONE) {
    if (req->held_len + len <= SALVO__HOLD_CAP) {
      if (keep_bytes(req, req->held_len, data, len) != 0)
        return SALVO_ENOMEM;
      req->held_len += len;
      return 0;
    }
    int stop = hold_overflow(req);
    if (stop != 0 || req->hold == SALVO__HOLD_DROP)
      return stop;
  }
  return pass(req, data, len);
}

int salvo__request_head(salvo_request_t *req, salvo__slot_t *slot, const char **why) {
  /* a Content-Length over the cap ends the attempt here, after the head
   * callback: a response to HEAD, a 204 or a 304 has no body, whatever it says */
  int too_large = slot->content_length >= 0 && !req->is_head &&
                  (uint64_t)slot->content_length > (uint64_t)req->max_body_size;
  if (req->data_cb == NULL && req->head_cb == NULL && !too_large)
    return 1; /* nothing to hold, no one to tell, nothing to refuse: most requests */
  long status = 0, version = 0;
  curl_easy_getinfo(slot->easy, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200)
    return 0; /* an interim response: the response's own head comes later */
  too_large = too_large && status != 204 && status != 304;
  int redirect = req->follow_redirects && salvo__redirect_status(status) &&
                 salvo__attempt_header(slot, "Location") != NULL;
  int held = redirect || salvo__retry_may_status(req->policy, status, req->idempotent,
                                                 req->attempts - req->redirects);
  if (req->data_cb != NULL && held)
    req->hold = redirect ? SALVO__HOLD_DROP : SALVO__HOLD_KEEP;
  if (req->head_cb != NULL) {
    curl_easy_getinfo(slot->easy, CURLINFO_HTTP_VERSION, &version);
    salvo_response_head_t head = {slot->attempt_no, status, salvo__http_version(version),
                                  slot->content_length, held};
    req->cb_slot = slot;
    int stop = req->head_cb(req, &head, req->user_data);
    req->cb_slot = NULL;
    if (stop != 0) {
      req->aborted = 1;
      *why = "stopped by the head callback";
      return SALVO_EABORTED;
    }
  }
  if (too_large) {
    *why = "its Content-Length is larger than max_body_size";
    return SALVO_EBODYLIMIT;
  }
  return 1;
}

int salvo__request_body_read(salvo_request_t *req, char *buf, size_t cap, size_t *len,
                             const char **why) {
  const salvo_body_reader_t *r = &req->reader;
  uint64_t left = r->length >= 0 ? (uint64_t)r->length - req->body_read : UINT64_MAX;
  *len = 0;
  if (left == 0)
    return 0; /* never more than the length announced */
  if (cap > left)
    cap = (size_t)left;
  size_t got = 0;
  if (r->read(req, buf, cap, &got, r->user_data) != 0) {
    *why = "stopped by the body reader";
  } else if (got > cap) {
    *why = "the body reader gave more bytes than asked for";
  } else if (got == 0 && r->length >= 0) {
    *why = "the body reader ended before the length it announced";
  } else {
    req->body_read += got;
    *len = got;
    return 0;
  }
  req->aborted = 1;
  return SALVO_EABORTED;
}

int salvo__request_body_rewind(salvo_request_t *req) {
  if (!req->has_reader || req->body_read == 0)
    return 0; /* nothing of it was read: it is at its start */
  if (req->reader.rewind == NULL || req->reader.rewind(req, req->reader.user_data) != 0)
    return -1;
  req->body_read = 0;
  return 0;
}

/* ------------------------------------------------------------ redirects */

/* Points the request at the plan's next hop: its URL, host, method and
 * headers. 0, or -1 (out of memory). What it takes of the plan (the next
 * URL) it sets to NULL there; the caller frees the rest. */
static int apply_redirect(salvo_request_t *req, salvo__redirect_plan_t *plan) {
  salvo_engine_t *engine = req->engine;
  salvo__host_t *host = plan->cross_origin ? salvo__host_get(engine, plan->next_url, plan->next_https)
                                           : req->host;
  if (host == NULL)
    return -1; /* the caller frees the plan */
  if (plan->to_get) {
    req->method = (char *)"GET"; /* the original lives inside the request block: nothing to free */
    req->is_get = 1;
    req->is_head = 0;
    req->has_body = 0;
    free(req->body);
    req->body = NULL;
    req->body_size = 0;
    close_reader(req);
  }
  if (plan->cross_origin)
    req->cross_origin = 1; /* once left, credentials stay off for the rest of the hops */
  curl_url_cleanup(req->curlu);
  req->curlu = plan->next;
  free(req->url_owned);
  req->url_owned = plan->next_url;
  req->url = plan->next_url;
  plan->next = NULL;
  plan->next_url = NULL;
  req->is_https = plan->next_https;
  req->lane = salvo__lane_for(engine, plan->next_https);
  if (host != req->host) {
    salvo__host_ref(host);
    salvo__host_unref(engine, req->host);
    req->host = host;
    salvo__host_count_request(host, uv_now(engine->loop));
  }
  salvo__headers_drop(req);
  if (salvo__headers_build(req, &req->idempotent) != 0)
    return -1;
  req->redirects++;
  return 0;
}

/* A 3xx with a Location, when redirects are followed: 1 if it was handled
 * (the next hop queued, or the request ended with SALVO_EREDIRECT), 0 if the
 * response is the answer. */
static int try_redirect(salvo_request_t *req, const salvo_attempt_info_t *info) {
  salvo_engine_t *engine = req->engine;
  long status = info->status;
  if (info->error != 0 || !req->follow_redirects || !salvo__redirect_status(status))
    return 0; /* most answers: no Location to look up */
  salvo__redirect_in_t in = {status, salvo__attempt_header(req->slot, "Location"), req->url,
                             req->curlu, req->is_https, req->method, req->redirects,
                             engine->max_redirects, engine->redirect_allow_downgrade};
  salvo__redirect_plan_t plan;
  salvo__redirect_plan(&in, &plan);
  if (plan.action == SALVO__REDIRECT_NONE)
    return 0;
  char from[128];
  salvo__redact_url(req->url, from, sizeof(from));
  if (plan.action == SALVO__REDIRECT_FOLLOW && !plan.to_get && salvo__request_body_rewind(req) != 0) {
    plan.action = SALVO__REDIRECT_REFUSE; /* the body goes again: from its start, or not at all */
    snprintf(plan.why, sizeof(plan.why),
             "redirect refused: the request body cannot be rewound to send it again");
  }
  int ok = plan.action == SALVO__REDIRECT_FOLLOW && apply_redirect(req, &plan) == 0;
  if (plan.action == SALVO__REDIRECT_FOLLOW && !ok)
    snprintf(plan.why, sizeof(plan.why), "redirect refused: out of memory");
  salvo__redirect_plan_free(&plan); /* what apply_redirect did not take */
  salvo_attempt_record_t *rec = new_record(req, req->attempts, 0, status, 1,
                                           ok ? SALVO_DECIDE_RETRY : SALVO_DECIDE_STOP, plan.why);
  if (rec != NULL) { /* out of memory here loses a record, not the hop */
    rec->sends = req->slot->sends;
    recorded(req, rec);
  }
  if (!ok) {
    snprintf(req->detail, sizeof(req->detail), "%.120s (from %.100s)", plan.why, from);
    finish(req, SALVO_STOP_NOT_RETRYABLE, SALVO_EREDIRECT, -1);
    return 1;
  }
  /* The next hop goes to the head of its host's queue, like a retry with no
   * wait; its deadline and queue timeout are watched from now, as a retry's. */
  release_attempt(req);
  requeue(req, uv_now(engine->loop));
  salvo__engine_schedule(engine);
  return 1;
}

/* ------------------------------------------------------------ the decision */

/* The policy's decision, then the decision callback's word on it. */
static void policy_decision(salvo_request_t *req, const salvo_attempt_info_t *info, uint64_t now,
                            salvo__decision_t *d) {
  if (req->aborted) { /* a head, data or body reader callback said stop */
    memset(d, 0, sizeof(*d));
    d->decision = SALVO_DECIDE_STOP;
    d->stop = SALVO_STOP_BY_CALLBACK;
    d->final_error = info->error;
    snprintf(d->reason, sizeof(d->reason), "stopped by a callback of the request");
    return;
  }
  salvo__retry_decide(req->policy, info, req->data_restartable ? 0 : req->streamed, now, req->deadline_at_ms,
                      req->last_wait_ms, &req->engine->rng, d);
  int forced = info->error == SALVO_ECANCELED || info->error == SALVO_EDEADLINE;
  if (req->policy->decide_cb == NULL || forced)
    return;
  uint64_t wait = d->wait_ms;
  salvo_decision_t said = req->policy->decide_cb(req, info, d->decision, &wait, req->policy->decide_data);
  if (said == SALVO_DECIDE_STOP && d->decision == SALVO_DECIDE_RETRY) {
    d->decision = SALVO_DECIDE_STOP;
    d->stop = SALVO_STOP_BY_CALLBACK;
    d->final_error = info->error;
    snprintf(d->reason, sizeof(d->reason), "stopped by the decision callback");
  } else if (said == SALVO_DECIDE_RETRY && (d->decision == SALVO_DECIDE_STOP || wait != d->wait_ms)) {
    if (req->deadline_at_ms != 0 && salvo__add_ms(now, wait) >= req->deadline_at_ms) {
      d->decision = SALVO_DECIDE_STOP;
      d->stop = SALVO_STOP_DEADLINE;
      d->final_error = SALVO_EDEADLINE;
      snprintf(d->reason, sizeof(d->reason),
               "gave up: the decision callback's wait of %llu ms would pass the deadline",
               (unsigned long long)wait);
    } else {
      d->decision = SALVO_DECIDE_RETRY;
      d->wait_ms = wait;
      snprintf(d->reason, sizeof(d->reason), "retried by the decision callback");
    }
  }
}

/* The host's retry budget: when a host fails hard, retries may not multiply
 * its load. Failures of this machine or of the proxy put none on it. */
static void apply_budget(salvo_request_t *req, const salvo_attempt_info_t *info, uint64_t now,
                         salvo__decision_t *d) {
  if (d->decision != SALVO_DECIDE_RETRY || info->error == SALVO_ECANCELED ||
      info->error == SALVO_EDEADLINE || info->error == SALVO_ELOCAL || info->error == SALVO_EPROXY)
    return;
  if (salvo__host_allow_retry(req->host, now))
    return;
  d->decision = SALVO_DECIDE_STOP;
  d->stop = SALVO_STOP_BUDGET;
  d->final_error = info->error;
  snprintf(d->reason, sizeof(d->reason), "not retried: the host's retry budget is spent (%s)",
           info->error ? salvo_err_name(info->error) : "status");
}

/* Backoff: the request waits |wait_ms| on its timer, holding no slot. */
static void enter_waiting(salvo_request_t *req, uint64_t wait_ms, uint64_t now) {
  release_attempt(req);
  salvo__list_push_back(&req->engine->waiting, &req->node);
  set_state(req, SALVO__WAITING);
  req->retry_at_ms = salvo__add_ms(now, wait_ms); /* a callback's or Retry-After's wait: any */
  req->last_wait_ms = wait_ms;
  req->engine->stats.retries++;
  arm_request_timer(req);
}

/* After an attempt that decides: follow a redirect, retry after a wait, or complete. */
static void decide(salvo_request_t *req, const salvo__attempt_end_t *end) {
  salvo_attempt_info_t info;
  info.method = req->method;
  info.attempt = req->attempts - req->redirects; /* hops do not use up attempts */
  info.error = end->outcome.error;
  info.status = info.error == 0 ? end->status : 0;
  info.reached_server = end->outcome.reached;
  info.idempotent = req->idempotent;
  info.retry_after_ms = end->retry_after_ms;
  req->probe = salvo__host_after_attempt(req->host, end, req->probe, 0);
  if (try_redirect(req, &info))
    return;
  uint64_t now = uv_now(req->engine->loop);
  salvo__decision_t d;
  policy_decision(req, &info, now, &d);
  if (d.decision == SALVO_DECIDE_RETRY && req->engine->closing) {
    d.decision = SALVO_DECIDE_STOP; /* nothing new goes out: the request ends as canceled */
    d.stop = SALVO_STOP_CANCELED;
    snprintf(d.reason, sizeof(d.reason), "not retried: the engine is closing");
  }
  if (d.decision == SALVO_DECIDE_RETRY && salvo__request_body_rewind(req) != 0) {
    d.decision = SALVO_DECIDE_STOP;
    d.stop = SALVO_STOP_NOT_RETRYABLE;
    d.final_error = info.error;
    snprintf(d.reason, sizeof(d.reason), "not retried: the request body cannot be rewound (%s)",
             info.error ? salvo_err_name(info.error) : "status");
  }
  apply_budget(req, &info, now, &d);
  salvo_attempt_record_t *rec = new_record(req, req->slot->attempt_no, info.error, end->status,
                                           info.reached_server, d.decision, d.reason);
  if (rec != NULL) {
    rec->wait_ms = d.decision == SALVO_DECIDE_RETRY ? d.wait_ms : 0;
    rec->retry_after_ms = info.retry_after_ms;
    rec->sends = req->slot->sends;
    recorded(req, rec);
  } else if (d.decision == SALVO_DECIDE_RETRY) {
    /* out of memory: an attempt the history cannot hold is not made */
    d.decision = SALVO_DECIDE_STOP;
    d.stop = SALVO_STOP_NOT_RETRYABLE;
  }
  if (d.decision == SALVO_DECIDE_RETRY) {
    enter_waiting(req, d.wait_ms, now);
    return;
  }
  finish(req, d.stop, d.final_error, d.stop == SALVO_STOP_RETRY_AFTER ? info.retry_after_ms : -1);
}

/* ------------------------------------------------------------ attempts end */

void salvo__request_finish_attempt(salvo_request_t *req, salvo__slot_t *slot, CURLcode rc) {
  salvo_engine_t *engine = req->engine;
  req->slot = slot;
  salvo__engine_remove_attempt(engine, slot);
  salvo__attempt_end_t end;
  salvo__attempt_end(slot, rc, &end, req->detail, sizeof(req->detail));
  engine->stats.connections_opened += (uint64_t)end.connects;
  req->sends += end.sends;
  if (end.session_ended) /* its other streams would wait for their timers */
    salvo__conn_session_ended(engine, slot);
  salvo_result_t *r = &req->result;
  r->status = end.status;
  r->reached_server = end.outcome.reached;
  r->http_version = end.http_version; /* the host learned it at the first byte */
  r->timings = end.timings;
  decide(req, &end);
}

void salvo__request_drop_attempt(salvo_request_t *req, salvo__slot_t *slot, CURLcode rc,
                                 salvo__slot_t *other, const char *why) {
  salvo__engine_remove_attempt(req->engine, slot);
  salvo__attempt_end_t end;
  salvo__attempt_end(slot, rc, &end, NULL, 0);
  req->probe = salvo__host_after_attempt(req->host, &end, req->probe, 1);
  req->sends += end.sends;
  salvo_attempt_record_t *rec = /* the request goes on, with the other attempt */
      new_record(req, slot->attempt_no, end.outcome.error, end.outcome.error == 0 ? end.status : 0,
                 end.outcome.reached, SALVO_DECIDE_RETRY, why);
  if (rec != NULL) {
    rec->sends = end.sends;
    recorded(req, rec);
  }
  salvo__slot_put(slot);
  req->slot = other;
}

static void request_closed_cb(uv_handle_t *handle) {
  salvo_request_t *req = SALVO__CONTAINER_OF((uv_timer_t *)handle, salvo_request_t, timer);
  salvo_engine_t *engine = req->engine;
  free_request(req);
  salvo__engine_handle_closed(engine);
}

void salvo__request_complete(salvo_request_t *req, int error) {
  salvo_engine_t *engine = req->engine;
  if (req->state == SALVO__RUNNING || req->state == SALVO__QUEUED || req->state == SALVO__WAITING)
    salvo__list_remove(&req->node); /* a running transfer was already taken off the multi */
  if (salvo__list_linked(&req->cancel_node))
    salvo__list_remove(&req->cancel_node);
  if (salvo__list_linked(&req->arm_node))
    salvo__list_remove(&req->arm_node);
  set_state(req, SALVO__DONE);
  if (req->data_cb != NULL && req->held_len > 0) {
    /* the request ends with a held response: its caller gets its body now */
    if (pass_held(req) != 0 && error == 0) {
      error = SALVO_EABORTED;
      req->result.stop_reason = SALVO_STOP_BY_CALLBACK;
      req->stop_set = 1;
      snprintf(req->detail, sizeof(req->detail), "stopped by the data callback");
    }
  }
  salvo__host_count_outcome(req->host, error, req->result.status);
  salvo__host_unref(engine, req->host); /* nothing below uses it */
  if (req->timer_inited)
    uv_timer_stop(&req->timer);

  salvo_result_t *r = &req->result;
  r->error = error;
  r->attempts = req->attempts;
  r->sends = req->sends;
  if (!req->stop_set) { /* ended without an attempt's decision: cancel, deadline, queue */
    r->stop_reason = error == SALVO_ECANCELED   ? SALVO_STOP_CANCELED
                     : error == SALVO_EDEADLINE ? SALVO_STOP_DEADLINE
                     : error == SALVO_EQUEUE    ? SALVO_STOP_QUEUE
                                                : SALVO_STOP_NOT_RETRYABLE;
    r->retry_after_ms = -1;
  }
  r->history = req->history;
  r->history_len = req->history_len_internal;
  r->redirects = req->redirects;
  if (req->data_cb == NULL) {
    if (req->resp_body != NULL)
      req->resp_body[req->resp_len] = '\0';
    r->body = req->resp_body != NULL ? req->resp_body : "";
  } else {
    r->body = NULL;
  }
  r->body_len = req->resp_len;
  r->elapsed_us = (uv_hrtime() - req->submit_ns) / 1000;
  r->detail = req->detail;
  engine->stats.completed++;
  if (error == 0 && r->status < 400) /* the hosts' rule (salvo__host_count_outcome) */
    engine->stats.successes++;
  else
    engine->stats.failures++;

  req->done_cb(req, r, req->user_data);

  if (req->slot != NULL) {
    salvo__slot_put(req->slot);
    req->slot = NULL;
  }
  if (req->timer_inited)
    uv_close((uv_handle_t *)&req->timer, request_closed_cb);
  else
    free_request(req);
}

/* ------------------------------------------------ response accessors */

static const char *keep(salvo_request_t *req, const char *s) {
  size_t n = strlen(s) + 1;
  scratch_t *sc = malloc(sizeof(*sc) + n);
  if (sc == NULL)
    return NULL;
  memcpy(sc->data, s, n);
  sc->next = (scratch_t *)req->header_scratch;
  req->header_scratch = (char *)sc;
  return sc->data;
}

/* The handle whose response headers the caller may read now: inside a head
 * or data callback, the one being received; inside the done callback, the
 * final attempt's, if it had a response. NULL anywhere else. */
static CURL *headers_handle(const salvo_request_t *req) {
  if (req->cb_slot != NULL)
    return req->cb_slot->easy;
  if (req->state == SALVO__DONE && req->slot != NULL && req->result.status != 0)
    return req->slot->easy;
  return NULL;
}

const char *salvo_response_header(salvo_request_t *req, const char *name) {
  CURL *easy = req != NULL && name != NULL ? headers_handle(req) : NULL;
  struct curl_header *h = NULL;
  if (easy == NULL || curl_easy_header(easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
    return NULL;
  if (h->amount > 1 &&
      curl_easy_header(easy, name, h->amount - 1, CURLH_HEADER, -1, &h) != CURLHE_OK)
    return NULL;
  return keep(req, h->value);
}

int salvo_response_header_at(salvo_request_t *req, size_t i, const char **name,
                             const char **value) {
  CURL *easy = req != NULL && name != NULL && value != NULL ? headers_handle(req) : NULL;
  if (easy == NULL)
    return SALVO_EINVAL;
  struct curl_header *h = NULL;
  size_t k = 0;
  while ((h = curl_easy_nextheader(easy, CURLH_HEADER, -1, h)) != NULL) {
    if (k++ == i) {
      *name = keep(req, h->name);
      *value = keep(req, h->value);
      if (*name != NULL && *value != NULL)
        return 0;
      *name = *value = NULL;
      return SALVO_ENOMEM;
    }
  }
  return SALVO_EINVAL;
}

char *salvo_response_take_body(salvo_request_t *req) {
  if (req == NULL || req->state != SALVO__DONE || req->resp_body == NULL || req->data_cb != NULL)
    return NULL;
  char *body = req->resp_body;
  req->resp_body = NULL;
  req->resp_cap = 0;
  req->result.body = NULL;
  return body;
}
