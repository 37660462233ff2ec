/* salvo-bench's load shapes and request mixes, without I/O: when the first
 * sends of each shape are due, and what the weighted draw picks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "bench.h"

static char why[300];

#define near(a, b, eps) cr_assert(fabs((double)(a) - (double)(b)) <= (eps), "%s = %.9f, want %.9f", #a, (double)(a), (double)(b))

Test(shape, constant_rate_sends_every_one_over_rate) {
  shape_t s;
  shape_constant(&s, 200);
  for (int k = 1; k <= 10; k++)
    near(shape_time_of(&s, k), k * 0.005, 1e-12);
  near(shape_due_by(&s, 1.0), 200, 1e-9);
  near(shape_due_by(&s, 0.0049), 0, 1);
  cr_assert(floor(shape_due_by(&s, 0.0049)) == 0 && floor(shape_due_by(&s, 0.005)) == 1);
  cr_assert(isinf(s.end_s));
}

Test(shape, ramp_follows_the_integral_of_a_rising_rate) {
  shape_t s;
  cr_assert_eq(shape_ramp(&s, "0:100:10s", why, sizeof(why)), 0, "%s", why);
  /* rate(t) = 10 t, due(t) = 5 t^2: the k-th at sqrt(k / 5) */
  for (int k = 1; k <= 5; k++)
    near(shape_time_of(&s, k), sqrt(k / 5.0), 1e-9);
  near(shape_due_by(&s, 10), 500, 1e-6);
  /* then 100 per second: the 501st at 10.01 s */
  near(shape_time_of(&s, 501), 10.01, 1e-9);
  near(shape_rate_at(&s, 5), 50, 1e-9);
  /* down as well as up */
  cr_assert_eq(shape_ramp(&s, "100:50:1", why, sizeof(why)), 0, "%s", why);
  near(shape_due_by(&s, 1), 75, 1e-9);
  near(shape_time_of(&s, 75), 1, 1e-9);
  near(shape_time_of(&s, 1), (100 - sqrt(100 * 100 - 4 * 25 * 1)) / 50, 1e-9);
}

Test(shape, steps_change_rate_at_each_boundary_and_end) {
  shape_t s;
  cr_assert_eq(shape_steps(&s, "200:10s,400:500ms,800:2", why, sizeof(why)), 0, "%s", why);
  near(s.end_s, 12.5, 1e-12);
  near(shape_time_of(&s, 1), 0.005, 1e-12);
  near(shape_time_of(&s, 2000), 10, 1e-9);
  near(shape_time_of(&s, 2001), 10.0025, 1e-9); /* the first at 400/s */
  near(shape_time_of(&s, 2200), 10.5, 1e-9);
  near(shape_time_of(&s, 2201), 10.50125, 1e-9); /* the first at 800/s */
  near(shape_due_by(&s, 12.5), 2000 + 200 + 1600, 1e-6);
  near(shape_due_by(&s, 100), 3800, 1e-6);       /* nothing after the last step */
  cr_assert(isinf(shape_time_of(&s, 3801)));
}

Test(shape, a_spike_replaces_the_rate_for_its_window) {
  shape_t s;
  shape_constant(&s, 100);
  cr_assert_eq(shape_spike(&s, "1000:2s:500ms", why, sizeof(why)), 0, "%s", why);
  near(shape_due_by(&s, 2), 200, 1e-9);
  near(shape_due_by(&s, 2.5), 700, 1e-9);
  near(shape_due_by(&s, 3.5), 800, 1e-9);
  near(shape_time_of(&s, 201), 2.001, 1e-9);
  near(shape_time_of(&s, 701), 2.51, 1e-9);
  /* on a ramp: the ramp goes on under and after the spike */
  cr_assert_eq(shape_ramp(&s, "0:100:10", why, sizeof(why)), 0);
  cr_assert_eq(shape_spike(&s, "500:4:1", why, sizeof(why)), 0, "%s", why);
  near(shape_rate_at(&s, 3.9), 39, 1e-9);
  near(shape_rate_at(&s, 4.5), 500, 1e-9);
  near(shape_rate_at(&s, 6), 60, 1e-9);
  near(shape_due_by(&s, 10), 500 - (5 * 25 - 5 * 16) + 500, 1e-6);
  /* past the last step it extends the shape */
  cr_assert_eq(shape_steps(&s, "100:1", why, sizeof(why)), 0);
  cr_assert_eq(shape_spike(&s, "50:1:1", why, sizeof(why)), 0, "%s", why);
  near(s.end_s, 2, 1e-12);
  near(shape_due_by(&s, 5), 150, 1e-9);
}

Test(shape, scaling_shares_the_rate) {
  shape_t s;
  cr_assert_eq(shape_steps(&s, "300:1,600:1", why, sizeof(why)), 0);
  shape_scale(&s, 1.0 / 3);
  near(shape_due_by(&s, 2), 300, 1e-9);
  near(shape_time_of(&s, 1), 0.01, 1e-12);
}

Test(shape, bad_text_is_refused_with_its_reason) {
  shape_t s;
  const char *bad_ramps[] = {"", "10", "10:20", "10:20:0", "10:0:5", "-1:5:5", "a:b:c", "1:2:3x", "1:2:3:4"};
  for (size_t i = 0; i < sizeof(bad_ramps) / sizeof(*bad_ramps); i++) {
    why[0] = '\0';
    cr_assert_eq(shape_ramp(&s, bad_ramps[i], why, sizeof(why)), -1, "ramp '%s'", bad_ramps[i]);
    cr_assert(strstr(why, "--ramp") != NULL, "%s", why);
  }
  const char *bad_steps[] = {"", "100", "100:", "100:0s", "100:1,", "100:1;200:1", "nan:1", "1e9:1"};
  for (size_t i = 0; i < sizeof(bad_steps) / sizeof(*bad_steps); i++)
    cr_assert_eq(shape_steps(&s, bad_steps[i], why, sizeof(why)), -1, "steps '%s'", bad_steps[i]);
  shape_constant(&s, 0); /* closed loop */
  cr_assert_eq(shape_spike(&s, "10:1:1", why, sizeof(why)), -1);
  cr_assert(strstr(why, "open-loop") != NULL, "%s", why);
}

/* ------------------------------------------------------------ mixes */

Test(mix, lines_give_method_url_headers_body_weight_and_name) {
  bench_mix_t m = {0};
  const char *text = "# a comment\n"
                     "{\"url\":\"http://127.0.0.1:1/a\",\"weight\":3,\"name\":\"read\"}\n"
                     "\n"
                     "{\"url\":\"http://127.0.0.1:1/b\",\"method\":\"POST\",\"body\":\"x=1\","
                     "\"headers\":{\"Content-Type\":\"text/plain\"}}\n"
                     "http://127.0.0.1:1/c?q=1\n"
                     "{\"url\":\"http://127.0.0.1:1/a2\",\"name\":\"read\"}\n";
  cr_assert_eq(mix_parse(&m, text, strlen(text), why, sizeof(why)), 0, "%s", why);
  cr_assert_eq(m.n, 4);
  cr_assert_eq(m.nnames, 3);
  cr_assert_str_eq(m.entries[0].name, "read");
  cr_assert_eq(m.entries[0].weight, 3);
  cr_assert_null(m.entries[0].method);
  cr_assert_str_eq(m.entries[1].name, "POST /b");
  cr_assert_str_eq(m.entries[1].method, "POST");
  cr_assert_str_eq(m.entries[1].headers[0], "Content-Type: text/plain");
  cr_assert_null(m.entries[1].headers[1]);
  cr_assert(m.entries[1].has_body && m.entries[1].body_len == 3);
  cr_assert_str_eq(m.entries[2].name, "GET /c");
  cr_assert_str_eq(m.entries[2].url, "http://127.0.0.1:1/c?q=1");
  cr_assert_eq(m.entries[3].name_index, 0);
  cr_assert_eq(m.entries[2].name_index, 2);
  mix_free(&m);
}

Test(mix, a_bad_line_is_named_by_number_and_reason_without_its_text) {
  const char *cases[][2] = {
      {"http://127.0.0.1/\n{\"url\":1}\n", "line 2: \"url\""},
      {"{\"url\":\"http://127.0.0.1/\",\"weight\":0}", "line 1: \"weight\""},
      {"{\"url\":\"http://127.0.0.1/\",\"weight\":\"2\"}", "\"weight\""},
      {"{\"url\":\"http://127.0.0.1/\",\"name\":\"\"}", "\"name\""},
      {"{\"url\":\"http://127.0.0.1/\",\"name\":7}", "\"name\""},
      {"{\"url\":\"http://127.0.0.1/\",\"headers\":{\"A\":1}}", "header \"A\" must be a string"},
      {"{\"url\":\"http://127.0.0.1/\", \"secret\": \"hunter2\"", "line 1: column"},
      {"Authorization: Bearer hunter2", "not shown"},
      {"# only a comment\n\n", "no request"},
      {"{\"url\":\"http://127.0.0.1/\",\"wieght\":2}", "unknown key"},
      {"{\"url\":\"http://127.0.0.1/\",\"name\":\"a\\u001b[31m\"}", "printable"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
    bench_mix_t m = {0};
    why[0] = '\0';
    cr_assert_eq(mix_parse(&m, cases[i][0], strlen(cases[i][0]), why, sizeof(why)), -1, "case %zu", i);
    cr_assert(strstr(why, cases[i][1]) != NULL, "case %zu: '%s' lacks '%s'", i, why, cases[i][1]);
    cr_assert(strstr(why, "hunter2") == NULL, "case %zu shows the line: %s", i, why);
    mix_free(&m);
  }
}

Test(mix, the_draw_follows_the_weights_and_the_seed) {
  bench_mix_t m = {0};
  const char *text = "{\"url\":\"http://127.0.0.1/a\",\"weight\":1}\n"
                     "{\"url\":\"http://127.0.0.1/b\",\"weight\":2}\n"
                     "{\"url\":\"http://127.0.0.1/c\",\"weight\":7}\n"
                     "{\"url\":\"http://127.0.0.1/d\",\"weight\":0.001}\n";
  cr_assert_eq(mix_parse(&m, text, strlen(text), why, sizeof(why)), 0, "%s", why);
  bench_rng_t r;
  rng_seed(&r, 42);
  long counts[4] = {0};
  const int n = 200000;
  for (int i = 0; i < n; i++)
    counts[mix_draw(&m, &r) - m.entries]++;
  double total = 10.001;
  double want[4] = {1 / total, 2 / total, 7 / total, 0.001 / total};
  for (int i = 0; i < 4; i++) {
    double got = (double)counts[i] / n, sd = sqrt(want[i] * (1 - want[i]) / n);
    cr_assert(fabs(got - want[i]) < 5 * sd + 1e-9, "entry %d: %.5f of draws, want %.5f", i, got, want[i]);
  }
  cr_assert(counts[3] > 0, "a small weight is still drawn");
  /* the same seed, the same sequence; another seed, another */
  bench_rng_t a, b, c;
  rng_seed(&a, 7);
  rng_seed(&b, 7);
  rng_seed(&c, 8);
  int same = 1, differ = 0;
  for (int i = 0; i < 100; i++) {
    const mix_entry_t *x = mix_draw(&m, &a), *y = mix_draw(&m, &b), *z = mix_draw(&m, &c);
    same &= x == y;
    differ |= x != z;
  }
  cr_assert(same && differ);
  mix_free(&m);
}

Test(mix, a_url_is_shown_without_userinfo_or_query) {
  const char *cases[][2] = {
      {"http://u:pw@127.0.0.1:9/p?token=S3CRET#f", "http://***@127.0.0.1:9/p?..."},
      {"http://127.0.0.1:9/ok?email=me@127.0.0.1", "http://127.0.0.1:9/ok?..."},
      {"http://u:pa/ss@127.0.0.1:9/ok", "http://***@127.0.0.1:9/ok"},
      {"http://127.0.0.1:9/plain", "http://127.0.0.1:9/plain"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
    char *shown = bench_shown_url(cases[i][0]);
    cr_assert_str_eq(shown, cases[i][1]);
    free(shown);
  }
  bench_mix_t m = {0};
  cr_assert_eq(mix_single(&m, "http://u:pa/ss@127.0.0.1:9/ok?k=v", NULL, NULL, 0, NULL), 0);
  cr_assert_str_eq(m.entries[0].name, "GET /ok", "a default name shows no password");
  mix_free(&m);
}

Test(mix, a_single_url_is_one_entry_named_by_method_and_path) {
  bench_mix_t m = {0};
  char *headers[] = {"X-A: 1", NULL};
  cr_assert_eq(mix_single(&m, "http://127.0.0.1:9/p/q?x#y", "PUT", "b", 1, headers), 0);
  cr_assert_str_eq(m.entries[0].name, "PUT /p/q");
  cr_assert_str_eq(m.entries[0].headers[0], "X-A: 1");
  bench_rng_t r;
  rng_seed(&r, 1);
  cr_assert_eq(mix_draw(&m, &r), &m.entries[0]);
  mix_free(&m);
}
