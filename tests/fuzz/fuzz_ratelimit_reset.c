/* libFuzzer target: salvo__reset_parse() (RateLimit-Reset and
 * X-RateLimit-Reset values) on any bytes, with any bound. The result is -1
 * or a wait >= 0; an all-digit value at or under the bound is exactly its
 * seconds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pure.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  int64_t bound = (int64_t)(data[0] % 4) * 500000000; /* 0, 5e8, 1e9, 1.5e9 */
  char *s = malloc(size);
  if (s == NULL)
    return 0;
  memcpy(s, data + 1, size - 1);
  s[size - 1] = '\0';
  int64_t now = INT64_C(1700000000000);
  int64_t r = salvo__reset_parse(s, bound, now);
  if (r < -1)
    abort();
  size_t n = strlen(s);
  if (n > 0 && n <= 9 && strspn(s, "0123456789") == n) {
    int64_t v = strtoll(s, NULL, 10);
    if (v <= bound && r != v * 1000)
      abort();
    if (v > bound && r != (v * 1000 > now ? v * 1000 - now : 0))
      abort();
  }
  free(s);
  return 0;
}
