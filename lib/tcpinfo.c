/* The kernel's view of a TCP socket, for conn.c. Its own file because
 * <linux/tcp.h>, whose struct tcp_info has the counters salvo needs, clashes
 * with <netinet/tcp.h>, which uv.h pulls in. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <netinet/in.h>
#include <sys/socket.h>

#ifdef __linux__
#include <linux/tcp.h>
#endif

#include "tcpinfo.h"

/* The kernel's TCP states (include/net/tcp_states.h; not in the uapi headers). */
enum { STATE_CLOSE = 7, STATE_CLOSE_WAIT = 8 };

int salvo__tcp_read(int fd, int closing, salvo__tcp_t *out) {
  memset(out, 0, sizeof(*out));
#if defined(__linux__) && defined(TCP_INFO)
  struct tcp_info info;
  socklen_t len = sizeof(info);
  memset(&info, 0, sizeof(info));
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 ||
      len < offsetof(struct tcp_info, tcpi_data_segs_out) + sizeof(info.tcpi_data_segs_out))
    return -1; /* a kernel older than 4.6 */
  out->acked = info.tcpi_bytes_acked;
  out->data_segs_out = info.tcpi_data_segs_out;
  out->segs_in = info.tcpi_segs_in;
  /* The FIN from the peer came before anything else ended the connection:
   * still in CLOSE-WAIT, or reset from there (the kernel then leaves EPIPE,
   * not ECONNRESET, as the socket's error). Reading SO_ERROR clears it,
   * which is harmless on a socket that is idle or being closed. */
  int err = 0;
  socklen_t elen = sizeof(err);
  if (closing && info.tcpi_state == STATE_CLOSE &&
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
    err = 0;
  out->peer_fin = info.tcpi_state == STATE_CLOSE_WAIT ||
                  (info.tcpi_state == STATE_CLOSE && err == EPIPE);
  out->closed = info.tcpi_state == STATE_CLOSE_WAIT || info.tcpi_state == STATE_CLOSE;
  return 0;
#else
  (void)fd;
  return -1;
#endif
}
