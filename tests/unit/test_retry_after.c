/* Retry-After: delay-seconds and the three HTTP-date formats (RFC 9110 §5.6.7). */
#include <criterion/criterion.h>

#include "internal.h"

/* Sun, 06 Nov 1994 08:49:37 GMT */
#define T1994 ((int64_t)784111777 * 1000)

Test(retry_after, delay_seconds) {
  cr_assert_eq(salvo__retry_after_parse("120", 0), 120000);
  cr_assert_eq(salvo__retry_after_parse("0", 0), 0);
  cr_assert_eq(salvo__retry_after_parse("  7\t", 0), 7000, "surrounding whitespace");
  cr_assert_eq(salvo__retry_after_parse("007", 0), 7000, "leading zeros");
  cr_assert_eq(salvo__retry_after_parse("86400", 0), 86400000);
}

Test(retry_after, garbage_is_ignored) {
  const char *bad[] = {"", "   ", "-5", "+5", "1.5", "10s", "1 2", "soon", "0x10",
                       "Sun, 99 Foo 1994 99:99:99 GMT", NULL};
  for (int i = 0; bad[i]; i++)
    cr_assert_eq(salvo__retry_after_parse(bad[i], T1994), -1, "'%s'", bad[i]);
  cr_assert_eq(salvo__retry_after_parse(NULL, 0), -1);
}

Test(retry_after, numbers_too_large_saturate) {
  cr_assert_eq(salvo__retry_after_parse("99999999999999999999999999", 0), INT64_MAX);
  cr_assert_eq(salvo__retry_after_parse("9223372036854775807", 0), INT64_MAX);
  cr_assert_eq(salvo__retry_after_parse("2147483648", 0), (int64_t)2147483648 * 1000,
               "past INT_MAX is fine");
}

Test(retry_after, the_three_date_formats) {
  int64_t now = T1994 - 10000; /* ten seconds before */
  cr_assert_eq(salvo__retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", now), 10000);
  cr_assert_eq(salvo__retry_after_parse("Sunday, 06-Nov-94 08:49:37 GMT", now), 10000);
  cr_assert_eq(salvo__retry_after_parse("Sun Nov  6 08:49:37 1994", now), 10000);
  cr_assert_eq(salvo__retry_after_parse("  Sun, 06 Nov 1994 08:49:37 GMT  ", now), 10000);
}

Test(retry_after, dates_in_the_past_mean_now_and_far_future_is_huge) {
  cr_assert_eq(salvo__retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", T1994 + 1), 0);
  cr_assert_eq(salvo__retry_after_parse("Thu, 01 Jan 1970 00:00:00 GMT", T1994), 0);
  int64_t far = salvo__retry_after_parse("Fri, 31 Dec 9999 23:59:59 GMT", T1994);
  cr_assert_gt(far, (int64_t)200 * 365 * 24 * 3600 * 1000, "got %lld", (long long)far);
}
