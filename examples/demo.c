/* salvo-demo: a batch of requests against a built-in misbehaving server on
 * 127.0.0.1 (no network needed), showing how each failure is classified.
 *
 *   salvo-demo [-n SCALE]   (SCALE multiplies the batch, default 1)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <salvo/salvo.h>

#include "testsrv.h"

typedef struct {
  const char *what;   /* what the server does */
  const char *path;   /* NULL: refused port, "" : dropped SYNs */
  int count;
  salvo_timeouts_t timeouts;
  int seen[32];       /* per outcome index */
} group_t;

static void closed(salvo_engine_t *e, void *ud);

static int pending;
static int completed;
static salvo_engine_t *engine;
static testsrv_t *srv;
static unsigned server_requests, server_connections;

static const char *labels[32];
static int nlabels;

static void closed(salvo_engine_t *e, void *ud) {
  (void)e;
  (void)ud;
  testsrv_close(srv); /* the loop ends once the server has closed too */
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
  completed++;
  if (--pending == 0) {
    server_requests = testsrv_count(srv, "");
    server_connections = testsrv_connections(srv);
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
  if (testsrv_start(&loop, &srv) != 0) {
    fprintf(stderr, "salvo-demo: cannot listen on 127.0.0.1\n");
    return 1;
  }
  int blackhole_fds[4];
  int refused_port = test_refused_port();
  int blackhole_port = test_blackhole_port(blackhole_fds);

  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  if (salvo_engine_new(&loop, &opts, &engine) != 0)
    return 1;

  group_t groups[] = {
      {"answers 200 at once", "/ok", 1500, {0}, {0}},
      {"answers 200 after 200 ms", "/sleep/200", 100, {0}, {0}},
      {"answers 503", "/status/503", 150, {0}, {0}},
      {"reads the request, never answers", "/hang", 100, {0}, {0}},
      {"sends one byte every 100 ms", "/drip/100", 50, {0}, {0}},
      {"closes without a response", "/close", 50, {0}, {0}},
      {"resets the connection", "/reset", 50, {0}, {0}},
      {"sends half the body and closes", "/truncate", 50, {0}, {0}},
      {"nothing listens (port refused)", NULL, 100, {0}, {0}},
      {"drops SYNs (accept queue full)", "", 20, {0}, {0}},
  };
  size_t ngroups = sizeof(groups) / sizeof(groups[0]);
  for (size_t i = 0; i < ngroups; i++) {
    salvo_timeouts_init(&groups[i].timeouts);
    groups[i].timeouts.idle_ms = 500;
    groups[i].timeouts.attempt_ms = 1500;
    groups[i].timeouts.connect_ms = 500;
  }

  int total = 0;
  uint64_t start = uv_hrtime();
  for (size_t i = 0; i < ngroups; i++) {
    group_t *g = &groups[i];
    char url[128];
    if (g->path == NULL)
      snprintf(url, sizeof(url), "http://127.0.0.1:%d/", refused_port);
    else if (g->path[0] == '\0')
      snprintf(url, sizeof(url), "http://127.0.0.1:%d/", blackhole_port);
    else
      snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", testsrv_port(srv), g->path);
    for (int k = 0; k < g->count * scale; k++) {
      salvo_request_t *req;
      if (salvo_request_new(engine, "GET", url, &req) != 0 ||
          salvo_request_set_timeouts(req, &g->timeouts) != 0 ||
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
         total, opts.max_in_flight, testsrv_port(srv));
  printf("timeouts: connect 500 ms, idle 500 ms, attempt 1500 ms\n\n");
  uv_run(&loop, UV_RUN_DEFAULT);
  double secs = (double)(uv_hrtime() - start) / 1e9;
  test_close_fds(blackhole_fds);

  printf("%-36s %6s  %s\n", "the server", "count", "what salvo reported");
  for (size_t i = 0; i < ngroups; i++) {
    group_t *g = &groups[i];
    int first = 1;
    for (int l = 0; l < nlabels; l++) {
      if (g->seen[l] == 0)
        continue;
      printf("%-36s %6d  %s\n", first ? g->what : "", g->seen[l], labels[l]);
      first = 0;
    }
  }
  printf("\n%d of %d requests completed in %.2f s; the server counted %u "
         "requests on %u connections\n",
         completed, total, secs, server_requests, server_connections);
  int rc = uv_loop_close(&loop);
  for (int l = 0; l < nlabels; l++)
    free((void *)labels[l]);
  return completed == total && rc == 0 ? 0 : 1;
}
