/* salvo-fetch's command line: the usage text, the flags, their checks. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch.h"
#include "input.h"

static const char *const usage[] = {
    "usage: salvo-fetch [OPTIONS] [URL ...]\n"
    "  -i, --input FILE         requests, one per line ('-' = stdin): a bare URL, or a JSON object\n"
    "                           {\"id\":..., \"url\":..., \"method\":..., \"headers\":{...}, \"body\":\"...\",\n"
    "                           \"sha256\":\"HEX\"}\n"
    "  -X, --method M   -H, --header 'Name: value' (repeatable)   -d, --data STR   --data-file FILE\n"
    "  -A, --user-agent STR     the User-Agent header (salvo/VERSION)\n"
    "  -c, --concurrency N      requests in flight (64; fewer if the open-file limit cannot hold\n"
    "                           them: stderr says so)\n"
    "      --max-body-size BYTES  a response body's cap, K/M/G suffixes (none: bodies are streamed,\n"
    "                           never held); past it: body_too_large\n"
    "      --max-buffered-bytes BYTES  no effect (bodies are no longer held); kept for old scripts\n"
    "      --limit-rate BYTES   each transfer receives at most BYTES per second (K/M/G)\n"
    "      --compressed         ask for deflate, gzip, br, zstd and decode; --max-body-size counts\n"
    "                           decoded bytes\n"
    "      --max-host-connections N   --http1.1 | --http2\n"
    "      --max-per-host N     requests in flight per host (0 = no limit of its own, the default:\n"
    "                           a freed slot goes to the host with the fewest in flight, so a slow\n"
    "                           host cannot take the others' slots; 6 to 8 is polite to servers)\n"
    "      --adaptive-concurrency  per-host limit that falls when a host's latency rises above its\n"
    "                           no-load latency and grows while it holds (starts at 10)\n"
    ,
    "      --connect-timeout MS (3100)  --idle-timeout MS (10000)  --attempt-timeout MS (0 = off)\n"
    "      --deadline MS (30000)        --queue-timeout MS (0 = off)\n"
    "      --max-attempts N (4)  --backoff-base MS (250)  --backoff-max MS (10000)\n"
    "      --jitter full|equal|decorrelated|none   --retry-status LIST   --retry-any-method-status LIST\n"
    "      --retry-methods LIST  --retry-after-max MS (60000)  --no-retry-after\n"
    "      --idempotency-key auto|off  auto: each POST and PATCH without one gets an Idempotency-Key\n"
    "                           derived from the batch and its id, the same after --resume\n"
    "      --batch-id NAME      the batch those keys derive from (made up, printed and kept in\n"
    "                           each result line as \"batch\" when not given)\n"
    "      --seed N             reproducible jitter\n"
    "Per host (scheme://host:port):\n"
    "      --rate N  --burst N  requests per second per host, a token bucket (0 = unlimited)\n"
    "      --adaptive-rate      429s halve the host's rate, successes raise it (AIMD)\n"
    "      --no-host-pause      do not pause a host on 429/503 with Retry-After or RateLimit-Reset\n"
    "      --retry-budget R (0.2)  --retry-budget-floor N (10/s)   retries <= R x requests + N/s; 0 = off\n"
    "      --breaker            circuit breaker: 5 failures in a row or 50% of 20 open it for 5 s\n"
    "      --hedge MS|p95       second attempt for idempotent requests with no answer after MS;\n"
    "                           bodies are then held in memory until the end (--max-body-size 4M\n"
    "                           unless given) and a checksum mismatch is not fetched again\n"
    "      --max-hosts N (10000)  hosts to keep state for; past it idle ones are forgotten (0 = all)\n"
    ,
    "Connections:\n"
    "      --cacert FILE  --insecure (prints a warning)\n"
    "      --proxy URL ('' = none)  --noproxy HOSTS (comma-separated, '*' = all); by default\n"
    "                           http_proxy, HTTPS_PROXY, ALL_PROXY and NO_PROXY apply, as in curl\n"
    "      --resolve HOST:PORT:ADDR     connect to ADDR for HOST:PORT, no DNS (repeatable)\n"
    "      --connect-to HOST:PORT:HOST2:PORT2  connect to HOST2:PORT2 instead (repeatable)\n"
    "  -L, --location           follow redirects (off by default)   --max-redirects N (5)\n"
    "      --redirect-allow-downgrade   follow https -> http redirects too\n"
    ,
    "Output:\n"
    "  -o, --output-dir DIR     stream each body to DIR/NAME.part, renamed to DIR/NAME when the\n"
    "                           request ends ok and whole; a retry starts the part over. NAME is the\n"
    "                           id made safe ([A-Za-z0-9._-], no leading dot, at most 200 bytes); a\n"
    "                           later line whose NAME is taken fails with duplicate_id\n"
    "      --output-template T  NAME from {id} {host} {path} {line} (\"{id}\"), made safe as one name\n"
    "      --keep-part          keep DIR/NAME.part of a request that failed, for --resume\n"
    "      --checksum sha256=HEX  the body's SHA-256, for a single URL (input lines: \"sha256\"); a\n"
    "                           mismatch is checksum_mismatch, and a GET is fetched again\n"
    "      --resume FILE        FILE holds an earlier run's result lines: ids done there are skipped\n"
    "                           (append this run's to it: >> FILE); with -o a GET's NAME.part is\n"
    "                           continued by a Range request where the server allows (If-Range)\n"
    "      --resume-done LIST   outcomes that count as done: ok (the default), http_error\n"
    "      --shard K/N          take only the K-th of every N input lines (1-based)\n"
    "      --progress | --no-progress   (default: progress on stderr when it is a terminal)\n"
    "      --demo               run against a built-in local fault server (no network needed)\n"
    "Results: one JSON object per request on stdout. Exit 0 if all are ok, 1 if not, 2 on usage\n"
    "errors or input that cannot be read, 130 on SIGINT. --demo exits 0 when every request\n"
    "completed exactly once (its failures are on purpose).\n",
    NULL};

static void print_usage(FILE *f) {
  for (size_t i = 0; usage[i] != NULL; i++)
    fputs(usage[i], f);
}

_Noreturn void fetch_die_usage(const char *fmt, const char *arg) {
  fprintf(stderr, "salvo-fetch: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(see salvo-fetch --help)\n");
  exit(2);
}

static void *need(void *p) {
  if (p == NULL) {
    fprintf(stderr, "salvo-fetch: out of memory\n");
    exit(2);
  }
  return p;
}

static uint64_t num(const char *opt, const char *arg, uint64_t max) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(arg, &end, 10);
  if (*arg == '\0' || *end != '\0' || errno != 0 || v > max || arg[0] == '-') {
    char msg[128];
    snprintf(msg, sizeof(msg), "%s needs a whole number up to %llu, got '%%s'", opt,
             (unsigned long long)max);
    fetch_die_usage(msg, arg);
  }
  return v;
}

static double real(const char *opt, const char *arg, double max) {
  char *end;
  double v = strtod(arg, &end);
  if (*arg == '\0' || *end != '\0' || !(v >= 0) || v > max) {
    char msg[128];
    snprintf(msg, sizeof(msg), "%s needs a number from 0 to %g, got '%%s'", opt, max);
    fetch_die_usage(msg, arg);
  }
  return v;
}

/* --retry-methods: upper-case method names, comma-separated (methods are
 * case-sensitive: "get" would match no GET, and retry none). */
static void methods_check(const char *arg) {
  const char *p = arg;
  do {
    size_t n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_");
    if (n == 0 || (p[n] != ',' && p[n] != '\0'))
      fetch_die_usage("--retry-methods takes upper-case method names, comma-separated (GET,PUT): "
                      "got '%s'", arg);
    p += n;
  } while (*p++ == ',');
}

static void statuses(const char *opt, const char *arg, int *out) {
  if (*arg == '\0') {
    char msg[96];
    snprintf(msg, sizeof(msg), "%s needs statuses, comma-separated: got '%%s'", opt);
    fetch_die_usage(msg, arg);
  }
  char *copy = need(strdup(arg)), *save = NULL;
  int n = 0;
  for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (n == SALVO_MAX_RETRY_STATUSES - 1) {
      char msg[96];
      snprintf(msg, sizeof(msg), "%s takes at most %d statuses: '%%s'", opt, SALVO_MAX_RETRY_STATUSES - 1);
      fetch_die_usage(msg, arg);
    }
    out[n++] = (int)num(opt, t, 599);
    if (out[n - 1] < 100)
      fetch_die_usage("not an HTTP status: '%s'", t);
  }
  out[n] = 0;
  free(copy);
}

/* --data-file: the whole file, or NULL. */
static char *read_whole(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  size_t cap = 65536, n = 0, r;
  char *buf = malloc(cap);
  while (buf != NULL && (r = fread(buf + n, 1, cap - n, f)) > 0) {
    n += r;
    if (n == cap) {
      char *grown = cap < SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
      if (grown == NULL) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = grown;
      cap *= 2;
    }
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return NULL;
  }
  *len = n;
  return buf;
}

/* A size in bytes, with an optional K, M or G (powers of 1024). */
static size_t bytes(const char *opt, const char *arg) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(arg, &end, 10);
  int shift = *end == 'K' || *end == 'k' ? 10 : *end == 'M' || *end == 'm' ? 20 : *end == 'G' || *end == 'g' ? 30 : 0;
  if (shift != 0)
    end++;
  if (*arg == '\0' || arg[0] == '-' || *end != '\0' || errno != 0 || v == 0 ||
      v > (SIZE_MAX >> 1) >> shift) {
    char msg[128];
    snprintf(msg, sizeof(msg), "%s needs a size in bytes (> 0; K, M, G suffixes), got '%%s'", opt);
    fetch_die_usage(msg, arg);
  }
  return (size_t)v << shift;
}

/* Appends |arg| to a NULL-terminated list. */
static void push(const char ***list, const char *arg) {
  size_t n = 0;
  while (*list != NULL && (*list)[n] != NULL)
    n++;
  *list = need(realloc(*list, (n + 2) * sizeof(**list)));
  (*list)[n] = arg;
  (*list)[n + 1] = NULL;
}

enum {
  O_DATA_FILE = 256, O_MAX_HOST, O_H1, O_H2, O_CONNECT, O_IDLE, O_ATTEMPT, O_DEADLINE, O_QUEUE,
  O_MAX_ATTEMPTS, O_BACKOFF_BASE, O_BACKOFF_MAX, O_JITTER, O_RETRY_STATUS, O_RETRY_ANY,
  O_RETRY_METHODS, O_RA_MAX, O_NO_RA, O_IDEM, O_SEED, O_RATE, O_CACERT, O_INSECURE, O_PROXY, O_NOPROXY, O_SHARD,
  O_PROGRESS, O_NO_PROGRESS, O_DEMO, O_BURST, O_ADAPTIVE, O_NO_PAUSE, O_BUDGET, O_BUDGET_FLOOR,
  O_BREAKER, O_HEDGE, O_MAX_REDIRECTS, O_ALLOW_DOWNGRADE, O_MAX_HOSTS, O_MAX_BODY, O_MAX_BUFFERED,
  O_MAX_PER_HOST, O_ADAPTIVE_CONC, O_TEMPLATE, O_KEEP_PART, O_RESUME, O_RESUME_DONE, O_BATCH,
  O_CHECKSUM, O_COMPRESSED, O_RESOLVE, O_CONNECT_TO, O_LIMIT_RATE
};

static const struct option longopts[] = {
    {"input", required_argument, NULL, 'i'}, {"method", required_argument, NULL, 'X'},
    {"header", required_argument, NULL, 'H'}, {"data", required_argument, NULL, 'd'},
    {"data-file", required_argument, NULL, O_DATA_FILE},
    {"user-agent", required_argument, NULL, 'A'},
    {"concurrency", required_argument, NULL, 'c'},
    {"max-host-connections", required_argument, NULL, O_MAX_HOST},
    {"max-per-host", required_argument, NULL, O_MAX_PER_HOST},
    {"adaptive-concurrency", no_argument, NULL, O_ADAPTIVE_CONC},
    {"http1.1", no_argument, NULL, O_H1}, {"http2", no_argument, NULL, O_H2},
    {"connect-timeout", required_argument, NULL, O_CONNECT},
    {"idle-timeout", required_argument, NULL, O_IDLE},
    {"attempt-timeout", required_argument, NULL, O_ATTEMPT},
    {"deadline", required_argument, NULL, O_DEADLINE},
    {"queue-timeout", required_argument, NULL, O_QUEUE},
    {"max-attempts", required_argument, NULL, O_MAX_ATTEMPTS},
    {"backoff-base", required_argument, NULL, O_BACKOFF_BASE},
    {"backoff-max", required_argument, NULL, O_BACKOFF_MAX},
    {"jitter", required_argument, NULL, O_JITTER},
    {"retry-status", required_argument, NULL, O_RETRY_STATUS},
    {"retry-any-method-status", required_argument, NULL, O_RETRY_ANY},
    {"retry-methods", required_argument, NULL, O_RETRY_METHODS},
    {"retry-after-max", required_argument, NULL, O_RA_MAX},
    {"no-retry-after", no_argument, NULL, O_NO_RA},
    {"idempotency-key", required_argument, NULL, O_IDEM},
    {"batch-id", required_argument, NULL, O_BATCH},
    {"seed", required_argument, NULL, O_SEED}, {"rate", required_argument, NULL, O_RATE},
    {"cacert", required_argument, NULL, O_CACERT}, {"insecure", no_argument, NULL, O_INSECURE},
    {"proxy", required_argument, NULL, O_PROXY}, {"noproxy", required_argument, NULL, O_NOPROXY},
    {"resolve", required_argument, NULL, O_RESOLVE},
    {"connect-to", required_argument, NULL, O_CONNECT_TO},
    {"output-dir", required_argument, NULL, 'o'},
    {"output-template", required_argument, NULL, O_TEMPLATE},
    {"keep-part", no_argument, NULL, O_KEEP_PART},
    {"checksum", required_argument, NULL, O_CHECKSUM},
    {"resume", required_argument, NULL, O_RESUME},
    {"resume-done", required_argument, NULL, O_RESUME_DONE},
    {"shard", required_argument, NULL, O_SHARD},
    {"progress", no_argument, NULL, O_PROGRESS}, {"no-progress", no_argument, NULL, O_NO_PROGRESS},
    {"demo", no_argument, NULL, O_DEMO}, {"help", no_argument, NULL, 'h'},
    {"burst", required_argument, NULL, O_BURST},
    {"adaptive-rate", no_argument, NULL, O_ADAPTIVE},
    {"no-host-pause", no_argument, NULL, O_NO_PAUSE},
    {"retry-budget", required_argument, NULL, O_BUDGET},
    {"retry-budget-floor", required_argument, NULL, O_BUDGET_FLOOR},
    {"breaker", no_argument, NULL, O_BREAKER}, {"hedge", required_argument, NULL, O_HEDGE},
    {"location", no_argument, NULL, 'L'},
    {"max-redirects", required_argument, NULL, O_MAX_REDIRECTS},
    {"redirect-allow-downgrade", no_argument, NULL, O_ALLOW_DOWNGRADE},
    {"max-hosts", required_argument, NULL, O_MAX_HOSTS},
    {"max-body-size", required_argument, NULL, O_MAX_BODY},
    {"max-buffered-bytes", required_argument, NULL, O_MAX_BUFFERED},
    {"limit-rate", required_argument, NULL, O_LIMIT_RATE},
    {"compressed", no_argument, NULL, O_COMPRESSED},
    {NULL, 0, NULL, 0}};

static void header_flag(fetch_opts_t *o, const char *arg) {
  const char *colon = strchr(arg, ':');
  if (colon == NULL || colon == arg)
    fetch_die_usage("-H needs 'Name: value'%s; the argument has no name before a colon (not shown: "
                    "it may hold a secret)", "");
  char *name = need(strndup(arg, (size_t)(colon - arg)));
  const char *value = colon + 1;
  while (*value == ' ' || *value == '\t')
    value++;
  json_t *v = json_string(value);
  if (v == NULL)
    fetch_die_usage("-H: the value is not UTF-8%s (not shown: it may hold a secret)", "");
  json_object_set_new(o->headers, name, v);
  free(name);
}

static void hedge_flag(salvo_host_policy_t *h, const char *arg) {
  if (strcmp(arg, "p95") == 0) {
    h->hedge_p95 = 1;
    if (h->hedge_delay_ms == 0)
      h->hedge_delay_ms = 1000; /* until the host has 20 samples */
    return;
  }
  h->hedge_delay_ms = num("--hedge", arg, 3600000);
  if (h->hedge_delay_ms == 0)
    fetch_die_usage("--hedge is a delay in ms (> 0) or p95, got '%s'", arg);
}

static void jitter_flag(salvo_retry_policy_t *r, const char *arg) {
  static const struct {
    const char *name;
    salvo_jitter_t jitter;
  } names[] = {{"full", SALVO_JITTER_FULL}, {"equal", SALVO_JITTER_EQUAL},
               {"decorrelated", SALVO_JITTER_DECORRELATED}, {"none", SALVO_JITTER_NONE}};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (strcmp(arg, names[i].name) == 0) {
      r->jitter = names[i].jitter;
      return;
    }
  fetch_die_usage("--jitter is full, equal, decorrelated or none, got '%s'", arg);
}

static void resume_done_flag(fetch_opts_t *o, const char *arg) {
  char *copy = need(strdup(arg)), *save = NULL;
  int ok_seen = 0;
  o->resume_http_error_done = 0;
  for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (strcmp(t, "ok") == 0)
      ok_seen = 1;
    else if (strcmp(t, "http_error") == 0)
      o->resume_http_error_done = 1;
    else
      fetch_die_usage("--resume-done takes ok and http_error, comma-separated; got '%s'", arg);
  }
  free(copy);
  if (!ok_seen)
    fetch_die_usage("--resume-done: ok is always done; got '%s'", arg);
}

/* Flags that set the engine's transfer and protocol options. */
static int engine_flag(int opt, const char *arg, salvo_engine_opts_t *e) {
  switch (opt) {
  case O_MAX_HOST: e->max_host_connections = (long)num("--max-host-connections", arg, 100000); break;
  case O_MAX_PER_HOST: e->hosts.max_in_flight = (unsigned)num("--max-per-host", arg, 100000); break;
  case O_ADAPTIVE_CONC: e->hosts.adaptive_concurrency = 1; break;
  case O_H1: e->http_version = SALVO_HTTP_1_1; break;
  case O_H2: e->http_version = SALVO_HTTP_2; break;
  case O_CONNECT: e->timeouts.connect_ms = num("--connect-timeout", arg, UINT32_MAX); break;
  case O_IDLE: e->timeouts.idle_ms = num("--idle-timeout", arg, UINT32_MAX); break;
  case O_ATTEMPT: e->timeouts.attempt_ms = num("--attempt-timeout", arg, UINT32_MAX); break;
  case O_DEADLINE: e->timeouts.deadline_ms = num("--deadline", arg, UINT32_MAX); break;
  case O_QUEUE: e->timeouts.queue_ms = num("--queue-timeout", arg, UINT32_MAX); break;
  case O_MAX_ATTEMPTS:
    e->retry.max_attempts = (unsigned)num("--max-attempts", arg, 1000);
    if (e->retry.max_attempts == 0)
      fetch_die_usage("--max-attempts must be at least 1, got '%s'", arg);
    break;
  case O_BACKOFF_BASE: e->retry.backoff_base_ms = num("--backoff-base", arg, UINT32_MAX); break;
  case O_BACKOFF_MAX: e->retry.backoff_max_ms = num("--backoff-max", arg, UINT32_MAX); break;
  case O_JITTER: jitter_flag(&e->retry, arg); break;
  case O_RETRY_STATUS: statuses("--retry-status", arg, e->retry.retry_statuses); break;
  case O_RETRY_ANY: statuses("--retry-any-method-status", arg, e->retry.retry_any_method_statuses); break;
  case O_RETRY_METHODS:
    if (strlen(arg) >= sizeof(e->retry.idempotent_methods))
      fetch_die_usage("--retry-methods: list too long: '%s'", arg);
    methods_check(arg);
    snprintf(e->retry.idempotent_methods, sizeof(e->retry.idempotent_methods), "%s", arg);
    break;
  case O_RA_MAX: e->retry.retry_after_max_ms = num("--retry-after-max", arg, UINT32_MAX); break;
  case O_NO_RA: e->retry.respect_retry_after = 0; break;
  case O_SEED: e->retry.seed = num("--seed", arg, UINT64_MAX); break;
  case O_RATE:
    e->hosts.rate = real("--rate", arg, 1e6);
    if (e->hosts.burst == 0)
      e->hosts.burst = 1; /* pacing, not bursts, unless --burst says otherwise */
    break;
  case O_BURST: e->hosts.burst = real("--burst", arg, 1e6); break;
  case O_ADAPTIVE: e->hosts.adaptive = 1; break;
  case O_NO_PAUSE: e->hosts.pause_on_retry_after = 0; break;
  case O_BUDGET:
    e->hosts.budget_ratio = real("--retry-budget", arg, 1e6);
    e->hosts.budget = e->hosts.budget_ratio > 0;
    break;
  case O_BUDGET_FLOOR: e->hosts.budget_floor = real("--retry-budget-floor", arg, 1e6); break;
  case O_BREAKER: e->hosts.breaker = 1; break;
  case O_HEDGE: hedge_flag(&e->hosts, arg); break;
  case 'L': e->follow_redirects = 1; break;
  case O_MAX_REDIRECTS: e->max_redirects = (unsigned)num("--max-redirects", arg, 100); break;
  case O_ALLOW_DOWNGRADE: e->redirect_allow_downgrade = 1; break;
  case O_MAX_HOSTS: e->max_hosts = (size_t)num("--max-hosts", arg, 100000000); break;
  case O_COMPRESSED: e->accept_encoding = 1; break;
  case 'A':
    for (const char *c = arg; *c; c++)
      if ((unsigned char)*c < 0x20 || *c == 0x7f)
        fetch_die_usage("-A/--user-agent: a header value holds no control characters (CR, LF, ...)%s", "");
    e->user_agent = arg;
    break;
  case O_CACERT:
    if (access(arg, R_OK) != 0)
      fetch_die_usage("--cacert: cannot read '%s'", arg);
    e->ca_file = arg;
    break;
  case O_INSECURE: e->insecure_skip_verify = 1; break;
  case O_PROXY: /* "" = no proxy, whatever the environment says */
    e->proxy = arg[0] != '\0' ? arg : NULL;
    e->proxy_from_env = 0;
    break;
  case O_NOPROXY: e->no_proxy = arg; break;
  default: return 0;
  }
  return 1;
}

/* Flags of salvo-fetch's own: input, output, resume. */
static int own_flag(int opt, const char *arg, fetch_opts_t *o) {
  struct stat st;
  switch (opt) {
  case 'i': o->input_path = arg; break;
  case 'X': o->method = arg; break;
  case 'H': header_flag(o, arg); break;
  case 'd':
    free(o->body);
    o->body = need(strdup(arg));
    o->body_len = strlen(arg);
    o->has_body = 1;
    break;
  case O_DATA_FILE:
    free(o->body);
    o->body = read_whole(arg, &o->body_len);
    if (o->body == NULL)
      fetch_die_usage("--data-file: cannot read '%s'", arg);
    o->has_body = 1;
    break;
  case 'c':
    o->max_in_flight = (size_t)num("--concurrency", arg, 100000);
    if (o->max_in_flight == 0)
      fetch_die_usage("--concurrency must be at least 1, got '%s'", arg);
    break;
  case O_MAX_BODY:
    o->engine.max_body_size = bytes("--max-body-size", arg);
    o->max_body_given = 1;
    break;
  case O_MAX_BUFFERED:
    (void)bytes("--max-buffered-bytes", arg); /* still checked: a typo is still a typo */
    fprintf(stderr, "salvo-fetch: --max-buffered-bytes has no effect: bodies are streamed, never held\n");
    break;
  case O_LIMIT_RATE: o->limit_rate = bytes("--limit-rate", arg); break;
  case O_IDEM:
    if (strcmp(arg, "auto") == 0)
      o->idempotency_auto = 1;
    else if (strcmp(arg, "off") == 0)
      o->idempotency_auto = 0;
    else
      fetch_die_usage("--idempotency-key is auto or off, got '%s'", arg);
    break;
  case O_BATCH:
    if (*arg == '\0' || strlen(arg) > 256)
      fetch_die_usage("--batch-id needs 1 to 256 bytes, got '%s'", arg);
    o->batch_id = arg;
    break;
  case O_RESOLVE: push(&o->resolve, arg); break;
  case O_CONNECT_TO: push(&o->connect_to, arg); break;
  case 'o':
    if (stat(arg, &st) != 0 || !S_ISDIR(st.st_mode) || access(arg, W_OK) != 0)
      fetch_die_usage("--output-dir: '%s' is not a writable directory", arg);
    o->output_dir = arg;
    break;
  case O_TEMPLATE: {
    char name[FETCH_NAME_MAX], why[128];
    if (fetch_output_name(arg, "id", "http://127.0.0.1/", 1, name, why, sizeof(why)) != 0)
      fetch_die_usage(why, arg);
    o->output_template = arg;
    break;
  }
  case O_KEEP_PART: o->keep_part = 1; break;
  case O_CHECKSUM:
    if ((strncmp(arg, "sha256=", 7) != 0 || fetch_parse_sha256(arg + 7, o->checksum) != 0) &&
        (strncmp(arg, "sha-256=", 8) != 0 || fetch_parse_sha256(arg + 8, o->checksum) != 0))
      fetch_die_usage("--checksum needs sha256= and 64 hex digits, got '%s'", arg);
    o->has_checksum = 1;
    break;
  case O_RESUME: o->resume_path = arg; break;
  case O_RESUME_DONE: resume_done_flag(o, arg); break;
  case O_SHARD: {
    unsigned long k = 0, n = 0;
    char tail;
    if (strchr(arg, '-') != NULL || sscanf(arg, "%lu/%lu%c", &k, &n, &tail) != 2 || n == 0 || k == 0 || k > n)
      fetch_die_usage("--shard needs K/N with 1 <= K <= N, got '%s'", arg);
    o->shard_k = k;
    o->shard_n = n;
    break;
  }
  case O_PROGRESS: o->progress = 1; break;
  case O_NO_PROGRESS: o->progress = 0; break;
  case O_DEMO: o->demo = 1; break;
  default: return 0;
  }
  return 1;
}

void fetch_options(int argc, char **argv, fetch_opts_t *o) {
  memset(o, 0, sizeof(*o));
  salvo_engine_opts_init(&o->engine);
  o->engine.log_cb = fetch_log;
  o->engine.proxy_from_env = 1; /* a command-line tool follows curl: http_proxy, HTTPS_PROXY, ... */
  o->engine.max_body_size = SIZE_MAX; /* bodies are streamed: no cap unless asked */
  o->headers = need(json_object());
  o->output_template = "{id}";
  o->progress = isatty(2);
  o->max_in_flight = 64;
  int opt;
  while ((opt = getopt_long(argc, argv, "i:X:H:d:c:o:hLA:", longopts, NULL)) != -1) {
    if (opt == 'h') {
      print_usage(stdout);
      exit(0);
    }
    if (!engine_flag(opt, optarg, &o->engine) && !own_flag(opt, optarg, o)) {
      print_usage(stderr);
      exit(2);
    }
  }
  o->engine.resolve = o->resolve;
  o->engine.connect_to = o->connect_to;
  o->engine.max_recv_speed = o->limit_rate;
  o->cli_urls = argv + optind;
  o->cli_nurls = argc - optind;
  if (!o->demo && o->input_path == NULL && o->cli_nurls == 0)
    fetch_die_usage("%s", "nothing to fetch: give URLs, -i FILE, or --demo");
  if (o->demo && (o->input_path != NULL || o->cli_nurls > 0))
    fetch_die_usage("%s", "--demo makes its own input: no URLs or -i with it");
  if (o->has_checksum && (o->input_path != NULL || o->cli_nurls != 1))
    fetch_die_usage("%s", "--checksum is for a single URL on the command line (input lines carry "
                          "\"sha256\")");
  if (o->engine.hosts.hedge_delay_ms > 0 && !o->max_body_given)
    o->engine.max_body_size = (size_t)4 << 20; /* hedged bodies are held whole: see --hedge */
  if (strcmp(o->output_template, "{id}") != 0 && o->output_dir == NULL)
    fetch_die_usage("%s", "--output-template names files for -o DIR: give that too");
  if (o->keep_part && o->output_dir == NULL)
    fetch_die_usage("%s", "--keep-part needs -o DIR");
  if (o->batch_id != NULL && !o->idempotency_auto)
    fetch_die_usage("%s", "--batch-id names the batch for --idempotency-key auto: give that too");
}

void fetch_options_free(fetch_opts_t *o) {
  json_decref(o->headers);
  free(o->body);
  free(o->resolve);
  free(o->connect_to);
}
