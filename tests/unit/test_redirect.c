/* The redirect plan (redirect.c): from a response and where the request
 * went, the next hop or the reason salvo will not follow. Pure: no I/O. The
 * URLs are parsed only; nothing is sent anywhere. */
#include <string.h>

#include <criterion/criterion.h>

#include "pure.h"

typedef struct {
  CURLU *u;
  salvo__redirect_in_t in;
  salvo__redirect_plan_t plan;
} case_t;

static void plan(case_t *c, const char *url, const char *method, long status, const char *location) {
  c->u = curl_url();
  cr_assert_eq(curl_url_set(c->u, CURLUPART_URL, url, 0), CURLUE_OK, "%s", url);
  c->in.status = status;
  c->in.location = location;
  c->in.url = url;
  c->in.curlu = c->u;
  c->in.is_https = strncmp(url, "https:", 6) == 0;
  c->in.method = method;
  c->in.hops = 0;
  c->in.max_hops = 5;
  c->in.allow_downgrade = 0;
  salvo__redirect_plan(&c->in, &c->plan);
}

static void replan(case_t *c) {
  salvo__redirect_plan_free(&c->plan);
  salvo__redirect_plan(&c->in, &c->plan);
}

static void done(case_t *c) {
  salvo__redirect_plan_free(&c->plan);
  cr_assert_null(c->plan.next);
  cr_assert_null(c->plan.next_url);
  curl_url_cleanup(c->u);
}

Test(redirect_plan, only_the_five_redirect_statuses_with_a_location_are_followed) {
  static const long follow[] = {301, 302, 303, 307, 308};
  static const long not[] = {200, 204, 300, 304, 305, 306, 309, 399, 404, 503};
  case_t c;
  for (size_t i = 0; i < sizeof(follow) / sizeof(follow[0]); i++) {
    plan(&c, "http://127.0.0.1:8080/a", "GET", follow[i], "/b");
    cr_assert_eq(c.plan.action, SALVO__REDIRECT_FOLLOW, "%ld", follow[i]);
    done(&c);
  }
  for (size_t i = 0; i < sizeof(not) / sizeof(not[0]); i++) {
    plan(&c, "http://127.0.0.1:8080/a", "GET", not[i], "/b");
    cr_assert_eq(c.plan.action, SALVO__REDIRECT_NONE, "%ld", not[i]);
    done(&c);
  }
  plan(&c, "http://127.0.0.1:8080/a", "GET", 302, NULL);
  cr_assert_eq(c.plan.action, SALVO__REDIRECT_NONE, "no Location: the 302 is the answer");
  done(&c);
  plan(&c, "http://127.0.0.1:8080/a", "GET", 302, "");
  cr_assert_eq(c.plan.action, SALVO__REDIRECT_NONE, "an empty Location: the 302 is the answer");
  done(&c);
}

Test(redirect_plan, a_relative_location_resolves_against_the_current_url) {
  case_t c;
  plan(&c, "http://127.0.0.1:8080/dir/page?q=1", "GET", 302, "next?x=2");
  cr_assert_eq(c.plan.action, SALVO__REDIRECT_FOLLOW);
  cr_assert_str_eq(c.plan.next_url, "http://127.0.0.1:8080/dir/next?x=2");
  cr_assert_not(c.plan.cross_origin, "same scheme, host and port");
  cr_assert_not(c.plan.next_https);
  char *got = NULL;
  cr_assert_eq(curl_url_get(c.plan.next, CURLUPART_URL, &got, 0), CURLUE_OK);
  cr_assert_str_eq(got, c.plan.next_url, "the parsed next hop is the same URL");
  curl_free(got);
  cr_assert_str_eq(c.plan.why, "redirect 302 to http://127.0.0.1:8080/dir/next?x=2");
  done(&c);
  plan(&c, "http://127.0.0.1:8080/dir/page", "GET", 301, "/root");
  cr_assert_str_eq(c.plan.next_url, "http://127.0.0.1:8080/root");
  done(&c);
}

/* RFC 9110 15.4: 307/308 keep the method and body; 303 makes anything but
 * HEAD a GET; 301/302 make a POST a GET and leave other methods alone. */
Test(redirect_plan, the_method_by_status) {
  static const struct {
    long status;
    const char *method;
    int to_get;
  } rows[] = {
      {301, "POST", 1}, {302, "POST", 1}, {303, "POST", 1},  {303, "PUT", 1},   {303, "DELETE", 1},
      {303, "GET", 1},  {303, "HEAD", 0}, {307, "POST", 0},  {308, "POST", 0},  {301, "PUT", 0},
      {302, "PATCH", 0}, {302, "GET", 0}, {301, "DELETE", 0}, {307, "PATCH", 0},
  };
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    case_t c;
    plan(&c, "http://127.0.0.1:8080/a", rows[i].method, rows[i].status, "/b");
    cr_assert_eq(c.plan.action, SALVO__REDIRECT_FOLLOW);
    cr_assert_eq(c.plan.to_get, rows[i].to_get, "%ld %s", rows[i].status, rows[i].method);
    cr_assert_eq(strstr(c.plan.why, "now GET") != NULL, rows[i].to_get, "%s", c.plan.why);
    done(&c);
  }
}

Test(redirect_plan, another_scheme_host_or_port_is_another_origin) {
  static const struct {
    const char *from, *to;
    int cross;
  } rows[] = {
      {"http://127.0.0.1:8080/a", "http://127.0.0.1:8080/b", 0},
      {"http://127.0.0.1:8080/a", "http://127.0.0.1:8081/b", 1},
      {"http://127.0.0.1:8080/a", "http://127.0.0.2:8080/b", 1},
      {"http://127.0.0.1/a", "http://127.0.0.1:80/b", 0},
      {"https://127.0.0.1/a", "https://127.0.0.1:443/b", 0},
      {"http://127.0.0.1:443/a", "https://127.0.0.1:443/b", 1},
      {"http://localhost:8080/a", "http://LOCALHOST:8080/b", 0},
      {"http://user:pw@127.0.0.1:8080/a", "http://127.0.0.1:8080/b", 0},
  };
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    case_t c;
    plan(&c, rows[i].from, "GET", 302, rows[i].to);
    cr_assert_eq(c.plan.action, SALVO__REDIRECT_FOLLOW, "%s -> %s", rows[i].from, rows[i].to);
    cr_assert_eq(c.plan.cross_origin, rows[i].cross, "%s -> %s", rows[i].from, rows[i].to);
    done(&c);
  }
}

Test(redirect_plan, refusals_say_why) {
  case_t c;
  plan(&c, "https://127.0.0.1:8443/a", "GET", 302, "http://127.0.0.1:8080/b");
  cr_assert_eq(c.plan.action, SALVO__REDIRECT_REFUSE);
  cr_assert_str_eq(c.plan.why, "redirect refused: https to http (redirect_allow_downgrade is off)");
  cr_assert_null(c.plan.next);
  cr_assert_null(c.plan.next_url);
  c.in.allow_downgrade = 1;
  replan(&c);
  cr_assert_eq(c.plan.action, SALVO__REDIRECT_FOLLOW, "allowed when asked for");
  cr_assert_not(c.plan.next_https);
  cr_assert(c.plan.cross_origin);
  done(&c);

  plan(&c, "http://127.0.0.1:8080/a", "GET", 302, "ftp://127.0.0.1/file");
  cr_assert_eq(c.plan.action, SALVO__REDIRECT_REFUSE);
  cr_assert_str_eq(c.plan.why, "redirect refused: only http and https are followed");
  done(&c);

  plan(&c, "http://127.0.0.1:8080/a", "GET", 302, "http://[::1");
  cr_assert_eq(c.plan.action, SALVO__REDIRECT_REFUSE);
  cr_assert_str_eq(c.plan.why, "redirect refused: Location is not a URL");
  done(&c);

  static char longpath[9000];
  memset(longpath, 'a', sizeof(longpath) - 1);
  longpath[0] = '/';
  plan(&c, "http://127.0.0.1:8080/a", "GET", 302, longpath);
  cr_assert_eq(c.plan.action, SALVO__REDIRECT_REFUSE);
  cr_assert_str_eq(c.plan.why, "redirect refused: Location longer than 8000 bytes");
  done(&c);
}

Test(redirect_plan, the_hop_limit_counts_hops_already_made) {
  case_t c;
  plan(&c, "http://127.0.0.1:8080/a", "GET", 302, "/b");
  c.in.hops = 4;
  replan(&c);
  cr_assert_eq(c.plan.action, SALVO__REDIRECT_FOLLOW, "the fifth hop of five");
  c.in.hops = 5;
  replan(&c);
  cr_assert_eq(c.plan.action, SALVO__REDIRECT_REFUSE, "a sixth is refused");
  cr_assert_str_eq(c.plan.why, "redirect refused: more than 5 hops");
  c.in.max_hops = 0;
  c.in.hops = 0;
  replan(&c);
  cr_assert_eq(c.plan.action, SALVO__REDIRECT_REFUSE, "max 0: none followed");
  done(&c);
}

Test(redirect_plan, a_password_in_the_next_url_is_not_shown) {
  case_t c;
  plan(&c, "http://127.0.0.1:8080/a", "GET", 307, "http://user:secret@127.0.0.1:8080/b");
  cr_assert_eq(c.plan.action, SALVO__REDIRECT_FOLLOW);
  cr_assert_null(strstr(c.plan.why, "secret"), "%s", c.plan.why);
  cr_assert_not_null(strstr(c.plan.why, "user:***@"), "%s", c.plan.why);
  done(&c);
}
