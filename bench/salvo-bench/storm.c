/* --storm: the same overload-then-relief load once per retry policy, to
 * show what each does to a server that has a capacity. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* url with every "{policy}" replaced by name; malloc'd. */
static char *subst(const char *url, const char *name) {
  size_t n = strlen(url) + 1, cap = n + 16 * strlen(name);
  char *out = malloc(cap);
  if (out == NULL)
    return NULL;
  size_t len = 0;
  for (const char *p = url; *p != '\0';) {
    if (strncmp(p, "{policy}", 8) == 0 && len + strlen(name) < cap - 1) {
      memcpy(out + len, name, strlen(name));
      len += strlen(name);
      p += 8;
    } else if (len < cap - 1) {
      out[len++] = *p++;
    } else {
      break;
    }
  }
  out[len] = '\0';
  return out;
}

/* A copy of the mix whose URLs name the policy (each policy its own server pool). */
static int policy_mix(const bench_mix_t *m, const char *name, bench_mix_t *out) {
  *out = *m;
  out->entries = malloc(m->n * sizeof(*out->entries));
  if (out->entries == NULL)
    return -1;
  memcpy(out->entries, m->entries, m->n * sizeof(*out->entries));
  for (size_t i = 0; i < m->n; i++)
    if ((out->entries[i].url = subst(m->entries[i].url, name)) == NULL)
      return -1;
  return 0;
}

static void policy_mix_free(bench_mix_t *pm) {
  for (size_t i = 0; pm->entries != NULL && i < pm->n; i++)
    free(pm->entries[i].url);
  free(pm->entries);
}

int bench_storm(const bench_opts_t *o, const bench_mix_t *m) {
  static const bench_policy_t order[] = {POLICY_NONE, POLICY_NAIVE, POLICY_DEFAULT, POLICY_ADAPTIVE};
  bench_result_t *runs[4] = {0};
  int rc = 0;
  int own_pools = strstr(m->entries[0].url, "{policy}") != NULL;
  FILE *js = NULL;
  if (o->storm_json != NULL && (js = fopen(o->storm_json, "w")) == NULL) {
    fprintf(stderr, "salvo-bench: --storm-json: cannot write %s\n", o->storm_json);
    return 2;
  }
  printf("storm: %s; overload ends at %.0f s; SLO p99 %.0f ms; %s\n", o->shape_text, o->overload_end_s, o->slo_ms,
         own_pools ? "each policy its own {policy} in the URL" : "one server for all, 5 s apart");
  printf("%-10s %9s %9s %9s %9s %9s %10s %12s %14s\n", "policy", "requests", "ok", "goodput/s", "att/req",
         "sends/req", "ok p99 ms", "recovery s", "p99<SLO after");
  for (size_t i = 0; i < 4 && rc == 0; i++) {
    const char *name = bench_policy_name(order[i]);
    salvo_engine_opts_t e = o->engine;
    bench_apply_policy(&e, order[i]);
    bench_mix_t pm;
    if (policy_mix(m, name, &pm) != 0) {
      policy_mix_free(&pm);
      fprintf(stderr, "salvo-bench: out of memory\n");
      rc = 2;
      break;
    }
    if (i > 0 && !own_pools)
      sleep(5); /* the server drains what the last one left */
    bench_result_t *r = bench_run(o, &pm, &e);
    policy_mix_free(&pm);
    if (r == NULL) {
      rc = 2;
      break;
    }
    runs[i] = r;
    snprintf(r->label, sizeof(r->label), "%s", name);
    snprintf(r->target, sizeof(r->target), "--storm, policy %s", name);
    r->overload_end_s = o->overload_end_s;
    r->recovery_s = result_recovery(r, o->overload_end_s, 0);
    r->slo_ms = o->slo_ms;
    r->latency_recovery_s = result_recovery(r, o->overload_end_s, o->slo_ms);
    const bench_counts_t *c = &r->total;
    char rec[32], lrec[32];
    if (r->recovery_s < 0)
      snprintf(rec, sizeof(rec), "never");
    else
      snprintf(rec, sizeof(rec), "%.0f", r->recovery_s);
    if (r->latency_recovery_s < 0)
      snprintf(lrec, sizeof(lrec), "never");
    else
      snprintf(lrec, sizeof(lrec), "%.0f", r->latency_recovery_s);
    printf("%-10s %9" PRIu64 " %9" PRIu64 " %9.0f %9.3f %9.3f %10.1f %12s %14s\n", name, c->requests, c->ok,
           (double)c->ok / r->seconds, c->requests ? (double)c->attempts / (double)c->requests : 0.0,
           c->requests ? (double)c->sends / (double)c->requests : 0.0,
           (double)hdr_percentile(r->ok_latency, 99) / 1000.0, rec, lrec);
    fflush(stdout);
    if (js != NULL && result_write_json(r, js) != 0)
      rc = 2;
  }
  if (js != NULL && fclose(js) != 0)
    rc = 2;
  if (rc == 0 && o->report != NULL && report_write(o->report, (const bench_result_t *const *)runs, 4) != 0) {
    fprintf(stderr, "salvo-bench: --report: cannot write %s\n", o->report);
    rc = 2;
  }
  for (size_t i = 0; i < 4; i++)
    result_free(runs[i]);
  return rc;
}
