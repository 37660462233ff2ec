/* salvo-fetch's input lines: a bare URL, or a JSON object
 * {"id":..., "url":..., "method":..., "headers":{...}, "body":"..."}.
 * Pure text work (jansson, no I/O), shared with the fuzz target: parsing a
 * line, and turning what it holds into something safe to show or to name a
 * file with. */
#ifndef SALVO_FETCH_INPUT_H
#define SALVO_FETCH_INPUT_H

#include <stddef.h>

#include <jansson.h>

/* Ids longer than this are refused (the line becomes an invalid_input
 * result under its line number), never cut. */
#define FETCH_ID_MAX 4096
#define FETCH_ID_MAX_TEXT "4096"

typedef struct {
  char *id;             /* the input's id, or the line number; malloc()ed, never NULL after parsing */
  const char *url;      /* NULL when the line has none */
  const char *method;   /* NULL: the command line's or the default */
  json_t *headers;      /* an object of strings, or NULL; borrowed from obj */
  const char *body;     /* NULL = none */
  size_t body_len;
  json_t *obj;          /* the parsed line; fetch_spec_free() releases it */
  char *bare_url;       /* a bare URL line's copy */
  int id_given;         /* 1 when sp->id came from the line, 0 when it is the line number */
  int has_sha256;       /* the line carries "sha256" */
  unsigned char sha256[32];
} fetch_spec_t;

/* Parses one input line. Returns 1 with a request in *sp, 0 for a blank
 * line, -1 for a malformed one with the reason in |why| (sp->id and sp->url
 * as far as known). |why| never quotes the line: it may hold secrets. Call
 * fetch_spec_free() in every case. */
int fetch_parse_line(const char *text, size_t line, fetch_spec_t *sp, char *why, size_t why_len);
void fetch_spec_free(fetch_spec_t *sp);

/* A URL as it may be shown, with its whole userinfo (user, password, token)
 * as three stars: http://user:pw@host/path shows as http:// *** @host/path
 * (without the spaces). |parsed| says the URL parser accepted
 * it, so its authority ends at the first '/', '?' or '#' after "://";
 * otherwise the userinfo is taken to run to the last '@' of the text, since
 * a password may hold '/', '?' or '#'. Returns a malloc()ed copy, NULL when
 * out of memory. */
char *fetch_redact_url(const char *url, int parsed);

/* Redacts the userinfo of every "scheme://" URL inside free text (messages
 * that quote a URL), as fetch_redact_url(text, 0) would, up to the next
 * white space, quote or parenthesis. Returns a malloc()ed copy or NULL. */
char *fetch_redact_text(const char *text);

/* |text| made safe for a terminal: C0 controls, DEL and the C1 range as
 * \r \n \t \xNN \u0080..\u009f, a backslash as \\, bytes that are not UTF-8
 * as \xNN; printable UTF-8 as is. Returns a malloc()ed string or NULL. */
char *fetch_escape(const char *text);

/* The file name an id saves to under -o: [A-Za-z0-9._-] kept, every other
 * byte '_', a leading '.' too; "" becomes "line-N"; past 200 bytes the name
 * is cut to 183 and ends in '-' and 16 hex digits of a hash of the whole id.
 * |out| needs FETCH_NAME_MAX bytes. */
#define FETCH_NAME_MAX 256
void fetch_file_name(const char *id, size_t line, char *out);

/* The file name from a --output-template: {id}, {host}, {path} (the URL's,
 * without its query) and {line} replaced, '{{' and '}}' as braces, and the
 * whole made safe as fetch_file_name() makes an id. Returns 0, or -1 with
 * the reason in |why| (an unknown placeholder, a lone brace) as a format with
 * one %s for the template. */
int fetch_output_name(const char *tmpl, const char *id, const char *url, size_t line, char *out,
                      char *why, size_t why_len);

/* 64 hex digits into 32 bytes: 0, or -1 if |hex| is not that. */
int fetch_parse_sha256(const char *hex, unsigned char out[32]);

#endif
