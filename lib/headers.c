/* The request's headers: the caller's (validated as they come), and the one
 * list handed to libcurl, built at submit and again after a redirect from
 * the engine's defaults, the caller's headers, the request id, the
 * idempotency key and libcurl's switches. Owns salvo__headers_t. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

/* A Host header must name the URL's own authority: "host" or "host:port". */
static int host_matches(const salvo_request_t *req, const char *value, size_t len) {
  char *host = NULL, *port = NULL;
  int ok = 0;
  if (curl_url_get(req->curlu, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
    size_t hlen = strlen(host);
    int has_port = curl_url_get(req->curlu, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK;
    /* the port may be left out only where the URL leaves it out (the
     * scheme's own); "host" for http://host:8080/ names another origin */
    char *given = NULL;
    int explicit = curl_url_get(req->curlu, CURLUPART_PORT, &given, 0) == CURLUE_OK;
    curl_free(given);
    if (len == hlen)
      ok = !explicit && strncasecmp(value, host, hlen) == 0;
    else if (has_port && len == hlen + 1 + strlen(port) && value[hlen] == ':')
      ok = strncasecmp(value, host, hlen) == 0 && strncmp(value + hlen + 1, port, strlen(port)) == 0;
  }
  curl_free(host);
  curl_free(port);
  return ok;
}

int salvo__headers_add(salvo_request_t *req, const char *name, size_t name_len, const char *value,
                       size_t value_len) {
  if (!salvo__valid_header_name(name, name_len) || !salvo__valid_header_value(value, value_len) ||
      salvo__header_reserved(name, name_len))
    return SALVO_EINVAL;
  if (salvo__is_host_header(name, name_len) && !host_matches(req, value, value_len))
    return SALVO_EINVAL;
  char *line = salvo__header_line(name, name_len, value, value_len);
  if (line == NULL)
    return SALVO_ENOMEM;
  struct curl_slist *list = curl_slist_append(req->hdr.user, line);
  free(line);
  if (list == NULL)
    return SALVO_ENOMEM;
  req->hdr.user = list;
  return 0;
}

static void drop_attempt_node(salvo__headers_t *h) {
  if (h->attempt_node != NULL) {
    if (h->tail != NULL)
      h->tail->next = NULL;
    curl_slist_free_all(h->attempt_node);
    h->attempt_node = NULL;
  }
}

void salvo__headers_drop(salvo_request_t *req) {
  drop_attempt_node(&req->hdr);
  free(req->hdr.list); /* one block: nodes and lines */
  req->hdr.list = req->hdr.tail = NULL;
}

void salvo__headers_free(salvo_request_t *req) {
  salvo__headers_drop(req);
  curl_slist_free_all(req->hdr.user);
  req->hdr.user = NULL;
}

struct curl_slist *salvo__headers_list(const salvo_request_t *req) {
  return req->hdr.list != NULL ? req->hdr.list : req->hdr.attempt_node;
}

int salvo__headers_set_attempt(salvo_request_t *req, unsigned n) {
  if (req->policy->attempt_header[0] == '\0')
    return 0;
  char line[96];
  drop_attempt_node(&req->hdr);
  snprintf(line, sizeof(line), "%s: %u", req->policy->attempt_header, n);
  req->hdr.attempt_node = curl_slist_append(NULL, line);
  if (req->hdr.attempt_node == NULL)
    return SALVO_ENOMEM;
  if (req->hdr.tail != NULL)
    req->hdr.tail->next = req->hdr.attempt_node;
  return 0;
}

/* The list handed to libcurl: engine defaults the request does not override,
 * then the request's own headers, then switches for libcurl's extras. The
 * nodes and their lines live in one allocation (libcurl only reads the list):
 * two passes, one to measure and one to write. */
typedef struct {
  struct curl_slist *nodes; /* NULL while measuring */
  char *at;
  size_t n;
  size_t bytes;
} block_t;

static void block_add(block_t *b, const char *a, size_t alen, const char *c, size_t clen) {
  if (b->nodes != NULL) {
    struct curl_slist *node = &b->nodes[b->n];
    node->data = b->at;
    node->next = NULL;
    if (b->n > 0)
      b->nodes[b->n - 1].next = node;
    memcpy(b->at, a, alen);
    memcpy(b->at + alen, c, clen);
    b->at[alen + clen] = '\0';
    b->at += alen + clen + 1;
  }
  b->n++;
  b->bytes += alen + clen + 1;
}

typedef struct {
  char rid[37];  /* request id, or "" */
  char key[37];  /* automatic idempotency key, or "" */
  int expect_off;
  int type_off;
} plan_t;

/* Credentials that stay with the origin they were given for, and Host,
 * which names it. */
static int is_secret(const char *line, size_t name_len) {
  return salvo__is_host_header(line, name_len) ||
         (name_len == 13 && strncasecmp(line, "Authorization", 13) == 0) ||
         (name_len == 6 && strncasecmp(line, "Cookie", 6) == 0) ||
         (name_len == 19 && strncasecmp(line, "Proxy-Authorization", 19) == 0);
}

static void fill(const salvo_request_t *req, const plan_t *plan, block_t *b) {
  const struct curl_slist *l;
  for (l = req->engine->default_headers; l != NULL; l = l->next) {
    size_t name_len = strcspn(l->data, ":;");
    if (!salvo__header_has_name(req->hdr.user, l->data, name_len) &&
        !(req->cross_origin && is_secret(l->data, name_len)))
      block_add(b, l->data, strlen(l->data), "", 0);
  }
  for (l = req->hdr.user; l != NULL; l = l->next)
    if (!(req->cross_origin && is_secret(l->data, strcspn(l->data, ":;"))))
      block_add(b, l->data, strlen(l->data), "", 0);
  if (plan->rid[0] != '\0') {
    const char *rid = req->policy->request_id_header;
    size_t rlen = strlen(rid);
    char name[sizeof(req->policy->request_id_header) + 2];
    memcpy(name, rid, rlen);
    memcpy(name + rlen, ": ", 2);
    block_add(b, name, rlen + 2, plan->rid, 36);
  }
  if (plan->key[0] != '\0')
    block_add(b, "Idempotency-Key: ", 17, plan->key, 36);
  if (plan->expect_off)
    block_add(b, "Expect:", 7, "", 0); /* libcurl adds Expect only to requests with a body */
  if (plan->type_off)
    block_add(b, "Content-Type:", 13, "", 0);
}

static int has_header(const salvo_request_t *req, const char *name, size_t len) {
  return salvo__header_has_name(req->hdr.user, name, len) ||
         salvo__header_has_name(req->engine->default_headers, name, len);
}

/* An Idempotency-Key with a value: an empty one ("Name;" in libcurl's
 * spelling) names no operation the server could recognise. */
static int has_key(const salvo_request_t *req) {
  const struct curl_slist *lists[2] = {req->hdr.user, req->engine->default_headers};
  for (int i = 0; i < 2; i++)
    for (const struct curl_slist *l = lists[i]; l != NULL; l = l->next)
      if (strncasecmp(l->data, "Idempotency-Key:", 16) == 0 && l->data[16 + strspn(l->data + 16, " \t")] != '\0')
        return 1;
  return 0;
}

int salvo__headers_build(salvo_request_t *req, int *idempotent) {
  plan_t plan;
  /* The same request id and idempotency key on every attempt, so the
   * server can tell a retry from a new request. */
  plan.rid[0] = '\0';
  plan.key[0] = '\0';
  const char *rid = req->policy->request_id_header;
  if (rid[0] != '\0' && !has_header(req, rid, strlen(rid))) {
    if (req->hdr.rid[0] == '\0') /* a redirect keeps the id */
      salvo__uuid4(req->engine, req->hdr.rid);
    memcpy(plan.rid, req->hdr.rid, sizeof(plan.rid));
  }
  int is_post_or_patch = strcmp(req->method, "POST") == 0 || strcmp(req->method, "PATCH") == 0;
  if (req->policy->idempotency_key_auto && is_post_or_patch &&
      !has_header(req, "Idempotency-Key", 15))
    salvo__uuid4(req->engine, plan.key);
  *idempotent = salvo__method_in_list(req->policy->idempotent_methods, req->method) ||
                plan.key[0] != '\0' || has_key(req);
  /* No "Expect: 100-continue" round trip: it costs a wait (1 s when the
   * server ignores it) and muddies whether the body was sent. libcurl
   * labels POSTFIELDS as a form unless told otherwise; the caller's body is
   * opaque bytes. */
  plan.expect_off = req->has_body && !has_header(req, "Expect", 6);
  plan.type_off = req->has_body && !has_header(req, "Content-Type", 12);

  block_t b = {NULL, NULL, 0, 0};
  fill(req, &plan, &b); /* measure */
  req->hdr.list = NULL;
  req->hdr.tail = NULL;
  if (b.n == 0)
    return 0;
  char *block = malloc(b.n * sizeof(struct curl_slist) + b.bytes);
  if (block == NULL)
    return SALVO_ENOMEM;
  block_t w = {(struct curl_slist *)(void *)block, block + b.n * sizeof(struct curl_slist), 0, 0};
  fill(req, &plan, &w); /* write */
  req->hdr.list = w.nodes;
  req->hdr.tail = &w.nodes[w.n - 1];
  return 0;
}
