/* salvo-fetch: fetch many URLs, reliably; one JSON line per request out.
 * See usage[] and the README for the contract. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <salvo/salvo.h>

#include "faultd.h"
#include "histogram.h"
#include "input.h"
#include "reader.h"

static const char usage[] =
    "usage: salvo-fetch [OPTIONS] [URL ...]\n"
    "  -i, --input FILE         requests, one per line ('-' = stdin): a bare URL, or a JSON object\n"
    "                           {\"id\":..., \"url\":..., \"method\":..., \"headers\":{...}, \"body\":\"...\"}\n"
    "  -X, --method M   -H, --header 'Name: value' (repeatable)   -d, --data STR   --data-file FILE\n"
    "  -c, --concurrency N      requests in flight (64; fewer if the open-file limit or the body budget\n"
    "                           cannot hold them: stderr says so)\n"
    "      --max-body-size BYTES       a response body's cap, K/M/G suffixes (4M); past it: body_too_large\n"
    "      --max-buffered-bytes BYTES  all bodies held at once (256M): at most this / --max-body-size\n"
    "                           requests in flight at a time (queued ones hold no body)\n"
    "      --max-host-connections N   --http1.1 | --http2\n"
    "      --max-per-host N     requests in flight per host (0 = no limit of its own, the default:\n"
    "                           a freed slot goes to the host with the fewest in flight, so a slow\n"
    "                           host cannot take the others' slots; 6 to 8 is polite to servers)\n"
    "      --adaptive-concurrency  per-host limit that falls when a host's latency rises above its\n"
    "                           no-load latency and grows while it holds (starts at 10)\n"
    "      --connect-timeout MS (3100)  --idle-timeout MS (10000)  --attempt-timeout MS (0 = off)\n"
    "      --deadline MS (30000)        --queue-timeout MS (0 = off)\n"
    "      --max-attempts N (4)  --backoff-base MS (250)  --backoff-max MS (10000)\n"
    "      --jitter full|equal|decorrelated|none   --retry-status LIST   --retry-any-method-status LIST\n"
    "      --retry-methods LIST  --retry-after-max MS (60000)  --no-retry-after\n"
    "      --idempotency-key auto|off   --seed N (reproducible jitter)\n"
    "Per host (scheme://host:port):\n"
    "      --rate N  --burst N  requests per second per host, a token bucket (0 = unlimited)\n"
    "      --adaptive-rate      429s halve the host's rate, successes raise it (AIMD)\n"
    "      --no-host-pause      do not pause a host on 429/503 with Retry-After or RateLimit-Reset\n"
    "      --retry-budget R (0.2)  --retry-budget-floor N (10/s)   retries <= R x requests + N/s; 0 = off\n"
    "      --breaker            circuit breaker: 5 failures in a row or 50% of 20 open it for 5 s\n"
    "      --hedge MS|p95       second attempt for idempotent requests with no answer after MS\n"
    "      --max-hosts N (10000)  hosts to keep state for; past it idle ones are forgotten (0 = all)\n"
    "      --cacert FILE  --insecure (prints a warning)\n"
    "      --proxy URL ('' = none)  --noproxy HOSTS (comma-separated, '*' = all); by default\n"
    "                           http_proxy, HTTPS_PROXY, ALL_PROXY and NO_PROXY apply, as in curl\n"
    "  -L, --location           follow redirects (off by default)   --max-redirects N (5)\n"
    "      --redirect-allow-downgrade   follow https -> http redirects too\n"
    "  -o, --output-dir DIR     save each ok body whole as DIR/<id> (via DIR/<id>.part); a later line\n"
    "                           whose id takes the same file name fails with duplicate_id\n"
    "      --shard K/N          take only the K-th of every N input lines (1-based)\n"
    "      --progress | --no-progress   (default: progress on stderr when it is a terminal)\n"
    "      --demo               run against a built-in local fault server (no network needed)\n"
    "Results: one JSON object per request on stdout. Exit 0 if all are ok, 1 if not, 2 on usage\n"
    "errors or input that cannot be read, 130 on SIGINT. --demo exits 0 when every request completed exactly once (its failures\n"
    "are on purpose).\n";

/* ------------------------------------------------------------ state */

typedef struct item_s {
  char *id;             /* input id, or the 1-based line number */
  char *url;
  char *method;
  size_t line;
  struct item_s *next;  /* in the rate-limited wait list */
  salvo_request_t *req;
} item_t;

static struct {
  uv_loop_t *loop;
  salvo_engine_t *engine;
  salvo_engine_opts_t opts;
  fetch_reader_t *reader;    /* -i, read through the loop; NULL once it ended */
  const char *input_path;
  int input_error;           /* the input could not be read to its end: exit 2 */
  int input_done;
  size_t line;
  size_t shard_k, shard_n;
  char **cli_urls;
  int cli_nurls, cli_next;
  const char *method;        /* -X */
  json_t *headers;           /* -H, name -> value */
  char *body;                /* -d / --data-file */
  size_t body_len;
  int has_body;
  const char *output_dir;
  json_t *names;             /* -o: file name -> line that claimed it */
  size_t max_body_size;      /* --max-body-size */
  size_t body_slots;         /* --max-buffered-bytes / --max-body-size: requests in flight at once */
  salvo_host_stats_t *hosts; /* snapshot taken when the engine closes */
  uint64_t hosts_evicted;    /* idle hosts the engine forgot (past its max_hosts) */
  salvo_engine_stats_t engine_stats; /* taken when the engine closes */
  size_t nhosts;
  size_t in_engine;          /* submitted, not yet done */
  size_t total_seen;         /* results printed */
  size_t ok, http_error, failed, canceled, retried_requests, retries;
  json_t *by_error;          /* error name -> count */
  histogram_t latency;
  uint64_t start_ns;
  int progress;
  int quiet_results;         /* --demo on a terminal */
  int proxy_flag;            /* --proxy was given */
  int interrupted;
  int closing;
  uv_timer_t progress_timer;
  uv_signal_t sigint;
  faultd_t *demo_server;
  int exit_code;
} g;

static void feed(void);

/* Response bodies: each at most DEFAULT_MAX_BODY, all of them together at
 * most DEFAULT_MAX_BUFFERED: 64 requests at a time with the defaults. */
#define DEFAULT_MAX_BODY ((size_t)4 << 20)
#define DEFAULT_MAX_BUFFERED ((size_t)256 << 20)

/* Longest input line: a JSON line may carry a request body. */
#define MAX_LINE (64u * 1024 * 1024)
#define MAX_LINE_TEXT "67108864"

static double hist_pct(const histogram_t *h, double p) {
  return (double)hist_percentile_us(h, p) / 1000.0;
}

/* ------------------------------------------------------------ output */

static const char *outcome_of(const salvo_result_t *r) {
  if (r->error == SALVO_ECANCELED)
    return "canceled";
  if (r->error == 0 && r->status >= 200 && r->status < 400)
    return "ok";
  if (r->error == 0 && r->status > 0)
    return "http_error";
  return "failed";
}

static json_t *ms(uint64_t us) { return json_real(round((double)us / 10.0) / 100.0); }

static void emit(json_t *line) {
  if (!g.quiet_results) {
    json_dumpf(line, stdout,
               JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(6));
    fputc('\n', stdout);
    fflush(stdout);
  }
  json_decref(line);
  g.total_seen++;
}

/* An id is valid UTF-8 once jansson parsed it, but never leave the key out. */
static json_t *id_json(const char *id, size_t line) {
  json_t *j = json_stringn(id, strlen(id));
  if (j == NULL) {
    char num[32];
    snprintf(num, sizeof(num), "%zu", line);
    j = json_string(num);
  }
  return j;
}

/* A URL as it may be shown: its userinfo as "***" (see fetch_redact_url()).
 * Header values never reach the output at all. */
static json_t *url_json(const char *url, int parsed) {
  char *r = fetch_redact_url(url, parsed);
  json_t *j = r != NULL ? json_string(r) : NULL;
  free(r);
  return j != NULL ? j : json_null(); /* json_string refuses invalid UTF-8: keep the line valid */
}

/* Free text from the library or the input, as it may be shown: URLs in it
 * redacted. Escaping for the terminal is stderr's business (warn()). */
static json_t *text_json(const char *text) {
  char *r = fetch_redact_text(text);
  json_t *j = r != NULL ? json_string(r) : NULL;
  free(r);
  return j != NULL ? j : json_string("(not shown)");
}

/* salvo's own messages (a warning about an insecure setting, ...): on stderr. */
static void log_to_stderr(salvo_engine_t *engine, salvo_log_level_t level, const char *message,
                          void *user_data) {
  (void)engine;
  (void)user_data;
  fprintf(stderr, "salvo: %s: %s\n", salvo_log_level_name(level), message);
}

/* One line on stderr; |text| may come from the input: escaped, URLs redacted. */
static void warn(const char *prefix, const char *text) {
  char *redacted = fetch_redact_text(text);
  char *shown = redacted != NULL ? fetch_escape(redacted) : NULL;
  fprintf(stderr, "salvo-fetch: %s%s\n", prefix, shown != NULL ? shown : "(not shown)");
  free(redacted);
  free(shown);
}

static void count_error(const char *name) {
  json_object_set_new(g.by_error, name,
                      json_integer(json_integer_value(json_object_get(g.by_error, name)) + 1));
}

/* A line that is not sent: bad input (error "invalid_input"), or an id whose
 * file another line has (error "duplicate_id"). */
static void refuse_line(size_t line, const char *id, const char *url, const char *error,
                        const char *why) {
  char prefix[64];
  snprintf(prefix, sizeof(prefix), "input line %zu: ", line);
  warn(prefix, why);
  char num[32];
  snprintf(num, sizeof(num), "%zu", line);
  json_t *o = json_object();
  json_object_set_new(o, "id", id_json(id ? id : num, line));
  json_object_set_new(o, "url", url ? url_json(url, 0) : json_null());
  json_object_set_new(o, "method", json_null());
  json_object_set_new(o, "outcome", json_string("failed"));
  json_object_set_new(o, "status", json_null());
  json_object_set_new(o, "error", json_string(error));
  json_object_set_new(o, "detail", text_json(why));
  json_object_set_new(o, "attempts", json_integer(0));
  json_object_set_new(o, "history", json_array());
  emit(o);
  g.failed++;
  count_error(error);
}

static void invalid_line(size_t line, const char *id, const char *url, const char *why) {
  refuse_line(line, id, url, "invalid_input", why);
}

static int write_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

/* A complete body goes to DIR/<name>.part, then is renamed to DIR/<name>:
 * a file under its final name is always whole. Returns 0, or -1 with the
 * reason in |why|. */
static int save_body(const item_t *it, const char *body, size_t len, char *why, size_t why_len) {
  char name[FETCH_NAME_MAX];
  fetch_file_name(it->id, it->line, name);
  size_t plen = strlen(g.output_dir) + 1 + strlen(name) + 1;
  char *path = malloc(plen), *part = malloc(plen + 5);
  if (path == NULL || part == NULL) {
    free(path);
    free(part);
    snprintf(why, why_len, "cannot save the body: out of memory");
    return -1;
  }
  snprintf(path, plen, "%s/%s", g.output_dir, name);
  snprintf(part, plen + 5, "%s.part", path);
  int fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  int ok = fd >= 0 && write_all(fd, body, len) == 0;
  int saved_errno = errno;
  if (fd >= 0 && close(fd) != 0 && ok) {
    ok = 0;
    saved_errno = errno;
  }
  if (ok && rename(part, path) != 0) {
    ok = 0;
    saved_errno = errno;
  }
  if (!ok) {
    if (fd >= 0)
      unlink(part);
    snprintf(why, why_len, "cannot save the body to %.4000s: %s", part, strerror(saved_errno));
  }
  free(path);
  free(part);
  return ok ? 0 : -1;
}

static void item_free(item_t *it) {
  free(it->id);
  free(it->url);
  free(it->method);
  free(it);
}

static json_t *history_json(const salvo_result_t *r) {
  json_t *history = json_array();
  for (size_t i = 0; i < r->history_len; i++) {
    const salvo_attempt_record_t *h = &r->history[i];
    json_t *e = json_object();
    json_object_set_new(e, "attempt", json_integer(h->attempt));
    if (h->error)
      json_object_set_new(e, "error", json_string(salvo_err_name(h->error)));
    else
      json_object_set_new(e, "status", json_integer(h->status));
    json_object_set_new(e, "reached_server", json_boolean(h->reached_server));
    json_object_set_new(e, "decision", json_string(h->decision == SALVO_DECIDE_RETRY ? "retry" : "stop"));
    json_object_set_new(e, "reason", text_json(h->reason));
    json_object_set_new(e, "wait_ms", json_integer((json_int_t)h->wait_ms));
    json_array_append_new(history, e);
  }
  return history;
}

/* The result line of a request that ran. |save_error|: the body came whole
 * but could not be saved (-o), which makes the outcome "failed". */
static json_t *result_json(salvo_request_t *req, const item_t *it, const salvo_result_t *r,
                           const char *outcome, const char *file, const char *save_error) {
  json_t *o = json_object();
  json_object_set_new(o, "id", id_json(it->id, it->line));
  json_object_set_new(o, "url", url_json(it->url, 1));
  json_object_set_new(o, "method", json_string(it->method));
  json_object_set_new(o, "outcome", json_string(outcome));
  json_object_set_new(o, "status", r->status ? json_integer(r->status) : json_null());
  json_object_set_new(o, "error", save_error != NULL ? json_string("save_failed")
                                  : r->error      ? json_string(salvo_err_name(r->error))
                                                  : json_null());
  json_object_set_new(o, "attempts", json_integer(r->attempts));
  json_object_set_new(o, "elapsed_ms", ms(r->elapsed_us));
  json_object_set_new(o, "bytes", json_integer((json_int_t)r->body_len));
  if (file != NULL)
    json_object_set_new(o, "file", json_string(file));
  if (r->redirects > 0 && req != NULL) {
    json_object_set_new(o, "redirects", json_integer(r->redirects));
    json_object_set_new(o, "final_url", url_json(salvo_request_url(req), 1));
  }
  json_object_set_new(o, "http_version",
                      r->http_version == 20   ? json_string("2")
                      : r->http_version == 11 ? json_string("1.1")
                      : r->http_version == 10 ? json_string("1.0")
                                              : json_null());
  json_object_set_new(o, "timings",
                      json_pack("{s:o, s:o, s:o, s:o, s:o}", "dns_ms", ms(r->timings.dns_us),
                                "connect_ms", ms(r->timings.connect_us), "tls_ms",
                                ms(r->timings.tls_us), "ttfb_ms", ms(r->timings.ttfb_us),
                                "total_ms", ms(r->timings.total_us)));
  json_object_set_new(o, "stop_reason", json_string(salvo_stop_reason_name(r->stop_reason)));
  if (r->error == SALVO_ERETRYAFTER)
    json_object_set_new(o, "retry_after_ms", json_integer(r->retry_after_ms));
  if (save_error != NULL) {
    json_object_set_new(o, "detail", text_json(save_error));
  } else if (r->error == SALVO_EBODYLIMIT) {
    char d[128];
    snprintf(d, sizeof(d), "the body is larger than --max-body-size (%zu bytes)", g.max_body_size);
    json_object_set_new(o, "detail", json_string(d));
  } else if (r->detail[0]) {
    json_object_set_new(o, "detail", text_json(r->detail));
  }
  json_object_set_new(o, "history", history_json(r));
  return o;
}

static void count_outcome(const salvo_result_t *r, const char *outcome) {
  if (strcmp(outcome, "ok") == 0)
    g.ok++;
  else if (strcmp(outcome, "http_error") == 0)
    g.http_error++;
  else if (strcmp(outcome, "canceled") == 0)
    g.canceled++;
  else
    g.failed++;
  if (r->error)
    count_error(salvo_err_name(r->error));
  if (r->attempts > 1) {
    g.retried_requests++;
    g.retries += r->attempts - 1;
  }
  hist_add(&g.latency, r->elapsed_us);
}

static void done(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  item_t *it = ud;
  g.in_engine--;
  const char *outcome = outcome_of(r);
  /* -o: only an ok, whole body is saved; anything else leaves no file. */
  char name[FETCH_NAME_MAX], why[4096 + 256];
  const char *file = NULL, *save_error = NULL;
  if (g.output_dir != NULL && strcmp(outcome, "ok") == 0 && r->body != NULL) {
    if (save_body(it, r->body, r->body_len, why, sizeof(why)) == 0) {
      fetch_file_name(it->id, it->line, name);
      file = name;
    } else {
      save_error = why;
      outcome = "failed";
      warn("", why);
      count_error("save_failed");
    }
  }
  emit(result_json(req, it, r, outcome, file, save_error));
  count_outcome(r, outcome);
  item_free(it);
  feed();
}

/* ------------------------------------------------------------ input */

/* A header name from the input is shown only if it is a token: a "name" that
 * is not may be a whole "Authorization: Bearer ..." line pasted in. */
static int is_token(const char *s) {
  if (*s == '\0')
    return 0;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) || (unsigned char)*s >= 0x80)
      if (strchr("!#$%&'*+-.^_`|~", *s) == NULL)
        return 0;
  return 1;
}

static int apply_headers(salvo_request_t *req, json_t *headers, char *why, size_t why_len) {
  const char *name;
  json_t *v;
  json_object_foreach(headers, name, v) {
    const char *shown = is_token(name) && strlen(name) <= 64 ? name : "(name not shown: not a token)";
    if (!json_is_string(v)) {
      snprintf(why, why_len, "header %s: value is not a string", shown);
      return -1;
    }
    if (salvo_request_add_header(req, name, json_string_value(v)) != 0) {
      const char *reserved = salvo_header_reserved(name);
      if (reserved != NULL)
        snprintf(why, why_len, "header %s: not accepted: %s", shown, reserved);
      else if (strcasecmp(name, "Host") == 0)
        snprintf(why, why_len, "header %s: must name the URL's own host (and port)", shown);
      else
        snprintf(why, why_len, "header %s: invalid name or value (CR, LF, NUL?)", shown);
      return -1;
    }
  }
  return 0;
}

static void submit_now(item_t *it) {
  int rc = salvo_request_submit(it->req, done, it);
  if (rc != 0) {
    char why[128];
    snprintf(why, sizeof(why), "cannot submit: %s", salvo_strerror(rc));
    salvo_request_free(it->req);
    invalid_line(it->line, it->id, it->url, why);
    item_free(it);
    return;
  }
  g.in_engine++;
}

static void close_engine(void);

/* --rate and the other per-host limits are the engine's (salvo_host_policy_t). */
static void schedule(item_t *it) { submit_now(it); }

/* What one input line asks for. */
typedef struct {
  const char *id;
  const char *url;
  const char *method;
  json_t *headers;   /* borrowed, or NULL */
  const char *body;  /* NULL = none */
  size_t body_len;
} spec_t;

/* Why salvo_request_new() refused: the method, or the URL (shown redacted). */
static void explain_new(const char *url, char *why, size_t why_len) {
  salvo_request_t *probe = NULL;
  if (salvo_request_new(g.engine, "GET", url, &probe) == 0) {
    salvo_request_free(probe);
    snprintf(why, why_len, "invalid method: not an HTTP token (not shown)");
    return;
  }
  char *shown = fetch_redact_url(url, 0);
  snprintf(why, why_len, "invalid URL \"%.300s%s\" (absolute http:// or https:// URLs only%s)",
           shown ? shown : "", shown && strlen(shown) > 300 ? "..." : "",
           strchr(url, '@') != NULL ? "; '/', '?', '#' and '@' in a user name or password must be "
                                      "percent-encoded"
                                    : "");
  free(shown);
}

/* Builds, checks and schedules one request; reports bad input as a result line. */
static void build(const spec_t *sp, size_t line) {
  char why[512] = "out of memory";
  const char *m = sp->method ? sp->method : (sp->body || g.has_body ? "POST" : "GET");
  salvo_request_t *req = NULL;
  int rc = salvo_request_new(g.engine, m, sp->url, &req);
  if (rc != 0) {
    explain_new(sp->url, why, sizeof(why));
    invalid_line(line, sp->id, sp->url, why);
    return;
  }
  rc = apply_headers(req, g.headers, why, sizeof(why));
  if (rc == 0 && sp->headers != NULL)
    rc = apply_headers(req, sp->headers, why, sizeof(why));
  if (rc == 0 && sp->body != NULL)
    rc = salvo_request_set_body(req, sp->body, sp->body_len);
  else if (rc == 0 && g.has_body)
    rc = salvo_request_set_body(req, g.body, g.body_len);
  item_t *it = rc == 0 ? calloc(1, sizeof(*it)) : NULL;
  if (it != NULL) {
    it->line = line;
    it->id = strdup(sp->id);
    it->url = strdup(sp->url);
    it->method = strdup(m);
    it->req = req;
  }
  if (it == NULL || it->id == NULL || it->url == NULL || it->method == NULL) {
    if (it != NULL)
      item_free(it);
    salvo_request_free(req);
    invalid_line(line, sp->id, sp->url, why);
    return;
  }
  schedule(it);
}

/* -o: the file names an id takes (DIR/<name> and DIR/<name>.part) are its
 * own for the whole run; a later line whose id maps to a taken name is
 * refused (error "duplicate_id") rather than overwrite the other's body. */
static int claim_name(const char *id, size_t line, char *why, size_t why_len) {
  char name[FETCH_NAME_MAX + 8];
  fetch_file_name(id, line, name);
  size_t len = strlen(name);
  json_t *first = json_object_get(g.names, name);
  snprintf(name + len, sizeof(name) - len, ".part");
  if (first == NULL)
    first = json_object_get(g.names, name);
  if (first != NULL) {
    snprintf(why, why_len, "-o: its id saves to the same file as line %" JSON_INTEGER_FORMAT "'s",
             json_integer_value(first));
    return -1;
  }
  json_object_set_new(g.names, name, json_integer((json_int_t)line));
  name[len] = '\0';
  json_object_set_new(g.names, name, json_integer((json_int_t)line));
  return 0;
}

/* One input line (or command-line URL). */
static void take(const char *text, size_t line) {
  fetch_spec_t in;
  char why[512];
  int r = fetch_parse_line(text, line, &in, why, sizeof(why));
  if (r < 0) {
    invalid_line(line, in.id_given ? in.id : NULL, in.url, why);
  } else if (r > 0 && g.output_dir != NULL && claim_name(in.id, line, why, sizeof(why)) != 0) {
    refuse_line(line, in.id, in.url, "duplicate_id", why);
  } else if (r > 0) {
    spec_t sp;
    memset(&sp, 0, sizeof(sp));
    sp.id = in.id;
    sp.url = in.url;
    sp.method = in.method != NULL ? in.method : g.method;
    sp.headers = in.headers;
    sp.body = in.body;
    sp.body_len = in.body_len;
    build(&sp, line);
  }
  fetch_spec_free(&in);
}

/* ------------------------------------------------------------ feeding */

/* Requests in the engine at most: a few times the concurrency, so that hosts
 * that wait (rate, pauses, their in-flight limit) do not idle the others and
 * the engine's fair share has other hosts' requests to choose from; with a
 * rate, no more than half a deadline's worth (the deadline runs from
 * submit). Only requests in flight hold a body (the engine drops a failed
 * attempt's body before the backoff), and the concurrency is already cut to
 * the body budget (fit_memory), so queued ones cost no body memory. */
static size_t room_for(void) {
  size_t room = g.opts.max_in_flight * 4;
  if (g.opts.hosts.rate > 0 && g.opts.timeouts.deadline_ms > 0) {
    double ahead = g.opts.hosts.rate * (double)g.opts.timeouts.deadline_ms / 2000.0;
    if (ahead < (double)room)
      room = ahead < 1 ? 1 : (size_t)ahead;
  }
  /* A request body (-d, --data-file) is copied into every request from
   * submit: queued requests hold one each, so the body budget bounds them. */
  if (g.body_len > 0 && room > g.body_slots)
    room = g.body_slots > 0 ? g.body_slots : 1;
  return room;
}

static void input_ended(void) {
  int err = fetch_reader_error(g.reader);
  if (err != 0) {
    g.input_error = 1;
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "-i: cannot read past line %zu of ", g.line);
    char msg[4096 + 128];
    snprintf(msg, sizeof(msg), "'%s': %s", g.input_path, uv_strerror(err));
    warn(prefix, msg);
  }
  fetch_reader_close(g.reader);
  g.reader = NULL;
  g.input_done = 1;
}

/* One line from the reader, or 0 if none is ready. */
static int next_line(size_t room) {
  char *text;
  size_t n;
  if (g.in_engine >= room)
    return 0;
  int r = fetch_reader_next(g.reader, &text, &n);
  if (r == FETCH_LINE_NONE)
    return 0;
  if (r == FETCH_LINE_END) {
    input_ended();
    return 0;
  }
  g.line++;
  if (g.shard_n > 1 && (g.line - 1) % g.shard_n != g.shard_k - 1)
    return 1;
  if (r == FETCH_LINE_TOO_LONG)
    invalid_line(g.line, NULL, NULL, "the line is longer than " MAX_LINE_TEXT " bytes");
  else if (strlen(text) != n)
    invalid_line(g.line, NULL, NULL, "the line contains a NUL byte");
  else
    take(text, g.line);
  return 1;
}

/* Takes input only while there is room: memory stays flat however long the
 * input is, and reading pauses meanwhile. Called when a line may be ready
 * and whenever a request ends. */
static void feed(void) {
  size_t room = room_for();
  while (!g.closing && g.cli_next < g.cli_nurls && g.in_engine < room) {
    g.line++;
    take(g.cli_urls[g.cli_next++], g.line);
  }
  if (g.cli_next < g.cli_nurls)
    return; /* command-line URLs come first */
  if (g.reader == NULL)
    g.input_done = 1;
  while (!g.closing && g.reader != NULL && next_line(room))
    ;
  if (g.reader != NULL)
    fetch_reader_want(g.reader, !g.closing && g.in_engine < room);
  if (g.input_done && g.in_engine == 0 && !g.closing) {
    g.closing = 1;
    close_engine();
    uv_timer_stop(&g.progress_timer);
    uv_close((uv_handle_t *)&g.progress_timer, NULL);
    uv_close((uv_handle_t *)&g.sigint, NULL);
    if (g.demo_server)
      faultd_close(g.demo_server);
  }
}

static void on_input(fetch_reader_t *reader, void *user_data) {
  (void)reader;
  (void)user_data;
  feed();
}

/* ------------------------------------------------------------ progress */

static void progress_line(int final) {
  double secs = (double)(uv_hrtime() - g.start_ns) / 1e9;
  double rate = secs > 0 ? (double)g.total_seen / secs : 0;
  char eta[32] = "";
  if (g.input_done && rate > 0)
    snprintf(eta, sizeof(eta), ", ETA %.0fs", (double)(g.in_engine) / rate);
  fprintf(stderr, "\r%zu done%s%zu, ok %zu, retried %zu, failed %zu, %.0f req/s%s   %s",
          g.total_seen, g.input_done ? "/" : " of ",
          g.input_done ? g.total_seen + g.in_engine : g.line, g.ok,
          g.retried_requests, g.failed + g.http_error + g.canceled, rate, eta, final ? "\n" : "");
  fflush(stderr);
}

static void progress_tick(uv_timer_t *t) {
  (void)t;
  progress_line(0);
}

/* The engine is gone by the time the summary prints: keep its host stats. */
static void close_engine(void) {
  size_t n = salvo_engine_host_count(g.engine);
  g.hosts = calloc(n ? n : 1, sizeof(*g.hosts));
  for (size_t i = 0; g.hosts != NULL && i < n; i++)
    if (salvo_engine_host_stats(g.engine, i, &g.hosts[g.nhosts]) == 0)
      g.nhosts++;
  salvo_engine_stats(g.engine, &g.engine_stats);
  g.hosts_evicted = g.engine_stats.hosts_evicted;
  salvo_engine_close(g.engine, NULL, NULL);
}

/* Which proxy the requests went through, and why; userinfo never shown. */
static void proxy_line(const char *scheme, const char *proxy, const char *from) {
  char *shown = fetch_redact_url(proxy, 0);
  fprintf(stderr, "  proxy for %s: %s (%s)\n", scheme, shown != NULL ? shown : "***", from);
  free(shown);
}

static const char *env_nonempty(const char *name) {
  const char *v = getenv(name);
  return v != NULL && *v != '\0' ? v : NULL;
}

static void proxy_summary(void) {
  if (g.opts.proxy != NULL) {
    proxy_line("http and https", g.opts.proxy, "--proxy");
  } else if (g.opts.proxy_from_env) {
    const char *all_name = env_nonempty("ALL_PROXY") ? "ALL_PROXY" : "all_proxy";
    const char *all = env_nonempty(all_name);
    const char *http = env_nonempty("http_proxy");
    const char *https_name = env_nonempty("HTTPS_PROXY") ? "HTTPS_PROXY" : "https_proxy";
    const char *https = env_nonempty(https_name);
    if (http != NULL || all != NULL)
      proxy_line("http", http ? http : all, http ? "http_proxy" : all_name);
    if (https != NULL || all != NULL)
      proxy_line("https", https ? https : all, https ? https_name : all_name);
    if (http == NULL && https == NULL && all == NULL)
      return;
  } else {
    fprintf(stderr, "  proxy: none (--proxy '')\n");
    return;
  }
  const char *no_proxy = g.opts.no_proxy;
  if (no_proxy == NULL && g.opts.proxy_from_env)
    no_proxy = env_nonempty("NO_PROXY") ? env_nonempty("NO_PROXY") : env_nonempty("no_proxy");
  if (no_proxy != NULL) {
    char *shown = fetch_escape(no_proxy);
    fprintf(stderr, "  direct (no proxy) for: %s\n", shown != NULL ? shown : "?");
    free(shown);
  }
}

static void summary(void) {
  double secs = (double)(uv_hrtime() - g.start_ns) / 1e9;
  fprintf(stderr, "\nsalvo-fetch: %zu requests in %.2f s (%.0f req/s)\n", g.total_seen, secs,
          secs > 0 ? (double)g.total_seen / secs : 0.0);
  fprintf(stderr, "  %-24s %8zu\n  %-24s %8zu\n  %-24s %8zu\n  %-24s %8zu\n", "ok", g.ok,
          "http_error", g.http_error, "failed", g.failed, "canceled", g.canceled);
  const char *name;
  json_t *v;
  if (json_object_size(g.by_error) > 0)
    fprintf(stderr, "  errors:\n");
  json_object_foreach(g.by_error, name, v) {
    fprintf(stderr, "    %-22s %8" JSON_INTEGER_FORMAT "\n", name, json_integer_value(v));
  }
  fprintf(stderr, "  retries: %zu, on %zu requests\n", g.retries, g.retried_requests);
  proxy_summary();
  fprintf(stderr, "  latency ms: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n", hist_pct(&g.latency, 50),
          hist_pct(&g.latency, 90), hist_pct(&g.latency, 99), (double)g.latency.max_us / 1000.0);
  const salvo_engine_stats_t *es = &g.engine_stats;
  fprintf(stderr, "  engine: successes %llu  failures %llu  attempts %llu  body bytes %llu\n"
          "    per response, ms: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n",
          (unsigned long long)es->successes, (unsigned long long)es->failures,
          (unsigned long long)es->attempts, (unsigned long long)es->bytes_received,
          es->p50_us / 1000.0, es->p90_us / 1000.0, es->p99_us / 1000.0, es->max_us / 1000.0);
  size_t nh = g.nhosts;
  if (nh > 0)
    fprintf(stderr, "  hosts:\n");
  for (size_t i = 0; i < nh && i < 50; i++) {
    const salvo_host_stats_t h = g.hosts[i];
    fprintf(stderr, "    %s\n      requests %llu  ok %llu  failed %llu  attempts %llu  retries %llu  hedges %llu\n",
            h.host, (unsigned long long)h.requests, (unsigned long long)h.successes,
            (unsigned long long)h.failures, (unsigned long long)h.attempts,
            (unsigned long long)h.retries, (unsigned long long)h.hedges);
    fprintf(stderr, "      resends %llu  429s %llu  budget refused %llu  circuit %s (failed fast %llu)  rate %s",
            (unsigned long long)h.resends, (unsigned long long)h.limited, (unsigned long long)h.budget_refused,
            salvo_circuit_name(h.circuit), (unsigned long long)h.circuit_rejected,
            h.rate > 0 ? "" : "unlimited");
    if (h.rate > 0)
      fprintf(stderr, "%.1f/s", h.rate);
    if (h.limit_max > 0)
      fprintf(stderr, "  in flight limit %u (adaptive, %u..%u)", h.limit, h.limit_min, h.limit_max);
    else if (h.limit > 0)
      fprintf(stderr, "  in flight limit %u", h.limit);
    fprintf(stderr, "\n      latency ms: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n", h.p50_us / 1000.0,
            h.p90_us / 1000.0, h.p99_us / 1000.0, h.max_us / 1000.0);
    int first = 1;
    for (int e = 1; e < 32; e++) {
      if (h.by_error[e] == 0)
        continue;
      fprintf(stderr, "%s%s %llu", first ? "      failures: " : ", ", salvo_err_name(-e),
              (unsigned long long)h.by_error[e]);
      first = 0;
    }
    if (h.by_error[0] > 0)
      fprintf(stderr, "%shttp status >= 400 %llu", first ? "      failures: " : ", ",
              (unsigned long long)h.by_error[0]);
    if (!first || h.by_error[0] > 0)
      fprintf(stderr, "\n");
  }
  if (nh > 50)
    fprintf(stderr, "    ... and %zu more hosts\n", nh - 50);
  if (g.hosts_evicted > 0)
    fprintf(stderr, "    (%llu idle hosts were forgotten along the way to keep at most %zu)\n",
            (unsigned long long)g.hosts_evicted, g.opts.max_hosts);
}

/* SIGINT: take no more input, cancel what is in flight; every result still prints. */
static void on_sigint(uv_signal_t *sig, int signum) {
  (void)sig;
  (void)signum;
  if (g.interrupted)
    return;
  g.interrupted = 1;
  g.input_done = 1;
  fetch_reader_close(g.reader); /* a producer that is still writing is not waited for */
  g.reader = NULL;
  fprintf(stderr, "\nsalvo-fetch: interrupted: canceling %zu requests\n", g.in_engine);
  g.closing = 1;
  close_engine();
  uv_timer_stop(&g.progress_timer);
  uv_close((uv_handle_t *)&g.progress_timer, NULL);
  uv_close((uv_handle_t *)&g.sigint, NULL);
  if (g.demo_server)
    faultd_close(g.demo_server);
}

/* ------------------------------------------------------------ demo */

/* A few thousand requests across healthy, slow, flaky, rate-limited,
 * dropping and refused endpoints of a built-in salvo-faultd. */
static int demo_input(char *path, size_t path_len) {
  faultd_opts_t fo;
  faultd_opts_init(&fo);
  const char *err = NULL;
  if (faultd_start(g.loop, &fo, &g.demo_server, &err) != 0) {
    fprintf(stderr, "salvo-fetch: --demo: %s\n", err);
    return -1;
  }
  snprintf(path, path_len, "/tmp/salvo-fetch-demo-XXXXXX");
  int fd = mkstemp(path);
  if (fd < 0)
    return -1;
  FILE *f = fdopen(fd, "w");
  int http = faultd_port(g.demo_server, FAULTD_PORT_HTTP);
  int refused = faultd_port(g.demo_server, FAULTD_PORT_REFUSED);
  struct {
    const char *path;
    int count;
  } kinds[] = {
      {"/ok", 2000},
      {"/sleep/300", 300},
      {"/fail-until/3/flaky-%d", 300},
      {"/fail-until/2/limited-%d?status=429&retry-after=1", 100},
      {"/status/503", 50},
      {"/random/30/%d", 200},
      {"/fail-until/2/drop-%d?fault=reset", 200},
      {"/hang", 20},
      {"/status/404", 50},
      {"refused", 50},
  };
  int n = 0;
  for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
    for (int i = 0; i < kinds[k].count; i++, n++) {
      char p[160];
      snprintf(p, sizeof(p), kinds[k].path, i);
      if (strcmp(p, "refused") == 0)
        fprintf(f, "{\"id\":\"demo-%d\",\"url\":\"http://127.0.0.1:%d/\",\"method\":\"POST\",\"body\":\"x\"}\n",
                n, refused);
      else
        fprintf(f, "{\"id\":\"demo-%d\",\"url\":\"http://127.0.0.1:%d%s\"}\n", n, http, p);
    }
  fclose(f);
  fprintf(stderr,
          "salvo-fetch --demo: %d requests to a built-in fault server on 127.0.0.1 (healthy, slow,\n"
          "flaky, 429 with Retry-After, 503, random failures, dropped connections, hanging,\n"
          "404, refused), default retry policy, idle timeout 1 s\n",
          n);
  return 0;
}

/* ------------------------------------------------------------ options */

static void die_usage(const char *fmt, const char *arg) {
  fprintf(stderr, "salvo-fetch: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(see salvo-fetch --help)\n");
  exit(2);
}

static uint64_t num(const char *opt, const char *arg, uint64_t max) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(arg, &end, 10);
  if (*arg == '\0' || *end != '\0' || errno != 0 || v > max || arg[0] == '-') {
    char msg[128];
    snprintf(msg, sizeof(msg), "%s needs a whole number up to %llu, got '%%s'", opt,
             (unsigned long long)max);
    die_usage(msg, arg);
  }
  return v;
}

static double real(const char *opt, const char *arg, double max) {
  char *end;
  double v = strtod(arg, &end);
  if (*arg == '\0' || *end != '\0' || !(v >= 0) || v > max) {
    char msg[128];
    snprintf(msg, sizeof(msg), "%s needs a number from 0 to %g, got '%%s'", opt, max);
    die_usage(msg, arg);
  }
  return v;
}

static void statuses(const char *opt, const char *arg, int *out) {
  char *copy = strdup(arg), *save = NULL;
  int n = 0;
  for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (n == SALVO_MAX_RETRY_STATUSES - 1) {
      char msg[96];
      snprintf(msg, sizeof(msg), "%s takes at most %d statuses: '%%s'", opt, SALVO_MAX_RETRY_STATUSES - 1);
      die_usage(msg, arg);
    }
    out[n++] = (int)num(opt, t, 599);
    if (out[n - 1] < 100)
      die_usage("not an HTTP status: '%s'", t);
  }
  out[n] = 0;
  free(copy);
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  size_t cap = 65536, n = 0;
  char *buf = malloc(cap);
  size_t r;
  while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
    n += r;
    if (n == cap)
      buf = realloc(buf, cap *= 2);
  }
  fclose(f);
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
    die_usage(msg, arg);
  }
  return (size_t)v << shift;
}

/* Each request in flight holds a socket, and while its host name resolves,
 * libcurl's resolver holds a socket pair: count 2 descriptors a request, and
 * keep some for the loop, the input, the output files and libcurl. */
#define FDS_PER_REQUEST 2
#define FDS_SPARE 32

/* The concurrency the open-file limit allows: the soft limit is raised
 * toward the hard one first; if that is not enough, say so and run fewer. */
/* Descriptors the process holds already (inherited ones included). */
static rlim_t fds_open(void) {
  rlim_t n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL)
    return 0;
  while (readdir(d) != NULL)
    n++;
  closedir(d);
  return n > 3 ? n - 3 : 0; /* ".", ".." and the directory's own descriptor */
}

static size_t fit_fd_limit(size_t want) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return want;
  rlim_t spare = FDS_SPARE + fds_open();
  rlim_t need = (rlim_t)want * FDS_PER_REQUEST + spare;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
    struct rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need ? rl.rlim_max : need;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
      rl = raised;
  }
  size_t fit = want;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
    fit = rl.rlim_cur > spare + FDS_PER_REQUEST ? (size_t)(rl.rlim_cur - spare) / FDS_PER_REQUEST : 1;
    fprintf(stderr,
            "salvo-fetch: -c %zu needs about %llu open files, but the limit (ulimit -n) is %llu "
            "(hard limit %llu): running %zu requests at a time instead\n",
            want, (unsigned long long)need, (unsigned long long)rl.rlim_cur,
            rl.rlim_max == RLIM_INFINITY ? 0ULL : (unsigned long long)rl.rlim_max, fit);
  }
  /* Idle connections kept for reuse hold descriptors too: cap them with the rest. */
  size_t conns = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur <= spare
                     ? 0
                     : (size_t)(rl.rlim_cur - spare) / FDS_PER_REQUEST;
  if (conns > 0 && (g.opts.max_connections == 0 || (size_t)g.opts.max_connections > conns))
    g.opts.max_connections = (long)conns;
  return fit;
}

/* Bodies are buffered whole (a body streamed to a callback would not be
 * retried), so every request in the engine may come to hold max_body bytes,
 * also while it waits to retry: at most max_buffered / max_body of them. */
static size_t fit_memory(size_t want, size_t max_body, size_t max_buffered) {
  if (max_body > max_buffered)
    die_usage("--max-body-size is larger than --max-buffered-bytes%s", "");
  g.body_slots = max_buffered / max_body;
  if (g.body_slots >= want)
    return want;
  fprintf(stderr,
          "salvo-fetch: %zu bodies of up to %zu bytes (--max-body-size) fit in --max-buffered-bytes "
          "%zu: running %zu requests at a time instead of %zu\n",
          g.body_slots, max_body, max_buffered, g.body_slots, want);
  return g.body_slots;
}

enum {
  O_DATA_FILE = 256, O_MAX_HOST, O_H1, O_H2, O_CONNECT, O_IDLE, O_ATTEMPT, O_DEADLINE, O_QUEUE,
  O_MAX_ATTEMPTS, O_BACKOFF_BASE, O_BACKOFF_MAX, O_JITTER, O_RETRY_STATUS, O_RETRY_ANY,
  O_RETRY_METHODS, O_RA_MAX, O_NO_RA, O_IDEM, O_SEED, O_RATE, O_CACERT, O_INSECURE, O_PROXY, O_NOPROXY, O_SHARD,
  O_PROGRESS, O_NO_PROGRESS, O_DEMO, O_BURST, O_ADAPTIVE, O_NO_PAUSE, O_BUDGET, O_BUDGET_FLOOR,
  O_BREAKER, O_HEDGE, O_MAX_REDIRECTS, O_ALLOW_DOWNGRADE, O_MAX_HOSTS, O_MAX_BODY, O_MAX_BUFFERED,
  O_MAX_PER_HOST, O_ADAPTIVE_CONC
};

int main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"input", required_argument, NULL, 'i'}, {"method", required_argument, NULL, 'X'},
      {"header", required_argument, NULL, 'H'}, {"data", required_argument, NULL, 'd'},
      {"data-file", required_argument, NULL, O_DATA_FILE},
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
      {"seed", required_argument, NULL, O_SEED}, {"rate", required_argument, NULL, O_RATE},
      {"cacert", required_argument, NULL, O_CACERT}, {"insecure", no_argument, NULL, O_INSECURE},
      {"proxy", required_argument, NULL, O_PROXY}, {"noproxy", required_argument, NULL, O_NOPROXY},
      {"output-dir", required_argument, NULL, 'o'}, {"shard", required_argument, NULL, O_SHARD},
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
      {NULL, 0, NULL, 0}};
  salvo_engine_opts_init(&g.opts);
  g.opts.log_cb = log_to_stderr;
  g.opts.proxy_from_env = 1; /* a command-line tool follows curl: http_proxy, HTTPS_PROXY, ... */
  hist_init(&g.latency);
  g.headers = json_object();
  g.by_error = json_object();
  const char *input_path = NULL;
  int progress = isatty(2);
  static int demo;
  size_t max_in_flight = 64;
  size_t max_body = DEFAULT_MAX_BODY, max_buffered = DEFAULT_MAX_BUFFERED;
  int opt;
  while ((opt = getopt_long(argc, argv, "i:X:H:d:c:o:hL", longopts, NULL)) != -1) {
    switch (opt) {
    case 'i':
      input_path = optarg;
      break;
    case 'X':
      g.method = optarg;
      break;
    case 'H': {
      const char *colon = strchr(optarg, ':');
      if (colon == NULL || colon == optarg)
        die_usage("-H needs 'Name: value'%s; the argument has no name before a colon (not shown: it may "
                  "hold a secret)", "");
      char *name = strndup(optarg, (size_t)(colon - optarg));
      const char *value = colon + 1;
      while (*value == ' ' || *value == '\t')
        value++;
      json_object_set_new(g.headers, name, json_string(value));
      free(name);
      break;
    }
    case 'd':
      g.body = strdup(optarg);
      g.body_len = strlen(optarg);
      g.has_body = 1;
      break;
    case O_DATA_FILE:
      g.body = read_file(optarg, &g.body_len);
      if (g.body == NULL)
        die_usage("--data-file: cannot read '%s'", optarg);
      g.has_body = 1;
      break;
    case 'c':
      max_in_flight = (size_t)num("--concurrency", optarg, 100000);
      if (max_in_flight == 0)
        die_usage("--concurrency must be at least 1, got '%s'", optarg);
      break;
    case O_MAX_HOST:
      g.opts.max_host_connections = (long)num("--max-host-connections", optarg, 100000);
      break;
    case O_MAX_PER_HOST:
      g.opts.hosts.max_in_flight = (unsigned)num("--max-per-host", optarg, 100000);
      break;
    case O_ADAPTIVE_CONC:
      g.opts.hosts.adaptive_concurrency = 1;
      break;
    case O_H1:
      g.opts.http_version = SALVO_HTTP_1_1;
      break;
    case O_H2:
      g.opts.http_version = SALVO_HTTP_2;
      break;
    case O_CONNECT:
      g.opts.timeouts.connect_ms = num("--connect-timeout", optarg, UINT32_MAX);
      break;
    case O_IDLE:
      g.opts.timeouts.idle_ms = num("--idle-timeout", optarg, UINT32_MAX);
      break;
    case O_ATTEMPT:
      g.opts.timeouts.attempt_ms = num("--attempt-timeout", optarg, UINT32_MAX);
      break;
    case O_DEADLINE:
      g.opts.timeouts.deadline_ms = num("--deadline", optarg, UINT32_MAX);
      break;
    case O_QUEUE:
      g.opts.timeouts.queue_ms = num("--queue-timeout", optarg, UINT32_MAX);
      break;
    case O_MAX_ATTEMPTS:
      g.opts.retry.max_attempts = (unsigned)num("--max-attempts", optarg, 1000);
      if (g.opts.retry.max_attempts == 0)
        die_usage("--max-attempts must be at least 1, got '%s'", optarg);
      break;
    case O_BACKOFF_BASE:
      g.opts.retry.backoff_base_ms = num("--backoff-base", optarg, UINT32_MAX);
      break;
    case O_BACKOFF_MAX:
      g.opts.retry.backoff_max_ms = num("--backoff-max", optarg, UINT32_MAX);
      break;
    case O_JITTER:
      if (strcmp(optarg, "full") == 0)
        g.opts.retry.jitter = SALVO_JITTER_FULL;
      else if (strcmp(optarg, "equal") == 0)
        g.opts.retry.jitter = SALVO_JITTER_EQUAL;
      else if (strcmp(optarg, "decorrelated") == 0)
        g.opts.retry.jitter = SALVO_JITTER_DECORRELATED;
      else if (strcmp(optarg, "none") == 0)
        g.opts.retry.jitter = SALVO_JITTER_NONE;
      else
        die_usage("--jitter is full, equal, decorrelated or none, got '%s'", optarg);
      break;
    case O_RETRY_STATUS:
      statuses("--retry-status", optarg, g.opts.retry.retry_statuses);
      break;
    case O_RETRY_ANY:
      statuses("--retry-any-method-status", optarg, g.opts.retry.retry_any_method_statuses);
      break;
    case O_RETRY_METHODS:
      if (strlen(optarg) >= sizeof(g.opts.retry.idempotent_methods))
        die_usage("--retry-methods: list too long: '%s'", optarg);
      snprintf(g.opts.retry.idempotent_methods, sizeof(g.opts.retry.idempotent_methods), "%s", optarg);
      break;
    case O_RA_MAX:
      g.opts.retry.retry_after_max_ms = num("--retry-after-max", optarg, UINT32_MAX);
      break;
    case O_NO_RA:
      g.opts.retry.respect_retry_after = 0;
      break;
    case O_IDEM:
      if (strcmp(optarg, "auto") == 0)
        g.opts.retry.idempotency_key_auto = 1;
      else if (strcmp(optarg, "off") == 0)
        g.opts.retry.idempotency_key_auto = 0;
      else
        die_usage("--idempotency-key is auto or off, got '%s'", optarg);
      break;
    case O_SEED:
      g.opts.retry.seed = num("--seed", optarg, UINT64_MAX);
      break;
    case O_RATE:
      g.opts.hosts.rate = real("--rate", optarg, 1e6);
      if (g.opts.hosts.burst == 0)
        g.opts.hosts.burst = 1; /* pacing, not bursts, unless --burst says otherwise */
      break;
    case O_BURST:
      g.opts.hosts.burst = real("--burst", optarg, 1e6);
      break;
    case O_ADAPTIVE:
      g.opts.hosts.adaptive = 1;
      break;
    case O_NO_PAUSE:
      g.opts.hosts.pause_on_retry_after = 0;
      break;
    case O_BUDGET:
      g.opts.hosts.budget_ratio = real("--retry-budget", optarg, 1e6);
      g.opts.hosts.budget = g.opts.hosts.budget_ratio > 0;
      break;
    case O_BUDGET_FLOOR:
      g.opts.hosts.budget_floor = real("--retry-budget-floor", optarg, 1e6);
      break;
    case 'L':
      g.opts.follow_redirects = 1;
      break;
    case O_MAX_REDIRECTS:
      g.opts.max_redirects = (unsigned)num("--max-redirects", optarg, 100);
      break;
    case O_ALLOW_DOWNGRADE:
      g.opts.redirect_allow_downgrade = 1;
      break;
    case O_MAX_HOSTS:
      g.opts.max_hosts = (size_t)num("--max-hosts", optarg, 100000000);
      break;
    case O_MAX_BODY:
      max_body = bytes("--max-body-size", optarg);
      break;
    case O_MAX_BUFFERED:
      max_buffered = bytes("--max-buffered-bytes", optarg);
      break;
    case O_BREAKER:
      g.opts.hosts.breaker = 1;
      break;
    case O_HEDGE:
      if (strcmp(optarg, "p95") == 0) {
        g.opts.hosts.hedge_p95 = 1;
        if (g.opts.hosts.hedge_delay_ms == 0)
          g.opts.hosts.hedge_delay_ms = 1000; /* until the host has 20 samples */
      } else {
        g.opts.hosts.hedge_delay_ms = num("--hedge", optarg, 3600000);
        if (g.opts.hosts.hedge_delay_ms == 0)
          die_usage("--hedge is a delay in ms (> 0) or p95, got '%s'", optarg);
      }
      break;
    case O_CACERT:
      if (access(optarg, R_OK) != 0)
        die_usage("--cacert: cannot read '%s'", optarg);
      g.opts.ca_file = optarg;
      break;
    case O_INSECURE:
      g.opts.insecure_skip_verify = 1;
      break;
    case O_PROXY: /* "" = no proxy, whatever the environment says */
      g.opts.proxy = optarg[0] != '\0' ? optarg : NULL;
      g.opts.proxy_from_env = 0;
      g.proxy_flag = 1;
      break;
    case O_NOPROXY:
      g.opts.no_proxy = optarg;
      break;
    case 'o': {
      struct stat st;
      if (stat(optarg, &st) != 0 || !S_ISDIR(st.st_mode) || access(optarg, W_OK) != 0)
        die_usage("--output-dir: '%s' is not a writable directory", optarg);
      g.output_dir = optarg;
      break;
    }
    case O_SHARD: {
      unsigned long k, n;
      char tail;
      if (sscanf(optarg, "%lu/%lu%c", &k, &n, &tail) != 2 || n == 0 || k == 0 || k > n)
        die_usage("--shard needs K/N with 1 <= K <= N, got '%s'", optarg);
      g.shard_k = k;
      g.shard_n = n;
      break;
    }
    case O_PROGRESS:
      progress = 1;
      break;
    case O_NO_PROGRESS:
      progress = 0;
      break;
    case O_DEMO:
      demo = 1;
      break;
    case 'h':
      fputs(usage, stdout);
      return 0;
    default:
      fputs(usage, stderr);
      return 2;
    }
  }
  g.cli_urls = argv + optind;
  g.cli_nurls = argc - optind;
  if (!demo && input_path == NULL && g.cli_nurls == 0)
    die_usage("%s", "nothing to fetch: give URLs, -i FILE, or --demo");
  signal(SIGPIPE, SIG_IGN);
  g.loop = uv_default_loop();
  g.opts.max_in_flight = fit_memory(fit_fd_limit(max_in_flight), max_body, max_buffered);
  g.opts.max_body_size = g.max_body_size = max_body;
  g.names = json_object();

  char demo_path[64] = "";
  if (demo) {
    if (input_path != NULL || g.cli_nurls > 0)
      die_usage("%s", "--demo makes its own input: no URLs or -i with it");
    if (demo_input(demo_path, sizeof(demo_path)) != 0)
      return 1;
    input_path = demo_path;
    g.opts.ca_file = faultd_cert_file(g.demo_server);
    g.opts.timeouts.idle_ms = 1000;
    g.quiet_results = isatty(1);
    if (g.quiet_results)
      fprintf(stderr, "(result lines are not shown on a terminal: add '> results.jsonl' to keep them)\n");
  }
  if (input_path != NULL) {
    g.input_path = strcmp(input_path, "-") == 0 ? "stdin" : input_path;
    int err = fetch_reader_open(g.loop, input_path, MAX_LINE, on_input, NULL, &g.reader);
    if (err != 0) {
      char msg[4096 + 128];
      snprintf(msg, sizeof(msg), "'%s': %s", g.input_path,
               err == UV_EINVAL ? "not a file, pipe, socket or terminal" : uv_strerror(err));
      warn("-i: cannot read ", msg);
      return 2;
    }
  }
  if (demo_path[0])
    unlink(demo_path); /* open already: the file goes away when we are done */

  int rc = salvo_engine_new(g.loop, &g.opts, &g.engine);
  if (rc != 0) {
    fprintf(stderr, "salvo-fetch: %s%s\n", salvo_strerror(rc),
            rc == SALVO_EINVAL && (g.opts.proxy != NULL || g.opts.proxy_from_env)
                ? " (is the proxy, from --proxy or http_proxy/https_proxy/all_proxy, a URL?)"
                : "");
    return 2;
  }
  if (g.opts.insecure_skip_verify)
    fprintf(stderr, "salvo-fetch: WARNING: --insecure: TLS certificates are not verified\n");
  g.progress = progress;
  uv_timer_init(g.loop, &g.progress_timer);
  if (progress)
    uv_timer_start(&g.progress_timer, progress_tick, 200, 200);
  uv_signal_init(g.loop, &g.sigint);
  uv_signal_start(&g.sigint, on_sigint, SIGINT);
  g.start_ns = uv_hrtime();
  feed();
  uv_run(g.loop, UV_RUN_DEFAULT);
  if (progress)
    progress_line(1);
  summary();
  json_decref(g.headers);
  json_decref(g.by_error);
  json_decref(g.names);
  free(g.body);
  free(g.hosts);
  uv_loop_close(g.loop);
  if (g.interrupted)
    return 130;
  if (g.input_error)
    return 2;
  if (demo) /* its failures are on purpose: 0 means every request ended exactly once */
    return g.total_seen == g.line ? 0 : 1;
  return g.ok == g.total_seen ? 0 : 1;
}
