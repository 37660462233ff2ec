/* Request lifecycle: build, submit, queue, attempt, complete exactly once. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

/* Scratch strings handed out by salvo_response_header*(); freed with the request. */
typedef struct scratch_s {
  struct scratch_s *next;
  char data[];
} scratch_t;

int salvo_request_new(salvo_engine_t *engine, const char *method, const char *url,
                      salvo_request_t **out) {
  if (engine == NULL || out == NULL || !salvo__valid_method(method))
    return SALVO_EINVAL;
  int is_https = 0;
  int rc = salvo__valid_url(url, &is_https);
  if (rc != 0)
    return rc;
  salvo_request_t *req = calloc(1, sizeof(*req));
  if (req == NULL)
    return SALVO_ENOMEM;
  req->method = strdup(method);
  req->url = strdup(url);
  if (req->method == NULL || req->url == NULL) {
    salvo_request_free(req);
    return SALVO_ENOMEM;
  }
  req->engine = engine;
  req->is_https = is_https;
  req->lane = (engine->http_version == SALVO_HTTP_AUTO && is_https) ||
                      engine->http_version == SALVO_HTTP_2
                  ? SALVO__LANE_H2
                  : SALVO__LANE_H1;
  req->is_get = strcmp(method, "GET") == 0;
  req->is_head = strcmp(method, "HEAD") == 0;
  /* Methods whose semantics carry a body send Content-Length: 0 when empty. */
  req->has_body = strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
                  strcmp(method, "PATCH") == 0;
  req->timeouts = engine->timeouts;
  req->max_body_size = engine->max_body_size;
  salvo__list_init(&req->node);
  salvo__list_init(&req->cancel_node);
  *out = req;
  return 0;
}

static int add_header(salvo_request_t *req, const char *name, size_t name_len, const char *value,
                      size_t value_len) {
  if (req->state != SALVO__NEW || !salvo__valid_header_name(name, name_len) ||
      !salvo__valid_header_value(value, value_len))
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

int salvo_request_set_data_cb(salvo_request_t *req, salvo_data_cb cb) {
  if (req == NULL || req->state != SALVO__NEW)
    return SALVO_EINVAL;
  req->data_cb = cb;
  return 0;
}

int salvo_request_set_max_body_size(salvo_request_t *req, size_t max) {
  if (req == NULL || req->state != SALVO__NEW)
    return SALVO_EINVAL;
  req->max_body_size = max;
  return 0;
}

static void free_request(salvo_request_t *req) {
  free(req->method);
  free(req->url);
  free(req->body);
  free(req->resp_body);
  curl_slist_free_all(req->user_headers);
  curl_slist_free_all(req->headers);
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
 * then the request's own headers, then switches for libcurl's extras. */
static int build_headers(salvo_request_t *req) {
  struct curl_slist *list = NULL;
  const struct curl_slist *l;
#define APPEND(line)                                            \
  do {                                                          \
    struct curl_slist *grown = curl_slist_append(list, line);   \
    if (grown == NULL)                                          \
      goto oom;                                                 \
    list = grown;                                               \
  } while (0)
  for (l = req->engine->default_headers; l != NULL; l = l->next) {
    size_t name_len = strcspn(l->data, ":;");
    if (!salvo__header_has_name(req->user_headers, l->data, name_len))
      APPEND(l->data);
  }
  for (l = req->user_headers; l != NULL; l = l->next)
    APPEND(l->data);
  /* No "Expect: 100-continue" round trip: it costs a wait (1 s when the
   * server ignores it) and muddies whether the body was sent. */
  if (!salvo__header_has_name(list, "Expect", 6))
    APPEND("Expect:");
  /* libcurl labels POSTFIELDS as a form unless told otherwise; the caller's
   * body is opaque bytes. */
  if (req->has_body && !salvo__header_has_name(list, "Content-Type", 12))
    APPEND("Content-Type:");
#undef APPEND
  req->headers = list;
  return 0;
oom:
  curl_slist_free_all(list);
  return SALVO_ENOMEM;
}

static void request_timer_cb(uv_timer_t *timer);

static void arm_request_timer(salvo_request_t *req) {
  uint64_t due = req->deadline_at_ms;
  if (req->state == SALVO__QUEUED && req->queue_at_ms != 0 && (due == 0 || req->queue_at_ms < due))
    due = req->queue_at_ms;
  if (due == 0)
    return;
  uint64_t now = uv_now(req->engine->loop);
  uv_timer_start(&req->timer, request_timer_cb, due > now ? due - now : 0, 0);
}

static void request_timer_cb(uv_timer_t *timer) {
  salvo_request_t *req = SALVO__CONTAINER_OF(timer, salvo_request_t, timer);
  salvo_engine_t *engine = req->engine;
  uint64_t now = uv_now(engine->loop);
  if (req->deadline_at_ms != 0 && now >= req->deadline_at_ms) {
    if (req->state == SALVO__RUNNING) {
      req->slot->stop_reason = SALVO_EDEADLINE;
      salvo__request_finish_attempt(req, CURLE_OK);
    } else {
      salvo__request_complete(req, SALVO_EDEADLINE);
    }
  } else if (req->state == SALVO__QUEUED && req->queue_at_ms != 0 && now >= req->queue_at_ms) {
    salvo__request_complete(req, SALVO_EQUEUE);
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
  int rc = build_headers(req);
  if (rc != 0)
    return rc;
  uint64_t now = uv_now(engine->loop);
  req->submit_ns = uv_hrtime();
  req->deadline_at_ms = req->timeouts.deadline_ms ? now + req->timeouts.deadline_ms : 0;
  req->queue_at_ms = req->timeouts.queue_ms ? now + req->timeouts.queue_ms : 0;
  if (req->deadline_at_ms != 0 || req->queue_at_ms != 0) {
    if (uv_timer_init(engine->loop, &req->timer) != 0) {
      curl_slist_free_all(req->headers);
      req->headers = NULL;
      return SALVO_EINTERNAL;
    }
    req->timer_inited = 1;
    engine->live_handles++;
  }
  req->done_cb = done_cb;
  req->user_data = user_data;
  req->state = SALVO__QUEUED;
  salvo__list_push_back(&engine->queue, &req->node);
  engine->stats.submitted++;
  if (req->timer_inited)
    arm_request_timer(req);
  /* Never start here: starting can fail, and done_cb must not run before
   * submit returns. The engine starts queued requests from the loop. */
  salvo__engine_schedule(engine);
  return 0;
}

int salvo_request_cancel(salvo_request_t *req) {
  if (req == NULL || (req->state != SALVO__QUEUED && req->state != SALVO__RUNNING))
    return SALVO_EINVAL;
  if (!salvo__list_linked(&req->cancel_node)) {
    salvo__list_push_back(&req->engine->cancels, &req->cancel_node);
    salvo__engine_schedule(req->engine);
  }
  return 0;
}

void salvo__request_cancel_now(salvo_request_t *req) {
  if (req->state == SALVO__RUNNING) {
    req->slot->stop_reason = SALVO_ECANCELED;
    salvo__request_finish_attempt(req, CURLE_OK);
  } else if (req->state == SALVO__QUEUED) {
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
  req->resp_len = 0;
  int rc = salvo__attempt_setup(slot, req);
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
  salvo__attempt_arm_timer(slot);
}

static uint64_t us_between(curl_off_t from, curl_off_t to) {
  return to > from ? (uint64_t)(to - from) : 0;
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
  salvo__outcome_t outcome = salvo__classify(rc, os_errno, slot->stop_reason, slot->sent,
                                             (int64_t)pretransfer);
  salvo_result_t *r = &req->result;
  r->status = status;
  r->reached_server = outcome.reached;
  r->http_version = version == CURL_HTTP_VERSION_2_0   ? 20
                    : version == CURL_HTTP_VERSION_1_1 ? 11
                    : version == CURL_HTTP_VERSION_1_0 ? 10
                                                       : 0;
  r->timings.dns_us = (uint64_t)(namelookup > 0 ? namelookup : 0);
  r->timings.connect_us = connect > 0 ? us_between(namelookup, connect) : 0;
  r->timings.tls_us = appconnect > 0 ? us_between(connect, appconnect) : 0;
  r->timings.ttfb_us = (uint64_t)(starttransfer > 0 ? starttransfer : 0);
  r->timings.total_us = (uv_hrtime() - slot->started_ns) / 1000;
  if (outcome.error != 0 && slot->stop_reason == 0 && slot->errbuf[0] != '\0')
    snprintf(req->detail, sizeof(req->detail), "%s", slot->errbuf);
  else if (outcome.error != 0 && slot->stop_reason == 0)
    snprintf(req->detail, sizeof(req->detail), "%s", curl_easy_strerror(rc));
  salvo__request_complete(req, outcome.error);
}

static void request_closed_cb(uv_handle_t *handle) {
  salvo_request_t *req = SALVO__CONTAINER_OF((uv_timer_t *)handle, salvo_request_t, timer);
  salvo_engine_t *engine = req->engine;
  free_request(req);
  salvo__engine_handle_closed(engine);
}

void salvo__request_complete(salvo_request_t *req, int error) {
  salvo_engine_t *engine = req->engine;
  if (req->state == SALVO__RUNNING)
    salvo__list_remove(&req->node); /* finish_attempt removed the transfer */
  else if (req->state == SALVO__QUEUED)
    salvo__list_remove(&req->node);
  if (salvo__list_linked(&req->cancel_node))
    salvo__list_remove(&req->cancel_node);
  req->state = SALVO__DONE;
  if (req->timer_inited)
    uv_timer_stop(&req->timer);

  salvo_result_t *r = &req->result;
  r->error = error;
  r->attempts = req->attempts;
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
