/* The progress line on stderr, redrawn five times a second. */
#include <stdio.h>

#include <uv.h>

#include "fetch.h"

static struct {
  uv_timer_t timer;
  int on, started;
  uint64_t start_ns;
  size_t pending, lines;
  int input_done;
} pg;

static void draw(int final) {
  const fetch_counts_t *n = fetch_counts();
  double secs = (double)(uv_hrtime() - pg.start_ns) / 1e9;
  double rate = secs > 0 ? (double)n->total / secs : 0;
  char eta[32] = "";
  if (pg.input_done && rate > 0)
    snprintf(eta, sizeof(eta), ", ETA %.0fs", (double)pg.pending / rate);
  fprintf(stderr, "\r%zu done%s%zu, ok %zu, retried %zu, failed %zu, %.0f req/s%s   %s", n->total,
          pg.input_done ? "/" : " of ", pg.input_done ? n->total + pg.pending : pg.lines, n->ok,
          n->retried_requests, n->failed + n->http_error + n->canceled, rate, eta, final ? "\n" : "");
  fflush(stderr);
}

static void tick(uv_timer_t *t) {
  (void)t;
  draw(0);
}

void fetch_progress_start(uv_loop_t *loop, int on) {
  pg.start_ns = uv_hrtime();
  pg.on = on;
  uv_timer_init(loop, &pg.timer);
  pg.started = 1;
  if (on)
    uv_timer_start(&pg.timer, tick, 200, 200);
}

void fetch_progress_update(size_t pending, size_t lines, int input_done) {
  pg.pending = pending;
  pg.lines = lines;
  pg.input_done = input_done;
}

/* Stops the timer (its handle closes with the loop's others) and draws the
 * last line. */
void fetch_progress_stop(void) {
  if (!pg.started)
    return;
  pg.started = 0;
  uv_timer_stop(&pg.timer);
  uv_close((uv_handle_t *)&pg.timer, NULL);
  if (pg.on)
    draw(1);
}
