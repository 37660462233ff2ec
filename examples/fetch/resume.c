/* --resume FILE: the result lines of an earlier run. The last line of an id
 * says how it ended; ids that ended done (ok, and http_error if asked) are
 * skipped. A line cut short by a killed run is ignored. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch.h"

static struct {
  json_t *done;     /* id -> its last line, for the ids that ended done */
  char *batch;      /* the "batch" its lines carry */
  size_t skipped;
} rs;

/* A file that ends without a newline, appended to as stdout: the first
 * new line must not join the cut one. */
static void newline_if_same_file(const char *path, FILE *f) {
  struct stat in, out;
  if (fseek(f, -1, SEEK_END) != 0 || fgetc(f) == '\n')
    return;
  if (stat(path, &in) == 0 && fstat(1, &out) == 0 && in.st_dev == out.st_dev &&
      in.st_ino == out.st_ino && write(1, "\n", 1) != 1)
    fprintf(stderr, "salvo-fetch: --resume: cannot end the cut line of '%s'\n", path);
}

int fetch_resume_load(const char *path, int http_error_done) {
  struct stat in, out;
  int flags = fcntl(1, F_GETFL);
  if (stat(path, &in) == 0 && fstat(1, &out) == 0 && in.st_dev == out.st_dev && in.st_ino == out.st_ino &&
      flags >= 0 && (flags & O_APPEND) == 0) {
    fprintf(stderr, "salvo-fetch: --resume: standard output is '%s' itself, opened to overwrite it (the "
            "shell emptied it): append with >> instead\n", path);
    return -1;
  }
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    fprintf(stderr, "salvo-fetch: --resume: cannot read '%s'\n", path);
    return -1;
  }
  json_t *last = json_object(); /* id -> outcome of its last line */
  rs.done = json_object();
  if (last == NULL || rs.done == NULL) {
    json_decref(last);
    fclose(f);
    fprintf(stderr, "salvo-fetch: --resume: out of memory\n");
    return -1;
  }
  char *line = NULL;
  size_t cap = 0, lineno = 0, bad = 0, bad_at = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, f)) > 0) {
    lineno++;
    json_t *o = json_loadb(line, (size_t)n, 0, NULL);
    json_t *id = json_object_get(o, "id"), *outcome = json_object_get(o, "outcome");
    json_t *batch = json_object_get(o, "batch");
    if (!json_is_string(id) || !json_is_string(outcome)) {
      if (n > 1 || line[0] != '\n') {
        bad++;
        bad_at = lineno;
      }
    } else {
      /* Only what is compared later: a whole line (its history) would cost
       * kilobytes for each id kept. */
      json_t *kept = json_pack("{s:O, s:O*, s:O*}", "outcome", outcome, "url", json_object_get(o, "url"),
                               "method", json_object_get(o, "method"));
      if (kept == NULL || json_object_set_new(last, json_string_value(id), kept) != 0 ||
          (json_is_string(batch) && rs.batch == NULL && (rs.batch = strdup(json_string_value(batch))) == NULL)) {
        json_decref(o);
        json_decref(last);
        fclose(f);
        free(line);
        fprintf(stderr, "salvo-fetch: --resume: out of memory\n");
        return -1;
      }
    }
    json_decref(o);
  }
  int read_error = ferror(f);
  newline_if_same_file(path, f);
  fclose(f);
  free(line);
  if (read_error) {
    json_decref(last);
    fprintf(stderr, "salvo-fetch: --resume: cannot read '%s' to its end\n", path);
    return -1;
  }
  if (bad > 1 || (bad == 1 && bad_at != lineno))
    fprintf(stderr, "salvo-fetch: --resume: %zu lines of '%s' are not result lines (the last: line %zu); "
            "ignored\n", bad, path, bad_at);
  const char *id;
  json_t *v;
  json_object_foreach(last, id, v) {
    const char *outcome = json_string_value(json_object_get(v, "outcome"));
    if (strcmp(outcome, "ok") == 0 || (http_error_done && strcmp(outcome, "http_error") == 0))
      if (json_object_set(rs.done, id, v) != 0) {
        json_decref(last);
        fprintf(stderr, "salvo-fetch: --resume: out of memory\n");
        return -1;
      }
  }
  fprintf(stderr, "salvo-fetch: --resume: %zu ids in '%s', %zu of them done\n", json_object_size(last),
          path, json_object_size(rs.done));
  json_decref(last);
  return 0;
}

int fetch_resume_done(const char *id, const char *method, const char *shown_url) {
  json_t *l = rs.done != NULL ? json_object_get(rs.done, id) : NULL;
  if (l == NULL)
    return 0;
  const char *m = json_string_value(json_object_get(l, "method"));
  const char *u = json_string_value(json_object_get(l, "url"));
  return m != NULL && u != NULL && strcmp(m, method) == 0 && strcmp(u, shown_url) == 0 ? 1 : -1;
}
const char *fetch_resume_batch(void) { return rs.batch; }
size_t fetch_resume_skipped(void) { return rs.skipped; }
void fetch_resume_count_skip(void) { rs.skipped++; }

void fetch_resume_free(void) {
  json_decref(rs.done);
  free(rs.batch);
  rs.done = NULL;
  rs.batch = NULL;
}
