/* The kernel's view of a TCP socket (tcpinfo.c). Pure data, no uv or curl. */
#ifndef SALVO_TCPINFO_H
#define SALVO_TCPINFO_H

#include <stdint.h>

typedef struct {
  uint64_t acked;         /* data bytes the peer's TCP acknowledged */
  uint32_t data_segs_out; /* data segments sent */
  uint32_t segs_in;       /* segments received, data or not */
  int peer_fin;           /* the peer's FIN arrived before any reset (only when closing) */
  int closed;             /* the peer closed (FIN) or reset the connection */
} salvo__tcp_t;

/* 0 and *out filled, or -1 if the system does not say (not Linux >= 4.6).
 * |closing|: the socket is being closed, so its pending error may be read
 * (and cleared) to tell a FIN from a reset; otherwise one system call. */
int salvo__tcp_read(int fd, int closing, salvo__tcp_t *out);

#endif
