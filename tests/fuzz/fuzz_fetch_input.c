/* libFuzzer target: salvo-fetch's input lines, then what salvo-fetch does
 * with a parsed line short of sending it: make the request, add its headers
 * and body. Nothing accepted may crash or leak; the result is -1, 0 or 1. */
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
  fetch_spec_t sp;
  char why[512];
  int r = fetch_parse_line(s, 7, &sp, why, sizeof(why));
  if (r < -1 || r > 1)
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
