/* salvo-bench: the verbs. See bench.h for the files. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "../../examples/fetch/input.h"
#include "bench.h"

/* The first SIGINT or SIGTERM stops sending and waits for what is in
 * flight (the result is written); a second one ends the process. */
static void on_signal(int sig) {
  static volatile sig_atomic_t seen;
  if (seen) {
    signal(sig, SIG_DFL);
    raise(sig);
  }
  seen = 1;
  bench_request_stop();
}

/* merge and compare: results from files, .json or .hlog. */
static bench_result_t *read_any(const char *path) {
  char why[512];
  size_t n = strlen(path);
  bench_result_t *r = n > 5 && strcmp(path + n - 5, ".hlog") == 0 ? result_read_hlog(path, why, sizeof(why))
                                                                   : result_read_json(path, why, sizeof(why));
  if (r == NULL) {
    fprintf(stderr, "salvo-bench: %s\n", why);
    exit(2);
  }
  return r;
}

static int write_outputs(const bench_result_t *r, int json, const char *hlog, const char *report) {
  int rc = 0;
  if (json) {
    if (result_write_json(r, stdout) != 0) {
      fprintf(stderr, "salvo-bench: cannot write the JSON result\n");
      rc = 2;
    }
  } else {
    result_print(r, stdout);
  }
  if (hlog != NULL && result_write_hlog(r, hlog) != 0) {
    fprintf(stderr, "salvo-bench: --hlog: cannot write %s\n", hlog);
    rc = 2;
  }
  if (report != NULL && report_write(report, &r, 1) != 0) {
    fprintf(stderr, "salvo-bench: --report: cannot write %s\n", report);
    rc = 2;
  }
  return rc;
}

static int verb_merge(int argc, char **argv, int compare) {
  int json = 0;
  const char *hlog = NULL, *report = NULL;
  char **files = calloc((size_t)argc, sizeof(char *));
  int nfiles = 0;
  if (files == NULL)
    return 2;
  for (int k = 1; k < argc; k++) { /* options and files in any order */
    if (strcmp(argv[k], "--json") == 0 && !compare)
      json = 1;
    else if (strcmp(argv[k], "--hlog") == 0 && !compare && k + 1 < argc)
      hlog = argv[++k];
    else if (strcmp(argv[k], "--report") == 0 && k + 1 < argc)
      report = argv[++k];
    else if (argv[k][0] == '-' && argv[k][1] != '\0')
      bench_die_usage("unknown option '%s' (see the usage lines)", argv[k]);
    else
      files[nfiles++] = argv[k];
  }
  if (nfiles < (compare ? 2 : 1))
    bench_die_usage("%s", compare ? "compare needs two or more results" : "merge needs one or more results");
  argv = files;
  argc = nfiles;
  int i = 0;
  if (compare) {
    size_t n = (size_t)(argc - i);
    bench_result_t **runs = calloc(n, sizeof(*runs));
    if (runs == NULL)
      return 2;
    for (size_t k = 0; k < n; k++) {
      runs[k] = read_any(argv[i + (int)k]);
      if (runs[k]->label[0] == '\0')
        snprintf(runs[k]->label, sizeof(runs[k]->label), "%s", argv[i + (int)k]);
      printf("%-24.24s ", runs[k]->label);
      printf("%9.0f req/s  ok %.4f  att/req %.3f  p50 %.3f  p99 %.3f  p99.9 %.3f ms\n",
             runs[k]->seconds > 0 ? (double)runs[k]->total.requests / runs[k]->seconds : 0.0,
             runs[k]->total.requests ? (double)runs[k]->total.ok / (double)runs[k]->total.requests : 0.0,
             runs[k]->total.requests ? (double)runs[k]->total.attempts / (double)runs[k]->total.requests : 0.0,
             (double)hdr_percentile(runs[k]->latency, 50) / 1000.0,
             (double)hdr_percentile(runs[k]->latency, 99) / 1000.0,
             (double)hdr_percentile(runs[k]->latency, 99.9) / 1000.0);
    }
    fflush(stdout);
    int rc = 0;
    const char *out = report != NULL ? report : "compare.html";
    if (report_write(out, (const bench_result_t *const *)runs, n) != 0) {
      fprintf(stderr, "salvo-bench: cannot write %s\n", out);
      rc = 2;
    } else {
      fprintf(stderr, "salvo-bench: wrote %s\n", out);
    }
    for (size_t k = 0; k < n; k++)
      result_free(runs[k]);
    free(runs);
    free(files);
    return rc;
  }
  bench_result_t *all = read_any(argv[i]);
  char first_shard[sizeof(all->shard)];
  memcpy(first_shard, all->shard, sizeof(first_shard));
  all->shard[0] = '\0';
  for (int k = i + 1; k < argc; k++) {
    for (int j = i; j < k; j++)
      if (strcmp(argv[j], argv[k]) == 0)
        bench_die_usage("merge: %s is given twice (its counts would be added twice)", argv[k]);
    bench_result_t *r = read_any(argv[k]);
    if (r->start_unix_s > 0 && r->start_unix_s == all->start_unix_s && strcmp(r->shard, first_shard) == 0 &&
        r->total.requests == all->total.requests && all->shards == 1)
      bench_die_usage("merge: %s looks like the same run as the first (same start, shard and count)",
                      argv[k]);
    if (result_merge(all, r) != 0) {
      fprintf(stderr, "salvo-bench: out of memory merging %s\n", argv[k]);
      return 2;
    }
    all->shards += r->shards;
    all->threads += r->threads;
    all->concurrency += r->concurrency;
    result_free(r);
  }
  int rc = write_outputs(all, json, hlog, report);
  result_free(all);
  free(files);
  return rc;
}

/* libuv asserts that a socket is never fd 0, 1 or 2: a program started with
 * one of them closed (by a supervisor, `>&-`) would abort on its first
 * connection. They are opened on /dev/null instead. */
static void keep_std_fds(void) {
  for (int fd = 0; fd <= 2; fd++)
    if (fcntl(fd, F_GETFD) == -1 && open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) == -1)
      exit(2);
}

/* An output is checked before the load runs, so a typo does not cost the run. */
static void check_writable(const char *opt, const char *path) {
  if (path == NULL)
    return;
  FILE *f = fopen(path, "a");
  if (f == NULL) {
    fprintf(stderr, "salvo-bench: %s: cannot write %s: %s\n", opt, path, strerror(errno));
    exit(2);
  }
  fclose(f);
}

/* stdout's last words: a full disk or a closed pipe is an error, not a result. */
static int close_stdout(int rc) {
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "salvo-bench: cannot write the result on standard output: %s\n", strerror(errno));
    return 2;
  }
  return rc;
}

int main(int argc, char **argv) {
  keep_std_fds();
  if (argc > 1 && (strcmp(argv[1], "merge") == 0 || strcmp(argv[1], "compare") == 0))
    return close_stdout(verb_merge(argc - 1, argv + 1, strcmp(argv[1], "compare") == 0));
  bench_opts_t o;
  bench_options(argc, argv, &o);
  bench_mix_t mix = {0};
  char why[512];
  if (o.input != NULL) {
    if (mix_load(&mix, o.input, why, sizeof(why)) != 0)
      bench_die_usage("-i %s", why);
  } else if (mix_single(&mix, o.url, o.method, o.body, o.body != NULL ? strlen(o.body) : 0, o.headers) != 0) {
    bench_die_usage("%s", "out of memory");
  }
  check_writable("--hlog", o.hlog);
  check_writable("--report", o.report);
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  curl_global_init(CURL_GLOBAL_DEFAULT); /* once, before the threads */
  int rc;
  if (o.storm) {
    rc = bench_storm(&o, &mix);
  } else {
    bench_result_t *r = bench_run(&o, &mix, &o.engine);
    if (r == NULL) {
      rc = 2;
    } else {
      if (o.input != NULL)
        snprintf(r->target, sizeof(r->target), "-i %s (%zu entr%s, %zu name%s)", o.input, mix.n,
                 mix.n == 1 ? "y" : "ies", mix.nnames, mix.nnames == 1 ? "" : "s");
      else { /* the URL as it may be shown: no userinfo, no query (tokens live there too) */
        char *shown = bench_shown_url(o.url);
        snprintf(r->target, sizeof(r->target), "%s %s",
                 mix.entries[0].method ? mix.entries[0].method : (mix.entries[0].has_body ? "POST" : "GET"),
                 shown != NULL ? shown : "(the URL)");
        free(shown);
      }
      rc = write_outputs(r, o.json, o.hlog, o.report);
      if (rc == 0 && r->total.ok != r->total.requests)
        rc = 1;
      result_free(r);
    }
  }
  mix_free(&mix);
  bench_options_free(&o);
  curl_global_cleanup();
  return close_stdout(rc);
}
