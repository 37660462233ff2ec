/* libFuzzer target: salvo-faultd's reading of a request: the path and query
 * parsing of every fault (sscanf patterns, query parameters, %20 decoding,
 * the rate limiter's state) and the counters, on any method, URL and
 * headers. The HTTP/1.1 framing itself is http-parser's. A plan must be a
 * status between 100 and 999 with a body it owns. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "faultd_int.h"

static uv_loop_t loop;
static faultd_t *fd;
static unsigned runs;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (fd == NULL) {
    uv_loop_init(&loop);
    faultd_opts_t o;
    faultd_opts_init(&o);
    for (int i = FAULTD_PORT_REFUSED; i < FAULTD_PORTS; i++)
      o.port[i] = -1; /* no by-port listeners: only the request path matters here */
    if (faultd_start(&loop, &o, &fd, NULL) != 0)
      abort();
  }
  /* method \n url \n headers... */
  freq_t req;
  memset(&req, 0, sizeof(req));
  const char *p = (const char *)data, *end = p + size;
  const char *nl = memchr(p, '\n', size);
  size_t n = nl ? (size_t)(nl - p) : size;
  memcpy(req.method, p, n < sizeof(req.method) - 1 ? n : sizeof(req.method) - 1);
  p = nl ? nl + 1 : end;
  nl = memchr(p, '\n', (size_t)(end - p));
  n = nl ? (size_t)(nl - p) : (size_t)(end - p);
  memcpy(req.url, p, n < sizeof(req.url) - 1 ? n : sizeof(req.url) - 1);
  p = nl ? nl + 1 : end;
  n = (size_t)(end - p);
  req.headers_len = n < sizeof(req.headers) - 1 ? n : sizeof(req.headers) - 1;
  memcpy(req.headers, p, req.headers_len);
  req.body_len = size;
  req.is_h2 = size & 1;
  faultd__record(fd, &req);
  fault_plan_t plan;
  faultd__plan(fd, &req, &plan);
  if (plan.status < 100 || plan.status > 999 || (plan.body_len > 0 && plan.body == NULL))
    abort();
  free(plan.body);
  if (++runs % 1000 == 0)
    faultd_counters_reset(fd); /* keep the counters (and /counters) small */
  return 0;
}
