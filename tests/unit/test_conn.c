/* conn.c's rule: can the server have read what was sent on a connection
 * since its last response? Pure: counters in, answer out. And tcpinfo.c,
 * which reads those counters, against the kernel's own sockets. */
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "internal.h"
#include "tcpinfo.h"

static salvo__conn_mark_t idle(uint64_t acked, uint32_t segs_out, int closed) {
  salvo__conn_mark_t m;
  memset(&m, 0, sizeof(m));
  m.known = 1;
  m.acked = acked;
  m.data_segs_out = segs_out;
  m.segs_in = 4;
  m.closed = closed;
  return m;
}

Test(conn, nothing_sent_since_the_response_was_not_read) {
  salvo__conn_mark_t m = idle(171, 1, 0);
  /* reset while idle: the request never left (send failed with EPIPE) */
  cr_assert_eq(salvo__conn_unread(&m, 0, 171, 1), 1);
}

Test(conn, a_send_acknowledged_by_the_server_may_have_been_read) {
  salvo__conn_mark_t m = idle(171, 1, 0);
  cr_assert_eq(salvo__conn_unread(&m, 1, 171 + 90, 2), 0, "acknowledged, then closed: read");
  cr_assert_eq(salvo__conn_unread(&m, 0, 171 + 90, 2), 0, "acknowledged, then reset: read");
}

Test(conn, a_reset_alone_proves_nothing) {
  /* the server may have read it and reset before its delayed ACK went out */
  salvo__conn_mark_t m = idle(171, 1, 0);
  cr_assert_eq(salvo__conn_unread(&m, 0, 171, 2), 0);
}

Test(conn, a_fin_that_acknowledges_none_of_it_came_first) {
  salvo__conn_mark_t m = idle(171, 1, 0);
  cr_assert_eq(salvo__conn_unread(&m, 1, 171, 2), 1);
}

Test(conn, a_connection_already_closed_when_it_went_idle) {
  salvo__conn_mark_t m = idle(171, 1, 1);
  cr_assert_eq(salvo__conn_unread(&m, 0, 171, 2), 1, "closed before the request was written");
  cr_assert_eq(salvo__conn_unread(&m, 0, 200, 2), 0, "but it acknowledged some: maybe read");
}

Test(conn, a_socket_never_seen_idle_is_assumed_read) {
  salvo__conn_mark_t m;
  memset(&m, 0, sizeof(m));
  cr_assert_eq(salvo__conn_unread(&m, 1, 0, 1), 0);
}

/* tcpinfo.c against the kernel: real sockets on 127.0.0.1, no server
 * program. What the peer's close looked like: a FIN, a FIN then a reset (our
 * send after its close), or a reset alone. */
static void tcp_pair(int *client, int *server) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof(a);
  cr_assert(l >= 0 && bind(l, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(l, 1) == 0);
  cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &alen), 0);
  *client = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert_eq(connect(*client, (struct sockaddr *)&a, sizeof(a)), 0);
  *server = accept(l, NULL, NULL);
  cr_assert_geq(*server, 0);
  close(l);
}

static int tcp_state(int fd) {
  struct tcp_info ti;
  socklen_t len = sizeof(ti);
  memset(&ti, 0, sizeof(ti));
  cr_assert_eq(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
  return ti.tcpi_state;
}

/* Waits (1 s at most) for the client's socket to reach |state|. */
static void wait_state(int fd, int state) {
  for (int i = 0; i < 200 && tcp_state(fd) != state; i++)
    poll(NULL, 0, 5);
  cr_assert_eq(tcp_state(fd), state, "TCP state %d, want %d", tcp_state(fd), state);
}

enum { CLOSE_WAIT = 8, CLOSED = 7 };

Test(tcpinfo, a_fin_then_a_reset_is_still_the_peer_closing_first) {
  int c, s;
  tcp_pair(&c, &s);
  salvo__tcp_t t;
  cr_assert_eq(salvo__tcp_read(c, 0, &t), 0);
  cr_assert(!t.closed && !t.peer_fin, "open");
  close(s); /* FIN */
  wait_state(c, CLOSE_WAIT);
  cr_assert_eq(salvo__tcp_read(c, 0, &t), 0);
  cr_assert(t.closed && t.peer_fin, "after the FIN: closed %d, fin %d", t.closed, t.peer_fin);
  /* a send after the peer's close: its kernel answers with a reset */
  cr_assert_eq(send(c, "x", 1, MSG_NOSIGNAL), 1);
  wait_state(c, CLOSED);
  cr_assert_eq(salvo__tcp_read(c, 1, &t), 0);
  cr_assert(t.closed, "closed");
  cr_assert(t.peer_fin, "the FIN came first, the reset after it");
  close(c);
}

Test(tcpinfo, a_reset_alone_is_not_a_fin) {
  int c, s;
  tcp_pair(&c, &s);
  struct linger lg = {1, 0};
  cr_assert_eq(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
  close(s); /* RST, no FIN */
  wait_state(c, CLOSED);
  salvo__tcp_t t;
  cr_assert_eq(salvo__tcp_read(c, 1, &t), 0);
  cr_assert(t.closed, "closed");
  cr_assert(!t.peer_fin, "a reset is not the peer closing first");
  close(c);
}
