/* Request lifecycle: build, submit, queue, attempt, complete exactly once. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* Scratch strings handed out by salvo_response_header*(); freed with the request. */
typedef struct scratch_s {
  struct scratch_s *next;
  char data[];
} scratch_t;

/* Transfers that may multiplex over HTTP/2 go through their own multi handle. */
int salvo_request_new(salvo_engine_t *engine, const char *method, const char *url,
                      salvo_request_t **out) {
  if (engine == NULL || out == NULL || !salvo__valid_method(method))
    return SALVO_EINVAL;
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
  salvo__list_init(&req->node);
  salvo__list_init(&req->cancel_node);
  salvo__list_init(&req->arm_node);
  *out = req;
  return 0;
}

/* A Host header must name the URL's own authority: "host" or "host:port". */
static int host_matches(const salvo_request_t *req, const char *value, size_t len) {
  char *host = NULL, *port = NULL;
  int ok = 0;
  if (curl_url_get(req->curlu, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
    size_t hlen = strlen(host);
    int has_port = curl_url_get(req->curlu, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK;
    /* the port may be left out only where the URL leaves it out (the
     * scheme's own); "host" for http://host:8080/ names another origin */
    char *given = NULL;
    int explicit = curl_url_get(req->curlu, CURLUPART_PORT, &given, 0) == CURLUE_OK;
    curl_free(given);
    if (len == hlen)
      ok = !explicit && strncasecmp(value, host, hlen) == 0;
    else if (has_port && len == hlen + 1 + strlen(port) && value[hlen] == ':')
      ok = strncasecmp(value, host, hlen) == 0 && strncmp(value + hlen + 1, port, strlen(port)) == 0;
  }
  curl_free(host);
  curl_free(port);
  return ok;
}

static int add_header(salvo_request_t *req, const char *name, size_t name_len, const char *value,
                      size_t value_len) {
  if (req->state != SALVO__NEW || !salvo__valid_header_name(name, name_len) ||
      !salvo__valid_header_value(value, value_len) || salvo__header_reserved(name, name_len))
    return SALVO_EINVAL;
  if (salvo__is_host_header(name, name_len) && !host_matches(req, value, value_len))
    return SALVO_EINVAL;
  char *line = salvo__header_line(name, name_len, value, value_len);
  if (line == NULL)
    return SALVO_ENOMEM;
  struct curl_slist *list = curl_slist_append(req->user_headers, line);
  free(line);
  if (list == NULL)
    return SALVO_ENOMEM;
  req->user_headers = list;
  return 0;
}

int salvo_request_add_header(salvo_request_t *req, const char *name, const char *value) {
  if (req == NULL || name == NULL || value == NULL)
    return SALVO_EINVAL;
  return add_header(req, name, strlen(name), value, strlen(value));
}

int salvo_request_add_header_line(salvo_request_t *req, const char *line) {
  const char *name, *value;
  size_t name_len, value_len;
  if (req == NULL || line == NULL ||
      salvo__split_header_line(line, &name, &name_len, &value, &value_len) != 0)
    return SALVO_EINVAL;
  return add_header(req, name, name_len, value, value_len);
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
  free(req->body);
  req->body = copy;
  req->body_size = len;
  req->has_body = 1;
  return 0;
}

int salvo_request_set_timeouts(salvo_request_t *req, const salvo_timeouts_t *t) {
  if (req == NULL || t == NULL || req->state != SALVO__NEW)
    return SALVO_EINVAL;
  req->timeouts = *t;
  return 0;
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

int salvo_request_set_follow_redirects(salvo_request_t *req, int follow) {
  if (req == NULL || req->state != SALVO__NEW)
    return SALVO_EINVAL;
  req->follow_redirects = follow != 0;
  return 0;
}

int salvo_request_set_max_body_size(salvo_request_t *req, size_t max) {
  if (req == NULL || req->state != SALVO__NEW)
    return SALVO_EINVAL;
  req->max_body_size = max;
  return 0;
}

static void drop_attempt_header(salvo_request_t *req) {
  if (req->attempt_node != NULL) {
    if (req->headers_tail != NULL)
      req->headers_tail->next = NULL;
    curl_slist_free_all(req->attempt_node);
    req->attempt_node = NULL;
  }
}

static void free_request(salvo_request_t *req) {
  drop_attempt_header(req);
  free(req->own_policy);
  curl_url_cleanup(req->curlu);
  if (req->history != &req->history_first)
    free(req->history);
  free(req->body);
  free(req->resp_body);
  curl_slist_free_all(req->user_headers);
  free(req->headers); /* one block: nodes and lines */
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

salvo_engine_t *salvo_request_engine(const salvo_request_t *req) { return req->engine; }
const char *salvo_request_method(const salvo_request_t *req) { return req->method; }
const char *salvo_request_url(const salvo_request_t *req) { return req->url; }

/* The list handed to libcurl: engine defaults the request does not override,
 * then the request's own headers, then switches for libcurl's extras. The
 * nodes and their lines live in one allocation (libcurl only reads the list):
 * two passes, one to measure and one to write. */
typedef struct {
  struct curl_slist *nodes; /* NULL while measuring */
  char *at;
  size_t n;
  size_t bytes;
} header_block_t;

static void hb_add(header_block_t *b, const char *a, size_t alen, const char *c, size_t clen) {
  if (b->nodes != NULL) {
    struct curl_slist *node = &b->nodes[b->n];
    node->data = b->at;
    node->next = NULL;
    if (b->n > 0)
      b->nodes[b->n - 1].next = node;
    memcpy(b->at, a, alen);
    memcpy(b->at + alen, c, clen);
    b->at[alen + clen] = '\0';
    b->at += alen + clen + 1;
  }
  b->n++;
  b->bytes += alen + clen + 1;
}

typedef struct {
  char rid[37];  /* request id, or "" */
  char key[37];  /* automatic idempotency key, or "" */
  int expect_off;
  int type_off;
} header_plan_t;

/* Credentials that stay with the origin they were given for, and Host,
 * which names it. */
static int is_secret(const char *line, size_t name_len) {
  return salvo__is_host_header(line, name_len) ||
         (name_len == 13 && strncasecmp(line, "Authorization", 13) == 0) ||
         (name_len == 6 && strncasecmp(line, "Cookie", 6) == 0) ||
         (name_len == 19 && strncasecmp(line, "Proxy-Authorization", 19) == 0);
}

static void hb_fill(salvo_request_t *req, const header_plan_t *plan, header_block_t *b) {
  const struct curl_slist *l;
  for (l = req->engine->default_headers; l != NULL; l = l->next) {
    size_t name_len = strcspn(l->data, ":;");
    if (!salvo__header_has_name(req->user_headers, l->data, name_len) &&
        !(req->cross_origin && is_secret(l->data, name_len)))
      hb_add(b, l->data, strlen(l->data), "", 0);
  }
  for (l = req->user_headers; l != NULL; l = l->next)
    if (!(req->cross_origin && is_secret(l->data, strcspn(l->data, ":;"))))
      hb_add(b, l->data, strlen(l->data), "", 0);
  if (plan->rid[0] != '\0') {
    const char *rid = req->policy->request_id_header;
    size_t rlen = strlen(rid);
    char name[sizeof(req->policy->request_id_header) + 2];
    memcpy(name, rid, rlen);
    memcpy(name + rlen, ": ", 2);
    hb_add(b, name, rlen + 2, plan->rid, 36);
  }
  if (plan->key[0] != '\0')
    hb_add(b, "Idempotency-Key: ", 17, plan->key, 36);
  if (plan->expect_off)
    hb_add(b, "Expect:", 7, "", 0); /* libcurl adds Expect only to requests with a body */
  if (plan->type_off)
    hb_add(b, "Content-Type:", 13, "", 0);
}

static int has_header(const salvo_request_t *req, const char *name, size_t len) {
  return salvo__header_has_name(req->user_headers, name, len) ||
         salvo__header_has_name(req->engine->default_headers, name, len);
}

/* An Idempotency-Key with a value: an empty one ("Name;" in libcurl's
 * spelling) names no operation the server could recognise. */
static int has_key(const salvo_request_t *req) {
  const struct curl_slist *lists[2] = {req->user_headers, req->engine->default_headers};
  for (int i = 0; i < 2; i++)
    for (const struct curl_slist *l = lists[i]; l != NULL; l = l->next)
      if (strncasecmp(l->data, "Idempotency-Key:", 16) == 0 && l->data[16 + strspn(l->data + 16, " \t")] != '\0')
        return 1;
  return 0;
}

static int build_headers(salvo_request_t *req) {
  header_plan_t plan;
  /* The same request id and idempotency key on every attempt, so the
   * server can tell a retry from a new request. */
  plan.rid[0] = '\0';
  plan.key[0] = '\0';
  const char *rid = req->policy->request_id_header;
  if (rid[0] != '\0' && !has_header(req, rid, strlen(rid))) {
    if (req->rid[0] == '\0') /* a redirect keeps the id */
      salvo__uuid4(req->engine, req->rid);
    memcpy(plan.rid, req->rid, sizeof(plan.rid));
  }
  int is_post_or_patch = strcmp(req->method, "POST") == 0 || strcmp(req->method, "PATCH") == 0;
  if (req->policy->idempotency_key_auto && is_post_or_patch &&
      !has_header(req, "Idempotency-Key", 15))
    salvo__uuid4(req->engine, plan.key);
  req->idempotent = salvo__method_in_list(req->policy->idempotent_methods, req->method) ||
                    plan.key[0] != '\0' || has_key(req);
  /* No "Expect: 100-continue" round trip: it costs a wait (1 s when the
   * server ignores it) and muddies whether the body was sent. libcurl
   * labels POSTFIELDS as a form unless told otherwise; the caller's body is
   * opaque bytes. */
  plan.expect_off = req->has_body && !has_header(req, "Expect", 6);
  plan.type_off = req->has_body && !has_header(req, "Content-Type", 12);

  header_block_t b = {NULL, NULL, 0, 0};
  hb_fill(req, &plan, &b); /* measure */
  req->headers = NULL;
  req->headers_tail = NULL;
  if (b.n == 0)
    return 0;
  char *block = malloc(b.n * sizeof(struct curl_slist) + b.bytes);
  if (block == NULL)
    return SALVO_ENOMEM;
  header_block_t w = {(struct curl_slist *)(void *)block, block + b.n * sizeof(struct curl_slist), 0,
                      0};
  hb_fill(req, &plan, &w); /* write */
  req->headers = w.nodes;
  req->headers_tail = &w.nodes[w.n - 1];
  return 0;
}

static void request_timer_cb(uv_timer_t *timer);

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
    req->timer_pending = 0;
    if (req->state == SALVO__QUEUED)
      arm_request_timer(req);
  }
}

void salvo__request_enqueue(salvo_request_t *req, int front) {
  req->state = SALVO__QUEUED;
  if (front)
    salvo__list_push_front(&req->host->queue, &req->node);
  else
    salvo__list_push_back(&req->host->queue, &req->node);
  salvo__host_mark_ready(req->host);
}

static void end_early(salvo_request_t *req, salvo_stop_reason_t stop, int error, const char *why) {
  req->result.stop_reason = stop;
  req->stop_set = 1;
  req->result.retry_after_ms = -1;
  snprintf(req->detail, sizeof(req->detail), "%s", why);
  salvo__request_complete(req, error);
}

/* The head of a ready host's queue: start it, fail it fast, or hold the
 * host until its bucket, pause or circuit lets the next one go. */
void salvo__request_admit(salvo_request_t *req) {
  salvo__host_t *host = req->host;
  salvo_engine_t *engine = req->engine;
  const salvo_host_policy_t *p = &host->policy;
  uint64_t now = uv_now(engine->loop);
  int ev = 0;
  int admit = salvo__breaker_admit(&host->breaker, p, now, &ev);
  salvo__host_event(engine, host, ev);
  if (admit == SALVO__REJECT) {
    host->stats.circuit_rejected++;
    end_early(req, SALVO_STOP_CIRCUIT, SALVO_ECIRCUIT,
              "the host's circuit is open after repeated failures: not sent");
    return;
  }
  uint64_t wait = salvo__bucket_wait(&host->bucket, now);
  if (wait > 0) {
    if (admit == SALVO__ADMIT_PROBE)
      host->breaker.probe_out = 0; /* the probe goes later */
    if ((req->deadline_at_ms != 0 && now + wait >= req->deadline_at_ms) ||
        (req->queue_at_ms != 0 && now + wait >= req->queue_at_ms)) {
      end_early(req, SALVO_STOP_RATE_LIMIT, SALVO_ERATELIMIT,
                "the host's rate limit or pause would hold it past its deadline or queue timeout");
      return;
    }
    salvo__host_block(host, wait);
    return;
  }
  salvo__bucket_take(&host->bucket, now);
  salvo__window_add(&host->sends, now, 1, 0);
  req->probe = admit == SALVO__ADMIT_PROBE;
  salvo__request_start(req); /* the host moves up a level of the fair share (host.c) */
}

static void request_timer_cb(uv_timer_t *timer) {
  salvo_request_t *req = SALVO__CONTAINER_OF(timer, salvo_request_t, timer);
  salvo_engine_t *engine = req->engine;
  uint64_t now = uv_now(engine->loop);
  if (req->deadline_at_ms != 0 && now >= req->deadline_at_ms) {
    if (req->state == SALVO__RUNNING) {
      if (req->hedge != NULL) {
        req->hedge->stop_reason = SALVO_EDEADLINE;
        salvo__slot_finish(req->hedge, CURLE_OK);
      }
      req->slot->stop_reason = SALVO_EDEADLINE;
      salvo__request_finish_attempt(req, CURLE_OK);
    } else if (req->state == SALVO__QUEUED && req->host->blocked_until_ms != 0) {
      end_early(req, SALVO_STOP_RATE_LIMIT, SALVO_ERATELIMIT,
                "held by the host's rate limit or pause until its deadline");
    } else {
      salvo__request_complete(req, SALVO_EDEADLINE);
    }
  } else if (req->state == SALVO__QUEUED && req->queue_at_ms != 0 && now >= req->queue_at_ms) {
    if (req->host->blocked_until_ms != 0)
      end_early(req, SALVO_STOP_RATE_LIMIT, SALVO_ERATELIMIT,
                "held by the host's rate limit or pause past its queue timeout");
    else
      salvo__request_complete(req, SALVO_EQUEUE);
  } else if (req->state == SALVO__WAITING && now >= req->retry_at_ms) {
    /* Backoff over: back in the host's queue, ahead of requests not yet tried. */
    salvo__list_remove(&req->node);
    salvo__request_enqueue(req, 1);
    req->queue_at_ms = req->timeouts.queue_ms ? now + req->timeouts.queue_ms : 0;
    arm_request_timer(req);
  } else {
    arm_request_timer(req);
    return;
  }
  salvo__engine_pump(engine);
}

int salvo_request_submit(salvo_request_t *req, salvo_done_cb done_cb, void *user_data) {
  if (req == NULL || done_cb == NULL || req->state != SALVO__NEW)
    return SALVO_EINVAL;
  salvo_engine_t *engine = req->engine;
  if (engine->closing)
    return SALVO_ECLOSING;
  if (engine->http_version == SALVO_HTTP_2 && !req->is_https && !engine->h2c_supported)
    return SALVO_ENOTSUP;
  req->host = salvo__host_get(engine, req->url, req->is_https);
  if (req->host == NULL)
    return SALVO_ENOMEM;
  int rc = build_headers(req);
  if (rc != 0)
    return rc;
  /* The deadline and queue timeout run from now, not from when the loop last
   * looked at its clock: a caller may submit long after that (found under
   * valgrind, where a test's set-up made the deadline fire early). */
  uv_update_time(engine->loop);
  uint64_t now = uv_now(engine->loop);
  req->submit_ns = uv_hrtime();
  req->deadline_at_ms = req->timeouts.deadline_ms ? now + req->timeouts.deadline_ms : 0;
  req->queue_at_ms = req->timeouts.queue_ms ? now + req->timeouts.queue_ms : 0;
  /* Deadline, queue timeout and backoff share one timer, made when the
   * request is first seen waiting (salvo__request_arm_queued). */
  req->timer_pending = req->deadline_at_ms != 0 || req->queue_at_ms != 0;
  if (req->timer_pending)
    salvo__list_push_back(&engine->unarmed, &req->arm_node);
  req->done_cb = done_cb;
  req->user_data = user_data;
  salvo__host_ref(req->host);
  req->host->stats.requests++;
  salvo__window_add(&req->host->budget, now, 1, 0);
  salvo__request_enqueue(req, 0);
  engine->stats.submitted++;
  /* Never start here: starting can fail, and done_cb must not run before
   * submit returns. The engine starts queued requests from the loop. */
  salvo__engine_schedule(engine);
  return 0;
}

int salvo_request_cancel(salvo_request_t *req) {
  if (req == NULL ||
      (req->state != SALVO__QUEUED && req->state != SALVO__RUNNING && req->state != SALVO__WAITING))
    return SALVO_EINVAL;
  if (!salvo__list_linked(&req->cancel_node)) {
    salvo__list_push_back(&req->engine->cancels, &req->cancel_node);
    salvo__engine_schedule(req->engine);
  }
  return 0;
}

void salvo__request_cancel_now(salvo_request_t *req) {
  if (req->state == SALVO__RUNNING) {
    if (req->hedge != NULL) {
      req->hedge->stop_reason = SALVO_ECANCELED;
      salvo__slot_finish(req->hedge, CURLE_OK);
    }
    req->slot->stop_reason = SALVO_ECANCELED;
    salvo__request_finish_attempt(req, CURLE_OK);
  } else if (req->state == SALVO__QUEUED || req->state == SALVO__WAITING) {
    salvo__request_complete(req, SALVO_ECANCELED);
  }
}

void salvo__request_start(salvo_request_t *req) {
  salvo_engine_t *engine = req->engine;
  salvo__slot_t *slot = salvo__engine_get_slot(engine);
  if (slot == NULL) {
    salvo__request_complete(req, SALVO_ENOMEM);
    return;
  }
  req->slot = slot;
  req->attempts++;
  req->resp_len = 0; /* a retry starts the body afresh */
  int rc = 0;
  if (req->policy->attempt_header[0] != '\0') {
    char line[96];
    drop_attempt_header(req);
    snprintf(line, sizeof(line), "%s: %u", req->policy->attempt_header, req->attempts);
    req->attempt_node = curl_slist_append(NULL, line);
    if (req->attempt_node == NULL)
      rc = SALVO_ENOMEM;
    else if (req->headers_tail != NULL)
      req->headers_tail->next = req->attempt_node;
  }
  if (rc == 0)
    rc = salvo__attempt_setup(slot, req);
  if (rc == 0)
    rc = salvo__engine_add_attempt(engine, slot);
  if (rc != 0) {
    snprintf(req->detail, sizeof(req->detail), "could not start the transfer");
    salvo__request_complete(req, rc);
    return;
  }
  salvo__list_remove(&req->node);
  salvo__list_push_back(&engine->running, &req->node);
  req->state = SALVO__RUNNING;
  slot->attempt_no = req->attempts;
  /* Hedging: idempotent, buffered requests, one hedge per request. */
  const salvo_host_policy_t *hp = &req->host->policy;
  req->hedge_at_ms = 0;
  if ((hp->hedge_delay_ms != 0 || hp->hedge_p95) && !req->hedged && req->idempotent &&
      req->data_cb == NULL) {
    uint64_t delay = salvo__host_hedge_delay(req->host, hp);
    if (delay != 0)
      req->hedge_at_ms = slot->started_ms + delay;
  }
  req->timer_pending = 0;
  if (salvo__list_linked(&req->arm_node))
    salvo__list_remove(&req->arm_node);
  if (req->timer_inited)
    uv_timer_stop(&req->timer); /* the slot timer watches the deadline now */
  salvo__attempt_arm_timer(slot);
}

static uint64_t us_between(curl_off_t from, curl_off_t to) {
  return to > from ? (uint64_t)(to - from) : 0;
}

static int64_t wall_clock_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static salvo_attempt_record_t *add_record(salvo_request_t *req) {
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
  salvo_attempt_record_t *r = &req->history[req->history_len_internal++];
  memset(r, 0, sizeof(*r));
  return r;
}

/* A 3xx with a Location, when redirects are followed: 1 if the request now
 * points at the next hop, 0 if there is nothing to follow (no Location), -1
 * if salvo refuses to follow; |why| says which. */
static int follow_redirect(salvo_request_t *req, long status, char *why, size_t why_len) {
  salvo_engine_t *engine = req->engine;
  struct curl_header *h = NULL;
  if (curl_easy_header(req->slot->easy, "Location", 0, CURLH_HEADER, -1, &h) != CURLHE_OK ||
      h->value[0] == '\0')
    return 0;
  if (req->redirects >= engine->max_redirects) {
    snprintf(why, why_len, "redirect refused: more than %u hops", engine->max_redirects);
    return -1;
  }
  /* Resolve the Location against the current URL (relative references too). */
  CURLU *u = curl_url_dup(req->curlu);
  char *next = NULL, *scheme = NULL;
  if (u == NULL || curl_url_set(u, CURLUPART_URL, h->value, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_URL, &next, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
    curl_url_cleanup(u);
    snprintf(why, why_len, "redirect refused: Location is not a URL");
    return -1;
  }
  int https = strcmp(scheme, "https") == 0;
  int ok = https || strcmp(scheme, "http") == 0;
  curl_free(scheme);
  if (!ok) {
    snprintf(why, why_len, "redirect refused: only http and https are followed");
  } else if (req->is_https && !https && !engine->redirect_allow_downgrade) {
    snprintf(why, why_len, "redirect refused: https to http (redirect_allow_downgrade is off)");
    ok = 0;
  }
  if (!ok || strlen(next) > 8000) {
    if (ok)
      snprintf(why, why_len, "redirect refused: Location longer than 8000 bytes");
    curl_free(next);
    curl_url_cleanup(u);
    return -1;
  }
  char a[sizeof(((salvo_host_stats_t *)0)->host)], b[sizeof(a)];
  salvo__host_key(req->url, req->is_https, a, sizeof(a));
  salvo__host_key(next, https, b, sizeof(b));
  char *copy = strdup(next);
  curl_free(next);
  salvo__host_t *host = strcmp(a, b) == 0 ? req->host : salvo__host_get(engine, copy, https);
  if (copy == NULL || host == NULL) {
    free(copy);
    curl_url_cleanup(u);
    snprintf(why, why_len, "redirect refused: out of memory");
    return -1;
  }
  /* The method: 307/308 keep it and the body; 303 makes anything but HEAD a
   * GET; 301/302 make a POST a GET (RFC 9110 15.4). */
  int to_get = (status == 303 && !req->is_head) ||
               ((status == 301 || status == 302) && strcmp(req->method, "POST") == 0);
  if (to_get) {
    req->method = (char *)"GET"; /* the original lives inside the request block: nothing to free */
    req->is_get = 1;
    req->is_head = 0;
    req->has_body = 0;
    free(req->body);
    req->body = NULL;
    req->body_size = 0;
  }
  if (strcmp(a, b) != 0)
    req->cross_origin = 1; /* once left, credentials stay off for the rest of the hops */
  curl_url_cleanup(req->curlu);
  req->curlu = u;
  free(req->url_owned);
  req->url_owned = copy;
  req->url = copy;
  req->is_https = https;
  req->lane = salvo__lane_for(engine, https);
  if (host != req->host) {
    salvo__host_ref(host);
    salvo__host_unref(engine, req->host);
    req->host = host;
    host->stats.requests++;
    salvo__window_add(&host->budget, uv_now(engine->loop), 1, 0);
  }
  drop_attempt_header(req);
  free(req->headers);
  req->headers = req->headers_tail = NULL;
  if (build_headers(req) != 0) {
    snprintf(why, why_len, "redirect refused: out of memory");
    return -1;
  }
  req->redirects++;
  char shown[128];
  salvo__redact_url(req->url, shown, sizeof(shown));
  if (snprintf(why, why_len, "redirect %ld to %s%s", status, shown,
               to_get ? " (now GET, without the body)" : "") < 0)
    why[0] = '\0';
  return 1;
}

/* After an attempt: retry after a wait, or complete. */
static void decide(salvo_request_t *req, const salvo__outcome_t *outcome) {
  salvo_engine_t *engine = req->engine;
  salvo_attempt_info_t info;
  info.method = req->method;
  info.attempt = req->attempts - req->redirects; /* hops do not use up attempts */
  info.error = outcome->error;
  info.status = outcome->error == 0 ? req->result.status : 0;
  info.reached_server = outcome->reached;
  info.idempotent = req->idempotent;
  info.retry_after_ms = -1;
  if (info.error == 0 && (info.status == 429 || info.status == 503 || info.status == 413)) {
    struct curl_header *h = NULL;
    if (curl_easy_header(req->slot->easy, "Retry-After", 0, CURLH_HEADER, -1, &h) == CURLHE_OK)
      info.retry_after_ms = salvo__retry_after_parse(h->value, wall_clock_ms());
  }
  salvo__host_after_attempt(req, req->slot, info.error, info.status,
                            req->result.timings.total_us, 0);
  if (info.error == 0 && req->follow_redirects &&
      (info.status == 301 || info.status == 302 || info.status == 303 || info.status == 307 ||
       info.status == 308)) {
    char why[160];
    char from[128];
    salvo__redact_url(req->url, from, sizeof(from));
    int r = follow_redirect(req, info.status, why, sizeof(why));
    if (r != 0) {
      salvo_attempt_record_t *rec = add_record(req);
      if (rec != NULL) {
        rec->attempt = req->attempts;
        rec->status = info.status;
        rec->reached_server = 1;
        rec->decision = r > 0 ? SALVO_DECIDE_RETRY : SALVO_DECIDE_STOP;
        rec->retry_after_ms = -1;
        rec->sends = req->slot->sends;
        snprintf(rec->reason, sizeof(rec->reason), "%.120s", why);
        if (req->policy->event_cb != NULL)
          req->policy->event_cb(req, rec, req->policy->event_data);
      }
      if (r < 0) {
        req->result.stop_reason = SALVO_STOP_NOT_RETRYABLE;
        req->stop_set = 1;
        req->result.retry_after_ms = -1;
        snprintf(req->detail, sizeof(req->detail), "%.120s (from %.100s)", why, from);
        salvo__request_complete(req, SALVO_EREDIRECT);
        return;
      }
      /* The next hop goes to the head of its host's queue, like a retry with no wait. */
      free(req->resp_body);
      req->resp_body = NULL;
      req->resp_cap = req->resp_len = 0;
      salvo__engine_put_slot(engine, req->slot);
      req->slot = NULL;
      salvo__list_remove(&req->node);
      salvo__request_enqueue(req, 1);
      /* It may wait there (the host at its limit, rate-limited or paused):
       * its deadline and queue timeout are watched from now, as a retry's. */
      uint64_t now = uv_now(engine->loop);
      req->queue_at_ms = req->timeouts.queue_ms ? now + req->timeouts.queue_ms : 0;
      arm_request_timer(req);
      salvo__engine_schedule(engine);
      return;
    }
  }
  uint64_t now = uv_now(engine->loop);
  salvo__decision_t d;
  salvo__retry_decide(req->policy, &info, req->data_cb != NULL ? req->resp_len : 0, now,
                      req->deadline_at_ms, req->last_wait_ms, &engine->rng, &d);
  int forced = info.error == SALVO_ECANCELED || info.error == SALVO_EDEADLINE;
  if (req->policy->decide_cb != NULL && !forced) {
    uint64_t wait = d.wait_ms;
    salvo_decision_t said = req->policy->decide_cb(req, &info, d.decision, &wait,
                                                  req->policy->decide_data);
    if (said == SALVO_DECIDE_STOP && d.decision == SALVO_DECIDE_RETRY) {
      d.decision = SALVO_DECIDE_STOP;
      d.stop = SALVO_STOP_BY_CALLBACK;
      d.final_error = info.error;
      snprintf(d.reason, sizeof(d.reason), "stopped by the decision callback");
    } else if (said == SALVO_DECIDE_RETRY && (d.decision == SALVO_DECIDE_STOP || wait != d.wait_ms)) {
      if (req->deadline_at_ms != 0 && now + wait >= req->deadline_at_ms) {
        d.decision = SALVO_DECIDE_STOP;
        d.stop = SALVO_STOP_DEADLINE;
        d.final_error = SALVO_EDEADLINE;
        snprintf(d.reason, sizeof(d.reason),
                 "gave up: the decision callback's wait of %llu ms would pass the deadline",
                 (unsigned long long)wait);
      } else {
        d.decision = SALVO_DECIDE_RETRY;
        d.wait_ms = wait;
        snprintf(d.reason, sizeof(d.reason), "retried by the decision callback");
      }
    }
  }

  if (d.decision == SALVO_DECIDE_RETRY && !forced && info.error != SALVO_ELOCAL &&
      info.error != SALVO_EPROXY) {
    /* The host's retry budget: when a host fails hard, retries may not
     * multiply its load. Failures of this machine or of the proxy put none
     * on it. */
    salvo__host_t *host = req->host;
    if (!salvo__budget_allows(&host->budget, &host->policy, now)) {
      host->stats.budget_refused++;
      d.decision = SALVO_DECIDE_STOP;
      d.stop = SALVO_STOP_BUDGET;
      d.final_error = info.error;
      snprintf(d.reason, sizeof(d.reason),
               "not retried: the host's retry budget is spent (%s)", info.error ? salvo_err_name(info.error) : "status");
    } else {
      host->stats.retries++;
      salvo__window_add(&host->budget, now, 0, 1);
    }
  }

  salvo_attempt_record_t *rec = add_record(req);
  if (rec != NULL) {
    rec->attempt = req->slot->attempt_no;
    rec->error = info.error;
    rec->status = req->result.status;
    rec->reached_server = info.reached_server;
    rec->decision = d.decision;
    rec->wait_ms = d.decision == SALVO_DECIDE_RETRY ? d.wait_ms : 0;
    rec->retry_after_ms = info.retry_after_ms;
    rec->sends = req->slot->sends;
    _Static_assert(sizeof(rec->reason) == sizeof(d.reason), "reason buffers differ");
    memcpy(rec->reason, d.reason, strlen(d.reason) + 1); /* d.reason is NUL-terminated */
    if (req->policy->event_cb != NULL)
      req->policy->event_cb(req, rec, req->policy->event_data);
  }
  if (d.decision == SALVO_DECIDE_RETRY && rec != NULL && !req->engine->closing) {
    /* Only the final attempt's body is reported: a request waiting to
     * retry holds none. */
    free(req->resp_body);
    req->resp_body = NULL;
    req->resp_cap = req->resp_len = 0;
    salvo__engine_put_slot(engine, req->slot);
    req->slot = NULL;
    salvo__list_remove(&req->node);
    salvo__list_push_back(&engine->waiting, &req->node);
    req->state = SALVO__WAITING;
    req->retry_at_ms = now + d.wait_ms;
    req->last_wait_ms = d.wait_ms;
    engine->stats.retries++;
    arm_request_timer(req);
    return;
  }
  req->result.stop_reason = d.stop;
  req->stop_set = 1;
  req->result.retry_after_ms = d.stop == SALVO_STOP_RETRY_AFTER ? info.retry_after_ms : -1;
  salvo__request_complete(req, d.final_error);
}

/* Whose failure was it, the proxy's or the target's? Over a tunnel (https),
 * everything before the tunnel was open is the proxy's, and nothing of the
 * request had left. Through a forward proxy (http), a connection that failed
 * without any response is the proxy's, and it may have forwarded the
 * request; the target's own failures come back as the proxy's 502 or 504. */
static int proxy_failed(salvo__slot_t *slot, CURLcode rc, salvo__outcome_t *out) {
  long tunnel = 0, status = 0; /* the proxy's answer to CONNECT, 0 if none came */
  curl_easy_getinfo(slot->easy, CURLINFO_HTTP_CONNECTCODE, &tunnel);
  curl_easy_getinfo(slot->easy, CURLINFO_RESPONSE_CODE, &status);
  int tunnel_open = tunnel >= 200 && tunnel <= 299;
  int theirs = rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_PROXY ||
               (tunnel != 0 && !tunnel_open);
  if (!theirs && slot->req->is_https)
    theirs = !tunnel_open && !slot->sent;
  else if (!theirs)
    theirs = status == 0 &&
             (out->error == SALVO_ECONNREFUSED || out->error == SALVO_ECONNECT ||
              out->error == SALVO_ECONNTIMEOUT || out->error == SALVO_EDNS ||
              out->error == SALVO_ECLOSED || out->error == SALVO_ERESET ||
              out->error == SALVO_EPROTO || out->error == SALVO_ETLS);
  if (!theirs)
    return 0;
  out->error = SALVO_EPROXY;
  if (slot->req->is_https)
    out->reached = 0;
  return 1;
}

/* Malformed responses, which libcurl 7.88 reports with the codes of
 * transport failures; its message, or the lane, tells them apart. Sets the
 * detail and returns 1 if the response was malformed. */
static int malformed(salvo__slot_t *slot, CURLcode rc) {
  /* ALPN decides, not the lane: the host's answers say what it speaks */
  int h2 = salvo__host_speaks_h2(slot->req->host, slot->req->lane) && !slot->conn_closed;
  const char *why = NULL;
  if (rc == CURLE_RECV_ERROR && slot->responded && strstr(slot->errbuf, "chunked-encoding")) {
    why = "broken chunked encoding";
  } else if (rc == CURLE_RECV_ERROR && strstr(slot->errbuf, "nghttp2_session_mem_recv()")) {
    why = "malformed HTTP/2 framing from the server";
    slot->session_ended = 1;
  } else if (rc == CURLE_HTTP2_STREAM && (strstr(slot->errbuf, "PROTOCOL_ERROR") ||
                                          strstr(slot->errbuf, "COMPRESSION_ERROR") ||
                                          strstr(slot->errbuf, "FRAME_SIZE_ERROR"))) {
    why = "HTTP/2 stream reset for a protocol error (a malformed response, or its Content-Length)";
    /* COMPRESSION_ERROR is only ever a connection error: the session is gone */
    slot->session_ended = strstr(slot->errbuf, "COMPRESSION_ERROR") != NULL;
  } else if (rc == CURLE_GOT_NOTHING && h2) {
    /* the session ended with this stream unanswered and not reset: nghttp2
     * ended it for a frame it could not accept (undecodable headers, a
     * PUSH_PROMISE, a header block over its limits), or the server did */
    why = "the HTTP/2 session ended without answering this stream (a malformed frame from the "
          "server, or its GOAWAY)";
    slot->session_ended = 1;
  }
  if (why == NULL)
    return 0;
  slot->proto_detail = why;
  return 1;
}

/* Classifies how an attempt ended. A send the server's TCP never
 * acknowledged did not reach the server (conn.c). A handle whose transfer
 * failed is reset before its next use (attempt.c). */
static salvo__outcome_t attempt_outcome(salvo__slot_t *slot, CURLcode rc, long os_errno,
                                        curl_off_t pretransfer) {
  if (rc == CURLE_COULDNT_CONNECT && slot->local_errno != 0)
    os_errno = slot->local_errno; /* no socket at all: libcurl says nothing of why */
  if (rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CRL_BADFILE) {
    /* OpenSSL could not open the CA file: out of descriptors, most likely */
    int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (probe < 0 && (errno == EMFILE || errno == ENFILE)) {
      rc = CURLE_COULDNT_CONNECT;
      os_errno = errno;
    } else if (probe >= 0) {
      close(probe);
    }
  }
  salvo__outcome_t out =
      salvo__classify(rc, os_errno, slot->stop_reason, slot->sent, (int64_t)pretransfer);
  if (slot->via_proxy && slot->stop_reason == 0 && slot->local_errno == 0 && rc != CURLE_OK &&
      proxy_failed(slot, rc, &out)) {
    slot->dirty = 1;
    return out;
  }
  /* libcurl reports broken chunked encoding as a receive error, the same
   * code as a reset: the words in its message are the only difference. */
  if (slot->stop_reason == 0 && malformed(slot, rc))
    out.error = SALVO_EPROTO;
  if (slot->unread && !slot->responded && (out.error == SALVO_ECLOSED || out.error == SALVO_ERESET))
    out.reached = 0;
  if (out.error != 0)
    slot->dirty = 1;
  return out;
}

/* One of two running attempts ends without deciding the request; the other
 * goes on. It gets a record saying why. */
static void drop_attempt(salvo_request_t *req, salvo__slot_t *slot, CURLcode rc, const char *why) {
  salvo_engine_t *engine = req->engine;
  if (salvo__list_linked(&slot->cancel_node))
    salvo__list_remove(&slot->cancel_node);
  salvo__engine_remove_attempt(engine, slot);
  uv_timer_stop(&slot->timer);
  slot->timer_due_ms = 0;
  long status = 0, os_errno = 0;
  curl_off_t pretransfer = 0;
  curl_easy_getinfo(slot->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(slot->easy, CURLINFO_OS_ERRNO, &os_errno);
  curl_easy_getinfo(slot->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
  salvo__outcome_t out = attempt_outcome(slot, rc, os_errno, pretransfer);
  salvo__host_after_attempt(req, slot, out.error, out.error == 0 ? status : 0,
                            (uv_hrtime() - slot->started_ns) / 1000, 1);
  salvo_attempt_record_t *rec = add_record(req);
  if (rec != NULL) {
    rec->attempt = slot->attempt_no;
    rec->error = out.error;
    rec->status = out.error == 0 ? status : 0;
    rec->reached_server = out.reached;
    rec->decision = SALVO_DECIDE_RETRY; /* the request goes on, with the other attempt */
    rec->wait_ms = 0;
    rec->retry_after_ms = -1;
    rec->sends = slot->sends;
    snprintf(rec->reason, sizeof(rec->reason), "%s", why);
    if (req->policy->event_cb != NULL)
      req->policy->event_cb(req, rec, req->policy->event_data);
  }
  salvo__engine_put_slot(engine, slot);
}

void salvo__slot_finish(salvo__slot_t *slot, CURLcode rc) {
  salvo_request_t *req = slot->req;
  if (req->hedge == NULL) {
    salvo__request_finish_attempt(req, rc);
    return;
  }
  salvo__slot_t *other = slot == req->slot ? req->hedge : req->slot;
  int decides = req->winner == slot || (req->winner == NULL && rc == CURLE_OK && slot->stop_reason == 0);
  req->hedge = NULL;
  req->winner = NULL;
  if (decides) {
    other->stop_reason = SALVO_ECANCELED;
    drop_attempt(req, other, CURLE_OK, "canceled: the other attempt answered first");
    req->slot = slot;
    salvo__request_finish_attempt(req, rc);
  } else {
    drop_attempt(req, slot, rc,
                 slot->stop_reason == SALVO_ECANCELED
                     ? "canceled: the other attempt answered first"
                     : "failed while the other attempt goes on");
    req->slot = other;
  }
}

/* The attempt has no response after the hedge delay: send a second one. The
 * first response wins (header_cb); the other is canceled. */
void salvo__request_hedge(salvo_request_t *req) {
  salvo_engine_t *engine = req->engine;
  salvo__host_t *host = req->host;
  uint64_t now = uv_now(engine->loop);
  if (req->hedged || engine->closing || engine->stats.in_flight >= engine->max_in_flight ||
      !salvo__host_has_room(host))
    return; /* never past max_in_flight, nor past what the host's connections carry */
  if (!salvo__budget_allows(&host->budget, &host->policy, now))
    return; /* hedges spend the retry budget */
  salvo__slot_t *slot = salvo__engine_get_slot(engine);
  if (slot == NULL)
    return;
  if (salvo__attempt_setup(slot, req) != 0 || salvo__engine_add_attempt(engine, slot) != 0) {
    salvo__engine_put_slot(engine, slot);
    return;
  }
  req->hedged = 1;
  req->hedge = slot;
  req->winner = NULL;
  req->attempts++;
  slot->attempt_no = req->attempts;
  host->stats.hedges++;
  salvo__window_add(&host->budget, now, 0, 1);
  salvo__window_add(&host->sends, now, 1, 0);
  salvo__attempt_arm_timer(slot);
}

void salvo__request_finish_attempt(salvo_request_t *req, CURLcode rc) {
  salvo__slot_t *slot = req->slot;
  CURL *easy = slot->easy;
  salvo_engine_t *engine = req->engine;
  salvo__engine_remove_attempt(engine, slot);
  uv_timer_stop(&slot->timer);
  slot->timer_due_ms = 0;

  long status = 0, os_errno = 0, version = 0, connects = 0;
  curl_off_t pretransfer = 0, namelookup = 0, connect = 0, appconnect = 0, starttransfer = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
  curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version);
  curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects);
  curl_easy_getinfo(easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
  curl_easy_getinfo(easy, CURLINFO_NAMELOOKUP_TIME_T, &namelookup);
  curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connect);
  curl_easy_getinfo(easy, CURLINFO_APPCONNECT_TIME_T, &appconnect);
  curl_easy_getinfo(easy, CURLINFO_STARTTRANSFER_TIME_T, &starttransfer);
  engine->stats.connections_opened += (uint64_t)connects;

  /* A short write count makes libcurl report CURLE_WRITE_ERROR; the real
   * reason is the one salvo recorded. */
  salvo__outcome_t outcome = attempt_outcome(slot, rc, os_errno, pretransfer);
  /* libcurl says PARTIAL_FILE when an HTTP/2 connection dies under a stream
   * that had no response yet: nothing was truncated, it closed. */
  if (outcome.error == SALVO_ETRUNCATED && status == 0)
    outcome.error = SALVO_ECLOSED;
  /* libcurl 7.88 reports response headers past its 100 KB cap as "out of
   * memory"; with a status line already in, that is what it was. */
  if (rc == CURLE_OUT_OF_MEMORY && status != 0 && slot->stop_reason == 0) {
    outcome.error = SALVO_EPROTO;
    outcome.reached = 1;
    snprintf(slot->errbuf, sizeof(slot->errbuf),
             "response headers larger than libcurl accepts (100 KB)");
  }
  if (slot->session_ended) /* its other streams would wait for their timers */
    salvo__conn_session_ended(engine, slot);
  salvo_result_t *r = &req->result;
  r->status = status;
  r->reached_server = outcome.reached;
  r->http_version = salvo__http_version(version); /* the host learned it at the first byte */
  r->timings.dns_us = (uint64_t)(namelookup > 0 ? namelookup : 0);
  r->timings.connect_us = connect > 0 ? us_between(namelookup, connect) : 0;
  r->timings.tls_us = appconnect > 0 ? us_between(connect, appconnect) : 0;
  r->timings.ttfb_us = (uint64_t)(starttransfer > 0 ? starttransfer : 0);
  r->timings.total_us = (uv_hrtime() - slot->started_ns) / 1000;
  if (slot->proto_detail == salvo__header_cap_detail)
    snprintf(req->detail, sizeof(req->detail), "%s (%zu bytes)", slot->proto_detail,
             engine->max_header_size);
  else if (outcome.error == SALVO_EPROTO && slot->proto_detail != NULL && slot->stop_reason == 0 &&
           slot->errbuf[0] != '\0') /* libcurl ended it: its own words follow; when salvo did,
                                        they would only say "Failed writing header" */
    snprintf(req->detail, sizeof(req->detail), "%s: %.160s", slot->proto_detail, slot->errbuf);
  else if (outcome.error == SALVO_EPROTO && slot->proto_detail != NULL)
    snprintf(req->detail, sizeof(req->detail), "%s", slot->proto_detail);
  else if (outcome.error != 0 && slot->stop_reason == 0 && slot->errbuf[0] != '\0')
    snprintf(req->detail, sizeof(req->detail), "%s", slot->errbuf);
  else if (outcome.error != 0 && slot->stop_reason == 0)
    snprintf(req->detail, sizeof(req->detail), "%s", curl_easy_strerror(rc));
  else
    req->detail[0] = '\0';
  decide(req, &outcome);
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
  req->state = SALVO__DONE;
  {
    salvo_host_stats_t *hs = &req->host->stats;
    if (error == 0 && req->result.status < 400) {
      hs->successes++;
    } else {
      hs->failures++;
      hs->by_error[salvo__err_index(error)]++;
    }
    salvo__host_unref(engine, req->host); /* nothing below uses it */
  }
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

  req->done_cb(req, r, req->user_data);

  if (req->slot != NULL) {
    salvo__engine_put_slot(engine, req->slot);
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

const char *salvo_response_header(salvo_request_t *req, const char *name) {
  if (req == NULL || name == NULL || req->state != SALVO__DONE || req->slot == NULL ||
      req->result.status == 0)
    return NULL;
  struct curl_header *h = NULL;
  if (curl_easy_header(req->slot->easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
    return NULL;
  if (h->amount > 1 &&
      curl_easy_header(req->slot->easy, name, h->amount - 1, CURLH_HEADER, -1, &h) != CURLHE_OK)
    return NULL;
  return keep(req, h->value);
}

int salvo_response_header_at(salvo_request_t *req, size_t i, const char **name,
                             const char **value) {
  if (req == NULL || name == NULL || value == NULL || req->state != SALVO__DONE ||
      req->slot == NULL || req->result.status == 0)
    return SALVO_EINVAL;
  struct curl_header *h = NULL;
  size_t k = 0;
  while ((h = curl_easy_nextheader(req->slot->easy, CURLH_HEADER, -1, h)) != NULL) {
    if (k++ == i) {
      *name = keep(req, h->name);
      *value = keep(req, h->value);
      return *name != NULL && *value != NULL ? 0 : SALVO_ENOMEM;
    }
  }
  return SALVO_EINVAL;
}

char *salvo_response_take_body(salvo_request_t *req) {
  if (req == NULL || req->state != SALVO__DONE || req->resp_body == NULL)
    return NULL;
  char *body = req->resp_body;
  req->resp_body = NULL;
  req->resp_cap = 0;
  req->result.body = NULL;
  return body;
}
