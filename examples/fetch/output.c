/* salvo-fetch's output: one result line per request on stdout, the counts,
 * and the summary on stderr. Owns the counts (fetch_counts_t) and the stats
 * kept from the engine when it closes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fetch.h"
#include "histogram.h"
#include "input.h"

static struct {
  fetch_counts_t n;
  json_t *by_error;           /* error name -> count */
  histogram_t latency;
  const char *batch;          /* --idempotency-key auto's batch, in every line */
  int quiet;                  /* --demo on a terminal: no result lines */
  salvo_host_stats_t *hosts;  /* kept when the engine closes */
  size_t nhosts;
  salvo_engine_stats_t engine_stats;
} out;

const fetch_counts_t *fetch_counts(void) { return &out.n; }
void fetch_output_quiet(int quiet) { out.quiet = quiet; }

int fetch_output_init(const char *batch) {
  out.by_error = json_object();
  if (out.by_error == NULL)
    return -1;
  out.batch = batch;
  hist_init(&out.latency);
  return 0;
}

void fetch_output_free(void) {
  json_decref(out.by_error);
  free(out.hosts);
}

static double hist_pct(const histogram_t *h, double p) {
  return (double)hist_percentile_us(h, p) / 1000.0;
}

static json_t *ms(uint64_t us) { return json_real(round((double)us / 10.0) / 100.0); }

/* One line, in one write: a run killed between lines never leaves half of one
 * but the last (--resume ignores that one). */
static void emit(json_t *line) {
  if (!out.quiet) {
    char *s = line != NULL ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII |
                                                  JSON_REAL_PRECISION(6))
                           : NULL;
    if (s == NULL) /* the count still has it, and exit status 1 says not all were ok */
      fprintf(stderr, "salvo-fetch: out of memory: a result line could not be written\n");
    size_t len = s != NULL ? strlen(s) : 0;
    if (s != NULL)
      s[len++] = '\n'; /* json_dumps' buffer has room for its NUL */
    const char *p = s;
    while (p != NULL && len > 0) {
      ssize_t w = write(1, p, len);
      if (w <= 0)
        break; /* stdout is gone (a closed pipe): the counts still say what happened */
      p += w;
      len -= (size_t)w;
    }
    free(s);
  }
  json_decref(line);
  out.n.total++;
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
 * redacted. Escaping for the terminal is stderr's business (fetch_warn()). */
static json_t *text_json(const char *text) {
  char *r = fetch_redact_text(text);
  json_t *j = r != NULL ? json_string(r) : NULL;
  free(r);
  return j != NULL ? j : json_string("(not shown)");
}

void fetch_log(salvo_engine_t *engine, salvo_log_level_t level, const char *message, void *ud) {
  (void)engine;
  (void)ud;
  fprintf(stderr, "salvo: %s: %s\n", salvo_log_level_name(level), message);
}

void fetch_warn(const char *prefix, const char *text) {
  char *redacted = fetch_redact_text(text);
  char *shown = redacted != NULL ? fetch_escape(redacted) : NULL;
  fprintf(stderr, "salvo-fetch: %s%s\n", prefix, shown != NULL ? shown : "(not shown)");
  free(redacted);
  free(shown);
}

static void count_error(const char *name) {
  json_object_set_new(out.by_error, name,
                      json_integer(json_integer_value(json_object_get(out.by_error, name)) + 1));
}

void fetch_refuse_line(size_t line, const char *id, const char *url, const char *error,
                       const char *why) {
  char prefix[64];
  snprintf(prefix, sizeof(prefix), "input line %zu: ", line);
  fetch_warn(prefix, why);
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
  if (out.batch != NULL)
    json_object_set_new(o, "batch", json_string(out.batch));
  emit(o);
  out.n.failed++;
  count_error(error);
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

static json_t *version_json(int v) {
  return v == 20 ? json_string("2") : v == 11 ? json_string("1.1") : v == 10 ? json_string("1.0") : json_null();
}

static json_t *result_json(salvo_request_t *req, const salvo_result_t *r, const fetch_line_t *l) {
  json_t *o = json_object();
  json_object_set_new(o, "id", id_json(l->id, l->line));
  json_object_set_new(o, "url", url_json(l->url, 1));
  json_object_set_new(o, "method", json_string(l->method));
  json_object_set_new(o, "outcome", json_string(l->outcome));
  json_object_set_new(o, "status", r->status ? json_integer(r->status) : json_null());
  json_object_set_new(o, "error", l->error != NULL ? json_string(l->error)
                                  : r->error      ? json_string(salvo_err_name(r->error))
                                                  : json_null());
  json_object_set_new(o, "attempts", json_integer(r->attempts));
  json_object_set_new(o, "elapsed_ms", ms(r->elapsed_us));
  json_object_set_new(o, "bytes", json_integer((json_int_t)r->body_len));
  if (l->file != NULL)
    json_object_set_new(o, "file", json_string(l->file));
  if (l->resumed_from > 0)
    json_object_set_new(o, "resumed_from", json_integer((json_int_t)l->resumed_from));
  if (l->sha256 != NULL)
    json_object_set_new(o, "sha256", json_string(l->sha256));
  if (r->redirects > 0 && req != NULL) {
    json_object_set_new(o, "redirects", json_integer(r->redirects));
    json_object_set_new(o, "final_url", url_json(salvo_request_url(req), 1));
  }
  json_object_set_new(o, "http_version", version_json(r->http_version));
  json_object_set_new(o, "timings",
                      json_pack("{s:o, s:o, s:o, s:o, s:o}", "dns_ms", ms(r->timings.dns_us),
                                "connect_ms", ms(r->timings.connect_us), "tls_ms",
                                ms(r->timings.tls_us), "ttfb_ms", ms(r->timings.ttfb_us),
                                "total_ms", ms(r->timings.total_us)));
  json_object_set_new(o, "stop_reason", json_string(salvo_stop_reason_name(r->stop_reason)));
  if (r->error == SALVO_ERETRYAFTER)
    json_object_set_new(o, "retry_after_ms", json_integer(r->retry_after_ms));
  if (l->detail != NULL) {
    json_object_set_new(o, "detail", text_json(l->detail));
  } else if (r->error == SALVO_EBODYLIMIT) {
    char d[128];
    snprintf(d, sizeof(d), "the body is larger than --max-body-size (%zu bytes)", l->max_body);
    json_object_set_new(o, "detail", json_string(d));
  } else if (r->detail[0]) {
    json_object_set_new(o, "detail", text_json(r->detail));
  }
  if (out.batch != NULL)
    json_object_set_new(o, "batch", json_string(out.batch));
  json_object_set_new(o, "history", history_json(r));
  return o;
}

void fetch_result_line(salvo_request_t *req, const salvo_result_t *r, const fetch_line_t *l) {
  emit(result_json(req, r, l));
  if (strcmp(l->outcome, "ok") == 0)
    out.n.ok++;
  else if (strcmp(l->outcome, "http_error") == 0)
    out.n.http_error++;
  else if (strcmp(l->outcome, "canceled") == 0)
    out.n.canceled++;
  else
    out.n.failed++;
  if (l->error != NULL)
    count_error(l->error);
  else if (r->error)
    count_error(salvo_err_name(r->error));
  if (r->attempts > 1) {
    out.n.retried_requests++;
    out.n.retries += r->attempts - 1;
  }
  hist_add(&out.latency, r->elapsed_us);
}

void fetch_output_keep_stats(salvo_engine_t *engine) {
  size_t n = salvo_engine_host_count(engine);
  out.hosts = calloc(n ? n : 1, sizeof(*out.hosts));
  for (size_t i = 0; out.hosts != NULL && i < n; i++)
    if (salvo_engine_host_stats(engine, i, &out.hosts[out.nhosts]) == 0)
      out.nhosts++;
  salvo_engine_stats(engine, &out.engine_stats);
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

static void proxy_summary(const salvo_engine_opts_t *opts) {
  if (opts->proxy != NULL) {
    proxy_line("http and https", opts->proxy, "--proxy");
  } else if (opts->proxy_from_env) {
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
  const char *no_proxy = opts->no_proxy;
  if (no_proxy == NULL && opts->proxy_from_env)
    no_proxy = env_nonempty("NO_PROXY") ? env_nonempty("NO_PROXY") : env_nonempty("no_proxy");
  if (no_proxy != NULL) {
    char *shown = fetch_escape(no_proxy);
    fprintf(stderr, "  direct (no proxy) for: %s\n", shown != NULL ? shown : "?");
    free(shown);
  }
}

void fetch_summary(const fetch_opts_t *o, double secs) {
  fprintf(stderr, "\nsalvo-fetch: %zu requests in %.2f s (%.0f req/s)\n", out.n.total, secs,
          secs > 0 ? (double)out.n.total / secs : 0.0);
  fprintf(stderr, "  %-24s %8zu\n  %-24s %8zu\n  %-24s %8zu\n  %-24s %8zu\n", "ok", out.n.ok,
          "http_error", out.n.http_error, "failed", out.n.failed, "canceled", out.n.canceled);
  if (o->resume_path != NULL)
    fprintf(stderr, "  %-24s %8zu\n", "skipped (done before)", fetch_resume_skipped());
  const char *name;
  json_t *v;
  if (json_object_size(out.by_error) > 0)
    fprintf(stderr, "  errors:\n");
  json_object_foreach(out.by_error, name, v) {
    fprintf(stderr, "    %-22s %8" JSON_INTEGER_FORMAT "\n", name, json_integer_value(v));
  }
  fprintf(stderr, "  retries: %zu, on %zu requests\n", out.n.retries, out.n.retried_requests);
  proxy_summary(&o->engine);
  fprintf(stderr, "  latency ms: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n", hist_pct(&out.latency, 50),
          hist_pct(&out.latency, 90), hist_pct(&out.latency, 99), (double)out.latency.max_us / 1000.0);
  const salvo_engine_stats_t *es = &out.engine_stats;
  fprintf(stderr, "  engine: successes %llu  failures %llu  attempts %llu  body bytes %llu\n"
          "    per response, ms: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n",
          (unsigned long long)es->successes, (unsigned long long)es->failures,
          (unsigned long long)es->attempts, (unsigned long long)es->bytes_received,
          es->p50_us / 1000.0, es->p90_us / 1000.0, es->p99_us / 1000.0, es->max_us / 1000.0);
  size_t nh = out.nhosts;
  if (nh > 0)
    fprintf(stderr, "  hosts:\n");
  for (size_t i = 0; i < nh && i < 50; i++) {
    const salvo_host_stats_t h = out.hosts[i];
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
  if (out.engine_stats.hosts_evicted > 0)
    fprintf(stderr, "    (%llu idle hosts were forgotten along the way to keep at most %zu)\n",
            (unsigned long long)out.engine_stats.hosts_evicted, o->engine.max_hosts);
}

