/* The HTML page of one or more results: a header, latency by percentile,
 * latency, throughput and attempts over time, tables by name and by
 * percentile. Inline SVG and CSS, no JavaScript, nothing external: one file
 * that opens anywhere. Several runs share the axes, one colour each (compare,
 * --storm). Every string that came from a user (labels, targets, shapes,
 * names) is HTML-escaped. Reads results; owns nothing but its own views. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

/* Each chart's viewBox; the page scales it to its width (800 px reads well). */
#define CHART_W 760
#define CHART_H 280
#define PLOT_L 62
#define PLOT_R 30
#define PLOT_T 26
#define PLOT_B 40
/* Past this many seconds a point of the time charts stands for several. */
#define MAX_POINTS 900
/* Latency by percentile: x from 0 to 5 decades of 1/(1-p), i.e. up to 99.999 %. */
#define PCT_DECADES 5
#define PCT_SAMPLES 250

/* Told apart by people with the common colour blindnesses (Okabe and Ito). */
static const char *const run_colours[] = {"#0072b2", "#d55e00", "#009e73", "#cc79a7",
                                          "#e69f00", "#56b4e9", "#000000", "#8c8c3c"};
#define NCOLOURS (sizeof(run_colours) / sizeof(run_colours[0]))

static const double table_pcts[] = {50, 75, 90, 95, 99, 99.9, 99.99, 99.999};
#define NTABLE_PCTS (sizeof(table_pcts) / sizeof(table_pcts[0]))

/* A line of a chart. One run: each its own colour; several: the run's colour, this dash. */
typedef enum {
  S_LATENCY,
  S_SERVICE,
  S_P50,
  S_P99,
  S_COMPLETED,
  S_OK,
  S_ERRORS,
  S_OFFERED,
  S_ATTEMPTS,
  NSERIES
} series_id_t;

typedef struct {
  const char *name;   /* in the legend */
  const char *colour; /* when there is one run */
  const char *dash;   /* stroke-dasharray; "" solid */
  double width;
} series_t;

static const series_t series[NSERIES] = {
    [S_LATENCY] = {"latency", "#0072b2", "", 2},
    [S_SERVICE] = {"service time", "#e69f00", "7 4", 2},
    [S_P50] = {"p50", "#0072b2", "5 3", 1.6},
    [S_P99] = {"p99", "#d55e00", "", 2},
    [S_COMPLETED] = {"completed", "#0072b2", "7 3", 1.6},
    [S_OK] = {"ok (goodput)", "#009e73", "", 2.2},
    [S_ERRORS] = {"errors", "#d55e00", "2 3", 2},
    [S_OFFERED] = {"offered", "#777777", "12 3 2 3", 1.2},
    [S_ATTEMPTS] = {"attempts per request", "#cc79a7", "", 2},
};

/* One point of the time charts: rates per second over its seconds. */
typedef struct {
  double t;                          /* the middle of its seconds */
  double completed, ok, errors, offered;
  double attempts;                   /* per request; NAN when none completed */
  double p50_ms, p99_ms;             /* NAN when none completed */
} point_t;

/* A run as the page shows it. */
typedef struct {
  const bench_result_t *r;
  const char *colour;
  char legend[192];   /* the label, and the recovery of a storm run */
  size_t shown;       /* whole seconds on the time charts */
  point_t *pts;
  size_t npts;
  int outcomes_known; /* ok and errors were counted (an interval log has latencies only) */
} view_t;

typedef struct {
  FILE *f;
  view_t *v;
  size_t n;
} page_t;

/* ------------------------------------------------------------ text */

static void put_escaped(FILE *f, const char *s) {
  for (; *s != '\0'; s++) {
    switch (*s) {
    case '&': fputs("&amp;", f); break;
    case '<': fputs("&lt;", f); break;
    case '>': fputs("&gt;", f); break;
    case '"': fputs("&quot;", f); break;
    case '\'': fputs("&#39;", f); break;
    default:
      if ((unsigned char)*s < 0x20 && *s != '\t')
        fputc(' ', f); /* a control character: nothing to show */
      else
        fputc(*s, f);
    }
  }
}

static double per_request(uint64_t n, uint64_t requests) {
  return requests > 0 ? (double)n / (double)requests : 0.0;
}

static uint64_t errors_of(const bench_counts_t *c) {
  uint64_t n = 0;
  for (size_t i = 0; i < BENCH_NCLASSES; i++)
    n += c->errors[i];
  return n;
}

/* "0", or each class with a count: "http_status 3<br>timeout 2". */
static void put_error_classes(FILE *f, const bench_counts_t *c) {
  int any = 0;
  for (size_t i = 0; i < BENCH_NCLASSES; i++) {
    if (c->errors[i] == 0)
      continue;
    fprintf(f, "%s<span class=\"error\"><span class=\"class\">", any ? "<br>" : "");
    put_escaped(f, result_class_name(i));
    fprintf(f, "</span> %" PRIu64 "</span>", c->errors[i]);
    any = 1;
  }
  if (!any)
    fputc('0', f);
}

static void put_swatch(FILE *f, const char *colour) {
  fprintf(f, "<span class=\"swatch\" style=\"background:%s\"></span>", colour);
}

/* ------------------------------------------------------------ views */

/* The time charts show whole seconds only: a last partial second would look like a drop. */
static size_t shown_seconds(const bench_result_t *r) {
  size_t whole = r->seconds >= 1 && r->seconds < (double)r->nsecs ? (size_t)r->seconds : 0;
  return whole > 0 ? whole : r->nsecs;
}

static void add_second_hist(hdr_t *into, const char *text) {
  if (text == NULL)
    return;
  char why[128];
  hdr_t *h = hdr_decode(text, strlen(text), why, sizeof(why));
  if (h == NULL)
    return; /* a malformed second shows as nothing */
  hdr_add(into, h);
  hdr_free(h);
}

/* Point i of the view from seconds from..to (exclusive), h a scratch histogram. */
static void fill_point(point_t *p, const bench_result_t *r, size_t from, size_t to, hdr_t *h) {
  bench_counts_t c = {0};
  uint64_t offered = 0;
  hdr_reset(h);
  for (size_t s = from; s < to; s++) {
    const bench_counts_t *x = &r->secs[s].counts;
    c.requests += x->requests;
    c.ok += x->ok;
    c.attempts += x->attempts;
    for (size_t k = 0; k < BENCH_NCLASSES; k++)
      c.errors[k] += x->errors[k];
    offered += r->secs[s].offered;
    add_second_hist(h, r->secs[s].hist);
  }
  double secs = (double)(to - from);
  p->t = (double)(from + to) / 2.0;
  p->completed = (double)c.requests / secs;
  p->ok = (double)c.ok / secs;
  p->errors = (double)errors_of(&c) / secs;
  p->offered = (double)offered / secs;
  p->attempts = c.requests > 0 && c.attempts > 0 ? (double)c.attempts / (double)c.requests : NAN;
  p->p50_ms = hdr_total(h) > 0 ? (double)hdr_percentile(h, 50) / 1000.0 : NAN;
  p->p99_ms = hdr_total(h) > 0 ? (double)hdr_percentile(h, 99) / 1000.0 : NAN;
}

static int view_init(view_t *v, const bench_result_t *r, size_t i) {
  memset(v, 0, sizeof(*v));
  v->r = r;
  v->colour = run_colours[i % NCOLOURS];
  v->outcomes_known = r->total.ok + errors_of(&r->total) == r->total.requests;
  int len = snprintf(v->legend, sizeof(v->legend), "%s", r->label[0] != '\0' ? r->label : "run");
  if (r->overload_end_s > 0 && len >= 0 && (size_t)len < sizeof(v->legend)) {
    if (r->recovery_s < 0)
      snprintf(v->legend + len, sizeof(v->legend) - (size_t)len, " (recovery never)");
    else
      snprintf(v->legend + len, sizeof(v->legend) - (size_t)len, " (recovery %.0f s)", r->recovery_s);
  }
  v->shown = shown_seconds(r);
  size_t width = (v->shown + MAX_POINTS - 1) / MAX_POINTS;
  if (width == 0)
    width = 1;
  v->npts = (v->shown + width - 1) / width;
  v->pts = calloc(v->npts > 0 ? v->npts : 1, sizeof(*v->pts));
  hdr_t *h = hdr_new_default();
  if (v->pts == NULL || h == NULL) {
    hdr_free(h);
    return -1;
  }
  for (size_t k = 0; k < v->npts; k++) {
    size_t from = k * width, to = from + width < v->shown ? from + width : v->shown;
    fill_point(&v->pts[k], r, from, to, h);
  }
  hdr_free(h);
  return 0;
}

static double point_value(const point_t *p, series_id_t s) {
  switch (s) {
  case S_P50: return p->p50_ms;
  case S_P99: return p->p99_ms;
  case S_COMPLETED: return p->completed;
  case S_OK: return p->ok;
  case S_ERRORS: return p->errors;
  case S_OFFERED: return p->offered;
  case S_ATTEMPTS: return p->attempts;
  default: return NAN;
  }
}

/* Whether the view has series s at all. */
static int view_has(const view_t *v, series_id_t s) {
  const bench_result_t *r = v->r;
  switch (s) {
  case S_LATENCY: return hdr_total(r->latency) > 0;
  case S_SERVICE: return r->open_loop && hdr_total(r->service) > 0;
  case S_OK:
  case S_ERRORS: return v->outcomes_known && v->npts > 0;
  case S_OFFERED: return r->open_loop && v->npts > 0;
  case S_ATTEMPTS: return r->total.attempts > 0 && v->npts > 0;
  default: return v->npts > 0;
  }
}

/* ------------------------------------------------------------ charts */

typedef struct {
  FILE *f;
  double x_max, y_max; /* both axes start at 0 */
  double y_step;
  int multi;           /* several runs: colour by run, dash by series */
} chart_t;

static double px(const chart_t *c, double x) {
  return PLOT_L + (CHART_W - PLOT_L - PLOT_R) * (x / c->x_max);
}

static double py(const chart_t *c, double y) {
  if (y > c->y_max)
    y = c->y_max;
  return CHART_H - PLOT_B - (CHART_H - PLOT_T - PLOT_B) * (y / c->y_max);
}

/* A step of 1, 2 or 5 times a power of ten giving about n steps up to max. */
static double nice_step(double max, int n) {
  if (!(max > 0) || !isfinite(max))
    max = 1;
  double raw = max / n, mag = pow(10, floor(log10(raw))), f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

static int decimals_of(double step) {
  return step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
}

/* The y axis from 0 to max rounded up to a tick, with its grid and unit. */
static void chart_begin(chart_t *c, FILE *f, double x_max, double y_max, int multi, const char *title,
                        const char *y_unit) {
  c->f = f;
  c->x_max = x_max > 0 ? x_max : 1;
  c->y_step = nice_step(y_max, 5);
  c->y_max = c->y_step * ceil((y_max > 0 ? y_max : c->y_step) / c->y_step - 1e-9);
  c->multi = multi;
  fprintf(f, "<svg class=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"%s\">\n", CHART_W, CHART_H,
          title);
  int decimals = decimals_of(c->y_step);
  for (int k = 0; k * c->y_step <= c->y_max * (1 + 1e-9); k++) {
    double v = k * c->y_step, y = py(c, v);
    fprintf(f, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>", PLOT_L, y, CHART_W - PLOT_R,
            y);
    fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.*f</text>\n", PLOT_L - 6, y + 4, decimals, v);
  }
  fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" class=\"unit\">%s</text>\n", PLOT_L - 6, PLOT_T - 12,
          y_unit);
}

/* The x axis of time in seconds. */
static void time_axis(const chart_t *c) {
  double step = nice_step(c->x_max, 8);
  int decimals = decimals_of(step);
  for (int k = 0; k * step <= c->x_max * (1 + 1e-9); k++) {
    double x = px(c, k * step);
    fprintf(c->f, "<line class=\"tick\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>", x, CHART_H - PLOT_B, x,
            CHART_H - PLOT_B + 4);
    fprintf(c->f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.*f</text>\n", x, CHART_H - PLOT_B + 16,
            decimals, k * step);
  }
  fprintf(c->f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"unit\">seconds since the start</text>\n",
          (PLOT_L + CHART_W - PLOT_R) / 2, CHART_H - 6);
}

/* The x axis of percentiles: 1/(1-p) on a log scale. */
static void percentile_axis(const chart_t *c) {
  static const char *const ticks[] = {"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"};
  for (int k = 0; k <= PCT_DECADES; k++) {
    double x = px(c, k);
    fprintf(c->f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>", x, PLOT_T, x,
            CHART_H - PLOT_B);
    fprintf(c->f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x, CHART_H - PLOT_B + 16,
            ticks[k]);
  }
  fprintf(c->f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"unit\">percentile</text>\n",
          (PLOT_L + CHART_W - PLOT_R) / 2, CHART_H - 6);
}

static void chart_end(const chart_t *c) {
  fprintf(c->f, "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>", PLOT_L, CHART_H - PLOT_B,
          CHART_W - PLOT_R, CHART_H - PLOT_B);
  fprintf(c->f, "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/></svg>\n", PLOT_L, PLOT_T, PLOT_L,
          CHART_H - PLOT_B);
}

static void no_data(const chart_t *c) {
  fprintf(c->f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"unit\">no data</text>\n",
          (PLOT_L + CHART_W - PLOT_R) / 2, (PLOT_T + CHART_H - PLOT_B) / 2);
}

/* A line drawn point by point; a NAN lifts the pen. */
typedef struct {
  const chart_t *c;
  int seg; /* points in the current subpath */
} pen_t;

static void line_begin(pen_t *p, const chart_t *c, const view_t *v, series_id_t s) {
  const series_t *d = &series[s];
  p->c = c;
  p->seg = 0;
  fprintf(c->f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\"", c->multi ? v->colour : d->colour,
          d->width);
  if (d->dash[0] != '\0')
    fprintf(c->f, " stroke-dasharray=\"%s\"", d->dash);
  fputs(" d=\"", c->f);
}

static void pen_up(pen_t *p) {
  if (p->seg == 1)
    fputs("h0", p->c->f); /* a lone point: a dot (round caps) */
  p->seg = 0;
}

static void pen_to(pen_t *p, double x, double y) {
  if (!isfinite(y)) {
    pen_up(p);
    return;
  }
  fprintf(p->c->f, "%s%.1f %.1f", p->seg > 0 ? "L" : "M", px(p->c, x), py(p->c, y));
  p->seg++;
}

static void line_end(pen_t *p, const view_t *v, series_id_t s) {
  pen_up(p);
  fputs("\"><title>", p->c->f);
  put_escaped(p->c->f, v->r->label[0] != '\0' ? v->r->label : "run");
  fprintf(p->c->f, ": %s</title></path>\n", series[s].name);
}

static void legend_item(FILE *f, const char *colour, const char *dash, double width, const char *text) {
  fprintf(f, "<span><svg width=\"30\" height=\"10\"><line x1=\"1\" y1=\"5\" x2=\"29\" y2=\"5\" stroke=\"%s\" "
             "stroke-width=\"%.1f\" stroke-dasharray=\"%s\"/></svg> ",
          colour, width, dash[0] != '\0' ? dash : "none");
  put_escaped(f, text);
  fputs("</span>", f);
}

/* The legend of a chart of the series in want (those some run has). */
static void legend(const page_t *pg, const series_id_t *want, size_t nwant, int markers) {
  FILE *f = pg->f;
  fputs("<div class=\"legend\">", f);
  if (pg->n > 1)
    for (size_t i = 0; i < pg->n; i++)
      legend_item(f, pg->v[i].colour, "", 3, pg->v[i].legend);
  if (pg->n > 1)
    fputs("<br>", f);
  for (size_t k = 0; k < nwant; k++) {
    int any = 0;
    for (size_t i = 0; i < pg->n; i++)
      any |= view_has(&pg->v[i], want[k]);
    if (any)
      legend_item(f, pg->n > 1 ? "#444" : series[want[k]].colour, series[want[k]].dash, series[want[k]].width,
                  series[want[k]].name);
  }
  if (markers & 1)
    legend_item(f, "#555", "3 3", 1.2, "overload ends");
  if (markers & 2)
    fprintf(f, "<span><svg width=\"30\" height=\"10\"><path d=\"M15 10l-5 -8h10z\" fill=\"%s\"/></svg> "
               "recovered</span>",
            pg->n > 1 ? "#444" : "#009e73");
  fputs("</div>\n", f);
}

/* The vertical markers of storms: where the overload ended, and a triangle per run where it
 * recovered. 1 if it drew the first, | 2 if any of the second. */
static int storm_markers(const page_t *pg, const chart_t *c) {
  int any = 0;
  for (size_t i = 0; i < pg->n; i++) {
    const bench_result_t *r = pg->v[i].r;
    if (!(r->overload_end_s > 0) || r->overload_end_s > c->x_max)
      continue;
    int drawn = 0;
    for (size_t k = 0; k < i; k++)
      drawn |= pg->v[k].r->overload_end_s == r->overload_end_s;
    double x = px(c, r->overload_end_s);
    if (!drawn)
      fprintf(c->f, "<line class=\"marker\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"><title>the overload "
                    "ends at %.1f s</title></line><text x=\"%.1f\" y=\"%d\" class=\"unit\">overload ends</text>\n",
              x, PLOT_T - 4, x, CHART_H - PLOT_B, r->overload_end_s, x + 3, PLOT_T - 8);
    if (r->recovery_s >= 0 && r->overload_end_s + r->recovery_s <= c->x_max) {
      double xr = px(c, r->overload_end_s + r->recovery_s);
      fprintf(c->f, "<path d=\"M%.1f %dl-5 -8h10z\" fill=\"%s\"><title>", xr, CHART_H - PLOT_B,
              pg->n > 1 ? pg->v[i].colour : "#009e73");
      put_escaped(c->f, pg->v[i].legend);
      fputs("</title></path>\n", c->f);
      any |= 2;
    }
    any |= 1;
  }
  return any;
}

/* The SLOs of storm runs: a horizontal line each (distinct ones once). */
static void slo_lines(const page_t *pg, const chart_t *c) {
  for (size_t i = 0; i < pg->n; i++) {
    const bench_result_t *r = pg->v[i].r;
    if (!(r->overload_end_s > 0 && r->slo_ms > 0))
      continue;
    int drawn = 0;
    for (size_t k = 0; k < i; k++)
      drawn |= pg->v[k].r->overload_end_s > 0 && pg->v[k].r->slo_ms == r->slo_ms;
    if (drawn)
      continue;
    double y = py(c, r->slo_ms);
    fprintf(c->f, "<line class=\"slo\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/><text x=\"%d\" y=\"%.1f\" "
                  "text-anchor=\"end\" class=\"unit\">SLO: p99 %.0f ms</text>\n",
            PLOT_L, y, CHART_W - PLOT_R, y, CHART_W - PLOT_R, y - 4, r->slo_ms);
  }
}

static double slo_max(const page_t *pg) {
  double m = 0;
  for (size_t i = 0; i < pg->n; i++)
    if (pg->v[i].r->overload_end_s > 0 && pg->v[i].r->slo_ms > m)
      m = pg->v[i].r->slo_ms;
  return m;
}

static double time_max(const page_t *pg) {
  double t = 1;
  for (size_t i = 0; i < pg->n; i++) {
    const bench_result_t *r = pg->v[i].r;
    if ((double)pg->v[i].shown > t)
      t = (double)pg->v[i].shown;
    if (r->overload_end_s > 0 && r->overload_end_s + (r->recovery_s > 0 ? r->recovery_s : 0) > t)
      t = r->overload_end_s + (r->recovery_s > 0 ? r->recovery_s : 0);
  }
  return t;
}

/* A chart over time of the series in want, one line per run and series; slo:
 * with the storms' latency bounds. */
static void time_chart(const page_t *pg, const char *title, const char *y_unit, const series_id_t *want,
                       size_t nwant, double y_floor, int slo) {
  double y_max = slo && slo_max(pg) > y_floor ? slo_max(pg) : y_floor;
  int any = 0;
  for (size_t i = 0; i < pg->n; i++)
    for (size_t k = 0; k < nwant; k++) {
      if (!view_has(&pg->v[i], want[k]))
        continue;
      for (size_t p = 0; p < pg->v[i].npts; p++) {
        double y = point_value(&pg->v[i].pts[p], want[k]);
        if (isfinite(y) && y > y_max)
          y_max = y;
        any |= isfinite(y);
      }
    }
  chart_t c;
  chart_begin(&c, pg->f, time_max(pg), y_max, pg->n > 1, title, y_unit);
  time_axis(&c);
  if (!any)
    no_data(&c);
  for (size_t i = 0; i < pg->n; i++)
    for (size_t k = 0; k < nwant; k++) {
      const view_t *v = &pg->v[i];
      if (!view_has(v, want[k]))
        continue;
      pen_t pen;
      line_begin(&pen, &c, v, want[k]);
      for (size_t p = 0; p < v->npts; p++)
        pen_to(&pen, v->pts[p].t, point_value(&v->pts[p], want[k]));
      line_end(&pen, v, want[k]);
    }
  int markers = storm_markers(pg, &c);
  if (slo)
    slo_lines(pg, &c);
  chart_end(&c);
  legend(pg, want, nwant, markers);
}

/* x in decades of 1/(1-p): the percentile there. */
static double pct_at(double x) {
  return 100.0 * (1.0 - pow(10.0, -x));
}

static void percentile_chart(const page_t *pg) {
  static const series_id_t want[] = {S_LATENCY, S_SERVICE};
  double y_max = 0;
  int any = 0;
  for (size_t i = 0; i < pg->n; i++)
    for (size_t k = 0; k < 2; k++)
      if (view_has(&pg->v[i], want[k])) {
        const hdr_t *h = want[k] == S_LATENCY ? pg->v[i].r->latency : pg->v[i].r->service;
        double y = (double)hdr_percentile(h, pct_at(PCT_DECADES)) / 1000.0;
        y_max = y > y_max ? y : y_max;
        any = 1;
      }
  chart_t c;
  chart_begin(&c, pg->f, PCT_DECADES, y_max, pg->n > 1, "latency by percentile", "ms");
  percentile_axis(&c);
  if (!any)
    no_data(&c);
  for (size_t i = 0; i < pg->n; i++)
    for (size_t k = 0; k < 2; k++) {
      const view_t *v = &pg->v[i];
      if (!view_has(v, want[k]))
        continue;
      const hdr_t *h = want[k] == S_LATENCY ? v->r->latency : v->r->service;
      pen_t pen;
      line_begin(&pen, &c, v, want[k]);
      for (int s = 0; s <= PCT_SAMPLES; s++) {
        double x = (double)PCT_DECADES * s / PCT_SAMPLES;
        pen_to(&pen, x, (double)hdr_percentile(h, pct_at(x)) / 1000.0);
      }
      line_end(&pen, v, want[k]);
    }
  chart_end(&c);
  legend(pg, want, 2, 0);
}

/* ------------------------------------------------------------ header */

typedef enum {
  ROW_TARGET,
  ROW_LOAD,
  ROW_STARTED,
  ROW_REQUESTS,
  ROW_OK,
  ROW_ERRORS,
  ROW_THROUGHPUT,
  ROW_GOODPUT,
  ROW_SECONDS,
  ROW_ATTEMPTS,
  ROW_THREADS,
  ROW_OFFERED,
  ROW_LATE,
  ROW_OVERLOAD,
  ROW_RECOVERY,
  ROW_LATENCY_RECOVERY,
  ROW_RSS,
  NROWS
} row_t;

static const char *const row_names[NROWS] = {
    [ROW_TARGET] = "target",         [ROW_LOAD] = "load",
    [ROW_STARTED] = "started",       [ROW_REQUESTS] = "requests",
    [ROW_OK] = "ok",                 [ROW_ERRORS] = "errors",
    [ROW_THROUGHPUT] = "throughput", [ROW_GOODPUT] = "goodput",
    [ROW_SECONDS] = "seconds",       [ROW_ATTEMPTS] = "attempts per request",
    [ROW_THREADS] = "threads",       [ROW_OFFERED] = "offered",
    [ROW_LATE] = "sent late",        [ROW_OVERLOAD] = "overload ended",
    [ROW_RECOVERY] = "recovery",     [ROW_LATENCY_RECOVERY] = "p99 back under the SLO",
    [ROW_RSS] = "max RSS",
};

static const char *const row_classes[NROWS] = {
    [ROW_TARGET] = "target",         [ROW_LOAD] = "load",         [ROW_STARTED] = "started",
    [ROW_REQUESTS] = "requests",     [ROW_OK] = "ok",             [ROW_ERRORS] = "errors",
    [ROW_THROUGHPUT] = "throughput", [ROW_GOODPUT] = "goodput",   [ROW_SECONDS] = "seconds",
    [ROW_ATTEMPTS] = "attempts",     [ROW_THREADS] = "threads",   [ROW_OFFERED] = "offered",
    [ROW_LATE] = "late",             [ROW_OVERLOAD] = "overload", [ROW_RECOVERY] = "recovery",
    [ROW_LATENCY_RECOVERY] = "latency-recovery", [ROW_RSS] = "rss",
};

static int row_applies(const view_t *v, row_t row) {
  const bench_result_t *r = v->r;
  switch (row) {
  case ROW_STARTED: return r->start_unix_s > 0;
  case ROW_OK:
  case ROW_ERRORS:
  case ROW_GOODPUT: return v->outcomes_known;
  case ROW_ATTEMPTS: return r->total.attempts > 0;
  case ROW_OFFERED:
  case ROW_LATE: return r->open_loop;
  case ROW_OVERLOAD:
  case ROW_RECOVERY: return r->overload_end_s > 0;
  case ROW_LATENCY_RECOVERY: return r->overload_end_s > 0 && r->slo_ms > 0;
  case ROW_RSS: return r->max_rss_kib > 0;
  default: return 1;
  }
}

static void put_started(FILE *f, double unix_s) {
  time_t t = (time_t)unix_s;
  struct tm tm;
  char buf[64];
  if (gmtime_r(&t, &tm) != NULL && strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm) > 0)
    fputs(buf, f);
}

static void header_cell(FILE *f, const view_t *v, row_t row) {
  const bench_result_t *r = v->r;
  const bench_counts_t *c = &r->total;
  double secs = r->seconds > 0 ? r->seconds : 1;
  switch (row) {
  case ROW_TARGET: put_escaped(f, r->target); break;
  case ROW_LOAD: /* salvo-bench's shapes say which loop; a result from elsewhere may not */
    put_escaped(f, r->shape);
    if (strstr(r->shape, "loop") == NULL)
      fprintf(f, "%s%s loop", r->shape[0] != '\0' ? "; " : "", r->open_loop ? "open" : "closed");
    break;
  case ROW_STARTED: put_started(f, r->start_unix_s); break;
  case ROW_REQUESTS: fprintf(f, "%" PRIu64, c->requests); break;
  case ROW_OK: fprintf(f, "%" PRIu64 " (%.2f %%)", c->ok, 100.0 * per_request(c->ok, c->requests)); break;
  case ROW_ERRORS:
    fprintf(f, "%" PRIu64 "%s", errors_of(c), errors_of(c) > 0 ? ": " : "");
    if (errors_of(c) > 0)
      put_error_classes(f, c);
    break;
  case ROW_THROUGHPUT: fprintf(f, "%.0f req/s", (double)c->requests / secs); break;
  case ROW_GOODPUT: fprintf(f, "%.0f ok/s", (double)c->ok / secs); break;
  case ROW_SECONDS: fprintf(f, "%.3f s", r->seconds); break;
  case ROW_ATTEMPTS:
    fprintf(f, "%.3f (retries %" PRIu64 ", sends %" PRIu64 ")", per_request(c->attempts, c->requests),
            c->attempts > c->requests ? c->attempts - c->requests : 0, c->sends);
    break;
  case ROW_THREADS:
    fprintf(f, "%ld, concurrency %ld, %u shard%s", r->threads, r->concurrency, r->shards, r->shards == 1 ? "" : "s");
    if (r->shard[0] != '\0') {
      fputs(" (shard ", f);
      put_escaped(f, r->shard);
      fputc(')', f);
    }
    break;
  case ROW_OFFERED: fprintf(f, "%" PRIu64, r->offered); break;
  case ROW_LATE:
    fprintf(f, "%" PRIu64 " (more than %d ms after due; latest %.1f ms)", r->late, BENCH_LATE_US / 1000,
            (double)r->late_max_us / 1000.0);
    break;
  case ROW_OVERLOAD: fprintf(f, "at %.1f s", r->overload_end_s); break;
  case ROW_RECOVERY:
    if (r->recovery_s < 0)
      fputs("never", f);
    else
      fprintf(f, "%.0f s after the overload ended", r->recovery_s);
    break;
  case ROW_LATENCY_RECOVERY:
    if (r->latency_recovery_s < 0)
      fputs("never", f);
    else
      fprintf(f, "%.0f s after the overload ended", r->latency_recovery_s);
    fprintf(f, " (SLO: p99 %.0f ms)", r->slo_ms);
    break;
  case ROW_RSS: fprintf(f, "%ld KiB", r->max_rss_kib); break;
  default: break;
  }
}

/* One column per run, one row per fact. */
static void header(const page_t *pg) {
  FILE *f = pg->f;
  fputs("<table class=\"summary\">", f);
  if (pg->n > 1) {
    fputs("<tr><th></th>", f);
    for (size_t i = 0; i < pg->n; i++) {
      fputs("<th class=\"label\">", f);
      put_swatch(f, pg->v[i].colour);
      put_escaped(f, pg->v[i].r->label[0] != '\0' ? pg->v[i].r->label : "run");
      fputs("</th>", f);
    }
    fputs("</tr>\n", f);
  }
  for (row_t row = 0; row < NROWS; row++) {
    int any = 0;
    for (size_t i = 0; i < pg->n; i++)
      any |= row_applies(&pg->v[i], row);
    if (!any)
      continue;
    fprintf(f, "<tr class=\"%s\"><th>%s</th>", row_classes[row], row_names[row]);
    for (size_t i = 0; i < pg->n; i++) {
      fputs("<td>", f);
      if (row_applies(&pg->v[i], row))
        header_cell(f, &pg->v[i], row);
      else
        fputs("&mdash;", f);
      fputs("</td>", f);
    }
    fputs("</tr>\n", f);
  }
  fputs("</table>\n", f);
}

/* ------------------------------------------------------------ tables */

static void name_row(FILE *f, const view_t *v, const char *cls, const char *name, const bench_counts_t *c,
                     const hdr_t *h) {
  fprintf(f, "<tr class=\"%s\"><td class=\"name\">", cls);
  put_escaped(f, name);
  fprintf(f, "</td><td class=\"requests\">%" PRIu64 "</td>", c->requests);
  if (v->outcomes_known) {
    fprintf(f, "<td class=\"ok\">%" PRIu64 "</td><td class=\"errors\">", c->ok);
    put_error_classes(f, c);
    fputs("</td>", f);
  } else {
    fputs("<td class=\"ok\">&mdash;</td><td class=\"errors\">&mdash;</td>", f);
  }
  if (c->attempts > 0)
    fprintf(f, "<td class=\"attempts\">%.3f</td>", per_request(c->attempts, c->requests));
  else
    fputs("<td class=\"attempts\">&mdash;</td>", f);
  static const double p[] = {50, 90, 99, 99.9};
  for (size_t k = 0; k < 4; k++)
    fprintf(f, "<td>%.3f</td>", (double)hdr_percentile(h, p[k]) / 1000.0);
  fprintf(f, "<td>%.3f</td></tr>\n", (double)hdr_max(h) / 1000.0);
}

/* A row per name and the total; with several runs, a heading row per run. */
static void names_table(const page_t *pg) {
  FILE *f = pg->f;
  fputs("<table class=\"names\"><tr><th class=\"name\">name</th><th>requests</th><th>ok</th>"
        "<th>errors</th><th>attempts per request</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th>"
        "<th>p99.9 ms</th><th>max ms</th></tr>\n",
        f);
  for (size_t i = 0; i < pg->n; i++) {
    const view_t *v = &pg->v[i];
    if (pg->n > 1) {
      fputs("<tr class=\"run\"><th colspan=\"10\">", f);
      put_swatch(f, v->colour);
      put_escaped(f, v->r->label[0] != '\0' ? v->r->label : "run");
      fputs("</th></tr>\n", f);
    }
    for (size_t k = 0; k < v->r->nnames; k++)
      name_row(f, v, "name", v->r->names[k].name, &v->r->names[k].counts, v->r->names[k].latency);
    name_row(f, v, "total", "total", &v->r->total, v->r->latency);
  }
  fputs("</table>\n", f);
}

static void percentile_table(const page_t *pg) {
  FILE *f = pg->f;
  fputs("<table class=\"percentiles\"><tr><th class=\"name\">percentile</th>", f);
  for (size_t i = 0; i < pg->n; i++)
    for (int service = 0; service <= 1; service++) {
      if (service && !view_has(&pg->v[i], S_SERVICE))
        continue;
      fputs("<th>", f);
      if (pg->n > 1) {
        put_escaped(f, pg->v[i].r->label[0] != '\0' ? pg->v[i].r->label : "run");
        fputs("<br>", f);
      }
      fputs(service ? "service ms" : "latency ms", f);
      fputs("</th>", f);
    }
  fputs("</tr>\n", f);
  for (size_t k = 0; k <= NTABLE_PCTS; k++) {
    if (k < NTABLE_PCTS)
      fprintf(f, "<tr><td class=\"name\">p%g</td>", table_pcts[k]);
    else
      fputs("<tr><td class=\"name\">max</td>", f);
    for (size_t i = 0; i < pg->n; i++)
      for (int service = 0; service <= 1; service++) {
        if (service && !view_has(&pg->v[i], S_SERVICE))
          continue;
        const hdr_t *h = service ? pg->v[i].r->service : pg->v[i].r->latency;
        int64_t us = k < NTABLE_PCTS ? hdr_percentile(h, table_pcts[k]) : hdr_max(h);
        fprintf(f, "<td>%.3f</td>", (double)us / 1000.0);
      }
    fputs("</tr>\n", f);
  }
  fputs("</table>\n", f);
}

/* ------------------------------------------------------------ page */

static const char style[] =
    "body{font:14px/1.4 sans-serif;color:#222;max-width:780px;margin:12px auto;padding:0 10px}"
    "h1{font-size:20px;margin:0 0 6px}h2{font-size:16px;margin:22px 0 4px}"
    "table{border-collapse:collapse;font-size:12px;margin:4px 0}"
    "th,td{padding:2px 6px;border-bottom:1px solid #e3e3e3;text-align:right;vertical-align:top}"
    "th.name,td.name{text-align:left;overflow-wrap:break-word;max-width:220px}"
    "tr.run th{text-align:left;padding-top:10px;font-size:13px}.error{white-space:nowrap}"
    "table.summary th{text-align:left;white-space:nowrap}"
    "table.summary td{text-align:left;overflow-wrap:anywhere}"
    "tr.total td{font-weight:bold;border-top:1px solid #999}"
    "svg.chart{width:100%;height:auto;display:block;background:#fcfcfc;border:1px solid #ddd}"
    "svg.chart text{font:11px sans-serif;fill:#444}svg.chart text.unit{fill:#222}"
    "svg.chart path{stroke-linecap:round;stroke-linejoin:round}"
    ".grid{stroke:#e6e6e6}.tick,.axis{stroke:#888}.marker{stroke:#555;stroke-dasharray:3 3}.slo{stroke:#b00;stroke-dasharray:8 4}"
    ".legend{font-size:12px;margin:3px 0}.legend span{display:inline-block;margin-right:14px;white-space:nowrap}"
    ".legend svg{vertical-align:middle}.note{font-size:12px;color:#555;margin:2px 0}"
    ".swatch{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:baseline}";

static void page_title(const page_t *pg) {
  FILE *f = pg->f;
  fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             "<meta name=\"viewport\" content=\"width=device-width\"><title>salvo-bench: ");
  for (size_t i = 0; i < pg->n; i++) {
    if (i > 0)
      fputs(" vs ", f);
    put_escaped(f, pg->v[i].r->label[0] != '\0' ? pg->v[i].r->label : pg->v[i].r->target);
  }
  fprintf(f, "</title><style>%s</style></head><body>\n<h1>salvo-bench", style);
  if (pg->n > 1) {
    fprintf(f, ": %zu runs", pg->n);
  } else if (pg->v[0].r->label[0] != '\0') {
    fputs(": ", f);
    put_escaped(f, pg->v[0].r->label);
  }
  fputs("</h1>\n", f);
}

/* The note under the time charts: what they leave out. */
static void time_note(const page_t *pg) {
  FILE *f = pg->f;
  int cut = 0, wide = 0;
  for (size_t i = 0; i < pg->n; i++) {
    cut |= (double)pg->v[i].shown < pg->v[i].r->seconds - 1e-9 && pg->v[i].shown < pg->v[i].r->nsecs;
    wide |= pg->v[i].shown > MAX_POINTS;
  }
  if (cut || wide) {
    fputs("<p class=\"note\">", f);
    if (cut)
      fputs("Whole seconds only: the last partial second is left out (it would look like a drop). ", f);
    if (wide)
      fputs("A point stands for several seconds (their mean rate, their merged histogram).", f);
    fputs("</p>\n", f);
  }
}

static void page_body(const page_t *pg) {
  FILE *f = pg->f;
  int open = 0, closed = 0;
  for (size_t i = 0; i < pg->n; i++) {
    open |= pg->v[i].r->open_loop;
    closed |= !pg->v[i].r->open_loop;
  }
  header(pg);
  fputs("<h2>Latency by percentile</h2>\n", f);
  percentile_chart(pg);
  fprintf(f, "<p class=\"note\">x: 1/(1&minus;p) on a log scale, as HdrHistogram plots it. Latency: %s%s%s.%s</p>\n",
          open ? "from the time a request was due (open loop: corrected for coordinated omission)" : "",
          open && closed ? "; " : "", closed ? "from the submit (closed loop)" : "",
          open ? " Service time: from the hand-over to the engine." : "");
  static const series_id_t lat[] = {S_P50, S_P99};
  fputs("<h2>Latency over time</h2>\n", f);
  time_chart(pg, "latency over time", "ms", lat, 2, 0, 1);
  /* drawn in this order: where they coincide, the dashes of the later show on the earlier */
  if (pg->n > 1) { /* several runs: their goodput alone first, where the four lines each would crowd */
    static const series_id_t good[] = {S_OFFERED, S_OK};
    fputs("<h2>Goodput over time</h2>\n", f);
    time_chart(pg, "goodput over time", "per second", good, 2, 0, 0);
  }
  static const series_id_t rate[] = {S_OFFERED, S_OK, S_COMPLETED, S_ERRORS};
  fputs("<h2>Throughput over time</h2>\n", f);
  time_chart(pg, "throughput over time", "per second", rate, 4, 0, 0);
  static const series_id_t att[] = {S_ATTEMPTS};
  fputs("<h2>Attempts per request over time</h2>\n", f);
  time_chart(pg, "attempts per request over time", "attempts", att, 1, 1.2, 0);
  time_note(pg);
  fputs("<h2>By name</h2>\n", f);
  names_table(pg);
  fputs("<p class=\"note\">Errors by class: http_status is a final status of 400 or more; the others are "
        "salvo's error names.</p>\n<h2>Percentiles</h2>\n",
        f);
  percentile_table(pg);
  fputs("</body></html>\n", f);
}

int report_write(const char *path, const bench_result_t *const *runs, size_t nruns) {
  if (path == NULL || runs == NULL || nruns == 0) {
    errno = EINVAL;
    return -1;
  }
  for (size_t i = 0; i < nruns; i++)
    if (runs[i] == NULL) {
      errno = EINVAL;
      return -1;
    }
  page_t pg = {NULL, calloc(nruns, sizeof(view_t)), nruns};
  if (pg.v == NULL)
    return -1;
  int rc = 0;
  for (size_t i = 0; i < nruns && rc == 0; i++)
    if (view_init(&pg.v[i], runs[i], i) != 0) {
      errno = ENOMEM;
      rc = -1;
    }
  if (rc == 0 && (pg.f = fopen(path, "w")) == NULL)
    rc = -1;
  if (rc == 0) {
    errno = 0; /* a write error's own, below */
    page_title(&pg);
    page_body(&pg);
    int err = ferror(pg.f) ? (errno != 0 ? errno : EIO) : 0;
    if (fclose(pg.f) != 0 && err == 0)
      err = errno != 0 ? errno : EIO;
    if (err != 0) {
      errno = err;
      rc = -1;
    }
  }
  int saved = errno;
  for (size_t i = 0; i < nruns; i++)
    free(pg.v[i].pts);
  free(pg.v);
  errno = saved;
  return rc;
}
