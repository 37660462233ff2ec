/* What the server's TCP acknowledged of a request that got no response.
 *
 * A kept-alive HTTP/1.1 connection may be closed by the server at any time;
 * a request written in that moment never reaches the server application,
 * and libcurl then sends it again on a fresh connection. For a request that
 * is not idempotent salvo allows that second send only when it can tell the
 * first was never read: the server's TCP acknowledged no byte sent on the
 * connection since its previous response. Bytes a server never acknowledged
 * are bytes its application cannot have read.
 *
 * How: when a transfer that got a response hands its socket back to
 * libcurl's pool (CURL_POLL_REMOVE), the socket's counters are noted; when
 * libcurl closes a socket (CURLOPT_CLOSESOCKETFUNCTION), they are read again,
 * and the attempt whose send went out on it (matched by local port) learns
 * whether the server can have read it (salvo__conn_unread()). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include "internal.h"
#include "tcpinfo.h"

/* A connection's ports and peer address, to find the attempt whose send
 * went out on it: Linux may give two connections to different peers the
 * same local port. */
typedef struct {
  int local_port;
  int peer_port;
  char peer_ip[48];
} endpoints_t;

static int same_connection(const salvo__slot_t *s, int local_port, int peer_port,
                           const char *peer_ip) {
  return s->local_port == local_port && s->peer_port == peer_port &&
         strcmp(s->peer_ip, peer_ip) == 0;
}

void salvo__conns_free(salvo__conns_t *conns) {
  free(conns->idle);
  conns->idle = NULL;
  conns->cap = 0;
}

void salvo__conn_idle(salvo_engine_t *engine, curl_socket_t fd, const salvo__slot_t *slot) {
  uint64_t host_hash = slot->req->host->hash;
  salvo__conns_t *conns = &engine->conns;
  salvo__tcp_t tcp;
  if (fd < 0 || salvo__tcp_read(fd, 0, &tcp) != 0)
    return;
  if (tcp.closed) /* the answer came without "Connection: close", then the close */
    salvo__host_saw_silent_close(engine, host_hash);
  size_t i = (size_t)fd;
  if (i >= conns->cap) {
    size_t cap = conns->cap ? conns->cap : 64;
    while (cap <= i)
      cap *= 2;
    salvo__conn_mark_t *p = realloc(conns->idle, cap * sizeof(*p));
    if (p == NULL)
      return; /* unknown: the rule stays conservative */
    memset(p + conns->cap, 0, (cap - conns->cap) * sizeof(*p));
    conns->idle = p;
    conns->cap = cap;
  }
  /* its ends as the send that just got its answer went out on it: the
   * socket may be reset already, and then has no peer to ask for */
  salvo__conn_mark_t *m = &conns->idle[i];
  m->local_port = slot->local_port;
  m->peer_port = slot->peer_port;
  memcpy(m->peer_ip, slot->peer_ip, sizeof(m->peer_ip));
  m->known = 1;
  m->acked = tcp.acked;
  m->data_segs_out = tcp.data_segs_out;
  m->segs_in = tcp.segs_in;
  m->closed = tcp.closed;
  m->host_hash = host_hash;
}

int salvo__conn_unread(const salvo__conn_mark_t *idle, int fin, uint64_t acked,
                       uint32_t data_segs_out) {
  if (!idle->known)
    return 0;
  if (data_segs_out == idle->data_segs_out)
    return 1; /* nothing left this host since the last response */
  if (idle->closed && acked == idle->acked)
    return 1; /* the server had closed before the request was written */
  /* The peer's FIN acknowledges every byte its TCP had received: if it
   * covers nothing sent since the last response, the server closed before
   * the request arrived. Without a FIN (a reset alone), an acknowledgement
   * may just have been delayed: the server may have read it. */
  return fin && acked == idle->acked;
}

/* The attempt whose latest send went out on this connection and has no
 * response yet. Only asked of connections seen idle after an HTTP/1.x
 * answer, which carry one transfer at a time. */
static salvo__slot_t *sender_on(salvo_engine_t *engine, const endpoints_t *e) {
  for (salvo__list_t *n = engine->running.next; n != &engine->running; n = n->next) {
    salvo_request_t *req = SALVO__CONTAINER_OF(n, salvo_request_t, node);
    salvo__slot_t *cand[2] = {req->slot, req->hedge.slot};
    for (int k = 0; k < 2; k++) {
      salvo__slot_t *s = cand[k];
      if (s != NULL && s->sent && !s->responded &&
          same_connection(s, e->local_port, e->peer_port, e->peer_ip))
        return s;
    }
  }
  return NULL;
}

void salvo__conn_session_ended(salvo_engine_t *engine, const salvo__slot_t *dead) {
  if (dead->local_port <= 0)
    return;
  for (salvo__list_t *n = engine->running.next; n != &engine->running; n = n->next) {
    salvo_request_t *req = SALVO__CONTAINER_OF(n, salvo_request_t, node);
    salvo__slot_t *cand[2] = {req->slot, req->hedge.slot};
    for (int k = 0; k < 2; k++) {
      salvo__slot_t *s = cand[k];
      if (s == NULL || s == dead || !s->sent || s->stop_reason != 0 || s->lane == NULL ||
          !same_connection(s, dead->local_port, dead->peer_port, dead->peer_ip))
        continue;
      salvo__attempt_stop_later(s, SALVO_ECLOSED);
    }
  }
}

int salvo__conn_close_cb(void *clientp, curl_socket_t fd) {
  salvo_engine_t *engine = clientp;
  salvo__conns_t *conns = &engine->conns;
  salvo__conn_mark_t idle;
  memset(&idle, 0, sizeof(idle));
  if (fd >= 0 && (size_t)fd < conns->cap) {
    idle = conns->idle[fd];
    memset(&conns->idle[fd], 0, sizeof(conns->idle[fd])); /* the number will be reused */
  }
  salvo__tcp_t tcp;
  if (idle.known && salvo__tcp_read(fd, 1, &tcp) == 0) {
    endpoints_t e = {idle.local_port, idle.peer_port, ""};
    memcpy(e.peer_ip, idle.peer_ip, sizeof(e.peer_ip));
    salvo__slot_t *slot = sender_on(engine, &e);
    if (slot != NULL || tcp.closed)
      salvo__host_saw_silent_close(engine, idle.host_hash); /* a pooled connection died */
    if (slot != NULL) {
      slot->conn_closed = 1;
      slot->unread = salvo__conn_unread(&idle, tcp.peer_fin, tcp.acked, tcp.data_segs_out);
    }
  }
  return close(fd);
}
