/* Timeouts as they enter salvo: the defaults, the inherit marker and the
 * ceiling above which a timeout is off (salvo.h, salvo_timeouts_t). Every
 * way in (engine options, request setters) goes through
 * salvo__timeouts_apply(), so no kept timeout is above SALVO_TIMEOUT_MAX_MS
 * and no moment plus a timeout can wrap. Pure. */
#include "pure.h"

void salvo_timeouts_init(salvo_timeouts_t *t) {
  if (t == NULL)
    return;
  t->connect_ms = 3100; /* 3 s of SYN retransmission, plus 100 ms */
  t->idle_ms = 10000;
  t->attempt_ms = 0;
  t->deadline_ms = 30000;
  t->queue_ms = 0;
}

void salvo_timeouts_inherit(salvo_timeouts_t *t) {
  if (t == NULL)
    return;
  t->connect_ms = t->idle_ms = t->attempt_ms = t->deadline_ms = t->queue_ms = SALVO_TIMEOUT_INHERIT;
}

static void apply_one(uint64_t *kept, uint64_t given) {
  if (given != SALVO_TIMEOUT_INHERIT)
    *kept = salvo__timeout_value(given);
}

void salvo__timeouts_apply(salvo_timeouts_t *kept, const salvo_timeouts_t *given) {
  apply_one(&kept->connect_ms, given->connect_ms);
  apply_one(&kept->idle_ms, given->idle_ms);
  apply_one(&kept->attempt_ms, given->attempt_ms);
  apply_one(&kept->deadline_ms, given->deadline_ms);
  apply_one(&kept->queue_ms, given->queue_ms);
}

long salvo__recv_buffer_size(uint64_t bytes_per_second, long uncapped) {
  uint64_t buffer = bytes_per_second / 100;
  if (bytes_per_second == 0)
    return uncapped;
  if (buffer >= (uint64_t)SALVO__RECV_BUFFER_MAX)
    return SALVO__RECV_BUFFER_MAX;
  return buffer < (uint64_t)SALVO__RECV_BUFFER_MIN ? SALVO__RECV_BUFFER_MIN : (long)buffer;
}

uint64_t salvo__recv_pause_ms(uint64_t bytes_per_second, long buffer) {
  if (bytes_per_second == 0 || buffer <= 0)
    return 0;
  uint64_t burst = (uint64_t)SALVO__RECV_READS * (uint64_t)buffer; /* below 2^40 for any long
                                                                        libcurl takes (10 MB) */
  return (burst * 1000 + bytes_per_second - 1) / bytes_per_second;
}
