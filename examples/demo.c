/* salvo-demo: a batch of requests against a built-in misbehaving server on
 * 127.0.0.1 (no network needed), showing how each failure is classified.
 *
 *   salvo-demo [-n SCALE]   (SCALE multiplies the batch, default 1)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <salvo/salvo.h>

#include "faultd.h"

typedef struct {
  const char *what;   /* what the server does */
  const char *method;
  const char *path;   /* NULL: refused port, "" : dropped SYNs; "%d" takes a key */
  int count;
  int seen[32];       /* per outcome index */
  unsigned attempts;  /* summed over the group */
  char reason[128];   /* the last request's final decision */
} group_t;

static void closed(salvo_engine_t *e, void *ud);

static int pending;
static int completed;
static salvo_engine_t *engine;
static faultd_t *srv;
static unsigned server_requests, server_connections;

static const char *labels[32];
static int nlabels;

static void closed(salvo_engine_t *e, void *ud) {
  (void)e;
  (void)ud;
  faultd_close(srv); /* the loop ends once the server has closed too */
}

static int label_index(const char *label) {
  for (int i = 0; i < nlabels; i++)
    if (strcmp(labels[i], label) == 0)
      return i;
  labels[nlabels] = strdup(label);
  return nlabels++;
}

static void done(salvo_request_t *req, const salvo_result_t *r, void *user_data) {
  (void)req;
  group_t *g = user_data;
  char label[64];
  if (r->error == 0)
    snprintf(label, sizeof(label), "HTTP %ld", r->status);
  else
    snprintf(label, sizeof(label), "%s", salvo_err_name(r->error));
  g->seen[label_index(label)]++;
  g->attempts += r->attempts;
  if (r->history_len > 0)
    snprintf(g->reason, sizeof(g->reason), "%s", r->history[r->history_len - 1].reason);
  else
    snprintf(g->reason, sizeof(g->reason), "%s", salvo_stop_reason_name(r->stop_reason));
  completed++;
  if (--pending == 0) {
    server_requests = faultd_count(srv, "");
    server_connections = faultd_connections(srv);
    salvo_engine_close(engine, closed, NULL);
  }
}

int main(int argc, char **argv) {
  int scale = 1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
      scale = atoi(argv[++i]);
    } else {
      fprintf(stderr, "usage: %s [-n SCALE]\n", argv[0]);
      return 2;
    }
  }
  if (scale < 1) {
    fprintf(stderr, "salvo-demo: -n must be a positive integer\n");
    return 2;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  if (faultd_start(&loop, NULL, &srv, NULL) != 0) {
    fprintf(stderr, "salvo-demo: cannot listen on 127.0.0.1\n");
    return 1;
  }
  int blackhole_fds[4];
  int refused_port = test_refused_port();
  int blackhole_port = test_blackhole_port(blackhole_fds);

  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.retry.max_attempts = 3;     /* default 4 */
  opts.retry.backoff_base_ms = 100; /* default 250 */
  if (salvo_engine_new(&loop, &opts, &engine) != 0)
    return 1;

  group_t groups[] = {
      {"answers 200 at once", "GET", "/ok", 1500, {0}, 0, ""},
      {"answers 200 after 200 ms", "GET", "/sleep/200", 100, {0}, 0, ""},
      {"fails twice with 503, then 200", "GET", "/fail-until/3/flaky%d", 200, {0}, 0, ""},
      {"429 + Retry-After: 1, then 200", "POST", "/fail-until/2/busy%d?status=429&retry-after=1",
       50, {0}, 0, ""},
      {"resets twice, then 200", "GET", "/fail-until/3/reset%d?fault=reset", 100, {0}, 0, ""},
      {"always 503", "GET", "/status/503", 50, {0}, 0, ""},
      {"503 + Retry-After: 3600", "GET", "/status/503?retry-after=3600", 20, {0}, 0, ""},
      {"answers 404", "GET", "/status/404", 50, {0}, 0, ""},
      {"reads the request, never answers", "GET", "/hang", 50, {0}, 0, ""},
      {"sends one byte every 100 ms", "GET", "/drip/100000/100", 20, {0}, 0, ""},
      {"resets the connection (a POST)", "POST", "/reset", 50, {0}, 0, ""},
      {"sends half the body and closes", "GET", "/truncate", 50, {0}, 0, ""},
      {"nothing listens (port refused)", "POST", NULL, 50, {0}, 0, ""},
      {"drops SYNs (accept queue full)", "GET", "", 20, {0}, 0, ""},
  };
  size_t ngroups = sizeof(groups) / sizeof(groups[0]);
  salvo_timeouts_t timeouts;
  salvo_timeouts_init(&timeouts);
  timeouts.idle_ms = 300;
  timeouts.attempt_ms = 800;
  timeouts.connect_ms = 300;

  int total = 0;
  uint64_t start = uv_hrtime();
  for (size_t i = 0; i < ngroups; i++) {
    group_t *g = &groups[i];
    for (int k = 0; k < g->count * scale; k++) {
      char path[160], url[256];
      snprintf(path, sizeof(path), g->path != NULL ? g->path : "", k);
      if (g->path == NULL)
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/", refused_port);
      else if (g->path[0] == '\0')
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/", blackhole_port);
      else
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", faultd_port(srv, FAULTD_PORT_HTTP), path);
      salvo_request_t *req;
      if (salvo_request_new(engine, g->method, url, &req) != 0 ||
          salvo_request_set_timeouts(req, &timeouts) != 0 ||
          salvo_request_submit(req, done, g) != 0) {
        fprintf(stderr, "salvo-demo: could not submit %s\n", url);
        return 1;
      }
      pending++;
      total++;
    }
  }
  printf("salvo-demo: %d requests, %zu in flight at most, against a misbehaving server on "
         "127.0.0.1:%d\n",
         total, opts.max_in_flight, faultd_port(srv, FAULTD_PORT_HTTP));
  printf("timeouts: connect 300 ms, idle 300 ms, attempt 800 ms; retries: up to 3 attempts,\n"
         "backoff from 100 ms with full jitter, Retry-After honoured up to 60 s\n\n");
  uv_run(&loop, UV_RUN_DEFAULT);
  double secs = (double)(uv_hrtime() - start) / 1e9;
  test_close_fds(blackhole_fds);

  printf("%-4s %-33s %5s  %-24s %8s  %s\n", "", "the server", "count", "what salvo reported",
         "attempts", "the last decision");
  for (size_t i = 0; i < ngroups; i++) {
    group_t *g = &groups[i];
    int first = 1, n = 0;
    for (int l = 0; l < nlabels; l++)
      n += g->seen[l];
    for (int l = 0; l < nlabels; l++) {
      if (g->seen[l] == 0)
        continue;
      if (first)
        printf("%-4s %-33s %5d  %-24s %8.1f  %s\n", g->method, g->what, g->seen[l], labels[l],
               n ? (double)g->attempts / n : 0.0, g->reason);
      else
        printf("%-4s %-33s %5d  %s\n", "", "", g->seen[l], labels[l]);
      first = 0;
    }
  }
  printf("\n%d of %d requests completed in %.2f s; the server counted %u requests on %u "
         "connections\n(attempts is the mean per request; POSTs that reached the server are not "
         "retried)\n",
         completed, total, secs, server_requests, server_connections);
  int rc = uv_loop_close(&loop);
  for (int l = 0; l < nlabels; l++)
    free((void *)labels[l]);
  return completed == total && rc == 0 ? 0 : 1;
}
