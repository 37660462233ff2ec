/* Redirects, the plan step: from a response (status, Location) and where the
 * request went, the next hop or the reason salvo will not follow. Pure: no
 * I/O and no request; request.c applies the plan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pure.h"

#define MAX_LOCATION 8000

int salvo__redirect_status(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

static void refuse(salvo__redirect_plan_t *out, const char *why) {
  out->action = SALVO__REDIRECT_REFUSE;
  snprintf(out->why, sizeof(out->why), "redirect refused: %s", why);
}

void salvo__redirect_plan(const salvo__redirect_in_t *in, salvo__redirect_plan_t *out) {
  memset(out, 0, sizeof(*out));
  if (!salvo__redirect_status(in->status) || in->location == NULL || in->location[0] == '\0')
    return; /* SALVO__REDIRECT_NONE: the response is the answer */
  if (in->hops >= in->max_hops) {
    char why[64];
    snprintf(why, sizeof(why), "more than %u hops", in->max_hops);
    refuse(out, why);
    return;
  }
  /* The Location resolves against the current URL (relative references too). */
  CURLU *u = curl_url_dup((CURLU *)in->curlu); /* curl_url_dup() only reads it */
  char *next = NULL, *scheme = NULL;
  if (u == NULL || curl_url_set(u, CURLUPART_URL, in->location, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_URL, &next, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
    curl_free(next);
    curl_url_cleanup(u);
    refuse(out, "Location is not a URL");
    return;
  }
  int https = strcmp(scheme, "https") == 0;
  int http = strcmp(scheme, "http") == 0;
  curl_free(scheme);
  const char *why = !https && !http                                   ? "only http and https are followed"
                    : in->is_https && !https && !in->allow_downgrade ? "https to http (redirect_allow_downgrade is off)"
                    : strlen(next) > MAX_LOCATION                      ? "Location longer than 8000 bytes"
                                                                       : NULL;
  char *copy = why == NULL ? strdup(next) : NULL;
  curl_free(next);
  if (why != NULL || copy == NULL) {
    curl_url_cleanup(u);
    refuse(out, why != NULL ? why : "out of memory");
    return;
  }
  char from_key[272], to_key[272];
  salvo__host_key(in->url, in->is_https, from_key, sizeof(from_key));
  salvo__host_key(copy, https, to_key, sizeof(to_key));
  out->action = SALVO__REDIRECT_FOLLOW;
  out->next = u;
  out->next_url = copy;
  out->next_https = https;
  out->cross_origin = strcmp(from_key, to_key) != 0;
  /* 307/308 keep the method and the body; 303 makes anything but HEAD a GET;
   * 301/302 make a POST a GET (RFC 9110 15.4). */
  out->to_get = (in->status == 303 && strcmp(in->method, "HEAD") != 0) ||
                ((in->status == 301 || in->status == 302) && strcmp(in->method, "POST") == 0);
  char shown[128];
  salvo__redact_url(copy, shown, sizeof(shown));
  if (snprintf(out->why, sizeof(out->why), "redirect %ld to %s%s", in->status, shown,
               out->to_get ? " (now GET, without the body)" : "") < 0)
    out->why[0] = '\0'; /* cut to fit: the URL is shown, not kept */
}

void salvo__redirect_plan_free(salvo__redirect_plan_t *plan) {
  curl_url_cleanup(plan->next);
  free(plan->next_url);
  plan->next = NULL;
  plan->next_url = NULL;
}
