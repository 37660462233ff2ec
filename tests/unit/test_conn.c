/* conn.c's rule: can the server have read what was sent on a connection
 * since its last response? Pure: counters in, answer out. */
#include <string.h>

#include <criterion/criterion.h>

#include "internal.h"

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
