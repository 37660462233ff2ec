/* salvo-fetch's input lines, parsed with jansson. See input.h. */
#include "input.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fetch_parse_line(const char *text, size_t line, fetch_spec_t *sp, char *why, size_t why_len) {
  memset(sp, 0, sizeof(*sp));
  snprintf(sp->id, sizeof(sp->id), "%zu", line);
  while (isspace((unsigned char)*text))
    text++;
  if (*text != '{') { /* a bare URL */
    size_t n = strlen(text);
    while (n > 0 && isspace((unsigned char)text[n - 1]))
      n--;
    if (n == 0)
      return 0; /* blank lines are skipped, but keep their number */
    sp->bare_url = strndup(text, n);
    if (sp->bare_url == NULL) {
      snprintf(why, why_len, "out of memory");
      return -1;
    }
    sp->url = sp->bare_url;
    return 1;
  }
  json_error_t err;
  sp->obj = json_loads(text, JSON_REJECT_DUPLICATES, &err);
  if (sp->obj == NULL || !json_is_object(sp->obj)) {
    snprintf(why, why_len, "column %d: %s", sp->obj ? 1 : err.column,
             sp->obj ? "not a JSON object" : err.text);
    return -1;
  }
  json_t *id = json_object_get(sp->obj, "id");
  json_t *url = json_object_get(sp->obj, "url");
  json_t *method = json_object_get(sp->obj, "method");
  json_t *headers = json_object_get(sp->obj, "headers");
  json_t *body = json_object_get(sp->obj, "body");
  if (json_is_string(id))
    snprintf(sp->id, sizeof(sp->id), "%s", json_string_value(id));
  else if (json_is_integer(id))
    snprintf(sp->id, sizeof(sp->id), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
  sp->url = json_string_value(url); /* NULL unless a string */
  const char *problem = NULL;
  if (id != NULL && !json_is_string(id) && !json_is_integer(id) && !json_is_null(id))
    problem = "\"id\" must be a string or an integer";
  else if (!json_is_string(url))
    problem = "\"url\" is missing or not a string";
  else if (method != NULL && !json_is_string(method))
    problem = "\"method\" must be a string";
  else if (headers != NULL && !json_is_object(headers))
    problem = "\"headers\" must be an object of strings";
  else if (body != NULL && !json_is_string(body))
    problem = "\"body\" must be a string";
  if (problem != NULL) {
    snprintf(why, why_len, "%s", problem);
    return -1;
  }
  sp->method = method != NULL ? json_string_value(method) : NULL;
  sp->headers = headers;
  if (body != NULL) {
    sp->body = json_string_value(body);
    sp->body_len = json_string_length(body);
  }
  return 1;
}

void fetch_spec_free(fetch_spec_t *sp) {
  json_decref(sp->obj);
  free(sp->bare_url);
  sp->obj = NULL;
  sp->bare_url = NULL;
}
