/* The engine: a caller's libuv loop drives libcurl's multi handles (one per
 * lane) through libcurl's socket and timer callbacks, the pattern of curl's
 * docs/examples/multi-uv.c, with the pitfalls of libcurl 7.88 and libuv
 * handled where they are met. Owns salvo_engine_t and its lanes. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "internal.h"

static void check_multi_info(salvo__lane_t *lane);
static void maybe_finish_close(salvo_engine_t *engine);

void salvo_engine_opts_init(salvo_engine_opts_t *opts) {
  if (opts == NULL)
    return;
  memset(opts, 0, sizeof(*opts));
  opts->max_in_flight = 64;
  opts->max_connections = 0;
  opts->max_host_connections = 0;
  opts->max_streams = 100;
  opts->http_version = SALVO_HTTP_AUTO;
  opts->max_body_size = (size_t)64 * 1024 * 1024;
  opts->max_redirects = 5;
  opts->max_header_size = 64 * 1024;
  salvo_timeouts_init(&opts->timeouts);
  salvo_retry_policy_init(&opts->retry);
  salvo_host_policy_init(&opts->hosts);
  opts->max_hosts = 10000;
}

/* Random bytes from the OS (getrandom(2) where it exists). */
static void fill_random(void *buf, size_t len) {
  if (uv_random(NULL, NULL, buf, len, 0, NULL) == 0)
    return;
  /* no source at all: time and address, not secret */
  unsigned char *p = buf;
  uint64_t state = uv_hrtime() ^ (uint64_t)(uintptr_t)buf;
  for (size_t i = 0; i < len; i++)
    p[i] = (unsigned char)salvo__rng_next(&state);
}

void salvo__engine_random(salvo_engine_t *engine, unsigned char out[16]) {
  if (engine->random_left < 16) {
    fill_random(engine->random_pool, sizeof(engine->random_pool));
    engine->random_left = sizeof(engine->random_pool);
  }
  engine->random_left -= 16;
  memcpy(out, engine->random_pool + engine->random_left, 16);
}

void salvo__uuid4(salvo_engine_t *engine, char out[37]) {
  unsigned char b[16];
  salvo__engine_random(engine, b);
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  static const char hex[] = "0123456789abcdef";
  char *o = out;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      *o++ = '-';
    *o++ = hex[b[i] >> 4];
    *o++ = hex[b[i] & 15];
  }
  *o = '\0';
}

/* ------------------------------------------------------------ log */

const char *salvo_log_level_name(salvo_log_level_t level) {
  switch (level) {
  case SALVO_LOG_ERROR:
    return "error";
  case SALVO_LOG_WARN:
    return "warn";
  case SALVO_LOG_INFO:
    return "info";
  case SALVO_LOG_DEBUG:
    return "debug";
  }
  return "unknown";
}

/* |shown| is the engine the callback is told of: NULL while salvo_engine_new()
 * runs (salvo.h, salvo_log_cb). */
static void log_v(salvo_log_cb log_cb, void *log_data, salvo_engine_t *shown,
                  salvo_log_level_t level, const char *fmt, va_list ap) {
  if (log_cb == NULL)
    return; /* never stderr: the caller decides where messages go */
  char message[512];
  vsnprintf(message, sizeof(message), fmt, ap);
  log_cb(shown, level, message, log_data);
}

void salvo__log(salvo_engine_t *engine, salvo_log_level_t level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  log_v(engine->log_cb, engine->log_data, engine, level, fmt, ap);
  va_end(ap);
}

/* A message of salvo_engine_new(): the caller has no engine yet, and there
 * may be none (a refused option). */
static void __attribute__((format(printf, 3, 4)))
log_new(const salvo_engine_opts_t *opts, salvo_log_level_t level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  log_v(opts->log_cb, opts->log_data, NULL, level, fmt, ap);
  va_end(ap);
}

/* magic and closing are read by salvo_request_new(), which other threads
 * may call: relaxed atomics there and where they are written. */
int salvo__engine_live(const salvo_engine_t *engine) {
  uint32_t magic = __atomic_load_n(&engine->magic, __ATOMIC_RELAXED);
  assert(magic == SALVO__ENGINE_LIVE && "salvo: an engine used after its close completed");
  return magic == SALVO__ENGINE_LIVE;
}

/* ------------------------------------------------------------ glue */

/* Every curl_multi_* call goes through here or sets multi_busy itself, so
 * salvo knows when libcurl's callbacks (and so user data callbacks) may be
 * on the stack. */
static void socket_action(salvo__lane_t *lane, curl_socket_t fd, int flags) {
  salvo_engine_t *engine = lane->engine;
  int running = 0;
  engine->multi_busy = 1;
  curl_multi_socket_action(lane->multi, fd, flags, &running);
  engine->multi_busy = 0;
  check_multi_info(lane);
  salvo__engine_pump(engine); /* start what done callbacks submitted, in this iteration */
}

static void socket_closed_cb(uv_handle_t *handle) {
  salvo__socket_t *ctx = SALVO__CONTAINER_OF((uv_poll_t *)handle, salvo__socket_t, poll);
  salvo_engine_t *engine = ctx->lane->engine;
  free(ctx);
  salvo__engine_handle_closed(engine);
}

static void socket_close(salvo__socket_t *ctx) {
  if (ctx->closing)
    return;
  ctx->closing = 1;
  salvo__list_remove(&ctx->node);
  uv_close((uv_handle_t *)&ctx->poll, socket_closed_cb);
}

static void poll_cb(uv_poll_t *poll, int status, int events) {
  salvo__socket_t *ctx = SALVO__CONTAINER_OF(poll, salvo__socket_t, poll);
  salvo__engine_saw_loop(ctx->lane->engine);
  int flags = 0;
  if (status < 0) {
    /* libuv stopped the handle (POLLERR/POLLHUP, reported as an error).
     * Not CURL_CSELECT_ERR: libcurl 7.88 then fails the transfer with
     * "select/poll returned error" and skips its own recovery (a reused
     * connection that died is retried on a fresh one; a response already in
     * the socket buffer before an RST is still read). Report what libcurl
     * asked for, so it finds out itself through recv/send. */
    events = ctx->want;
    ctx->armed = 0;
  }
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  socket_action(ctx->lane, ctx->fd, flags);
  /* ctx is freed only in its close callback, so it is still valid here. */
  if (!ctx->closing && ctx->want != 0 && ctx->armed != ctx->want) {
    if (uv_poll_start(&ctx->poll, ctx->want, poll_cb) == 0)
      ctx->armed = ctx->want;
  }
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  salvo__lane_t *lane = userp;
  salvo_engine_t *engine = lane->engine;
  salvo__socket_t *ctx = socketp;
  if (what == CURL_POLL_REMOVE) {
    /* An HTTP/1.x transfer that got its response hands the connection back
     * to libcurl's pool (on either lane: ALPN may choose HTTP/1.1): note
     * what the server has acknowledged so far. */
    salvo__slot_t *slot = NULL;
    long version = 0;
    if (easy != NULL &&
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&slot) == CURLE_OK && slot != NULL &&
        slot->req != NULL && slot->responded &&
        curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version) == CURLE_OK &&
        (version == CURL_HTTP_VERSION_1_1 || version == CURL_HTTP_VERSION_1_0))
      salvo__conn_idle(engine, fd, slot); /* HTTP/1.x: one transfer at a time */
    if (ctx != NULL) {
      ctx->want = 0;
      socket_close(ctx);
      curl_multi_assign(lane->multi, fd, NULL);
    }
    return 0; /* never -1: it would kill the whole multi handle */
  }
  if (ctx == NULL) {
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
      return 0; /* the transfer's timers will end it */
    ctx->lane = lane;
    ctx->fd = fd;
    if (uv_poll_init_socket(engine->loop, &ctx->poll, fd) != 0) {
      free(ctx);
      return 0;
    }
    engine->live_handles++;
    salvo__list_push_back(&engine->sockets, &ctx->node);
    curl_multi_assign(lane->multi, fd, ctx);
  }
  int want = 0;
  if (what & CURL_POLL_IN)
    want |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    want |= UV_WRITABLE;
  ctx->want = want;
  /* Each uv_poll_start is an epoll_ctl: only call it when the mask changes. */
  if (want != ctx->armed) {
    int rc = want ? uv_poll_start(&ctx->poll, want, poll_cb) : uv_poll_stop(&ctx->poll);
    if (rc == 0)
      ctx->armed = want;
  }
  return 0;
}

static void curl_timer_fired(uv_timer_t *timer) {
  salvo__lane_t *lane = SALVO__CONTAINER_OF(timer, salvo__lane_t, timer);
  salvo__engine_saw_loop(lane->engine);
  socket_action(lane, CURL_SOCKET_TIMEOUT, 0);
}

int salvo__lane_timer_cb(CURLM *multi, long timeout_ms, void *userp) {
  (void)multi;
  salvo__lane_t *lane = userp;
  /* Runs inside libcurl: only arm something; socket_action happens from the
   * loop. "0 ms" goes through the idle handle, not a 0 ms uv timer: libuv
   * < 1.48 runs a 0 ms timer restarted from a timer callback again in the
   * same pass (libuv #4245), so the loop can spin in its timer phase, never
   * polling or freeing closed handles. Measured here: 238 MB live at 60k
   * HTTP/2 requests before this, flat after. */
  lane->timeout_now = 0;
  if (timeout_ms < 0) {
    uv_timer_stop(&lane->timer);
  } else if (timeout_ms == 0) {
    uv_timer_stop(&lane->timer);
    lane->timeout_now = 1;
    salvo__engine_schedule(lane->engine);
  } else {
    uv_timer_start(&lane->timer, curl_timer_fired, (uint64_t)timeout_ms, 0);
  }
  return 0;
}

static void check_multi_info(salvo__lane_t *lane) {
  CURLMsg *msg;
  int pending;
  while ((msg = curl_multi_info_read(lane->multi, &pending)) != NULL) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    salvo__slot_t *slot = NULL;
    CURLcode rc = msg->data.result; /* msg dies with remove_handle */
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&slot);
    if (slot != NULL && slot->req != NULL)
      salvo__slot_finish(slot, rc);
  }
}

/* ------------------------------------------------------------ attempts */

int salvo__engine_add_attempt(salvo_engine_t *engine, salvo__slot_t *slot) {
  salvo__lane_t *lane = &engine->lanes[slot->req->lane];
  engine->multi_busy = 1;
  CURLMcode mc = curl_multi_add_handle(lane->multi, slot->easy);
  engine->multi_busy = 0;
  if (mc != CURLM_OK)
    return mc == CURLM_OUT_OF_MEMORY ? SALVO_ENOMEM : SALVO_EINTERNAL;
  slot->lane = lane;
  engine->stats.attempts++;
  engine->stats.in_flight++;
  slot->host = slot->req->host;
  slot->host_in_flight = salvo__host_attempt_added(slot->host);
  return 0;
}

void salvo__engine_remove_attempt(salvo_engine_t *engine, salvo__slot_t *slot) {
  if (slot->lane == NULL)
    return;
  engine->multi_busy = 1;
  curl_multi_remove_handle(slot->lane->multi, slot->easy);
  engine->multi_busy = 0;
  slot->lane = NULL;
  engine->stats.in_flight--;
  salvo__host_attempt_removed(slot->host);
  slot->host = NULL;
}

/* ------------------------------------------------------------ pump */

void salvo__engine_pump(salvo_engine_t *engine) {
  if (engine->pumping || engine->multi_busy || engine->closing)
    return;
  engine->pumping = 1;
  /* Fair share over the hosts that may send now (host.c); each admission
   * starts the host's first request, fails it fast, or blocks the host on
   * its timer. */
  salvo__host_t *host;
  while (engine->stats.in_flight < engine->max_in_flight && !engine->closing &&
         (host = salvo__host_next_ready(engine)) != NULL) {
    /* a ready host has a queue */
    salvo__request_admit(SALVO__CONTAINER_OF(salvo__host_queue_head(host), salvo_request_t, node));
  }
  salvo__request_arm_queued(engine);
  engine->pumping = 0;
}

static void run_deferred(salvo_engine_t *engine) {
  for (int i = 0; i < SALVO__LANES && !engine->teardown_done; i++) {
    salvo__lane_t *lane = &engine->lanes[i];
    if (lane->timeout_now) {
      lane->timeout_now = 0;
      socket_action(lane, CURL_SOCKET_TIMEOUT, 0);
    }
  }
  while (!salvo__list_empty(&engine->slot_cancels)) {
    salvo__slot_t *slot = SALVO__CONTAINER_OF(engine->slot_cancels.next, salvo__slot_t, cancel_node);
    salvo__list_remove(&slot->cancel_node);
    if (slot->req != NULL && slot->lane != NULL)
      salvo__slot_finish(slot, CURLE_OK); /* stop_reason says canceled */
  }
  while (!salvo__list_empty(&engine->cancels)) {
    salvo_request_t *req = SALVO__CONTAINER_OF(engine->cancels.next, salvo_request_t, cancel_node);
    salvo__list_remove(&req->cancel_node);
    salvo__request_cancel_now(req);
  }
  if (engine->closing)
    maybe_finish_close(engine);
  else
    salvo__engine_pump(engine);
}

static void deferred_cb(uv_idle_t *idle) {
  salvo_engine_t *engine = SALVO__CONTAINER_OF(idle, salvo_engine_t, deferred);
  salvo__engine_saw_loop(engine);
  uv_idle_stop(idle);
  engine->deferred_active = 0;
  run_deferred(engine);
}

/* Recorded lazily: a daemon may make its engine on one thread and then run
 * the loop on another. */
void salvo__engine_saw_loop(salvo_engine_t *engine) {
  if (!engine->loop_thread_known) {
    engine->loop_thread = uv_thread_self();
    engine->loop_thread_known = 1;
  }
}

int salvo__engine_on_loop_thread(const salvo_engine_t *engine) {
  if (!engine->loop_thread_known)
    return 1;
  uv_thread_t self = uv_thread_self();
  return uv_thread_equal(&engine->loop_thread, &self);
}

void salvo__engine_schedule(salvo_engine_t *engine) {
  if (!engine->deferred_active && !engine->teardown_done) {
    engine->deferred_active = 1;
    uv_idle_start(&engine->deferred, deferred_cb);
  }
}

/* ------------------------------------------------------------ life */

static void engine_free(salvo_engine_t *engine) {
  salvo__inject_free(engine);
  __atomic_store_n(&engine->magic, SALVO__ENGINE_DEAD, __ATOMIC_RELAXED);
  for (int i = 0; i < SALVO__LANES; i++)
    salvo__fair_free(&engine->lanes[i].ready);
  salvo__conns_free(&engine->conns);
  curl_share_cleanup(engine->no_share); /* every easy handle is gone */
  free(engine->proxy_http);
  free(engine->proxy_https);
  free(engine->no_proxy);
  free(engine->ca_file);
  free(engine->user_agent);
  curl_slist_free_all(engine->default_headers);
  curl_slist_free_all(engine->resolve); /* the easy handles that pointed at them are gone */
  curl_slist_free_all(engine->connect_to);
  free(engine);
}

/* "" is unset, as curl takes it. */
static const char *env(const char *a, const char *b) {
  const char *v = getenv(a);
  if ((v == NULL || *v == '\0') && b != NULL)
    v = getenv(b);
  return v != NULL && *v != '\0' ? v : NULL;
}

static int valid_proxy(const char *proxy) {
  if (proxy == NULL)
    return 1;
  if (strlen(proxy) > SALVO_MAX_URL_SIZE)
    return 0;
  CURLU *u = curl_url();
  if (u == NULL)
    return 0;
  int ok = curl_url_set(u, CURLUPART_URL, proxy, CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) ==
           CURLUE_OK;
  curl_url_cleanup(u);
  return ok;
}

static int dup_or_null(const char *s, char **out) {
  *out = NULL;
  if (s == NULL || *s == '\0')
    return 0;
  *out = strdup(s);
  return *out != NULL ? 0 : SALVO_ENOMEM;
}

/* opts.proxy for every request, or, with proxy_from_env, curl's variables,
 * in curl's order: http_proxy (lower case only: HTTP_PROXY can be set by a
 * CGI request), https_proxy or HTTPS_PROXY, all_proxy or ALL_PROXY,
 * no_proxy or NO_PROXY. */
static int copy_proxies(salvo_engine_t *engine, const salvo_engine_opts_t *opts) {
  const char *http = opts->proxy, *https = opts->proxy, *no_proxy = opts->no_proxy;
  if (opts->proxy == NULL && opts->proxy_from_env) {
    const char *all = env("all_proxy", "ALL_PROXY");
    http = env("http_proxy", NULL);
    https = env("https_proxy", "HTTPS_PROXY");
    if (http == NULL)
      http = all;
    if (https == NULL)
      https = all;
    if (no_proxy == NULL)
      no_proxy = env("no_proxy", "NO_PROXY");
  }
  if (!valid_proxy(http) || !valid_proxy(https))
    return SALVO_EINVAL;
  if (dup_or_null(http, &engine->proxy_http) != 0 || dup_or_null(https, &engine->proxy_https) != 0 ||
      dup_or_null(no_proxy, &engine->no_proxy) != 0)
    return SALVO_ENOMEM;
  return 0;
}

/* The pinned addresses: each entry checked before libcurl sees it, so a
 * typo never turns into a DNS lookup or a silently ignored entry. The log
 * names the entry by its index, as for the other options, not its text. */
static int check_pins(const salvo_engine_opts_t *opts) {
  for (size_t i = 0; opts->resolve != NULL && opts->resolve[i] != NULL; i++) {
    if (!salvo__valid_resolve_entry(opts->resolve[i])) {
      log_new(opts, SALVO_LOG_ERROR, "opts.resolve[%zu] is not HOST:PORT:ADDR[,ADDR...] with a "
              "host name, a port 1-65535 and IP addresses (IPv6 in brackets)", i);
      return SALVO_EINVAL;
    }
  }
  for (size_t i = 0; opts->connect_to != NULL && opts->connect_to[i] != NULL; i++) {
    if (!salvo__valid_connect_to_entry(opts->connect_to[i])) {
      log_new(opts, SALVO_LOG_ERROR, "opts.connect_to[%zu] is not HOST:PORT:CONNECT_TO_HOST:"
              "CONNECT_TO_PORT with ports 1-65535 or empty (IPv6 in brackets)", i);
      return SALVO_EINVAL;
    }
  }
  return 0;
}

static int check_opts(const salvo_engine_opts_t *opts) {
  if (opts->max_in_flight == 0 || opts->max_connections < 0 || opts->max_host_connections < 0 ||
      opts->max_streams < 1 || opts->http_version < SALVO_HTTP_AUTO ||
      opts->http_version > SALVO_HTTP_2 || opts->max_body_size == 0 || opts->max_header_size == 0)
    return SALVO_EINVAL;
  if (opts->ca_file != NULL && access(opts->ca_file, R_OK) != 0)
    return SALVO_EINVAL;
  if (opts->user_agent != NULL && !salvo__valid_header_value(opts->user_agent, strlen(opts->user_agent)))
    return SALVO_EINVAL;
  if (salvo__retry_policy_check(&opts->retry) != 0 || salvo__host_policy_check(&opts->hosts) != 0)
    return SALVO_EINVAL;
  if (opts->max_recv_speed > (uint64_t)INT64_MAX) /* libcurl's curl_off_t */
    return SALVO_EINVAL;
  if (opts->recv_buffer_size != 0 &&
      (opts->recv_buffer_size < (size_t)SALVO__RECV_BUFFER_MIN || opts->recv_buffer_size > 524288))
    return SALVO_EINVAL;
  return check_pins(opts);
}

/* The options kept by value, and the strings copied. */
static int copy_opts(salvo_engine_t *engine, const salvo_engine_opts_t *opts) {
  engine->max_in_flight = opts->max_in_flight;
  engine->max_body_size = opts->max_body_size;
  engine->max_header_size = opts->max_header_size;
  engine->follow_redirects = opts->follow_redirects != 0;
  engine->max_redirects = opts->max_redirects;
  engine->redirect_allow_downgrade = opts->redirect_allow_downgrade != 0;
  engine->accept_encoding = opts->accept_encoding != 0;
  engine->http_version = opts->http_version;
  engine->insecure = opts->insecure_skip_verify != 0;
  salvo_timeouts_init(&engine->timeouts); /* what SALVO_TIMEOUT_INHERIT takes here */
  salvo__timeouts_apply(&engine->timeouts, &opts->timeouts);
  engine->retry = opts->retry;
  engine->log_cb = opts->log_cb;
  engine->log_data = opts->log_data;
  engine->host_policy = opts->hosts;
  engine->host_event_cb = opts->host_event_cb;
  engine->host_event_data = opts->host_event_data;
  engine->max_hosts = opts->max_hosts;
  engine->max_streams = opts->max_streams;
  engine->max_recv_speed = opts->max_recv_speed;
  engine->recv_buffer = opts->recv_buffer_size ? (long)opts->recv_buffer_size : SALVO__RECV_BUFFER_MAX;
  if (opts->retry.seed != 0)
    engine->rng = opts->retry.seed;
  else
    fill_random(&engine->rng, sizeof(engine->rng));
  const curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);
  engine->h2c_supported = info->version_num >= 0x080000;
  int rc = copy_proxies(engine, opts);
  if (rc != 0)
    return rc;
  if (opts->ca_file != NULL && (engine->ca_file = strdup(opts->ca_file)) == NULL)
    return SALVO_ENOMEM;
  engine->user_agent = strdup(opts->user_agent != NULL ? opts->user_agent : "salvo/" SALVO_VERSION_STRING);
  return engine->user_agent != NULL ? 0 : SALVO_ENOMEM;
}

/* The lines sent on every request: User-Agent first, unless a default
 * header names it; a request header of the same name replaces either. */
static int build_default_headers(salvo_engine_t *engine, const char *const *lines) {
  int has_ua = 0;
  for (const char *const *h = lines; h != NULL && *h != NULL; h++)
    has_ua |= strncasecmp(*h, "User-Agent:", 11) == 0;
  if (!has_ua && engine->user_agent[0] != '\0') { /* "" sends none; any length check_opts() let through */
    char *line = salvo__header_line("User-Agent", 10, engine->user_agent, strlen(engine->user_agent));
    engine->default_headers = line != NULL ? curl_slist_append(NULL, line) : NULL;
    free(line);
    if (engine->default_headers == NULL)
      return SALVO_ENOMEM;
  }
  for (const char *const *h = lines; h != NULL && *h != NULL; h++) {
    const char *name, *value;
    size_t name_len, value_len;
    if (salvo__split_header_line(*h, &name, &name_len, &value, &value_len) != 0 ||
        salvo__header_reserved(name, name_len) != NULL || salvo__is_host_header(name, name_len))
      return SALVO_EINVAL;
    char *line = salvo__header_line(name, name_len, value, value_len);
    struct curl_slist *l = line ? curl_slist_append(engine->default_headers, line) : NULL;
    free(line);
    if (l == NULL)
      return SALVO_ENOMEM;
    engine->default_headers = l;
  }
  return 0;
}

/* A NULL-terminated list of checked entries as libcurl takes it. */
static int copy_list(const char *const *entries, struct curl_slist **out) {
  for (const char *const *e = entries; e != NULL && *e != NULL; e++) {
    struct curl_slist *l = curl_slist_append(*out, *e);
    if (l == NULL)
      return SALVO_ENOMEM;
    *out = l;
  }
  return 0;
}

/* The two multi handles and what their connections carry: admission
 * (host.c) never hands libcurl a transfer that would wait inside it for a
 * connection. */
static int init_lanes(salvo_engine_t *engine, const salvo_engine_opts_t *opts) {
  long h1_cap = opts->max_host_connections ? opts->max_host_connections : (long)opts->max_in_flight;
  long h2_cap = opts->max_host_connections ? opts->max_host_connections : 4;
  for (int i = 0; i < SALVO__LANES; i++) {
    salvo__lane_t *lane = &engine->lanes[i];
    lane->engine = engine;
    lane->host_conns = i == SALVO__LANE_H1 ? opts->max_host_connections : h2_cap;
    lane->max_conns = (size_t)opts->max_connections;
    salvo__list_init(&lane->parked);
    /* Levels past 4096 in flight share the top one (round robin there). */
    size_t levels = opts->max_in_flight < 4096 ? opts->max_in_flight + 1 : 4097;
    if (salvo__fair_init(&lane->ready, levels) != 0)
      return SALVO_ENOMEM;
    lane->multi = curl_multi_init();
    if (lane->multi == NULL)
      return SALVO_EINTERNAL;
    if (curl_multi_setopt(lane->multi, CURLMOPT_SOCKETFUNCTION, socket_cb) != CURLM_OK ||
        curl_multi_setopt(lane->multi, CURLMOPT_SOCKETDATA, lane) != CURLM_OK ||
        curl_multi_setopt(lane->multi, CURLMOPT_TIMERFUNCTION, salvo__lane_timer_cb) != CURLM_OK ||
        curl_multi_setopt(lane->multi, CURLMOPT_TIMERDATA, lane) != CURLM_OK ||
        curl_multi_setopt(lane->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                          i == SALVO__LANE_H1 ? h1_cap : h2_cap) != CURLM_OK ||
        curl_multi_setopt(lane->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, opts->max_connections) !=
            CURLM_OK ||
        curl_multi_setopt(lane->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, opts->max_streams) !=
            CURLM_OK ||
        curl_multi_setopt(lane->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX) != CURLM_OK)
      return SALVO_EINTERNAL;
  }
  return 0;
}

int salvo_engine_new(uv_loop_t *loop, const salvo_engine_opts_t *opts, salvo_engine_t **out) {
  salvo_engine_opts_t defaults; /* not static: engines are made on several threads */
  if (loop == NULL || out == NULL)
    return SALVO_EINVAL;
  if (opts == NULL) {
    salvo_engine_opts_init(&defaults);
    opts = &defaults;
  }
  int rc = check_opts(opts);
  if (rc != 0)
    return rc;
  /* Counted by libcurl: each call adds one, and salvo never cleans up, so
   * libcurl's global state stays for the life of the process. Thread-safe
   * only from 7.84, where libcurl says CURL_VERSION_THREADSAFE (salvo.h). */
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return SALVO_EINTERNAL;
  salvo_engine_t *engine = calloc(1, sizeof(*engine));
  if (engine == NULL)
    return SALVO_ENOMEM;
  engine->loop = loop;
  salvo__list_init(&engine->idle_hosts);
  salvo__list_init(&engine->unarmed);
  salvo__list_init(&engine->waiting);
  salvo__list_init(&engine->running);
  salvo__list_init(&engine->cancels);
  salvo__list_init(&engine->slot_cancels);
  salvo__list_init(&engine->sockets);
  if ((rc = copy_opts(engine, opts)) != 0 ||
      (rc = build_default_headers(engine, opts->default_headers)) != 0 ||
      (rc = copy_list(opts->resolve, &engine->resolve)) != 0 ||
      (rc = copy_list(opts->connect_to, &engine->connect_to)) != 0)
    goto fail;
  rc = SALVO_EINTERNAL;
  engine->no_share = curl_share_init();
  if (engine->no_share == NULL ||
      curl_share_setopt(engine->no_share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK ||
      (rc = init_lanes(engine, opts)) != 0 || (rc = salvo__inject_init(engine)) != 0)
    goto fail;
  /* uv_timer_init and uv_idle_init cannot fail (libuv 1.x returns 0). */
  for (int i = 0; i < SALVO__LANES; i++)
    uv_timer_init(loop, &engine->lanes[i].timer);
  uv_idle_init(loop, &engine->deferred);
  engine->live_handles = SALVO__LANES + 2; /* the lane timers, deferred, the injector's wake */
  engine->magic = SALVO__ENGINE_LIVE;
  if (engine->insecure)
    log_new(opts, SALVO_LOG_WARN, "TLS certificate verification is DISABLED for this engine; "
                                    "any server can impersonate any host");
  if (env("SSLKEYLOGFILE", NULL) != NULL) /* libcurl's OpenSSL backend honours it */
    log_new(opts, SALVO_LOG_WARN, "SSLKEYLOGFILE is set: libcurl writes the TLS secrets of "
                                    "every connection to that file");
  *out = engine;
  return 0;

fail:
  for (int i = 0; i < SALVO__LANES; i++)
    curl_multi_cleanup(engine->lanes[i].multi); /* NULL is a no-op */
  engine_free(engine);
  return rc;
}

void salvo__engine_handle_closed(salvo_engine_t *engine) {
  engine->live_handles--;
  if (engine->teardown_done && engine->live_handles == 0) {
    /* from here on it must not be used (salvo.h) */
    __atomic_store_n(&engine->magic, SALVO__ENGINE_DEAD, __ATOMIC_RELAXED);
    salvo_engine_close_cb cb = engine->close_cb;
    void *data = engine->close_data;
    if (cb != NULL)
      cb(engine, data); /* nothing of the engine is usable any more but its address */
    engine_free(engine);
  }
}

static void engine_handle_closed_cb(uv_handle_t *handle) {
  salvo__engine_handle_closed(handle->data);
}

/* Cancels everything, then tears down once nothing is left. Runs from the
 * loop (deferred), never inside a libcurl callback. */
static void maybe_finish_close(salvo_engine_t *engine) {
  if (engine->teardown_done)
    return;
  /* Done callbacks may cancel or submit (submit is refused while closing):
   * take the head each time rather than iterating. */
  while (!salvo__list_empty(&engine->running)) {
    salvo_request_t *req = SALVO__CONTAINER_OF(engine->running.next, salvo_request_t, node);
    salvo__request_cancel_now(req);
  }
  for (size_t i = 0; i < engine->nhosts; i++) {
    salvo__list_t *head;
    while ((head = salvo__host_queue_head(engine->hosts[i])) != NULL)
      salvo__request_cancel_now(SALVO__CONTAINER_OF(head, salvo_request_t, node));
  }
  while (!salvo__list_empty(&engine->waiting)) {
    salvo_request_t *req = SALVO__CONTAINER_OF(engine->waiting.next, salvo_request_t, node);
    salvo__request_cancel_now(req);
  }
  salvo__inject_teardown(engine); /* handed over from other threads, not yet taken */
  engine->teardown_done = 1;

  engine->multi_busy = 1;
  for (int i = 0; i < SALVO__LANES; i++) {
    curl_multi_cleanup(engine->lanes[i].multi); /* may report CURL_POLL_REMOVE */
    engine->lanes[i].multi = NULL;
  }
  engine->multi_busy = 0;
  while (!salvo__list_empty(&engine->sockets))
    socket_close(SALVO__CONTAINER_OF(engine->sockets.next, salvo__socket_t, node));

  salvo__slots_free(engine);
  for (int i = 0; i < SALVO__LANES; i++) {
    engine->lanes[i].timer.data = engine;
    uv_close((uv_handle_t *)&engine->lanes[i].timer, engine_handle_closed_cb);
  }
  engine->deferred.data = engine;
  uv_close((uv_handle_t *)&engine->deferred, engine_handle_closed_cb);
  salvo__hosts_free(engine);
}

void salvo_engine_close(salvo_engine_t *engine, salvo_engine_close_cb close_cb, void *user_data) {
  if (engine == NULL || !salvo__engine_live(engine) || engine->closing)
    return;
  SALVO__ASSERT_LOOP_THREAD(engine);
  salvo__inject_close(engine); /* first: nothing more comes from other threads */
  __atomic_store_n(&engine->closing, 1, __ATOMIC_RELAXED); /* salvo_request_new() reads it */
  engine->close_cb = close_cb;
  engine->close_data = user_data;
  /* Always from the loop: close may be called inside a libcurl callback
   * (a data callback) or before the loop runs. */
  salvo__engine_schedule(engine);
}

void salvo_engine_stats(const salvo_engine_t *engine, salvo_engine_stats_t *stats) {
  if (stats == NULL)
    return;
  if (engine == NULL || !salvo__engine_live(engine)) {
    memset(stats, 0, sizeof(*stats));
    return;
  }
  SALVO__ASSERT_LOOP_THREAD(engine);
  *stats = engine->stats;
  stats->queued = salvo__hosts_queued(engine);
  stats->waiting = 0;
  for (const salvo__list_t *n = engine->waiting.next; n != &engine->waiting; n = n->next)
    stats->waiting++;
  stats->hosts = engine->nhosts;
  stats->hosts_evicted = engine->hosts_evicted;
  stats->p50_us = salvo__lat_pct(&engine->latency, 0.50);
  stats->p90_us = salvo__lat_pct(&engine->latency, 0.90);
  stats->p99_us = salvo__lat_pct(&engine->latency, 0.99);
  stats->max_us = engine->latency.max;
}

int salvo_engine_get_timeouts(const salvo_engine_t *engine, salvo_timeouts_t *out) {
  if (engine == NULL || out == NULL || !salvo__engine_live(engine))
    return SALVO_EINVAL;
  *out = engine->timeouts;
  return 0;
}

int salvo_engine_get_retry_policy(const salvo_engine_t *engine, salvo_retry_policy_t *out) {
  if (engine == NULL || out == NULL || !salvo__engine_live(engine))
    return SALVO_EINVAL;
  *out = engine->retry;
  return 0;
}
