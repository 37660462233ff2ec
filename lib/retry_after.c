/* Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. Pure but
 * for libcurl's date parser, which knows all three date formats of §5.6.7. */
#include <ctype.h>
#include <string.h>

#include "pure.h"

int64_t salvo__retry_after_parse(const char *value, int64_t now_unix_ms) {
  if (value == NULL)
    return -1;
  while (*value == ' ' || *value == '\t')
    value++;
  size_t len = strlen(value);
  while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
    len--;
  if (len == 0 || len > 64)
    return -1;
  char buf[65];
  memcpy(buf, value, len);
  buf[len] = '\0';

  if (isdigit((unsigned char)buf[0])) {
    /* delay-seconds = 1*DIGIT. Anything else that starts with a digit
     * ("1.5", "10s") is garbage: no date format starts with one. */
    int64_t seconds = 0;
    for (size_t i = 0; i < len; i++) {
      if (!isdigit((unsigned char)buf[i]))
        return -1;
      if (seconds > (INT64_MAX / 1000 - 9) / 10)
        return INT64_MAX; /* saturate: longer than any retry_after_max */
      seconds = seconds * 10 + (buf[i] - '0');
    }
    return seconds * 1000;
  }
  if (!isalpha((unsigned char)buf[0]))
    return -1; /* "-5", "+5", "": garbage */
  time_t when = curl_getdate(buf, NULL);
  if (when == (time_t)-1)
    return -1;
  if ((int64_t)when > (INT64_MAX - now_unix_ms) / 1000 - 1)
    return INT64_MAX;
  int64_t wait = (int64_t)when * 1000 - now_unix_ms;
  return wait > 0 ? wait : 0; /* a date in the past means now */
}

/* RateLimit-Reset / X-RateLimit-Reset: delta seconds, or a Unix time when
 * the value is above |epoch_above|. */
int64_t salvo__reset_parse(const char *value, int64_t epoch_above, int64_t now_unix_ms) {
  const char *v = value;
  while (*v == ' ' || *v == '\t')
    v++;
  if (*v < '0' || *v > '9')
    return -1;
  int64_t n = 0;
  for (; *v >= '0' && *v <= '9'; v++) {
    if (n > (INT64_MAX / 1000 - 9) / 10)
      return INT64_MAX; /* absurdly far */
    n = n * 10 + (*v - '0');
  }
  while (*v == ' ' || *v == '\t')
    v++;
  if (*v != '\0')
    return -1;
  if (n > epoch_above) {
    int64_t at = n * 1000;
    return at > now_unix_ms ? at - now_unix_ms : 0;
  }
  return n * 1000;
}
