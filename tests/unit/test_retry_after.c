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

/* Every length of number, from one digit to past what int64 milliseconds
 * hold: each is either the exact wait or INT64_MAX (longer than any cap),
 * never a wrapped or negative one. Exact for everything up to 16 digits that
 * fits with room (< 9e15 s); INT64_MAX wherever the milliseconds would not
 * fit (17 digits and more: 10^16 s is 10^19 ms). Same for RateLimit-Reset. */
static void check_digits(int64_t (*parse)(const char *), const char *what) {
  const char lead[] = {'1', '4', '8', '9'};
  for (int len = 1; len <= 25; len++) {
    for (size_t l = 0; l < sizeof(lead); l++) {
      for (int fill = 0; fill <= 9; fill += 9) {
        char s[32];
        s[0] = lead[l];
        for (int i = 1; i < len; i++)
          s[i] = (char)('0' + fill);
        s[len] = '\0';
        __extension__ __int128 exact = 0;
        for (int i = 0; i < len; i++)
          exact = exact * 10 + (s[i] - '0');
        exact *= 1000;
        int64_t got = parse(s);
        if (exact > INT64_MAX)
          cr_assert_eq(got, INT64_MAX, "%s '%s' (%d digits): %lld, want INT64_MAX", what, s, len,
                       (long long)got);
        else if (exact < (__extension__(__int128)9000000000000000) * 1000)
          cr_assert_eq(got, (int64_t)exact, "%s '%s' (%d digits): %lld, want %lld", what, s, len,
                       (long long)got, (long long)exact);
        else
          cr_assert(got == (int64_t)exact || got == INT64_MAX, "%s '%s': %lld", what, s,
                    (long long)got);
      }
    }
  }
}

static int64_t retry_after_now0(const char *s) { return salvo__retry_after_parse(s, 0); }
/* an epoch threshold above every number here: all are delta seconds */
static int64_t reset_delta(const char *s) { return salvo__reset_parse(s, INT64_MAX, 0); }

Test(retry_after, every_length_of_number_is_exact_or_saturates) {
  check_digits(retry_after_now0, "Retry-After");
  check_digits(reset_delta, "RateLimit-Reset");
  /* the edges, by hand: 16 digits that fit, 17 and 18 that do not */
  cr_assert_eq(salvo__retry_after_parse("8999999999999999", 0), (int64_t)8999999999999999 * 1000);
  cr_assert_eq(salvo__retry_after_parse("10000000000000000", 0), INT64_MAX);
  cr_assert_eq(salvo__retry_after_parse("100000000000000000", 0), INT64_MAX);
  cr_assert_eq(salvo__reset_parse("10000000000000000", INT64_MAX, 0), INT64_MAX);
}
