/* uneven-hosts: many hosts of uneven speed on loopback, for the scheduling
 * benchmark (bench/uneven).
 *
 *   uneven-hosts HOSTS SLOW_PERCENT SLOW_MS REQUESTS URL_FILE [LIFETIME_S]
 *
 * Starts HOSTS salvo-faultd servers on 127.0.0.1 (plain HTTP, ports the OS
 * picks), each its own host. Every (100 / SLOW_PERCENT)-th host is slow: its
 * URLs are /sleep/SLOW_MS; the others' are /ok. Writes REQUESTS URLs to
 * URL_FILE, host by host in turn (request i goes to host i mod HOSTS), prints
 * "ready" on stdout and serves until LIFETIME_S (600) or SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "faultd.h"

static faultd_t **servers;
static long nservers;
static uv_signal_t sigterm;
static uv_timer_t lifetime;

static void stop(void) {
  for (long i = 0; i < nservers; i++)
    faultd_close(servers[i]);
  uv_signal_stop(&sigterm);
  uv_close((uv_handle_t *)&sigterm, NULL);
  uv_timer_stop(&lifetime);
  uv_close((uv_handle_t *)&lifetime, NULL);
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)s;
  (void)signum;
  stop();
}

static void on_lifetime(uv_timer_t *t) {
  (void)t;
  stop();
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: uneven-hosts HOSTS SLOW_PERCENT SLOW_MS REQUESTS URL_FILE [LIFETIME_S]\n");
    return 2;
  }
  long hosts = atol(argv[1]), slow_pct = atol(argv[2]), slow_ms = atol(argv[3]);
  long requests = atol(argv[4]);
  long life = argc > 6 ? atol(argv[6]) : 600;
  if (hosts < 1 || hosts > 10000 || slow_pct < 0 || slow_pct > 100 || slow_ms < 0 ||
      requests < 1 || life < 1) {
    fprintf(stderr, "uneven-hosts: a value is out of range\n");
    return 2;
  }
  long every = slow_pct > 0 ? 100 / slow_pct : 0;
  uv_loop_t *loop = uv_default_loop();
  servers = calloc((size_t)hosts, sizeof(*servers));
  int *ports = calloc((size_t)hosts, sizeof(*ports));
  if (servers == NULL || ports == NULL)
    return 1;
  for (long i = 0; i < hosts; i++) {
    faultd_opts_t o;
    faultd_opts_init(&o);
    for (int p = 0; p < FAULTD_PORTS; p++)
      o.port[p] = p == FAULTD_PORT_HTTP ? 0 : -1;
    const char *err = NULL;
    if (faultd_start(loop, &o, &servers[i], &err) != 0) {
      fprintf(stderr, "uneven-hosts: server %ld: %s\n", i, err ? err : "cannot start");
      return 1;
    }
    nservers++;
    ports[i] = faultd_port(servers[i], FAULTD_PORT_HTTP);
  }
  FILE *f = fopen(argv[5], "w");
  if (f == NULL) {
    perror(argv[5]);
    return 1;
  }
  for (long i = 0; i < requests; i++) {
    long h = i % hosts;
    if (every > 0 && h % every == 0)
      fprintf(f, "http://127.0.0.1:%d/sleep/%ld\n", ports[h], slow_ms);
    else
      fprintf(f, "http://127.0.0.1:%d/ok\n", ports[h]);
  }
  fclose(f);
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_timer_init(loop, &lifetime);
  uv_timer_start(&lifetime, on_lifetime, (uint64_t)life * 1000, 0);
  printf("ready\n");
  fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  free(servers);
  free(ports);
  return 0;
}
