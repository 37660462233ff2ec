/* salvo-bench: closed-loop load through the salvo engine.
 *
 *   salvo-bench [-n TOTAL] [-c CONCURRENCY] [--http1.1|--http2]
 *               [--connections N] [-m STREAMS] [--cacert FILE] [--insecure] URL
 *
 * Keeps CONCURRENCY requests outstanding (each completion submits the next)
 * until TOTAL have completed, then prints throughput, latency percentiles,
 * errors by class and the connections libcurl opened. Timeouts and the
 * deadline stay at the engine defaults: this measures the engine as users run it.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <salvo/salvo.h>

static const char *url;
static salvo_engine_t *engine;
static long total = 100000, concurrency = 64;
static long submitted, completed, ok;
static long errors[64];
static long statuses[600];
static uint32_t *latency_us;
static salvo_engine_stats_t final_stats;

static void submit_one(void);

static void done(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  (void)req;
  (void)ud;
  latency_us[completed++] = (uint32_t)(r->elapsed_us > UINT32_MAX ? UINT32_MAX : r->elapsed_us);
  if (r->error != 0)
    errors[-r->error < 64 ? -r->error : 0]++;
  else if (r->status >= 0 && r->status < 600)
    statuses[r->status]++;
  if (r->error == 0 && r->status >= 200 && r->status < 400)
    ok++;
  if (submitted < total)
    submit_one();
  if (completed == total) {
    salvo_engine_stats(engine, &final_stats);
    salvo_engine_close(engine, NULL, NULL);
  }
}

static void submit_one(void) {
  salvo_request_t *req;
  int rc = salvo_request_new(engine, "GET", url, &req);
  if (rc == 0 && (rc = salvo_request_submit(req, done, NULL)) != 0)
    salvo_request_free(req);
  if (rc != 0) {
    fprintf(stderr, "salvo-bench: %s: %s\n", url, salvo_strerror(rc));
    exit(2);
  }
  submitted++;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static double pct(double p) {
  size_t i = (size_t)(p / 100.0 * (double)(completed - 1) + 0.5);
  return latency_us[i] / 1000.0;
}

static void usage(FILE *f) {
  fprintf(f, "usage: salvo-bench [-n TOTAL] [-c CONCURRENCY] [--http1.1|--http2] "
             "[--connections N] [-m STREAMS] [--cacert FILE] [--insecure] URL\n");
}

int main(int argc, char **argv) {
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  static const struct option longopts[] = {
      {"http1.1", no_argument, NULL, '1'},     {"http2", no_argument, NULL, '2'},
      {"connections", required_argument, NULL, 'C'}, {"cacert", required_argument, NULL, 'A'},
      {"insecure", no_argument, NULL, 'k'},    {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  int opt;
  while ((opt = getopt_long(argc, argv, "n:c:m:h", longopts, NULL)) != -1) {
    char *end = NULL;
    switch (opt) {
    case 'n':
      total = strtol(optarg, &end, 10);
      break;
    case 'c':
      concurrency = strtol(optarg, &end, 10);
      break;
    case 'm':
      opts.max_streams = strtol(optarg, &end, 10);
      break;
    case 'C':
      opts.max_host_connections = strtol(optarg, &end, 10);
      break;
    case '1':
      opts.http_version = SALVO_HTTP_1_1;
      break;
    case '2':
      opts.http_version = SALVO_HTTP_2;
      break;
    case 'A':
      opts.ca_file = optarg;
      break;
    case 'k':
      opts.insecure_skip_verify = 1;
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
    if (end != NULL && (*end != '\0' || end == optarg)) {
      fprintf(stderr, "salvo-bench: -%c needs a number, got '%s'\n", opt, optarg);
      return 2;
    }
  }
  if (optind != argc - 1 || total < 1 || concurrency < 1) {
    usage(stderr);
    return 2;
  }
  url = argv[optind];
  opts.max_in_flight = (size_t)concurrency;
  signal(SIGPIPE, SIG_IGN);
  latency_us = malloc(sizeof(*latency_us) * (size_t)total);
  int rc = salvo_engine_new(uv_default_loop(), &opts, &engine);
  if (rc != 0) {
    fprintf(stderr, "salvo-bench: engine: %s\n", salvo_strerror(rc));
    return 2;
  }
  for (long i = 0; i < concurrency && i < total; i++)
    submit_one();
  uint64_t start = uv_hrtime();
  uv_run(uv_default_loop(), UV_RUN_DEFAULT);
  double secs = (double)(uv_hrtime() - start) / 1e9;
  qsort(latency_us, (size_t)completed, sizeof(*latency_us), cmp_u32);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);

  printf("url            %s\n", url);
  printf("requests       %ld in %.3f s, concurrency %ld\n", completed, secs, concurrency);
  printf("throughput     %.0f req/s\n", (double)completed / secs);
  printf("ok             %ld\n", ok);
  for (int s = 0; s < 600; s++)
    if (statuses[s])
      printf("status %-7d %ld\n", s, statuses[s]);
  for (int e = 0; e < 64; e++)
    if (errors[e])
      printf("error %-8s %ld\n", salvo_err_name(-e), errors[e]);
  printf("latency ms     p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", pct(50), pct(90), pct(99),
         pct(100));
  printf("connections    %lu opened\n", (unsigned long)final_stats.connections_opened);
  printf("max RSS        %ld KiB\n", ru.ru_maxrss);
  free(latency_us);
  return ok == total ? 0 : 1;
}
