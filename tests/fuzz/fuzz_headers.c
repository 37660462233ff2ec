/* libFuzzer target: header lines given by the user ("Name: value", as -H
 * and salvo_request_add_header_line() take them), the URL check, NO_PROXY
 * lists, and Content-Length fields of a response. Whatever
 * is accepted must be safe to put on the wire: a token name, a value with no
 * CR, LF or NUL, and a composed line that says the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pure.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (s == NULL)
    return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  const char *name, *value;
  size_t name_len, value_len;
  if (salvo__split_header_line(s, &name, &name_len, &value, &value_len) == 0) {
    if (name_len == 0 || !salvo__valid_header_name(name, name_len))
      abort();
    for (size_t i = 0; i < value_len; i++)
      if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
        abort();
    char *line = salvo__header_line(name, name_len, value, value_len);
    if (line != NULL) {
      if (strpbrk(line, "\r\n") != NULL || strncmp(line, name, name_len) != 0)
        abort();
      if (value_len > 0 && memcmp(line + name_len + 2, value, value_len) != 0)
        abort();
      free(line);
    }
  }
  /* reserved names: a refusal always comes with its reason */
  const char *why = salvo__header_reserved(s, strcspn(s, ":"));
  if (why != NULL && why[0] == '\0')
    abort();
  /* NO_PROXY lists: the list, a newline, the host */
  char *nl = strchr(s, '\n');
  if (nl != NULL) {
    *nl = '\0';
    int m = salvo__no_proxy_match(s, nl + 1);
    if (m != 0 && m != 1)
      abort();
    if (strchr(s, '*') != NULL && strcspn(s, ", ") == 1 && s[0] == '*' && !m)
      abort(); /* "*" first matches every host */
    *nl = '\n';
  }
  /* response header lines, as libcurl hands them over, for Content-Length */
  int64_t seen = -1;
  for (const char *line = s; *line != '\0';) {
    size_t n = strcspn(line, "\n");
    int64_t before = seen;
    int r = salvo__content_length_merge(&seen, line, n + (line[n] == '\n'));
    if (r == -1 && before < 0 && memchr(line, ',', n) == NULL)
      abort(); /* a conflict needs an earlier value, or two in this field */
    line += n + (line[n] == '\n');
  }
  int https = -1;
  CURLU *u = NULL;
  if (salvo__parse_url(s, &https, &u) == 0) {
    if (https != 0 && https != 1)
      abort();
    curl_url_cleanup(u);
  }
  free(s);
  return 0;
}
