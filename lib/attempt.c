/* One attempt: easy handle setup, transfer callbacks, the attempt's own
 * timers (idle and attempt timeout) and the classification of its outcome. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* Bodies at least this large are uploaded with the progress callback on, so
 * upload progress counts as activity for the idle timeout. Smaller bodies fit
 * in socket buffers and would only pay for the callback. */
#define SALVO__UPLOAD_PROGRESS_MIN (64 * 1024)

int salvo__http_version(long curl_version) {
  return curl_version == CURL_HTTP_VERSION_2_0   ? 20
         : curl_version == CURL_HTTP_VERSION_1_1 ? 11
         : curl_version == CURL_HTTP_VERSION_1_0 ? 10
                                                 : 0;
}

salvo__outcome_t salvo__classify(CURLcode rc, long os_errno, int stop_reason, int sent,
                                 int64_t pretransfer_us) {
  salvo__outcome_t out;
  out.reached = sent || pretransfer_us > 0;

  if (stop_reason != 0) {
    /* salvo stopped it: the attempt/idle timer, a body cap, a callback, a
     * cancel or the deadline. Reached the server iff the request was sent. */
    out.error = stop_reason;
    return out;
  }

  switch (rc) {
  case CURLE_OK:
    out.error = 0;
    out.reached = 1;
    return out;
  /* Never reached the server: safe to retry whatever the method. */
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    out.error = SALVO_EDNS;
    out.reached = 0;
    return out;
  case CURLE_COULDNT_CONNECT:
    /* socket() or connect() failing for want of a local resource is not
     * the host's doing: its own class, never a host failure. */
    out.error = os_errno == EMFILE || os_errno == ENFILE || os_errno == ENOBUFS ||
                        os_errno == ENOMEM || os_errno == EADDRNOTAVAIL
                    ? SALVO_ELOCAL
                : os_errno == ECONNREFUSED || os_errno == 0 ? SALVO_ECONNREFUSED
                                                            : SALVO_ECONNECT;
    out.reached = 0;
    return out;
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_ENGINE_INITFAILED:
    out.error = SALVO_ETLS;
    out.reached = 0;
    return out;
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_CRL_BADFILE:
    out.error = SALVO_ETLSVERIFY;
    out.reached = 0;
    return out;
  case CURLE_OPERATION_TIMEDOUT:
    /* CURLOPT_CONNECTTIMEOUT_MS is the only libcurl timeout salvo sets. */
    if (pretransfer_us <= 0 && !sent) {
      out.error = SALVO_ECONNTIMEOUT;
      out.reached = 0;
    } else {
      out.error = SALVO_EATTEMPT;
    }
    return out;
  /* Reached the server, then failed. */
  case CURLE_GOT_NOTHING:
    out.error = SALVO_ECLOSED;
    out.reached = 1;
    return out;
  case CURLE_SEND_ERROR: /* part of the request may be on the wire: treat as sent */
  case CURLE_RECV_ERROR:
    out.error = SALVO_ERESET;
    out.reached = 1;
    return out;
  case CURLE_PARTIAL_FILE:
    out.error = SALVO_ETRUNCATED;
    out.reached = 1;
    return out;
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
    out.error = SALVO_EHTTP2;
    out.reached = 1;
    return out;
  case CURLE_FILESIZE_EXCEEDED:
    out.error = SALVO_EBODYLIMIT;
    out.reached = 1;
    return out;
  case CURLE_WEIRD_SERVER_REPLY:
  case CURLE_BAD_CONTENT_ENCODING:
  case CURLE_UNSUPPORTED_PROTOCOL: /* HTTP/0.9 reply: salvo checks schemes itself */
  case CURLE_RANGE_ERROR:
  case CURLE_TOO_MANY_REDIRECTS:
    out.error = SALVO_EPROTO;
    out.reached = 1;
    return out;
  case CURLE_URL_MALFORMAT:
  case CURLE_BAD_FUNCTION_ARGUMENT:
  case CURLE_UNKNOWN_OPTION:
    out.error = SALVO_EINVAL;
    out.reached = 0;
    return out;
  case CURLE_OUT_OF_MEMORY:
    out.error = SALVO_ENOMEM;
    return out;
  default:
    out.error = SALVO_EINTERNAL;
    return out;
  }
}

/* When the attempt is idle for too long: its last activity plus the idle
 * timeout, plus, under a receive cap, the longest hold libcurl makes between
 * its reads (salvo__recv_pause_ms()), which is no sign of a stalled server. */
static uint64_t idle_due(const salvo__slot_t *slot) {
  const salvo_request_t *req = slot->req;
  uint64_t hold = slot->recv_speed ? salvo__recv_pause_ms(slot->recv_speed, slot->recv_buffer) : 0;
  return salvo__add_ms(salvo__add_ms(slot->last_activity_ms, req->timeouts.idle_ms), hold);
}

/* A capped attempt with an HTTP/2 response (slot->kick): when libcurl 7.88
 * ends a hold under the cap, it waits for the socket to become readable,
 * but the rest of the body may already be read off the socket into its
 * HTTP/2 layer, and then nothing ever wakes the transfer (measured: 394,240
 * of 400,000 bytes, then the idle timeout). When such an attempt has been
 * silent for SALVO__KICK_MS, and again each SALVO__KICK_MS, its timer has
 * libcurl look at it: a pause of its sending and a resume, which change
 * nothing but run the transfer (from libcurl's timer, through the loop) with
 * its connection marked readable. Outside libcurl's callbacks only. */
#define SALVO__KICK_MS 200
static void kick(salvo__slot_t *slot) {
  if (curl_easy_pause(slot->easy, CURLPAUSE_SEND) == CURLE_OK)
    curl_easy_pause(slot->easy, CURLPAUSE_CONT);
}

static void slot_timer_cb(uv_timer_t *timer) {
  salvo__slot_t *slot = SALVO__CONTAINER_OF(timer, salvo__slot_t, timer);
  salvo_request_t *req = slot->req;
  slot->timer_due_ms = 0;
  if (req == NULL)
    return;
  uint64_t now = uv_now(slot->engine->loop);
  salvo__hedge_check(slot, now);
  int reason = 0;
  if (req->deadline_at_ms && now >= req->deadline_at_ms)
    reason = SALVO_EDEADLINE;
  else if (req->timeouts.attempt_ms &&
           now >= salvo__add_ms(slot->started_ms, req->timeouts.attempt_ms))
    reason = SALVO_EATTEMPT;
  else if (slot->sent && req->timeouts.idle_ms && now >= idle_due(slot))
    reason = SALVO_EIDLE;
  if (reason == 0) {
    if (slot->kick && now >= salvo__add_ms(slot->last_activity_ms, SALVO__KICK_MS))
      kick(slot);
    salvo__attempt_arm_timer(slot); /* activity moved the idle expiry on */
    return;
  }
  /* A uv timer callback is outside every libcurl callback: removing the
   * handle here is allowed. HTTP/1.1 closes the connection, HTTP/2 resets
   * only this stream. */
  slot->stop_reason = reason;
  salvo_engine_t *engine = slot->engine;
  salvo__slot_finish(slot, CURLE_OK);
  salvo__engine_pump(engine);
}

/* Arms the slot timer for the earliest of the attempt deadline and the idle
 * expiry. Activity only records a time stamp; the timer re-checks it when it
 * fires, so no timer is touched per byte. */
void salvo__attempt_arm_timer(salvo__slot_t *slot) {
  salvo_request_t *req = slot->req;
  uint64_t due = req->deadline_at_ms; /* the request's deadline, watched here while it runs */
  if (req->hedge.at_ms != 0 && slot == req->slot && (due == 0 || req->hedge.at_ms < due))
    due = req->hedge.at_ms;
  uint64_t attempt_due = salvo__add_ms(slot->started_ms, req->timeouts.attempt_ms);
  if (req->timeouts.attempt_ms && (due == 0 || attempt_due < due))
    due = attempt_due;
  uint64_t now = uv_now(slot->engine->loop);
  if (req->timeouts.idle_ms) {
    /* The idle clock runs once the request is sent. Before that, the
     * attempt's start stands in for the last activity: the expiry is then
     * early, never late, and sending does not have to move the timer (one
     * uv_timer_start per attempt). An early firing re-checks and re-arms. */
    uint64_t idle_at = idle_due(slot);
    if ((slot->sent || idle_at > now) && (due == 0 || idle_at < due))
      due = idle_at;
  }
  if (slot->kick) {
    uint64_t kick = salvo__add_ms(slot->last_activity_ms, SALVO__KICK_MS);
    if (kick <= now)
      kick = now + SALVO__KICK_MS;
    if (due == 0 || kick < due)
      due = kick;
  }
  if (due == 0 || (slot->timer_due_ms != 0 && slot->timer_due_ms <= due))
    return; /* nothing to watch, or already armed early enough */
  slot->timer_due_ms = due;
  uv_timer_start(&slot->timer, slot_timer_cb, due > now ? due - now : 0, 0);
}

static inline void touch(salvo__slot_t *slot) {
  slot->last_activity_ms = uv_now(slot->engine->loop);
}

/* libcurl sends a request again by itself, within one attempt, when a reused
 * connection died before any response byte (HTTP/1.1 and HTTP/2) or an
 * HTTP/2 stream was refused (REFUSED_STREAM, GOAWAY). salvo decides:
 * - the server's TCP acknowledged nothing of the last send (conn.c): its
 *   application cannot have read it, so sending again is safe for any method
 *   and puts no load on it; allowed (libcurl itself stops after 5);
 * - a kept-alive HTTP/1.x connection the server closed under the send (a
 *   stale connection, not a failing server): allowed for an idempotent
 *   request, without spending retry budget;
 * - else (a refused stream, a dead HTTP/2 connection) once per attempt, for
 *   an idempotent request, counted against the host's retry budget;
 * - else the attempt ends with what the last send got: closed without a
 *   response (a refused HTTP/2 stream: http2_error). */
static int allow_resend(salvo__slot_t *slot) {
  salvo_request_t *req = slot->req;
  if (slot->unread)
    return 1;
  /* a kept-alive connection the server closed under the send: a stale
   * connection, not a failing server, so no retry budget is spent on it */
  int stale = slot->conn_closed;
  slot->stop_reason = !stale && salvo__host_speaks_h2(req->host, req->lane) ? SALVO_EHTTP2
                                                                           : SALVO_ECLOSED;
  if (!req->idempotent)
    return 0;
  if (stale) { /* each pooled connection may have died the same way: libcurl stops after 5 */
    slot->stop_reason = 0;
    return 1;
  }
  if (slot->resent_read || !salvo__host_allow_resend(req->host, uv_now(slot->engine->loop)))
    return 0;
  slot->resent_read = 1;
  slot->stop_reason = 0;
  return 1;
}

static int prereq_cb(void *clientp, char *primary_ip, char *local_ip, int primary_port,
                     int local_port) {
  (void)local_ip;
  salvo__slot_t *slot = clientp;
  if (slot->sends > 0) {
    slot->dirty = 1; /* libcurl counted a reconnect on this handle */
    if (!allow_resend(slot))
      return CURL_PREREQFUNC_ABORT;
    slot->engine->stats.resends++;
    salvo__host_count_resend(slot->req->host);
  }
  slot->sends++;
  slot->local_port = local_port;
  slot->peer_port = primary_port;
  snprintf(slot->peer_ip, sizeof(slot->peer_ip), "%s", primary_ip != NULL ? primary_ip : "");
  slot->unread = 0;
  slot->conn_closed = 0;
  /* The connection is up and the request is about to be written: from here
   * the request may reach the server, and the idle clock runs. */
  slot->sent = 1;
  touch(slot);
  salvo__attempt_arm_timer(slot);
  return CURL_PREREQFUNC_OK;
}

const char salvo__header_cap_detail[] = "response headers larger than max_header_size";

static size_t header_cb(char *data, size_t size, size_t n, void *userdata) {
  salvo__slot_t *slot = userdata;
  touch(slot);
  slot->header_bytes += size * n;
  if (slot->header_bytes > slot->engine->max_header_size) {
    slot->stop_reason = SALVO_EPROTO;
    slot->proto_detail = salvo__header_cap_detail;
    return 0;
  }
  if (salvo__content_length_merge(&slot->content_length, data, size * n) != 0) {
    slot->stop_reason = SALVO_EPROTO;
    slot->proto_detail = "Content-Length values that disagree (RFC 9112 6.3)";
    return 0;
  }
  if (!slot->responded) {
    slot->responded = 1;
    salvo_request_t *req = slot->req;
    /* The first answer tells the host's protocol (ALPN decides over TLS):
     * an HTTP/2 host may have more in flight from now on, not from when
     * this attempt ends (it may stream, or stall, for long). */
    long version = 0;
    curl_easy_getinfo(slot->easy, CURLINFO_HTTP_VERSION, &version);
    if (salvo__host_saw_version(req->host, salvo__http_version(version)))
      salvo__engine_schedule(slot->engine); /* the pump runs from the loop */
    if (slot->recv_speed != 0 && version == CURL_HTTP_VERSION_2_0) {
      slot->kick = 1;
      salvo__attempt_arm_timer(slot); /* a uv call: allowed inside libcurl */
    }
    int stop = salvo__hedge_on_response(slot); /* two attempts run: the first response wins */
    if (stop != 0) {
      slot->stop_reason = stop;
      return 0; /* short count: libcurl ends this transfer */
    }
  }
  /* The blank line ends a header block: an interim response's (1xx), then
   * the response's own; what comes after the body is trailers. */
  if (!slot->head_done && (size * n == 2 || size * n == 1) && (data[0] == '\r' || data[0] == '\n')) {
    const char *why = NULL;
    int head = salvo__request_head(slot->req, slot, &why);
    if (head < 0) {
      slot->stop_reason = head;
      slot->stop_detail = why;
      return 0;
    }
    slot->head_done = head;
  }
  return size * n;
}

/* The body reader's bytes, as libcurl sends them. */
static size_t read_cb(char *buf, size_t size, size_t n, void *userdata) {
  salvo__slot_t *slot = userdata;
  touch(slot);
  size_t len = 0;
  const char *why = NULL;
  int stop = salvo__request_body_read(slot->req, buf, size * n, &len, &why);
  if (stop != 0) {
    slot->stop_reason = stop;
    slot->stop_detail = why;
    return CURL_READFUNC_ABORT;
  }
  return len;
}

/* libcurl sends the body again within an attempt (a kept-alive connection
 * that died under it): back to its start, or the attempt ends here. */
static int seek_cb(void *userdata, curl_off_t offset, int origin) {
  salvo__slot_t *slot = userdata;
  if (offset == 0 && origin == SEEK_SET && salvo__request_body_rewind(slot->req) == 0)
    return CURL_SEEKFUNC_OK;
  slot->stop_reason = SALVO_ECLOSED;
  slot->stop_detail = "the connection closed under the request, and its body cannot be rewound "
                      "to send it again";
  return CURL_SEEKFUNC_CANTSEEK;
}

static size_t write_cb(char *data, size_t size, size_t n, void *userdata) {
  salvo__slot_t *slot = userdata;
  size_t len = size * n;
  touch(slot);
  int stop = salvo__request_body_bytes(slot->req, data, len);
  if (stop != 0) {
    slot->stop_reason = stop;
    slot->stop_detail = stop == SALVO_EABORTED ? "stopped by the data callback" : NULL;
    return 0; /* short count: libcurl ends the transfer with CURLE_WRITE_ERROR */
  }
  return len;
}

static int xferinfo_cb(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
  (void)dltotal;
  (void)dlnow;
  (void)ultotal;
  salvo__slot_t *slot = clientp;
  if ((uint64_t)ulnow != slot->upload_seen) {
    slot->upload_seen = (uint64_t)ulnow;
    touch(slot);
  }
  return 0;
}

/* libcurl's own socket() failure leaves no errno behind (7.88 returns
 * CURLE_COULDNT_CONNECT and nothing else), which made "out of file
 * descriptors" look like "connection refused". */
static curl_socket_t open_socket_cb(void *clientp, curlsocktype purpose,
                                    struct curl_sockaddr *address) {
  (void)purpose;
  salvo__slot_t *slot = clientp;
  curl_socket_t fd = socket(address->family, address->socktype, address->protocol);
  if (fd == CURL_SOCKET_BAD)
    slot->local_errno = errno;
  return fd;
}

#define SETOPT(opt, val)                                      \
  do {                                                        \
    if (curl_easy_setopt(easy, opt, val) != CURLE_OK)         \
      return SALVO_EINTERNAL;                                 \
  } while (0)

/* Options every transfer of this engine shares: set once per pooled easy
 * handle. curl_easy_reset() and setting them again cost ~5k instructions per
 * request (callgrind). */
static int setup_once(salvo__slot_t *slot) {
  salvo_engine_t *engine = slot->engine;
  CURL *easy = slot->easy;
  SETOPT(CURLOPT_PRIVATE, slot);
  SETOPT(CURLOPT_NOSIGNAL, 1L);
  SETOPT(CURLOPT_ERRORBUFFER, slot->errbuf);
  SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
  SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
  SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
  SETOPT(CURLOPT_WRITEDATA, slot);
  SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
  SETOPT(CURLOPT_HEADERDATA, slot);
  SETOPT(CURLOPT_PREREQFUNCTION, prereq_cb);
  SETOPT(CURLOPT_PREREQDATA, slot);
  /* used only by requests with a body reader: the others hand libcurl their
   * body in memory (CURLOPT_POSTFIELDS), which it sends again by itself */
  SETOPT(CURLOPT_READFUNCTION, read_cb);
  SETOPT(CURLOPT_READDATA, slot);
  SETOPT(CURLOPT_SEEKFUNCTION, seek_cb);
  SETOPT(CURLOPT_SEEKDATA, slot);
  /* a proxy's answer to CONNECT is not the response: its headers never reach
   * the header callback (nor the head callback, nor Content-Length checks) */
  SETOPT(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  /* The proxy is salvo's choice, never the environment's: "" switches
   * libcurl's own reading of http_proxy, ALL_PROXY and NO_PROXY off. */
  SETOPT(CURLOPT_NOPROXY, "");
  if (engine->proxy_http == NULL && engine->proxy_https == NULL)
    SETOPT(CURLOPT_PROXY, "");
  SETOPT(CURLOPT_OPENSOCKETFUNCTION, open_socket_cb);
  SETOPT(CURLOPT_OPENSOCKETDATA, slot);
  SETOPT(CURLOPT_CLOSESOCKETFUNCTION, salvo__conn_close_cb);
  if (slot->share == NULL) { /* a new handle: never without a share (see engine->no_share) */
    SETOPT(CURLOPT_SHARE, slot->engine->no_share);
    slot->share = slot->engine->no_share;
  }
  SETOPT(CURLOPT_CLOSESOCKETDATA, engine);
  SETOPT(CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
  SETOPT(CURLOPT_XFERINFODATA, slot);
  SETOPT(CURLOPT_SSL_VERIFYPEER, engine->insecure ? 0L : 1L);
  SETOPT(CURLOPT_SSL_VERIFYHOST, engine->insecure ? 0L : 2L);
  if (engine->ca_file != NULL)
    SETOPT(CURLOPT_CAINFO, engine->ca_file);
  /* Kept by the handle from transfer to transfer, cleared by a reset */
  if (engine->connect_to != NULL)
    SETOPT(CURLOPT_CONNECT_TO, engine->connect_to);
  /* libcurl's defaults on a new or reset handle: */
  slot->accept_encoding = 0;           /* none */
  slot->recv_speed = 0;                /* no cap */
  slot->recv_buffer = SALVO__RECV_BUFFER_MAX; /* 16 KB reads */
  slot->configured = 1;
  return 0;
}

static int goes_direct(const salvo_engine_t *engine, const salvo_request_t *req) {
  char *host = NULL;
  int direct = 0;
  if (curl_url_get(req->curlu, CURLUPART_HOST, &host, 0) == CURLUE_OK)
    direct = salvo__no_proxy_match(engine->no_proxy, host);
  curl_free(host);
  return direct;
}

/* A slot's per-attempt state, fresh. */
static void begin(salvo__slot_t *slot, salvo_request_t *req, unsigned attempt_no) {
  slot->req = req;
  slot->attempt_no = attempt_no;
  slot->unread = 0;
  slot->resent_read = 0;
  slot->conn_closed = 0;
  slot->session_ended = 0;
  slot->local_errno = 0;
  slot->content_length = -1;
  slot->proto_detail = NULL;
  slot->local_port = 0;
  slot->sent = 0;
  slot->responded = 0;
  slot->kick = 0;
  slot->head_done = 0;
  slot->stop_detail = NULL;
  slot->header_bytes = 0;
  slot->sends = 0;
  slot->stop_reason = 0;
  slot->upload_seen = 0;
  slot->timer_due_ms = 0;
  slot->errbuf[0] = '\0';
  slot->started_ms = uv_now(slot->engine->loop);
  slot->last_activity_ms = slot->started_ms;
  slot->started_ns = uv_hrtime();
}

/* CURLOPT_CONNECTTIMEOUT_MS for a kept connect timeout (0 = off). libcurl
 * reads 0 as its default of 300 s, so off is the longest salvo keeps; a
 * 32-bit long stops at LONG_MAX. */
static long connect_timeout(uint64_t ms) {
  if (ms == 0)
    ms = SALVO_TIMEOUT_MAX_MS;
  return ms < (uint64_t)LONG_MAX ? (long)ms : LONG_MAX;
}

/* Where the request goes and how: its URL, TLS sessions, proxy, connection
 * and protocol. */
static int set_route(salvo__slot_t *slot, const salvo_request_t *req) {
  salvo_engine_t *engine = slot->engine;
  CURL *easy = slot->easy;
  /* TLS sessions are the host's, not the handle's: a handle resumes a
   * session another one made, so a crawl makes one full handshake per host,
   * not one per pooled handle per host. One share per host: libcurl 7.88
   * keeps 8 sessions in a share, too few for many hosts at once. A handle
   * that carries plain http holds the engine's empty share, so a forgotten
   * host's share is held only by idle handles (salvo__slots_detach_share). */
  CURLSH *share = req->is_https ? salvo__host_share(req->host) : NULL;
  if (share == NULL)
    share = engine->no_share;
  if (slot->share != share) {
    SETOPT(CURLOPT_SHARE, share);
    slot->share = share;
  }
  /* The URL salvo_request_new() parsed: libcurl copies it rather than
   * parsing the string again (~5k instructions per request). */
  SETOPT(CURLOPT_CURLU, req->curlu);
  /* Every attempt: libcurl loads the entries into the DNS cache of the multi
   * handle the transfer runs on once per setopt, and a handle moves between
   * the two lanes' multi handles, which have a cache each. */
  if (engine->resolve != NULL)
    SETOPT(CURLOPT_RESOLVE, engine->resolve);
  SETOPT(CURLOPT_CONNECTTIMEOUT_MS, connect_timeout(req->timeouts.connect_ms));
  const char *proxy = req->is_https ? engine->proxy_https : engine->proxy_http;
  if (proxy != NULL && engine->no_proxy != NULL && goes_direct(engine, req))
    proxy = NULL;
  slot->via_proxy = proxy != NULL;
  if (engine->proxy_http != NULL || engine->proxy_https != NULL)
    SETOPT(CURLOPT_PROXY, proxy != NULL ? proxy : ""); /* else set once: setup_once() */
  /* A host that closes kept-alive connections without saying so may close
   * one just as a request goes out on it; a request that may not be sent
   * twice takes a fresh one there. */
  SETOPT(CURLOPT_FRESH_CONNECT,
         !req->idempotent && salvo__host_wants_fresh(req->host, slot->started_ms) ? 1L : 0L);
  long version = CURL_HTTP_VERSION_1_1;
  if (engine->http_version == SALVO_HTTP_AUTO && req->is_https)
    version = CURL_HTTP_VERSION_2TLS;
  else if (engine->http_version == SALVO_HTTP_2)
    version = req->is_https ? CURL_HTTP_VERSION_2_0 : CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
  SETOPT(CURLOPT_HTTP_VERSION, version);
  /* paired with the per-host connection cap, see engine.c */
  SETOPT(CURLOPT_PIPEWAIT, version != CURL_HTTP_VERSION_1_1 ? 1L : 0L);
  return 0;
}

/* The request's receive cap, or none: set whenever it differs from what the
 * handle has, so one request's cap never stays for the next. */
static int set_recv_speed(salvo__slot_t *slot, const salvo_request_t *req) {
  CURL *easy = slot->easy;
  if (slot->recv_speed != req->max_recv_speed) {
    SETOPT(CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)req->max_recv_speed);
    slot->recv_speed = req->max_recv_speed;
  }
  /* libcurl 7.88 refuses a new size while the handle still holds its read
   * buffer (after an HTTP/2 transfer whose connection others still use);
   * the cap holds either way, in coarser bursts, and the idle timeout
   * allows for the size the handle has (idle_due()). */
  long buffer = salvo__recv_buffer_size(req->max_recv_speed, req->engine->recv_buffer);
  if (slot->recv_buffer != buffer && curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, buffer) == CURLE_OK)
    slot->recv_buffer = buffer;
  return 0;
}

/* What is sent and what is accepted back: headers, method, body, body cap. */
static int set_message(salvo__slot_t *slot, const salvo_request_t *req) {
  CURL *easy = slot->easy;
  /* No CURLOPT_MAXFILESIZE: libcurl would fail a Content-Length over the cap
   * while the headers are still coming, before the head callback.
   * salvo__request_head() checks it at the end of the header block, and
   * salvo__request_body_bytes() caps the (decoded) bytes. */
  if (slot->accept_encoding != req->accept_encoding) { /* set only when it changes: the
                                                          string costs libcurl a copy */
    SETOPT(CURLOPT_ACCEPT_ENCODING, req->accept_encoding ? "" : NULL);
    slot->accept_encoding = req->accept_encoding;
  }
  /* User-Agent travels in the header list: CURLOPT_USERAGENT makes libcurl
   * format it anew for every request (~6k instructions, measured). */
  SETOPT(CURLOPT_HTTPHEADER, salvo__headers_list(req));
  /* The method from scratch: GET, then what this request wants. */
  SETOPT(CURLOPT_HTTPGET, 1L);
  SETOPT(CURLOPT_CUSTOMREQUEST, NULL);
  if (req->is_head)
    SETOPT(CURLOPT_NOBODY, 1L);
  else if (!req->is_get || req->has_body)
    SETOPT(CURLOPT_CUSTOMREQUEST, req->method);
  if (req->has_reader) {
    /* no fields: libcurl reads the body through read_cb, chunked over
     * HTTP/1.1 when its length is unknown (-1) */
    SETOPT(CURLOPT_POSTFIELDS, NULL);
    SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->reader.length);
  } else if (req->has_body) {
    SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_size);
    SETOPT(CURLOPT_POSTFIELDS, req->body != NULL ? req->body : "");
  }
  SETOPT(CURLOPT_NOPROGRESS, req->has_reader || (req->has_body &&
                                                 req->body_size >= SALVO__UPLOAD_PROGRESS_MIN)
                                 ? 0L
                                 : 1L);
  return 0;
}

/* Everything a request may change is set on every attempt, "off" values
 * included, so nothing of the previous request on this handle survives. */
int salvo__attempt_setup(salvo__slot_t *slot, salvo_request_t *req, unsigned attempt_no) {
  if (slot->dirty) {
    /* libcurl keeps a count of reconnects per handle and fails the sixth
     * ("Connection died, tried 5 times") however long ago the others were;
     * only curl_easy_reset() clears it. Reset a handle that made one, or
     * whose last transfer failed (a reconnect may have failed with it). */
    curl_easy_reset(slot->easy);
    slot->configured = 0;
    slot->dirty = 0;
    slot->share = SALVO__SHARE_UNKNOWN; /* set it again below, whatever it was */
  }
  if (!slot->configured && setup_once(slot) != 0)
    return SALVO_EINTERNAL;
  begin(slot, req, attempt_no);
  return set_route(slot, req) == 0 && set_message(slot, req) == 0 &&
                 set_recv_speed(slot, req) == 0
             ? 0
             : SALVO_EINTERNAL;
}

void salvo__attempt_stop(salvo__slot_t *slot, int reason) { slot->stop_reason = reason; }

void salvo__attempt_stop_later(salvo__slot_t *slot, int reason) {
  slot->stop_reason = reason;
  if (!salvo__list_linked(&slot->cancel_node))
    salvo__list_push_back(&slot->engine->slot_cancels, &slot->cancel_node);
  salvo__engine_schedule(slot->engine);
}

const char *salvo__attempt_header(salvo__slot_t *slot, const char *name) {
  struct curl_header *h = NULL;
  return curl_easy_header(slot->easy, name, 0, CURLH_HEADER, -1, &h) == CURLHE_OK ? h->value : NULL;
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
static salvo__outcome_t outcome_of(salvo__slot_t *slot, CURLcode rc, long os_errno,
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

static uint64_t us_between(curl_off_t from, curl_off_t to) {
  return to > from ? (uint64_t)(to - from) : 0;
}

static int64_t wall_clock_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* RateLimit-Reset / X-RateLimit-Reset: seconds from now, or a Unix time
 * when above the policy's bound. -1 when absent or not a number. */
static int64_t reset_ms(salvo__slot_t *slot, int64_t epoch_above, int64_t now_unix_ms) {
  static const char *const names[] = {"RateLimit-Reset", "X-RateLimit-Reset"};
  for (int i = 0; i < 2; i++) {
    const char *v = salvo__attempt_header(slot, names[i]);
    int64_t ms = v != NULL ? salvo__reset_parse(v, epoch_above, now_unix_ms) : -1;
    if (ms >= 0)
      return ms;
  }
  return -1;
}

/* The words for the result: salvo's reason, or libcurl's. */
static void describe(const salvo__slot_t *slot, CURLcode rc, int error, char *detail, size_t cap) {
  if (slot->proto_detail == salvo__header_cap_detail)
    snprintf(detail, cap, "%s (%zu bytes)", slot->proto_detail, slot->engine->max_header_size);
  else if (error == SALVO_EPROTO && slot->proto_detail != NULL && slot->stop_reason == 0 &&
           slot->errbuf[0] != '\0') /* libcurl ended it: its own words follow; when salvo did,
                                        they would only say "Failed writing header" */
    snprintf(detail, cap, "%s: %.160s", slot->proto_detail, slot->errbuf);
  else if (error == SALVO_EPROTO && slot->proto_detail != NULL)
    snprintf(detail, cap, "%s", slot->proto_detail);
  else if (error != 0 && slot->stop_reason == 0 && slot->errbuf[0] != '\0')
    snprintf(detail, cap, "%s", slot->errbuf);
  else if (error != 0 && slot->stop_reason == 0)
    snprintf(detail, cap, "%s", curl_easy_strerror(rc));
  else if (error != 0 && slot->stop_detail != NULL)
    snprintf(detail, cap, "%s", slot->stop_detail);
  else
    detail[0] = '\0';
}

void salvo__attempt_end(salvo__slot_t *slot, CURLcode rc, salvo__attempt_end_t *end, char *detail,
                        size_t cap) {
  CURL *easy = slot->easy;
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

  /* A short write count makes libcurl report CURLE_WRITE_ERROR; the real
   * reason is the one salvo recorded. */
  salvo__outcome_t outcome = outcome_of(slot, rc, os_errno, pretransfer);
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
  end->outcome = outcome;
  end->status = status;
  end->http_version = salvo__http_version(version);
  end->connects = connects;
  end->timings.dns_us = (uint64_t)(namelookup > 0 ? namelookup : 0);
  end->timings.connect_us = connect > 0 ? us_between(namelookup, connect) : 0;
  end->timings.tls_us = appconnect > 0 ? us_between(connect, appconnect) : 0;
  end->timings.ttfb_us = (uint64_t)(starttransfer > 0 ? starttransfer : 0);
  end->timings.total_us = (uv_hrtime() - slot->started_ns) / 1000;
  end->ttfb_us = end->timings.ttfb_us;
  end->sent_at_ms = slot->started_ms;
  end->host_in_flight = slot->host_in_flight;
  end->sends = slot->sends;
  end->session_ended = slot->session_ended;
  /* What the server asks of the wait: Retry-After for the decision (413,
   * 429, 503); for the host's pause (429, 503) Retry-After, else its
   * rate-limit reset. Read once, on one clock reading. */
  end->retry_after_ms = -1;
  end->pause_ms = -1;
  if (outcome.error == 0 && (status == 413 || status == 429 || status == 503)) {
    int64_t unix_ms = wall_clock_ms();
    const char *ra = salvo__attempt_header(slot, "Retry-After");
    end->retry_after_ms = ra != NULL ? salvo__retry_after_parse(ra, unix_ms) : -1;
    if (status != 413)
      end->pause_ms = end->retry_after_ms >= 0
                          ? end->retry_after_ms
                          : reset_ms(slot, slot->req->host->policy.reset_epoch_above, unix_ms);
  }
  if (detail != NULL)
    describe(slot, rc, outcome.error, detail, cap);
}

/* ------------------------------------------------------------ the pool */

salvo__slot_t *salvo__slot_get(salvo_engine_t *engine) {
  salvo__slot_t *slot = engine->free_slots;
  if (slot != NULL) {
    engine->free_slots = slot->next_free;
    slot->next_free = NULL;
    return slot;
  }
  slot = calloc(1, sizeof(*slot));
  if (slot == NULL)
    return NULL;
  slot->engine = engine;
  slot->easy = curl_easy_init();
  if (slot->easy == NULL || uv_timer_init(engine->loop, &slot->timer) != 0) {
    curl_easy_cleanup(slot->easy);
    free(slot);
    return NULL;
  }
  salvo__list_init(&slot->cancel_node);
  engine->live_handles++;
  return slot;
}

void salvo__slot_put(salvo__slot_t *slot) {
  salvo_engine_t *engine = slot->engine;
  slot->req = NULL;
  slot->next_free = engine->free_slots;
  engine->free_slots = slot;
}

void salvo__slots_detach_share(salvo_engine_t *engine, CURLSH *share) {
  for (salvo__slot_t *slot = engine->free_slots; slot != NULL; slot = slot->next_free)
    if (slot->share == share || slot->share == SALVO__SHARE_UNKNOWN) {
      curl_easy_setopt(slot->easy, CURLOPT_SHARE, engine->no_share);
      slot->share = engine->no_share;
    }
}

static void slot_closed_cb(uv_handle_t *handle) {
  salvo__slot_t *slot = SALVO__CONTAINER_OF((uv_timer_t *)handle, salvo__slot_t, timer);
  salvo_engine_t *engine = slot->engine;
  free(slot);
  salvo__engine_handle_closed(engine);
}

void salvo__slots_free(salvo_engine_t *engine) {
  salvo__slot_t *slot = engine->free_slots;
  engine->free_slots = NULL;
  while (slot != NULL) {
    salvo__slot_t *next = slot->next_free;
    curl_easy_cleanup(slot->easy);
    uv_close((uv_handle_t *)&slot->timer, slot_closed_cb);
    slot = next;
  }
}
