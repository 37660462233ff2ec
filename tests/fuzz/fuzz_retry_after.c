/* libFuzzer target: salvo__retry_after_parse() on any bytes. Checks the
 * contract, not just "no crash": the result is -1, or a wait >= 0. */
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
  int64_t now = (int64_t)784111777 * 1000;
  int64_t r = salvo__retry_after_parse(s, now);
  if (r < -1)
    abort();
  /* An all-digit value is exactly its seconds, saturated. */
  size_t n = strlen(s), digits = strspn(s, "0123456789");
  if (n > 0 && n <= 64 && digits == n && r == -1)
    abort();
  free(s);
  return 0;
}
