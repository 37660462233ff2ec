/* The fixture of the suites that run against salvo-faultd in-process: one
 * loop, one salvo-faultd on it and (once a test starts one) one engine per
 * test. Include it once, in the test file; the suite's .init and .fini call
 * fixture_setup() and fixture_teardown(), or their own functions that do. */
#ifndef SALVO_FIXTURE_H
#define SALVO_FIXTURE_H

#include <stdio.h>

#include <criterion/criterion.h>
#include <salvo/salvo.h>

#include "faultd.h"

#define FIXTURE_UNUSED __attribute__((unused))

static uv_loop_t loop;
static faultd_t *srv;
static salvo_engine_t *engine;
static int engine_closed;                       /* times the close callback ran */
static FIXTURE_UNUSED char base[64];            /* http://127.0.0.1:PORT */
static FIXTURE_UNUSED char tls_base[64];        /* https://127.0.0.1:PORT (h2 or http/1.1) */
static FIXTURE_UNUSED char dead_base[64];       /* a port that refuses connections */

static inline void on_closed(salvo_engine_t *e, void *ud) {
  (void)e;
  (void)ud;
  engine_closed++;
}

static inline void fixture_setup(void) {
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(faultd_start(&loop, NULL, &srv, NULL), 0);
  snprintf(base, sizeof(base), "http://127.0.0.1:%d", faultd_port(srv, FAULTD_PORT_HTTP));
  snprintf(tls_base, sizeof(tls_base), "https://127.0.0.1:%d", faultd_port(srv, FAULTD_PORT_TLS));
  snprintf(dead_base, sizeof(dead_base), "http://127.0.0.1:%d",
           faultd_port(srv, FAULTD_PORT_REFUSED));
  engine = NULL;
  engine_closed = 0;
}

/* Closes what the test left open, then checks that the engine's close
 * callback ran exactly once and that nothing is left on the loop. */
static inline void fixture_teardown(void) {
  if (engine != NULL && !engine_closed)
    salvo_engine_close(engine, on_closed, NULL);
  faultd_close(srv);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (engine != NULL)
    cr_assert_eq(engine_closed, 1, "close callback ran %d times", engine_closed);
  cr_assert_eq(uv_loop_close(&loop), 0, "handles left open on the loop");
}

/* Closes the engine from inside a test (to start another), running the loop
 * until its close callback. uv_run(UV_RUN_DEFAULT) would not return while
 * salvo-faultd listens. */
static inline void fixture_close_engine(void) {
  salvo_engine_close(engine, on_closed, NULL);
  while (!engine_closed)
    uv_run(&loop, UV_RUN_ONCE);
  engine_closed = 0;
}

/* base + path, in one of 8 rotating buffers: good for the next 7 calls. */
static FIXTURE_UNUSED char *fixture_url(const char *path) {
  static char buf[8][128];
  static int k;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof(buf[k]), "%s%s", base, path);
  return buf[k];
}

/* Runs the loop until *calls is no longer 0 (a done callback counts there). */
static FIXTURE_UNUSED void fixture_run_until(const int *calls) {
  while (*calls == 0)
    uv_run(&loop, UV_RUN_ONCE);
}

#endif
