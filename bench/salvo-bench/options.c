/* salvo-bench's command line. Owner of bench_opts_t. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

static void usage(FILE *f) {
  fprintf(f,
    "usage: salvo-bench [OPTIONS] URL            load one URL\n"
    "       salvo-bench [OPTIONS] -i MIX.jsonl   load a request mix\n"
    "       salvo-bench --storm [OPTIONS] URL    a retry storm, once per retry policy\n"
    "       salvo-bench merge [--json] [--report F] [--hlog F] RESULT.json|LOG.hlog ...\n"
    "       salvo-bench compare [--report F] A.json B.json ...\n"
    "\n"
    "What to send:\n"
    "  -i, --input FILE       a mix: JSON lines {\"url\",\"method\",\"headers\",\"body\",\"weight\",\"name\"}\n"
    "                         (salvo-fetch's input format); each request is drawn by weight\n"
    "  -X, --method M         -H, --header 'Name: value'   -d, --data BODY   (with a URL)\n"
    "      --seed N           the draw's seed (1); shard K draws with N + K - 1\n"
    "How much, and when:\n"
    "  -n, --requests N       requests in all (100000 unless -D or --steps say otherwise)\n"
    "  -D, --duration T       stop sending after T (10s, 500ms, 2m or seconds)\n"
    "  -c, --concurrency N    closed loop: N users a thread, each sends, waits, sends again (64);\n"
    "                         open loop: at most N in flight a thread (the rest wait: late)\n"
    "      --think MS         closed loop: each user waits MS between its requests (0)\n"
    "      --rate R           open loop: R requests per second, on a fixed schedule; latency\n"
    "                         counts from each request's scheduled time (no coordinated omission)\n"
    "      --ramp A:B:T       open loop: from A to B per second over T, then B\n"
    "      --steps R:T,...    open loop: R per second for T, then the next; ends after the last\n"
    "      --spike R:AT:FOR   with --rate, --ramp or --steps: R per second from AT for FOR\n"
    "  -t, --threads N        threads, each with its own loop and engine; histograms merged (1)\n"
    "      --shard K/N        this process's share (1/N of the rate or the count) of N processes\n"
    "      --start-at UNIX_S  wait until then to start (shards on several machines together)\n"
    "HTTP and policy:\n"
    "      --http1.1 | --http2   -m, --streams N   --connections N\n"
    "      --cacert FILE      --insecure (no TLS verification: loud, and only when asked)\n"
    "      --no-request-id    send no X-Request-ID\n"
    "      --max-per-host N   --adaptive-concurrency\n"
    "      --retry-policy P   default (salvo's), none (1 attempt, Retry-After ignored), naive (5\n"
    "                         attempts, fixed 100 ms, no jitter, no budget, Retry-After ignored)\n"
    "                         or adaptive (default + adaptive concurrency)\n"
    "      --attempt-timeout MS   --deadline MS\n"
    "Output:\n"
    "      --json             the result as one JSON object on stdout, histograms included\n"
    "      --hlog FILE        an HdrHistogram interval log (one histogram per second, in us)\n"
    "      --report FILE      an HTML page (inline SVG): latency, throughput, errors, attempts\n"
    "                         over time, per-name table\n"
    "      --label NAME       the run's name in reports\n"
    "      --storm            overload then relief (--steps, default 2400:10s,400:20s) once per\n"
    "                         policy: none, naive, default, adaptive; --storm-json FILE keeps all four;\n"
    "                         a URL's {policy} becomes the policy's name (a server pool each)\n"
    "      --slo MS           --storm: latency has recovered when each second's p99 is under MS (1000)\n"
    "  -h, --help\n");
}

_Noreturn void bench_die_usage(const char *fmt, const char *arg) {
  fprintf(stderr, "salvo-bench: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(see salvo-bench --help)\n");
  exit(2);
}

static double number(const char *opt, const char *arg, double max) {
  char *end;
  double v = strtod(arg, &end);
  if (*arg == '\0' || *end != '\0' || !(v >= 0) || v > max || strpbrk(arg, "xXpP") != NULL) {
    fprintf(stderr, "salvo-bench: %s needs a number from 0 to %g, got '%s'\n", opt, max, arg);
    exit(2);
  }
  return v;
}

/* A whole number (counts): "1.9" is refused, not cut to 1. */
static double whole(const char *opt, const char *arg, double max) {
  double v = number(opt, arg, max);
  if (v != floor(v))
    bench_die_usage("%s needs a whole number", opt);
  return v;
}

/* Milliseconds for a loop timer: 0 (off) or at least 1, whole. */
static double millis(const char *opt, const char *arg, double max) {
  double v = number(opt, arg, max);
  if (v != floor(v) || (v > 0 && v < 1)) {
    fprintf(stderr, "salvo-bench: %s needs whole milliseconds (0 = off), got '%s'\n", opt, arg);
    exit(2);
  }
  return v;
}

static double duration(const char *opt, const char *arg) {
  const char *end;
  double v = shape_parse_duration(arg, &end);
  if (v <= 0 || *end != '\0' || v > 86400) {
    fprintf(stderr, "salvo-bench: %s needs a duration up to a day (10s, 500ms, 2m), got '%s'\n", opt, arg);
    exit(2);
  }
  return v;
}

const char *bench_policy_name(bench_policy_t p) {
  switch (p) {
  case POLICY_NONE:
    return "none";
  case POLICY_NAIVE:
    return "naive";
  case POLICY_ADAPTIVE:
    return "adaptive";
  default:
    return "default";
  }
}

void bench_apply_policy(salvo_engine_opts_t *e, bench_policy_t p) {
  switch (p) {
  case POLICY_NONE: /* a client with no retry logic: one attempt, and Retry-After means nothing */
    e->retry.max_attempts = 1;
    e->hosts.pause_on_retry_after = 0;
    break;
  case POLICY_NAIVE: /* what a hand-written retry loop does */
    e->retry.max_attempts = 5;
    e->retry.backoff_base_ms = 100;
    e->retry.backoff_multiplier = 1.0;
    e->retry.jitter = SALVO_JITTER_NONE;
    e->retry.respect_retry_after = 0;
    e->hosts.budget = 0;
    e->hosts.pause_on_retry_after = 0;
    break;
  case POLICY_ADAPTIVE:
    e->hosts.adaptive_concurrency = 1;
    break;
  default:
    break;
  }
}

static void add_header(bench_opts_t *o, const char *h) {
  if (strchr(h, ':') == NULL || strpbrk(h, "\r\n") != NULL)
    bench_die_usage("-H needs 'Name: value' on one line, got '%s'", h);
  char **n = realloc(o->headers, (o->nheaders + 2) * sizeof(char *));
  if (n == NULL)
    bench_die_usage("%s", "out of memory");
  o->headers = n;
  n[o->nheaders++] = (char *)h;
  n[o->nheaders] = NULL;
}

#define MAX_SPIKES 8

static int shape_opt(bench_opts_t *o, int opt, const char *arg, const char **spikes, size_t *nspikes) {
  char why[300];
  int rc = 0;
  if (opt == 'r') {
    double rate = number("--rate", arg, 1e7);
    if (rate <= 0)
      bench_die_usage("--rate needs a rate above 0, got '%s'", arg);
    rc = shape_constant(&o->shape, rate);
    snprintf(o->shape_text, sizeof(o->shape_text), "open loop, %g/s", rate);
  } else if (opt == 'R') {
    rc = shape_ramp(&o->shape, arg, why, sizeof(why));
    snprintf(o->shape_text, sizeof(o->shape_text), "open loop, ramp %s", arg);
  } else if (opt == 'S') {
    rc = shape_steps(&o->shape, arg, why, sizeof(why));
    snprintf(o->shape_text, sizeof(o->shape_text), "open loop, steps %s", arg);
  } else {
    if (*nspikes == MAX_SPIKES)
      bench_die_usage("at most 8 --spike, got more with '%s'", arg);
    spikes[(*nspikes)++] = arg;
  }
  if (rc != 0)
    bench_die_usage("%s", why);
  return 0;
}

/* What the flags left for after the loop: the checks that take several
 * flags together, and the defaults that depend on them. */
typedef struct {
  int shapes, policy_given;
  double attempt_ms, deadline_ms;
  const char **spikes;
  size_t nspikes;
} parsed_t;

static void after_parse(bench_opts_t *o, const parsed_t *p) {
  double attempt_ms = p->attempt_ms, deadline_ms = p->deadline_ms;
  if (o->input != NULL && (o->method != NULL || o->nheaders > 0 || o->body != NULL))
    bench_die_usage("%s", "-X, -H and -d go with a URL; in a mix (-i) each line says its own");
  if (p->shapes > 1)
    bench_die_usage("%s", "give one of --rate, --ramp and --steps (add --spike to any)");
  if (o->storm && (o->json || o->hlog != NULL))
    bench_die_usage("%s", "--storm writes its four results with --storm-json FILE, not --json or --hlog");
  if (o->storm) {
    if (p->policy_given)
      bench_die_usage("%s", "--storm runs every --retry-policy in turn; give neither");
    if (o->shape.n == 0) {
      char why[200];
      shape_steps(&o->shape, "2400:10s,400:20s", why, sizeof(why));
      snprintf(o->shape_text, sizeof(o->shape_text), "open loop, steps 2400:10s,400:20s");
    }
    if (!isfinite(o->shape.end_s) || o->shape.n < 3)
      bench_die_usage("%s", "--storm needs --steps OVERLOAD:T,RELIEF:T (or none, for the default)");
    o->overload_end_s = o->shape.seg[0].to_s;
    if (attempt_ms < 0)
      attempt_ms = 300;
    if (o->concurrency == 64)
      o->concurrency = 4000;
  } else if (o->storm_json != NULL) {
    bench_die_usage("%s", "--storm-json goes with --storm");
  }
  for (size_t i = 0; i < p->nspikes; i++) { /* in order: a later spike wins where they overlap */
    char why[300];
    if (shape_spike(&o->shape, p->spikes[i], why, sizeof(why)) != 0)
      bench_die_usage("%s", why);
    size_t len = strlen(o->shape_text);
    snprintf(o->shape_text + len, sizeof(o->shape_text) - len, ", spike %s", p->spikes[i]);
  }
  if (o->think_ms > 0 && o->shape.n > 0)
    bench_die_usage("%s", "--think is for a closed loop; --rate, --ramp and --steps are open loops");
  if (o->shape.n == 0)
    snprintf(o->shape_text, sizeof(o->shape_text), "closed loop, %ld users%s", o->concurrency,
             o->think_ms > 0 ? ", think time" : "");
  if (o->think_ms > 0) {
    size_t len = strlen(o->shape_text);
    snprintf(o->shape_text + len, sizeof(o->shape_text) - len, " %g ms", o->think_ms);
  }
  if (o->total == 0 && o->duration_s == 0 && !isfinite(o->shape.end_s))
    o->total = 100000;
  if (attempt_ms >= 0)
    o->engine.timeouts.attempt_ms = (uint64_t)attempt_ms;
  if (deadline_ms >= 0)
    o->engine.timeouts.deadline_ms = (uint64_t)deadline_ms;
  bench_apply_policy(&o->engine, o->policy);
  if (o->engine.insecure_skip_verify)
    fprintf(stderr, "salvo-bench: --insecure: TLS certificates are NOT verified\n");
}

/* One flag of the command line into *o (and what after_parse() needs into *p). */
static void flag(bench_opts_t *o, int opt, const char *arg, parsed_t *p) {
  switch (opt) {
  case 'n':
    o->total = (long)whole("-n", arg, 1e12);
    if (o->total < 1)
      bench_die_usage("-n needs at least 1, got '%s'", arg);
    break;
  case 'c':
    o->concurrency = (long)whole("-c", arg, 1e6);
    if (o->concurrency < 1)
      bench_die_usage("-c needs at least 1, got '%s'", arg);
    break;
  case 't':
    o->threads = (long)whole("-t", arg, 64);
    if (o->threads < 1)
      bench_die_usage("-t needs 1 to 64, got '%s'", arg);
    break;
  case 'D':
    o->duration_s = duration("-D", arg);
    break;
  case 'm':
    o->engine.max_streams = (long)whole("-m", arg, 1e6);
    break;
  case 'C':
    o->engine.max_host_connections = (long)whole("--connections", arg, 1e6);
    break;
  case '1':
    o->engine.http_version = SALVO_HTTP_1_1;
    break;
  case '2':
    o->engine.http_version = SALVO_HTTP_2;
    break;
  case 'A':
    o->engine.ca_file = arg;
    break;
  case 'k':
    o->engine.insecure_skip_verify = 1;
    break;
  case 'r':
  case 'R':
  case 'S':
  case 'P':
    p->shapes += opt != 'P';
    shape_opt(o, opt, arg, p->spikes, &p->nspikes);
    break;
  case 'T':
    o->think_ms = millis("--think", arg, 3600000);
    break;
  case 'j':
    o->json = 1;
    break;
  case 'L':
    o->hlog = arg;
    break;
  case 'o':
    o->report = arg;
    break;
  case 'I':
    o->engine.retry.request_id_header[0] = '\0';
    break;
  case 'M':
    o->engine.hosts.max_in_flight = (unsigned)whole("--max-per-host", arg, 1e6);
    break;
  case 'a':
    o->engine.hosts.adaptive_concurrency = 1;
    break;
  case 'i':
    o->input = arg;
    break;
  case 'X':
    o->method = arg;
    break;
  case 'H':
    add_header(o, arg);
    break;
  case 'd':
    o->body = arg;
    break;
  case 'e':
    o->seed = (uint64_t)whole("--seed", arg, 1e15);
    break;
  case 'K': {
    unsigned k, n;
    char tail;
    if (strspn(arg, "0123456789/") != strlen(arg) || strlen(arg) > 13 ||
        sscanf(arg, "%u/%u%c", &k, &n, &tail) != 2 || n < 1 || k < 1 || k > n || n > 100000)
      bench_die_usage("--shard needs K/N with 1 <= K <= N <= 100000, got '%s'", arg);
    o->shard_k = k;
    o->shard_n = n;
    break;
  }
  case 'Z':
    o->start_at = number("--start-at", arg, 1e11);
    if (o->start_at > (double)time(NULL) + 86400)
      bench_die_usage("--start-at is more than a day away: '%s' (seconds since the epoch)", arg);
    break;
  case 'Y':
    p->policy_given = 1;
    if (strcmp(arg, "default") == 0)
      o->policy = POLICY_DEFAULT;
    else if (strcmp(arg, "none") == 0)
      o->policy = POLICY_NONE;
    else if (strcmp(arg, "naive") == 0)
      o->policy = POLICY_NAIVE;
    else if (strcmp(arg, "adaptive") == 0)
      o->policy = POLICY_ADAPTIVE;
    else
      bench_die_usage("--retry-policy is default, none, naive or adaptive, not '%s'", arg);
    break;
  case 'W':
    p->attempt_ms = millis("--attempt-timeout", arg, 86400000);
    break;
  case 'E':
    p->deadline_ms = millis("--deadline", arg, 86400000);
    break;
  case 'l':
    o->label = arg;
    break;
  case 's':
    o->storm = 1;
    break;
  case 'J':
    o->storm_json = arg;
    break;
  case 'O':
    o->slo_ms = millis("--slo", arg, 3600000);
    break;
  case 'h':
    usage(stdout);
    exit(0);
  default:
    usage(stderr);
    exit(2);
  }
}

void bench_options(int argc, char **argv, bench_opts_t *o) {
  memset(o, 0, sizeof(*o));
  salvo_engine_opts_init(&o->engine);
  o->concurrency = 64;
  o->threads = 1;
  o->seed = 1;
  o->shard_k = o->shard_n = 1;
  o->slo_ms = 1000;
  const char *spikes[MAX_SPIKES];
  parsed_t p = {0, 0, -1, -1, spikes, 0};
  static const struct option longopts[] = {
      {"http1.1", no_argument, NULL, '1'},       {"http2", no_argument, NULL, '2'},
      {"connections", required_argument, NULL, 'C'}, {"cacert", required_argument, NULL, 'A'},
      {"insecure", no_argument, NULL, 'k'},      {"rate", required_argument, NULL, 'r'},
      {"ramp", required_argument, NULL, 'R'},    {"steps", required_argument, NULL, 'S'},
      {"spike", required_argument, NULL, 'P'},   {"think", required_argument, NULL, 'T'},
      {"json", no_argument, NULL, 'j'},          {"hlog", required_argument, NULL, 'L'},
      {"report", required_argument, NULL, 'o'},  {"help", no_argument, NULL, 'h'},
      {"no-request-id", no_argument, NULL, 'I'}, {"max-per-host", required_argument, NULL, 'M'},
      {"adaptive-concurrency", no_argument, NULL, 'a'},
      {"input", required_argument, NULL, 'i'},   {"method", required_argument, NULL, 'X'},
      {"header", required_argument, NULL, 'H'},  {"data", required_argument, NULL, 'd'},
      {"seed", required_argument, NULL, 'e'},    {"requests", required_argument, NULL, 'n'},
      {"duration", required_argument, NULL, 'D'}, {"concurrency", required_argument, NULL, 'c'},
      {"threads", required_argument, NULL, 't'}, {"streams", required_argument, NULL, 'm'},
      {"shard", required_argument, NULL, 'K'},   {"start-at", required_argument, NULL, 'Z'},
      {"retry-policy", required_argument, NULL, 'Y'},
      {"attempt-timeout", required_argument, NULL, 'W'},
      {"deadline", required_argument, NULL, 'E'}, {"label", required_argument, NULL, 'l'},
      {"storm", no_argument, NULL, 's'},         {"storm-json", required_argument, NULL, 'J'},
      {"slo", required_argument, NULL, 'O'},
      {NULL, 0, NULL, 0}};
  int opt;
  while ((opt = getopt_long(argc, argv, "n:c:m:t:D:i:X:H:d:h", longopts, NULL)) != -1) {
    flag(o, opt, optarg, &p);
  }
  if (o->input != NULL ? optind != argc : optind != argc - 1) {
    usage(stderr);
    exit(2);
  }
  if (o->input == NULL)
    o->url = argv[optind];
  after_parse(o, &p);
}

void bench_options_free(bench_opts_t *o) { free(o->headers); }
