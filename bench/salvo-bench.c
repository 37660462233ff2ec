/* salvo-bench: load through the salvo engine, one engine per thread.
 *
 *   salvo-bench [OPTIONS] URL
 *     -c N              requests in flight per thread (closed loop) or at most (open loop) (64)
 *     -n N              total requests (100000), or -D SECONDS of load
 *     -t N              threads, each with its own loop and engine (1)
 *     --rate R          open loop: R requests per second in all, on a fixed schedule; latency is
 *                       measured from each request's scheduled time (no coordinated omission)
 *     --ramp A:B:S      open loop: the rate goes from A to B over S seconds, then stays at B
 *     --http1.1|--http2 -m STREAMS  --connections N  --cacert FILE  --insecure
 *     --no-request-id   send no X-Request-ID (on by default, as in the engine)
 *     --json            the report as one JSON object
 *     --report FILE     a self-contained HTML page: latency percentiles and throughput over time
 *
 * Timeouts, retries and the request id stay at the engine's defaults: this
 * measures the engine as users run it. */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <curl/curl.h>
#include <salvo/salvo.h>

#include "histogram.h"

#define MAX_SECONDS 3600
#define NERRORS 32

typedef struct {
  /* settings */
  int index;
  long total;              /* this thread's share; -1 with a duration */
  double duration_s;       /* 0 = by count */
  double rate;             /* open loop: this thread's share, 0 = closed loop */
  double ramp_from, ramp_to, ramp_s;
  int open_loop;           /* --rate or --ramp: requests go out on a schedule */
  long concurrency;
  /* state */
  uv_loop_t loop;
  salvo_engine_t *engine;
  uv_timer_t tick;
  uint64_t start_ns;
  long scheduled;          /* open loop: requests whose time has come */
  long submitted, completed, ok;
  uint64_t errors[NERRORS];
  uint64_t retries;
  uint64_t per_second[MAX_SECONDS];
  histogram_t hist;
  int stopping;
  salvo_host_stats_t host;  /* the target host's stats when the run ended */
} worker_t;

static const char *url;
static salvo_engine_opts_t opts;

static void submit_at(worker_t *w, uint64_t scheduled_ns);

static int done_enough(worker_t *w) {
  if (w->duration_s > 0)
    return (double)(uv_hrtime() - w->start_ns) / 1e9 >= w->duration_s;
  return w->submitted >= w->total;
}

static void finish_if_done(worker_t *w) {
  if (!w->stopping && done_enough(w) && w->completed == w->submitted) {
    w->stopping = 1;
    salvo_engine_host_stats(w->engine, 0, &w->host); /* one URL: one host */
    uv_timer_stop(&w->tick);
    uv_close((uv_handle_t *)&w->tick, NULL);
    salvo_engine_close(w->engine, NULL, NULL);
  }
}

typedef struct {
  worker_t *w;
  uint64_t scheduled_ns;   /* open loop: when it should have been sent */
} tag_t;

static void done(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  (void)req;
  tag_t *tag = ud;
  worker_t *w = tag->w;
  uint64_t now = uv_hrtime();
  /* closed loop: from submit; open loop: from the scheduled send time */
  uint64_t us = tag->scheduled_ns ? (now - tag->scheduled_ns) / 1000 : r->elapsed_us;
  free(tag);
  w->completed++;
  hist_add(&w->hist, us);
  size_t sec = (size_t)((now - w->start_ns) / 1000000000ULL);
  if (sec < MAX_SECONDS)
    w->per_second[sec]++;
  if (r->error == 0 && r->status >= 200 && r->status < 400)
    w->ok++;
  else
    w->errors[r->error == 0 ? 0 : (-r->error < NERRORS ? -r->error : 0)]++;
  if (r->attempts > 1)
    w->retries += r->attempts - 1;
  if (!w->open_loop && !done_enough(w) && !w->stopping)
    submit_at(w, 0);
  finish_if_done(w);
}

static void submit_at(worker_t *w, uint64_t scheduled_ns) {
  salvo_request_t *req;
  tag_t *tag = malloc(sizeof(*tag));
  tag->w = w;
  tag->scheduled_ns = scheduled_ns;
  int rc = salvo_request_new(w->engine, "GET", url, &req);
  if (rc == 0 && (rc = salvo_request_submit(req, done, tag)) != 0)
    salvo_request_free(req);
  if (rc != 0) {
    fprintf(stderr, "salvo-bench: %s: %s\n", url, salvo_strerror(rc));
    exit(2);
  }
  w->submitted++;
}

/* Requests due by |t| seconds into the run, on the (ramped) schedule. */
static double due_by(const worker_t *w, double t) {
  if (w->ramp_s <= 0)
    return w->rate * t;
  double a = w->ramp_from, b = w->ramp_to, s = w->ramp_s;
  if (t <= s)
    return a * t + (b - a) * t * t / (2 * s);
  return (a + b) * s / 2 + b * (t - s);
}

/* Inverse of due_by for the k-th request: its scheduled time, in seconds. */
static double time_of(const worker_t *w, double k) {
  if (w->ramp_s <= 0)
    return k / w->rate;
  double a = w->ramp_from, b = w->ramp_to, s = w->ramp_s;
  double at_s = (a + b) * s / 2;
  if (k > at_s)
    return s + (k - at_s) / b;
  double c = (b - a) / (2 * s);
  if (fabs(c) < 1e-12)
    return k / a;
  return (-a + sqrt(a * a + 4 * c * k)) / (2 * c);
}

static void tick(uv_timer_t *t) {
  worker_t *w = t->data;
  double elapsed = (double)(uv_hrtime() - w->start_ns) / 1e9;
  long due = (long)floor(due_by(w, elapsed));
  while (w->scheduled < due && !done_enough(w)) {
    w->scheduled++;
    uint64_t at = w->start_ns + (uint64_t)(time_of(w, (double)w->scheduled) * 1e9);
    submit_at(w, at);
  }
  finish_if_done(w);
}

/* salvo's own messages (a warning about an insecure setting, ...): on stderr. */
static void log_to_stderr(salvo_engine_t *engine, salvo_log_level_t level, const char *message,
                          void *user_data) {
  (void)engine;
  (void)user_data;
  fprintf(stderr, "salvo: %s: %s\n", salvo_log_level_name(level), message);
}

static void worker_run(void *arg) {
  worker_t *w = arg;
  uv_loop_init(&w->loop);
  hist_init(&w->hist);
  salvo_engine_opts_t o = opts;
  o.max_in_flight = (size_t)w->concurrency;
  o.log_cb = log_to_stderr;
  if (salvo_engine_new(&w->loop, &o, &w->engine) != 0) {
    fprintf(stderr, "salvo-bench: cannot start an engine\n");
    exit(2);
  }
  w->start_ns = uv_hrtime();
  uv_timer_init(&w->loop, &w->tick);
  w->tick.data = w;
  if (w->open_loop) {
    uv_timer_start(&w->tick, tick, 0, 1);
  } else {
    for (long i = 0; i < w->concurrency && !done_enough(w); i++)
      submit_at(w, 0);
    uv_timer_start(&w->tick, tick, 100, 100); /* ends a -D run */
  }
  uv_run(&w->loop, UV_RUN_DEFAULT);
  uv_loop_close(&w->loop);
}

/* ------------------------------------------------------------ report */

static const double pcts[] = {50, 75, 90, 95, 99, 99.9, 99.99, 100};
#define NPCTS (sizeof(pcts) / sizeof(pcts[0]))

static void html_report(const char *path, const histogram_t *h, const uint64_t *per_second,
                        size_t seconds, double rps) {
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    fprintf(stderr, "salvo-bench: --report: cannot write %s\n", path);
    return;
  }
  const int W = 640, H = 300, L = 60, B = 40;
  fprintf(f, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>salvo-bench</title>"
             "<style>body{font-family:sans-serif;margin:24px}svg{background:#fafafa;border:1px "
             "solid #ddd}text{font-size:11px}</style></head><body>\n");
  fprintf(f, "<h1>salvo-bench</h1><p>%s<br>%" PRIu64 " requests, %.0f req/s</p>\n", url, h->n, rps);
  /* latency by percentile, x on a log scale of 1/(1-p) */
  double maxms = (double)h->max_us / 1000.0;
  if (maxms <= 0)
    maxms = 1;
  fprintf(f, "<h2>Latency by percentile</h2><svg width=\"%d\" height=\"%d\">", W + L + 20, H + B + 20);
  fprintf(f, "<polyline fill=\"none\" stroke=\"#c0392b\" stroke-width=\"2\" points=\"");
  for (int i = 0; i <= 400; i++) {
    double p = 100.0 * (1.0 - pow(10.0, -5.0 * i / 400.0)); /* 0 .. 99.999 */
    double x = L + (double)W * i / 400.0;
    double y = 10 + H - (double)H * ((double)hist_percentile_us(h, p) / 1000.0) / maxms;
    fprintf(f, "%.1f,%.1f ", x, y);
  }
  fprintf(f, "\"/>");
  const char *ticks[] = {"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"};
  for (int i = 0; i <= 5; i++)
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>", L + W * i / 5, H + 30,
            ticks[i]);
  for (int i = 0; i <= 4; i++)
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.1f ms</text>", L - 6,
            10 + H - H * i / 4 + 4, maxms * i / 4);
  fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\"/></svg>\n", L, 10 + H,
          L + W, 10 + H);
  /* throughput over time */
  uint64_t peak = 1;
  for (size_t s = 0; s < seconds; s++)
    if (per_second[s] > peak)
      peak = per_second[s];
  fprintf(f, "<h2>Throughput over time</h2><svg width=\"%d\" height=\"%d\">", W + L + 20, H + B + 20);
  fprintf(f, "<polyline fill=\"none\" stroke=\"#2c7fb8\" stroke-width=\"2\" points=\"");
  for (size_t s = 0; s < seconds; s++) {
    double x = L + (seconds > 1 ? (double)W * (double)s / (double)(seconds - 1) : 0);
    double y = 10 + H - (double)H * (double)per_second[s] / (double)peak;
    fprintf(f, "%.1f,%.1f ", x, y);
  }
  fprintf(f, "\"/>");
  for (int i = 0; i <= 4; i++)
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.0f/s</text>", L - 6,
            10 + H - H * i / 4 + 4, (double)peak * i / 4);
  fprintf(f, "<text x=\"%d\" y=\"%d\">0 s</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">%zu s"
             "</text></svg>\n", L, H + 30, L + W, H + 30, seconds);
  fprintf(f, "<h2>Percentiles</h2><table>");
  for (size_t i = 0; i < NPCTS; i++)
    fprintf(f, "<tr><td>p%g</td><td>%.3f ms</td></tr>", pcts[i],
            (double)hist_percentile_us(h, pcts[i]) / 1000.0);
  fprintf(f, "</table></body></html>\n");
  fclose(f);
}

/* ------------------------------------------------------------ main */

static void usage(FILE *f) {
  fprintf(f, "usage: salvo-bench [-n TOTAL | -D SECONDS] [-c CONCURRENCY] [-t THREADS]\n"
             "       [--rate R | --ramp FROM:TO:SECONDS] [--http1.1|--http2] [-m STREAMS]\n"
             "       [--connections N] [--cacert FILE] [--insecure] [--no-request-id] [--json]\n"
             "       [--max-per-host N] [--adaptive-concurrency] [--report FILE.html] URL\n");
}

static double number(const char *opt, const char *arg) {
  char *end;
  double v = strtod(arg, &end);
  if (*arg == '\0' || *end != '\0' || !(v >= 0)) {
    fprintf(stderr, "salvo-bench: %s needs a non-negative number, got '%s'\n", opt, arg);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  salvo_engine_opts_init(&opts);
  long total = 100000, concurrency = 64, threads = 1;
  double duration = 0, rate = 0, ramp_from = 0, ramp_to = 0, ramp_s = 0;
  int json = 0;
  const char *report = NULL;
  static const struct option longopts[] = {
      {"http1.1", no_argument, NULL, '1'},       {"http2", no_argument, NULL, '2'},
      {"connections", required_argument, NULL, 'C'}, {"cacert", required_argument, NULL, 'A'},
      {"insecure", no_argument, NULL, 'k'},      {"rate", required_argument, NULL, 'r'},
      {"ramp", required_argument, NULL, 'R'},    {"json", no_argument, NULL, 'j'},
      {"report", required_argument, NULL, 'o'},  {"help", no_argument, NULL, 'h'},
      {"no-request-id", no_argument, NULL, 'I'},
      {"max-per-host", required_argument, NULL, 'P'},
      {"adaptive-concurrency", no_argument, NULL, 'a'},
      {NULL, 0, NULL, 0}};
  int opt;
  while ((opt = getopt_long(argc, argv, "n:c:m:t:D:h", longopts, NULL)) != -1) {
    switch (opt) {
    case 'n':
      total = (long)number("-n", optarg);
      break;
    case 'c':
      concurrency = (long)number("-c", optarg);
      break;
    case 't':
      threads = (long)number("-t", optarg);
      break;
    case 'D':
      duration = number("-D", optarg);
      break;
    case 'm':
      opts.max_streams = (long)number("-m", optarg);
      break;
    case 'C':
      opts.max_host_connections = (long)number("--connections", optarg);
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
    case 'r':
      rate = number("--rate", optarg);
      break;
    case 'R':
      if (sscanf(optarg, "%lf:%lf:%lf", &ramp_from, &ramp_to, &ramp_s) != 3 || ramp_s <= 0 ||
          ramp_from < 0 || ramp_to <= 0) {
        fprintf(stderr, "salvo-bench: --ramp needs FROM:TO:SECONDS, got '%s'\n", optarg);
        return 2;
      }
      break;
    case 'j':
      json = 1;
      break;
    case 'I':
      opts.retry.request_id_header[0] = '\0';
      break;
    case 'P':
      opts.hosts.max_in_flight = (unsigned)number("--max-per-host", optarg);
      break;
    case 'a':
      opts.hosts.adaptive_concurrency = 1;
      break;
    case 'o':
      report = optarg;
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (optind != argc - 1 || concurrency < 1 || threads < 1 || threads > 64 ||
      (total < 1 && duration <= 0)) {
    usage(stderr);
    return 2;
  }
  url = argv[optind];
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT); /* once, before the threads */

  worker_t *workers = calloc((size_t)threads, sizeof(*workers));
  uv_thread_t *tids = calloc((size_t)threads, sizeof(*tids));
  for (long i = 0; i < threads; i++) {
    worker_t *w = &workers[i];
    w->index = (int)i;
    w->total = duration > 0 ? -1 : total / threads + (i < total % threads);
    w->duration_s = duration;
    w->rate = rate / (double)threads;
    w->ramp_from = ramp_from / (double)threads;
    w->ramp_to = ramp_to / (double)threads;
    w->ramp_s = ramp_s;
    w->open_loop = rate > 0 || ramp_s > 0;
    w->concurrency = concurrency;
  }
  uint64_t t0 = uv_hrtime();
  for (long i = 0; i < threads; i++)
    uv_thread_create(&tids[i], worker_run, &workers[i]);
  for (long i = 0; i < threads; i++)
    uv_thread_join(&tids[i]);
  double secs = (double)(uv_hrtime() - t0) / 1e9;

  static histogram_t all;
  hist_init(&all);
  static uint64_t per_second[MAX_SECONDS];
  long completed = 0, ok = 0;
  uint64_t errors[NERRORS] = {0}, retries = 0;
  size_t seconds = (size_t)ceil(secs);
  if (seconds > MAX_SECONDS)
    seconds = MAX_SECONDS;
  for (long i = 0; i < threads; i++) {
    worker_t *w = &workers[i];
    hist_merge(&all, &w->hist);
    completed += w->completed;
    ok += w->ok;
    retries += w->retries;
    for (int e = 0; e < NERRORS; e++)
      errors[e] += w->errors[e];
    for (size_t s = 0; s < seconds; s++)
      per_second[s] += w->per_second[s];
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double rps = (double)completed / secs;
  if (json) {
    printf("{\"url\":\"%s\",\"threads\":%ld,\"concurrency\":%ld,\"requests\":%ld,\"ok\":%ld,"
           "\"seconds\":%.3f,\"throughput\":%.1f,\"retries\":%" PRIu64 ",\"latency_ms\":{",
           url, threads, concurrency, completed, ok, secs, rps, retries);
    for (size_t i = 0; i < NPCTS; i++)
      printf("%s\"p%g\":%.3f", i ? "," : "", pcts[i], (double)hist_percentile_us(&all, pcts[i]) / 1000.0);
    printf("},\"errors\":{");
    int first = 1;
    for (int e = 0; e < NERRORS; e++)
      if (errors[e]) {
        printf("%s\"%s\":%" PRIu64, first ? "" : ",", e == 0 ? "http_status" : salvo_err_name(-e),
               errors[e]);
        first = 0;
      }
    printf("},\"max_rss_kib\":%ld}\n", ru.ru_maxrss);
  } else {
    printf("url            %s\n", url);
    printf("requests       %ld in %.3f s, %ld thread(s), concurrency %ld%s\n", completed, secs,
           threads, concurrency, rate > 0 || ramp_s > 0 ? ", open loop" : "");
    printf("throughput     %.0f req/s\n", rps);
    printf("ok             %ld\n", ok);
    for (int e = 0; e < NERRORS; e++)
      if (errors[e])
        printf("error %-8s %" PRIu64 "\n", e == 0 ? "http_status" : salvo_err_name(-e), errors[e]);
    printf("retries        %" PRIu64 "\n", retries);
    printf("latency ms     p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
           hist_percentile_us(&all, 50) / 1000.0, hist_percentile_us(&all, 90) / 1000.0,
           hist_percentile_us(&all, 99) / 1000.0, hist_percentile_us(&all, 99.9) / 1000.0,
           all.max_us / 1000.0);
    if (threads == 1) { /* the host's own record: attempts on the wire, not time in salvo's queue */
      const salvo_host_stats_t *h = &workers[0].host;
      printf("on the wire ms p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", h->p50_us / 1000.0,
             h->p90_us / 1000.0, h->p99_us / 1000.0, h->max_us / 1000.0);
      if (h->limit_max > 0)
        printf("host limit     %u now, %u..%u over the run (adaptive)\n", h->limit, h->limit_min,
               h->limit_max);
    }
    printf("max RSS        %ld KiB\n", ru.ru_maxrss);
  }
  if (report) { /* whole seconds only: a last partial second would look like a drop */
    size_t whole = (size_t)secs;
    html_report(report, &all, per_second, whole > 0 && whole < seconds ? whole : seconds, rps);
  }
  free(workers);
  free(tids);
  return ok == completed ? 0 : 1;
}
