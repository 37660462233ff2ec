/* Load shapes: the offered rate over time as linear pieces, and when each
 * request of an open-loop load is due. Pure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static int bad(char *why, size_t why_len, const char *what, const char *text) {
  snprintf(why, why_len, "%s, got '%s'", what, text);
  return -1;
}

static void add(shape_t *s, double from, double to, double a, double b) {
  shape_segment_t *g = &s->seg[s->n++];
  g->from_s = from;
  g->to_s = to;
  g->rate_from = a;
  g->rate_to = b;
}

double shape_parse_duration(const char *text, const char **end) {
  char *e;
  double v = strtod(text, &e);
  if (e == text || !(v >= 0) || !isfinite(v))
    return -1;
  if (strncmp(e, "ms", 2) == 0) {
    v /= 1000;
    e += 2;
  } else if (*e == 's') {
    e++;
  } else if (*e == 'm') {
    v *= 60;
    e++;
  } else if (*e == 'h') {
    v *= 3600;
    e++;
  }
  *end = e;
  return v;
}

static double parse_rate(const char *text, const char **end) {
  char *e;
  double v = strtod(text, &e);
  if (e == text || !(v >= 0) || !isfinite(v) || v > 1e7)
    return -1;
  *end = e;
  return v;
}

int shape_constant(shape_t *s, double rate) {
  memset(s, 0, sizeof(*s));
  s->end_s = INFINITY;
  if (rate > 0)
    add(s, 0, INFINITY, rate, rate);
  return 0;
}

int shape_ramp(shape_t *s, const char *text, char *why, size_t why_len) {
  static const char *what = "--ramp needs FROM:TO:DURATION (rates per second; 10s, 500ms, 2m)";
  memset(s, 0, sizeof(*s));
  s->end_s = INFINITY;
  const char *p = text;
  double a = parse_rate(p, &p);
  if (a < 0 || *p++ != ':')
    return bad(why, why_len, what, text);
  double b = parse_rate(p, &p);
  if (b <= 0 || *p++ != ':')
    return bad(why, why_len, what, text);
  double d = shape_parse_duration(p, &p);
  if (d <= 0 || *p != '\0')
    return bad(why, why_len, what, text);
  add(s, 0, d, a, b);
  add(s, d, INFINITY, b, b);
  return 0;
}

int shape_steps(shape_t *s, const char *text, char *why, size_t why_len) {
  static const char *what = "--steps needs RATE:DURATION,... (e.g. 200:10s,400:10s)";
  memset(s, 0, sizeof(*s));
  const char *p = text;
  double t = 0;
  for (;;) {
    double r = parse_rate(p, &p);
    if (r < 0 || *p++ != ':')
      return bad(why, why_len, what, text);
    double d = shape_parse_duration(p, &p);
    if (d <= 0)
      return bad(why, why_len, what, text);
    if (s->n == SHAPE_MAX_SEGMENTS - 1)
      return bad(why, why_len, "--steps takes at most 63 steps", text);
    add(s, t, t + d, r, r);
    t += d;
    if (*p == '\0')
      break;
    if (*p++ != ',')
      return bad(why, why_len, what, text);
  }
  add(s, t, INFINITY, 0, 0); /* nothing is due after the last step */
  s->end_s = t;
  return 0;
}

/* Splits the segments at time t (so that a piece begins there). */
static int split_at(shape_t *s, double t) {
  for (size_t i = 0; i < s->n; i++) {
    shape_segment_t *g = &s->seg[i];
    if (t <= g->from_s || t >= g->to_s)
      continue;
    if (s->n == SHAPE_MAX_SEGMENTS)
      return -1;
    memmove(&s->seg[i + 1], &s->seg[i], (s->n - i) * sizeof(*g));
    s->n++;
    double r = shape_rate_at(s, t);
    s->seg[i].to_s = t;
    s->seg[i].rate_to = r;
    s->seg[i + 1].from_s = t;
    s->seg[i + 1].rate_from = r;
    return 0;
  }
  return 0;
}

int shape_spike(shape_t *s, const char *text, char *why, size_t why_len) {
  static const char *what = "--spike needs RATE:AT:FOR (e.g. 2000:10s:5s)";
  const char *p = text;
  double r = parse_rate(p, &p);
  if (r < 0 || *p++ != ':')
    return bad(why, why_len, what, text);
  double at = shape_parse_duration(p, &p);
  if (at < 0 || *p++ != ':')
    return bad(why, why_len, what, text);
  double len = shape_parse_duration(p, &p);
  if (len <= 0 || *p != '\0')
    return bad(why, why_len, what, text);
  if (s->n == 0) /* closed loop has no rate to spike */
    return bad(why, why_len, "--spike needs an open-loop load (--rate, --ramp or --steps)", text);
  if (split_at(s, at) != 0 || split_at(s, at + len) != 0)
    return bad(why, why_len, "--spike: too many pieces in the shape", text);
  for (size_t i = 0; i < s->n; i++)
    if (s->seg[i].from_s >= at && s->seg[i].to_s <= at + len)
      s->seg[i].rate_from = s->seg[i].rate_to = r;
  if (at + len > s->end_s) /* a spike past the last step extends the shape */
    s->end_s = at + len;
  return 0;
}

void shape_scale(shape_t *s, double f) {
  for (size_t i = 0; i < s->n; i++) {
    s->seg[i].rate_from *= f;
    s->seg[i].rate_to *= f;
  }
}

double shape_rate_at(const shape_t *s, double t) {
  for (size_t i = 0; i < s->n; i++) {
    const shape_segment_t *g = &s->seg[i];
    if (t >= g->from_s && t < g->to_s) {
      if (!isfinite(g->to_s) || g->rate_from == g->rate_to)
        return g->rate_from;
      return g->rate_from + (g->rate_to - g->rate_from) * (t - g->from_s) / (g->to_s - g->from_s);
    }
  }
  return 0;
}

/* Requests due within segment g from its start to t (t within it). */
static double seg_count(const shape_segment_t *g, double t) {
  double dt = t - g->from_s;
  if (!isfinite(g->to_s) || g->rate_from == g->rate_to)
    return g->rate_from * dt;
  double slope = (g->rate_to - g->rate_from) / (g->to_s - g->from_s);
  return g->rate_from * dt + slope * dt * dt / 2;
}

double shape_due_by(const shape_t *s, double t) {
  double n = 0;
  for (size_t i = 0; i < s->n; i++) {
    const shape_segment_t *g = &s->seg[i];
    if (t <= g->from_s)
      break;
    n += seg_count(g, t < g->to_s ? t : g->to_s);
  }
  return n;
}

double shape_time_of(const shape_t *s, double k) {
  double n = 0;
  for (size_t i = 0; i < s->n; i++) {
    const shape_segment_t *g = &s->seg[i];
    double whole = isfinite(g->to_s) ? seg_count(g, g->to_s) : INFINITY;
    if (k > n + whole + 1e-9) {
      n += whole;
      continue;
    }
    double want = k - n; /* requests into this segment */
    double a = g->rate_from;
    if (!isfinite(g->to_s) || g->rate_from == g->rate_to)
      return a > 0 ? g->from_s + want / a : INFINITY;
    double c = (g->rate_to - g->rate_from) / (g->to_s - g->from_s) / 2; /* want = a dt + c dt^2 */
    double dt = (-a + sqrt(a * a + 4 * c * want)) / (2 * c);
    if (!(dt >= 0))
      dt = 0;
    return g->from_s + dt;
  }
  return INFINITY;
}
