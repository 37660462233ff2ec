/* libFuzzer target: salvo-fetch's input lines, then what salvo-fetch does
 * with a parsed line short of sending it: make the request, add its headers
 * and body; and what may be shown of the line (redacted, escaped, as a file
 * name). Nothing accepted may crash or leak; the result is -1, 0 or 1. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <salvo/salvo.h>

#include "input.h"

static uv_loop_t loop;
static salvo_engine_t *engine;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (engine == NULL) {
    uv_loop_init(&loop);
    if (salvo_engine_new(&loop, NULL, &engine) != 0)
      abort();
  }
  char *s = malloc(size + 1);
  if (s == NULL)
    return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  /* What may be shown of any text: never longer than it can be, always a string. */
  char *shown = fetch_redact_url(s, 0), *parsed = fetch_redact_url(s, 1);
  char *text = fetch_redact_text(s), *escaped = fetch_escape(s);
  if (shown == NULL || parsed == NULL || text == NULL || escaped == NULL)
    abort();
  for (const char *p = escaped; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      abort(); /* a control character reached the terminal */
  char name[FETCH_NAME_MAX];
  fetch_file_name(s, 7, name);
  if (strlen(name) > 200 || strchr(name, '/') != NULL || name[0] == '.' || name[0] == '\0')
    abort();
  /* The text as a --output-template, an id and a URL at once: one safe name or a refusal. */
  char twhy[160];
  if (fetch_output_name(s, s, s, 7, name, twhy, sizeof(twhy)) == 0 &&
      (strlen(name) > 200 || strchr(name, '/') != NULL || name[0] == '.' || name[0] == '\0'))
    abort();
  free(shown);
  free(parsed);
  free(text);
  free(escaped);
  fetch_spec_t sp;
  char why[512];
  int r = fetch_parse_line(s, 7, &sp, why, sizeof(why));
  if (r < -1 || r > 1)
    abort();
  if (sp.id == NULL || strlen(sp.id) > FETCH_ID_MAX)
    abort();
  if (r == 1) {
    if (sp.url == NULL || (sp.headers != NULL && !json_is_object(sp.headers)))
      abort();
    salvo_request_t *req;
    if (salvo_request_new(engine, sp.method ? sp.method : "GET", sp.url, &req) == 0) {
      const char *name;
      json_t *v;
      json_object_foreach(sp.headers, name, v) {
        if (json_is_string(v))
          (void)salvo_request_add_header(req, name, json_string_value(v));
      }
      if (sp.body != NULL)
        (void)salvo_request_set_body(req, sp.body, sp.body_len);
      salvo_request_free(req);
    }
  }
  fetch_spec_free(&sp);
  free(s);
  return 0;
}
