/* salvo-fetch's input lines: a bare URL, or a JSON object
 * {"id":..., "url":..., "method":..., "headers":{...}, "body":"..."}.
 * Pure parsing (jansson), shared with the fuzz target. */
#ifndef SALVO_FETCH_INPUT_H
#define SALVO_FETCH_INPUT_H

#include <stddef.h>

#include <jansson.h>

typedef struct {
  char id[256];         /* the input's id, or the line number */
  const char *url;      /* NULL when the line has none */
  const char *method;   /* NULL: the command line's or the default */
  json_t *headers;      /* an object of strings, or NULL; borrowed from obj */
  const char *body;     /* NULL = none */
  size_t body_len;
  json_t *obj;          /* the parsed line; fetch_spec_free() releases it */
  char *bare_url;       /* a bare URL line's copy */
} fetch_spec_t;

/* Parses one input line. Returns 1 with a request in *sp, 0 for a blank
 * line, -1 for a malformed one with the reason in |why| (sp->id and sp->url
 * as far as known). Call fetch_spec_free() in every case. */
int fetch_parse_line(const char *text, size_t line, fetch_spec_t *sp, char *why, size_t why_len);
void fetch_spec_free(fetch_spec_t *sp);

#endif
