/* Request mixes: entries drawn by weight from a seedable source. The lines
 * are salvo-fetch's input format (examples/fetch/input.c parses them) with
 * "weight" and "name" besides. Pure: no I/O but mix_load's read. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../examples/fetch/input.h"
#include "bench.h"

void rng_seed(bench_rng_t *r, uint64_t seed) { r->state = seed; }

uint64_t rng_next(bench_rng_t *r) { /* splitmix64 */
  uint64_t z = (r->state += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

double rng_unit(bench_rng_t *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

static void entry_free(mix_entry_t *e) {
  free(e->method);
  free(e->url);
  if (e->headers != NULL)
    for (char **h = e->headers; *h != NULL; h++)
      free(*h);
  free(e->headers);
  free(e->body);
}

void mix_free(bench_mix_t *m) {
  for (size_t i = 0; i < m->n; i++)
    entry_free(&m->entries[i]);
  free(m->entries);
  free(m->cumulative);
  free(m->names);
  memset(m, 0, sizeof(*m));
}

char *bench_shown_url(const char *url) {
  size_t n = strcspn(url, "?#");
  char *cut = malloc(n + 5);
  if (cut == NULL)
    return NULL;
  memcpy(cut, url, n);
  strcpy(cut + n, url[n] != '\0' ? "?..." : "");
  char *shown = fetch_redact_url(cut, 0); /* userinfo to the last '@' before the query */
  free(cut);
  return shown;
}

/* The default name: METHOD and the URL's path (never its userinfo or query), cut to fit. */
static void default_name(mix_entry_t *e) {
  char *shown = bench_shown_url(e->url);
  const char *path = shown != NULL ? strstr(shown, "://") : NULL;
  path = path != NULL ? strchr(path + 3, '/') : NULL;
  if (path == NULL)
    path = "/";
  size_t plen = strcspn(path, "?#");
  snprintf(e->name, sizeof(e->name), "%s %.*s", e->method != NULL ? e->method : (e->has_body ? "POST" : "GET"),
           (int)(plen < 200 ? plen : 200), path);
  free(shown);
}

/* Adds e (taken over) and its name; -1 out of memory. */
static int append(bench_mix_t *m, mix_entry_t *e) {
  mix_entry_t *entries = realloc(m->entries, (m->n + 1) * sizeof(*entries));
  if (entries == NULL)
    return -1;
  m->entries = entries;
  double *cum = realloc(m->cumulative, (m->n + 1) * sizeof(*cum));
  if (cum == NULL)
    return -1;
  m->cumulative = cum;
  size_t k = 0;
  while (k < m->nnames && strcmp(m->names[k], e->name) != 0)
    k++;
  if (k == m->nnames) {
    char(*names)[BENCH_NAME_MAX] = realloc(m->names, (m->nnames + 1) * sizeof(*names));
    if (names == NULL)
      return -1;
    m->names = names;
    memcpy(m->names[m->nnames++], e->name, BENCH_NAME_MAX);
  }
  e->name_index = k;
  cum[m->n] = (m->n > 0 ? cum[m->n - 1] : 0) + e->weight;
  entries[m->n++] = *e;
  return 0;
}

static char *dup_n(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d != NULL) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

int mix_single(bench_mix_t *m, const char *url, const char *method, const char *body, size_t body_len,
               char **headers) {
  mix_entry_t e = {0};
  e.url = strdup(url);
  e.method = method != NULL ? strdup(method) : NULL;
  e.has_body = body != NULL;
  e.body = body != NULL ? dup_n(body, body_len) : NULL;
  e.body_len = body_len;
  e.weight = 1;
  size_t nh = 0;
  while (headers != NULL && headers[nh] != NULL)
    nh++;
  if (nh > 0 && (e.headers = calloc(nh + 1, sizeof(char *))) != NULL)
    for (size_t i = 0; i < nh; i++)
      if ((e.headers[i] = strdup(headers[i])) == NULL)
        goto oom;
  if (e.url == NULL || (method != NULL && e.method == NULL) || (body != NULL && e.body == NULL) ||
      (nh > 0 && e.headers == NULL))
    goto oom;
  default_name(&e);
  if (append(m, &e) == 0)
    return 0;
oom:
  entry_free(&e);
  return -1;
}

/* Fills e from a parsed line; the reason in why on a problem. */
static int take(mix_entry_t *e, const fetch_spec_t *sp, char *why, size_t why_len) {
  static const char *const known[] = {"url", "method", "headers", "body", "weight", "name", "id", "sha256"};
  const char *key;
  json_t *value;
  json_object_foreach(sp->obj, key, value) { /* a typo ("wieght") is an error, not a default */
    size_t k = 0;
    while (k < sizeof(known) / sizeof(*known) && strcmp(key, known[k]) != 0)
      k++;
    if (k == sizeof(known) / sizeof(*known)) {
      snprintf(why, why_len, "unknown key (a mix line has url, method, headers, body, weight, name, id)");
      return -1;
    }
  }
  json_t *weight = json_object_get(sp->obj, "weight");
  json_t *name = json_object_get(sp->obj, "name");
  e->weight = 1;
  if (weight != NULL) {
    if (!json_is_number(weight) || !(json_number_value(weight) > 0) || json_number_value(weight) > 1e9) {
      snprintf(why, why_len, "\"weight\" must be a number above 0 (at most 1e9)");
      return -1;
    }
    e->weight = json_number_value(weight);
  }
  if (name != NULL) {
    if (!json_is_string(name) || json_string_length(name) == 0 ||
        json_string_length(name) >= BENCH_NAME_MAX || strlen(json_string_value(name)) != json_string_length(name)) {
      snprintf(why, why_len, "\"name\" must be a string of 1 to %d bytes", BENCH_NAME_MAX - 1);
      return -1;
    }
    for (const unsigned char *c = (const unsigned char *)json_string_value(name); *c != '\0'; c++)
      if (*c < 0x20 || *c == 0x7f) {
        snprintf(why, why_len, "\"name\" must be printable (no control characters)");
        return -1;
      }
    snprintf(e->name, sizeof(e->name), "%s", json_string_value(name));
  }
  const char *url = sp->url != NULL ? sp->url : sp->bare_url;
  if (url == NULL || (e->url = strdup(url)) == NULL)
    goto oom;
  if (sp->method != NULL && (e->method = strdup(sp->method)) == NULL)
    goto oom;
  if (sp->body != NULL) {
    if ((e->body = dup_n(sp->body, sp->body_len)) == NULL)
      goto oom;
    e->body_len = sp->body_len;
    e->has_body = 1;
  }
  size_t nh = sp->headers != NULL ? json_object_size(sp->headers) : 0;
  if (nh > 0) {
    if ((e->headers = calloc(nh + 1, sizeof(char *))) == NULL)
      goto oom;
    size_t i = 0;
    json_object_foreach(sp->headers, key, value) {
      if (!json_is_string(value)) {
        snprintf(why, why_len, "header \"%.64s\" must be a string", key);
        return -1;
      }
      size_t len = strlen(key) + 2 + json_string_length(value) + 1;
      if ((e->headers[i] = malloc(len)) == NULL)
        goto oom;
      snprintf(e->headers[i++], len, "%s: %s", key, json_string_value(value));
    }
  }
  if (e->name[0] == '\0')
    default_name(e);
  return 0;
oom:
  snprintf(why, why_len, "out of memory");
  return -1;
}

int mix_parse(bench_mix_t *m, const char *text, size_t len, char *why, size_t why_len) {
  size_t line = 0;
  const char *p = text, *end = text + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
    line++;
    char *copy = dup_n(p, n);
    p += n + (nl != NULL);
    if (copy == NULL) {
      snprintf(why, why_len, "out of memory");
      return -1;
    }
    if (memchr(copy, '\0', n) != NULL) {
      free(copy);
      snprintf(why, why_len, "line %zu: holds a NUL byte", line);
      return -1;
    }
    const char *q = copy;
    while (*q == ' ' || *q == '\t' || *q == '\r')
      q++;
    if (*q == '#' || *q == '\0') {
      free(copy);
      continue;
    }
    if (m->n == BENCH_MAX_ENTRIES) {
      free(copy);
      snprintf(why, why_len, "line %zu: a mix has at most %d entries", line, BENCH_MAX_ENTRIES);
      return -1;
    }
    fetch_spec_t sp;
    char reason[256];
    mix_entry_t e = {0};
    int rc = fetch_parse_line(copy, line, &sp, reason, sizeof(reason));
    if (rc > 0 && sp.obj == NULL)
      e.weight = 1; /* a bare URL */
    if (rc > 0 && sp.obj != NULL && take(&e, &sp, reason, sizeof(reason)) != 0)
      rc = -1;
    else if (rc > 0 && sp.obj == NULL && ((e.url = strdup(sp.bare_url)) == NULL))
      rc = -1, snprintf(reason, sizeof(reason), "out of memory");
    if (rc > 0 && sp.obj == NULL)
      default_name(&e);
    fetch_spec_free(&sp);
    free(copy);
    if (rc < 0) {
      entry_free(&e);
      snprintf(why, why_len, "line %zu: %s", line, reason);
      return -1;
    }
    if (rc == 0) {
      entry_free(&e);
      continue;
    }
    if (m->nnames == BENCH_MAX_NAMES && strcmp(e.name, "") != 0) {
      size_t k = 0;
      while (k < m->nnames && strcmp(m->names[k], e.name) != 0)
        k++;
      if (k == m->nnames) {
        entry_free(&e);
        snprintf(why, why_len, "line %zu: a mix has at most %d names", line, BENCH_MAX_NAMES);
        return -1;
      }
    }
    if (append(m, &e) != 0) {
      entry_free(&e);
      snprintf(why, why_len, "out of memory");
      return -1;
    }
  }
  if (m->n == 0) {
    snprintf(why, why_len, "no request in it (a line is a URL or a JSON object with \"url\")");
    return -1;
  }
  return 0;
}

int mix_load(bench_mix_t *m, const char *path, char *why, size_t why_len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    snprintf(why, why_len, "%s: %s", path, strerror(errno));
    return -1;
  }
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  size_t got;
  while (buf != NULL && (got = fread(buf + len, 1, cap - len, f)) > 0) {
    len += got;
    if (len == cap) {
      if (cap >= ((size_t)64 << 20)) {
        fclose(f);
        free(buf);
        snprintf(why, why_len, "%s: larger than 64 MiB", path);
        return -1;
      }
      char *nb = realloc(buf, cap *= 2);
      if (nb == NULL)
        free(buf);
      buf = nb;
    }
  }
  int err = ferror(f);
  fclose(f);
  if (buf == NULL || err) {
    free(buf);
    snprintf(why, why_len, "%s: %s", path, buf == NULL ? "out of memory" : "read error");
    return -1;
  }
  char inner[300];
  int rc = mix_parse(m, buf, len, inner, sizeof(inner));
  free(buf);
  if (rc != 0)
    snprintf(why, why_len, "%s: %s", path, inner);
  return rc;
}

const mix_entry_t *mix_draw(const bench_mix_t *m, bench_rng_t *r) {
  if (m->n == 1)
    return &m->entries[0];
  double x = rng_unit(r) * m->cumulative[m->n - 1];
  size_t lo = 0, hi = m->n - 1; /* the first i with cumulative[i] > x */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (m->cumulative[mid] > x)
      hi = mid;
    else
      lo = mid + 1;
  }
  return &m->entries[lo];
}
