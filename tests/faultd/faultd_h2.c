/* salvo-faultd over HTTP/2 (TLS + ALPN h2): an nghttp2 server session per
 * connection. Each stream carries out the same plan HTTP/1.1 does, in
 * HTTP/2 terms; stalls and drips defer the stream's data. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nghttp2/nghttp2.h>

#include "faultd_int.h"

typedef struct stream_s stream_t;

struct h2_s {
  conn_t *c;
  nghttp2_session *session;
  unsigned requests;      /* requests answered on this connection */
  int goaway_sent;
  stream_t *streams;      /* open streams, for cleanup */
};

struct stream_s {
  h2_t *h;
  int32_t id;
  freq_t req;
  fault_plan_t plan;
  size_t sent;            /* body bytes handed to nghttp2 */
  unsigned drip_ready;    /* bytes the drip timer has released */
  uv_timer_t *timer;      /* sleep, drip and capacity; closed and freed on its own */
  faultd_slot_t slot;     /* its place in a /capacity pool */
  stream_t *next, *prev;
};

static void timer_closed(uv_handle_t *h) {
  faultd_t *fd = h->data;
  free(h);
  faultd__handle_closed(fd);
}

static void stream_free(stream_t *st) {
  h2_t *h = st->h;
  /* reset by the client, or its connection gone: its place is free */
  faultd__capacity_leave(faultd__conn_server(h->c), &st->slot, 0);
  if (st->prev)
    st->prev->next = st->next;
  else
    h->streams = st->next;
  if (st->next)
    st->next->prev = st->prev;
  if (st->timer != NULL) {
    uv_timer_stop(st->timer);
    st->timer->data = faultd__conn_server(h->c);
    uv_close((uv_handle_t *)st->timer, timer_closed);
  }
  free(st->plan.body);
  free(st);
}

static void flush(h2_t *h) {
  nghttp2_session_send(h->session);
  if (!nghttp2_session_want_read(h->session) && !nghttp2_session_want_write(h->session))
    faultd__conn_close(h->c, 0); /* after GOAWAY, once everything is out */
}

/* What the connection may hold in writes not yet done before nghttp2 is
 * told to wait: a body of gigabytes (/file, /gzip-bomb) otherwise filled
 * memory as far as the client's flow-control window let it (curl's is 32
 * MiB: measured, 41 MB of RSS for a 64 MiB /file, 8 MB over HTTP/1.1). */
#define H2_QUEUE_MAX (256 * 1024)

static ssize_t send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud) {
  (void)s;
  (void)flags;
  h2_t *h = ud;
  if (faultd__conn_held(h->c) > H2_QUEUE_MAX)
    return NGHTTP2_ERR_WOULDBLOCK; /* sent again from faultd__h2_drained() */
  faultd__conn_write(h->c, data, len);
  return (ssize_t)len;
}

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud) {
  (void)s;
  (void)id;
  (void)ud;
  stream_t *st = src->ptr;
  fault_plan_t *p = &st->plan;
  size_t n;
  switch (p->kind) {
  case F_HEADERS_STALL:
    return NGHTTP2_ERR_DEFERRED; /* forever */
  case F_DRIP:
    if (st->sent >= p->bytes) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      return 0;
    }
    if (st->drip_ready <= st->sent)
      return NGHTTP2_ERR_DEFERRED;
    buf[0] = 'x';
    st->sent++;
    return 1;
  case F_TRUNCATE:
  case F_TRUNCATE_HANG:
    if (st->sent >= 10) {
      if (p->kind == F_TRUNCATE_HANG)
        return NGHTTP2_ERR_DEFERRED;
      *flags |= NGHTTP2_DATA_FLAG_EOF; /* ends 90 bytes short of Content-Length */
      return 0;
    }
    memcpy(buf, "0123456789", 10);
    st->sent = 10;
    return 10;
  case F_FILE:
    if (st->sent < p->file.length) {
      /* paced (?rate=): what the rate allows so far; file_tick resumes it */
      uint64_t allowed = faultd__file_allowed(p, uv_now(faultd__conn_loop(st->h->c)));
      if (allowed <= st->sent)
        return NGHTTP2_ERR_DEFERRED;
      if (allowed - st->sent < length)
        length = (size_t)(allowed - st->sent);
    }
    /* fall through */
  case F_REPEAT: /* made up as it goes: nghttp2 asks as the flow-control window allows */
    n = faultd__body_read(p, st->sent, buf, length);
    st->sent += n;
    if (st->sent == faultd__body_size(p))
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
  default:
    n = p->body_len - st->sent;
    if (n > length)
      n = length;
    memcpy(buf, p->body + st->sent, n);
    st->sent += n;
    if (st->sent == p->body_len)
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
  }
}

#define NV(name, value)                                                                         \
  {(uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1, strlen(value), NGHTTP2_NV_FLAG_NONE}

static void respond(stream_t *st, const char *content_length) {
  fault_plan_t *p = &st->plan;
  char status[8], cl[32];
  snprintf(status, sizeof(status), "%d", p->status);
  if (content_length == NULL) {
    snprintf(cl, sizeof(cl), "%llu", (unsigned long long)faultd__body_size(p));
    content_length = cl;
  }
  char *huge = NULL;
  nghttp2_nv nva[18];
  size_t n = 0;
  nva[n++] = (nghttp2_nv)NV(":status", status);
  if (!p->chunked)
    nva[n++] = (nghttp2_nv)NV("content-length", content_length);
  nva[n++] = (nghttp2_nv)NV("content-type", p->content_type ? p->content_type : "text/plain");
  nva[n++] = (nghttp2_nv)NV("x-test", "yes");
  nva[n++] = (nghttp2_nv)NV("x-test", "last");
  if (p->retry_after[0])
    nva[n++] = (nghttp2_nv)NV("retry-after", p->retry_after);
  if (p->ratelimit_reset[0])
    nva[n++] = (nghttp2_nv)NV("ratelimit-reset", p->ratelimit_reset);
  if (p->location[0])
    nva[n++] = (nghttp2_nv)NV("location", p->location);
  if (p->queue_ms[0])
    nva[n++] = (nghttp2_nv)NV("x-queue-ms", p->queue_ms);
  if (p->kind == F_CL_CONFLICT)
    nva[n++] = (nghttp2_nv)NV("content-length", "2");
  if (p->content_encoding != NULL)
    nva[n++] = (nghttp2_nv)NV("content-encoding", p->content_encoding);
  if (p->kind == F_FILE && p->file.accept_ranges)
    nva[n++] = (nghttp2_nv)NV("accept-ranges", "bytes");
  if (p->kind == F_FILE && p->file.etag[0])
    nva[n++] = (nghttp2_nv)NV("etag", p->file.etag);
  if (p->kind == F_FILE && p->file.last_modified != NULL)
    nva[n++] = (nghttp2_nv)NV("last-modified", p->file.last_modified);
  if (p->kind == F_FILE && p->file.content_range[0])
    nva[n++] = (nghttp2_nv)NV("content-range", p->file.content_range);
  if (p->huge_header_kb > 0) {
    huge = malloc(p->huge_header_kb * 1024 + 1);
    memset(huge, 'h', p->huge_header_kb * 1024);
    huge[p->huge_header_kb * 1024] = '\0';
    nva[n++] = (nghttp2_nv)NV("x-huge", huge);
  }
  nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_body};
  /* a response to HEAD has no body */
  nghttp2_submit_response(st->h->session, st->id, nva, n,
                          strcmp(st->req.method, "HEAD") == 0 ? NULL : &prd);
  free(huge); /* nghttp2 copies header fields */
}

static void sleep_done(uv_timer_t *t) {
  stream_t *st = t->data;
  respond(st, NULL);
  flush(st->h);
}

static void drip_tick(uv_timer_t *t) {
  stream_t *st = t->data;
  st->drip_ready++;
  if (st->drip_ready >= st->plan.bytes)
    uv_timer_stop(t);
  nghttp2_session_resume_data(st->h->session, st->id);
  flush(st->h);
}

static void file_tick(uv_timer_t *t) {
  stream_t *st = t->data;
  if (st->sent >= st->plan.file.length)
    uv_timer_stop(t);
  nghttp2_session_resume_data(st->h->session, st->id); /* a no-op unless deferred */
  flush(st->h);
}

static void start_timer(stream_t *st, uv_timer_cb cb, uint64_t ms, uint64_t repeat) {
  faultd_t *fd = faultd__conn_server(st->h->c);
  st->timer = malloc(sizeof(*st->timer));
  uv_timer_init(faultd__conn_loop(st->h->c), st->timer);
  fd->open_handles++;
  st->timer->data = st;
  uv_timer_start(st->timer, cb, ms, repeat);
}

static void capacity_done(uv_timer_t *t) {
  stream_t *st = t->data;
  faultd__capacity_answer(&st->slot, &st->plan);
  faultd__capacity_leave(faultd__conn_server(st->h->c), &st->slot, 1);
  respond(st, NULL);
  flush(st->h);
}

static void capacity_start(faultd_slot_t *slot) {
  start_timer(slot->data, capacity_done, slot->service_ms, 0);
}

/* Writes one frame as it is, past nghttp2 (whose own output goes first): for
 * frames no well-behaved server sends. */
static void raw_frame(h2_t *h, uint8_t type, uint8_t flags, int32_t id, const void *payload,
                      size_t len) {
  unsigned char hd[9] = {(unsigned char)(len >> 16), (unsigned char)(len >> 8), (unsigned char)len,
                         type, flags, (unsigned char)((uint32_t)id >> 24 & 0x7f),
                         (unsigned char)(id >> 16), (unsigned char)(id >> 8), (unsigned char)id};
  faultd__conn_write(h->c, hd, sizeof(hd));
  if (len > 0)
    faultd__conn_write(h->c, payload, len);
}

enum { FRAME_HEADERS = 1, FRAME_PUSH_PROMISE = 5, FRAME_CONTINUATION = 9 };
enum { FLAG_END_HEADERS = 4 };

static void malformed(stream_t *st) {
  h2_t *h = st->h;
  nghttp2_session_send(h->session); /* what nghttp2 has queued goes first */
  switch (st->plan.kind) {
  case F_H2_HPACK_GARBAGE: {
    /* an indexed field with an index far past any table */
    static const unsigned char block[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    raw_frame(h, FRAME_HEADERS, FLAG_END_HEADERS, st->id, block, sizeof(block));
    break;
  }
  case F_H2_CONTINUATION_FLOOD: {
    static const unsigned char status[] = {0x88}; /* :status 200 */
    /* "x-f: y", a literal field without indexing, in every CONTINUATION */
    static const unsigned char field[] = {0x00, 0x03, 'x', '-', 'f', 0x01, 'y'};
    raw_frame(h, FRAME_HEADERS, 0, st->id, status, sizeof(status));
    for (int i = 0; i < 2000; i++)
      raw_frame(h, FRAME_CONTINUATION, 0, st->id, field, sizeof(field));
    break;
  }
  case F_H2_PUSH_PROMISE: {
    /* promised stream 2; :method GET, :path /, :scheme https */
    static const unsigned char payload[] = {0, 0, 0, 2, 0x82, 0x84, 0x87};
    raw_frame(h, FRAME_PUSH_PROMISE, FLAG_END_HEADERS, st->id, payload, sizeof(payload));
    break;
  }
  default:
    break;
  }
}

/* The whole request is in: carry out its plan. Returns -1 to drop the connection. */
static int handle(stream_t *st) {
  h2_t *h = st->h;
  faultd_t *fd = faultd__conn_server(h->c);
  faultd__record(fd, &st->req);
  faultd__plan(fd, &st->req, &st->plan);
  h->requests++;
  fault_plan_t *p = &st->plan;
  char cl[32];
  switch (p->kind) {
  case F_RESPOND:
  case F_REPEAT:
    respond(st, NULL);
    break;
  case F_FILE:
    respond(st, NULL);
    if (p->file.rate > 0 && p->file.length > 0 && strcmp(st->req.method, "HEAD") != 0)
      start_timer(st, file_tick, 10, 10); /* a slice each 10 ms: read_body */
    break;
  case F_SLEEP:
    start_timer(st, sleep_done, p->ms, 0);
    break;
  case F_HANG:
    break;
  case F_CAPACITY:
    st->slot.start_cb = capacity_start;
    st->slot.data = st;
    if (faultd__capacity_enter(fd, p, &st->slot) != 0)
      respond(st, NULL); /* the queue is full: 503 at once */
    break;
  case F_CLOSE:
    faultd__conn_close(h->c, 0);
    return -1;
  case F_RESET:
    faultd__conn_close(h->c, 1);
    return -1;
  case F_GARBAGE:
    faultd__conn_write(h->c, "SURPRISE this is not HTTP/2 framing at all\r\n", 44);
    faultd__conn_close(h->c, 0);
    return -1;
  case F_HEADERS_STALL:
    p->status = 200;
    respond(st, "100");
    break;
  case F_DRIP:
    snprintf(cl, sizeof(cl), "%u", p->bytes);
    p->status = 200;
    respond(st, cl);
    if (p->bytes > 0)
      start_timer(st, drip_tick, p->ms, p->ms);
    break;
  case F_TRUNCATE:
  case F_TRUNCATE_HANG:
    p->status = 200;
    respond(st, "100");
    break;
  case F_OVERLONG:
    free(p->body);
    p->body = malloc(100);
    memset(p->body, 'o', 100);
    p->body_len = 100;
    p->status = 200;
    respond(st, "10");
    break;
  case F_BAD_CHUNK:
    nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_PROTOCOL_ERROR);
    break;
  case F_H2_RST_REFUSED:
    nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_REFUSED_STREAM);
    break;
  case F_H2_RST_INTERNAL:
    nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    break;
  case F_H2_HPACK_GARBAGE:
  case F_H2_CONTINUATION_FLOOD:
  case F_H2_PUSH_PROMISE:
    malformed(st);
    break;
  case F_CL_CONFLICT:
    p->status = 200;
    respond(st, "5"); /* a second content-length field follows (respond's extra) */
    break;
  }
  if (p->goaway_after > 0 && h->requests >= p->goaway_after && !h->goaway_sent) {
    /* Streams after this one are not processed; the client must retry them. */
    h->goaway_sent = 1;
    nghttp2_submit_goaway(h->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR, NULL, 0);
  }
  return 0;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *ud) {
  h2_t *h = ud;
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  stream_t *st = calloc(1, sizeof(*st));
  st->h = h;
  st->id = frame->hd.stream_id;
  st->req.is_h2 = 1;
  st->next = h->streams;
  if (h->streams)
    h->streams->prev = st;
  h->streams = st;
  nghttp2_session_set_stream_user_data(s, st->id, st);
  return 0;
}

static void copy_field(char *dst, size_t cap, const uint8_t *v, size_t len) {
  if (len >= cap)
    len = cap - 1;
  memcpy(dst, v, len);
  dst[len] = '\0';
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *ud) {
  (void)flags;
  (void)ud;
  stream_t *st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
  if (st == NULL)
    return 0;
  if (namelen == 7 && memcmp(name, ":method", 7) == 0) {
    copy_field(st->req.method, sizeof(st->req.method), value, valuelen);
  } else if (namelen == 5 && memcmp(name, ":path", 5) == 0) {
    copy_field(st->req.url, sizeof(st->req.url), value, valuelen);
  } else if (name[0] != ':') {
    if (namelen == 12 && strncasecmp((const char *)name, "x-request-id", 12) == 0)
      copy_field(st->req.request_id, sizeof(st->req.request_id), value, valuelen);
    else if (namelen == 15 && strncasecmp((const char *)name, "idempotency-key", 15) == 0)
      copy_field(st->req.idem_key, sizeof(st->req.idem_key), value, valuelen);
    int n = snprintf(st->req.headers + st->req.headers_len,
                     sizeof(st->req.headers) - st->req.headers_len, "%.*s: %.*s\n", (int)namelen,
                     name, (int)valuelen, value);
    if (n > 0 && st->req.headers_len + (size_t)n < sizeof(st->req.headers))
      st->req.headers_len += (size_t)n;
    else
      st->req.headers_truncated = 1;
  }
  return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud) {
  (void)flags;
  (void)data;
  (void)ud;
  stream_t *st = nghttp2_session_get_stream_user_data(s, id);
  if (st != NULL)
    st->req.body_len += len;
  return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud) {
  (void)ud;
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    stream_t *st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (st != NULL && handle(st) != 0)
      return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *ud) {
  (void)error_code;
  (void)ud;
  stream_t *st = nghttp2_session_get_stream_user_data(s, id);
  if (st != NULL) {
    nghttp2_session_set_stream_user_data(s, id, NULL);
    stream_free(st);
  }
  return 0;
}

h2_t *faultd__h2_new(conn_t *c, unsigned max_streams) {
  h2_t *h = calloc(1, sizeof(*h));
  h->c = c;
  nghttp2_session_callbacks *cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
  nghttp2_option *opt;
  nghttp2_option_new(&opt);
  /* /huge-headers/KB must really send its header block: nghttp2 refuses to
   * send one over 64 KB by default, and the client then waited forever. */
  nghttp2_option_set_max_send_header_block_length(opt, 16 * 1024 * 1024);
  nghttp2_session_server_new2(&h->session, cbs, h, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams}};
  nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, iv, 1);
  nghttp2_session_send(h->session);
  return h;
}

int faultd__h2_recv(h2_t *h, const unsigned char *data, size_t len) {
  ssize_t n = nghttp2_session_mem_recv(h->session, data, len);
  if (n < 0)
    return -1;
  flush(h);
  return 0;
}

void faultd__h2_drained(h2_t *h) {
  if (faultd__conn_held(h->c) <= H2_QUEUE_MAX)
    flush(h);
}

void faultd__h2_free(h2_t *h) {
  if (h == NULL)
    return;
  while (h->streams != NULL)
    stream_free(h->streams);
  nghttp2_session_del(h->session);
  free(h);
}
