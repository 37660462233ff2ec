/* Timeouts as they enter salvo (lib/timeouts.c) and the time arithmetic of
 * lib/pure.h: the inherit marker, the ceiling above which a timeout is off,
 * sums that saturate instead of wrapping. No I/O. */
#include <math.h>

#include <criterion/criterion.h>

#include "internal.h"

static salvo_timeouts_t all(uint64_t v) {
  salvo_timeouts_t t = {v, v, v, v, v};
  return t;
}

Test(timeouts, inherit_keeps_and_every_other_value_replaces) {
  salvo_timeouts_t kept = {1, 2, 3, 4, 5};
  salvo_timeouts_t given;
  salvo_timeouts_inherit(&given);
  cr_assert_eq(given.connect_ms, SALVO_TIMEOUT_INHERIT);
  cr_assert_eq(given.queue_ms, SALVO_TIMEOUT_INHERIT);
  salvo__timeouts_apply(&kept, &given);
  cr_assert(kept.connect_ms == 1 && kept.idle_ms == 2 && kept.attempt_ms == 3 &&
            kept.deadline_ms == 4 && kept.queue_ms == 5);
  given.idle_ms = 20;
  given.queue_ms = 0;
  salvo__timeouts_apply(&kept, &given);
  cr_assert(kept.connect_ms == 1 && kept.idle_ms == 20 && kept.attempt_ms == 3 &&
            kept.deadline_ms == 4 && kept.queue_ms == 0);
}

Test(timeouts, above_the_maximum_is_off) {
  static const uint64_t off[] = {0, SALVO_TIMEOUT_NEVER, (uint64_t)-1, (uint64_t)-3,
                                 SALVO_TIMEOUT_MAX_MS + 1, UINT64_C(1) << 63};
  for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++) {
    salvo_timeouts_t kept = all(7), given = all(off[i]);
    salvo__timeouts_apply(&kept, &given);
    cr_assert(kept.connect_ms == 0 && kept.idle_ms == 0 && kept.attempt_ms == 0 &&
                  kept.deadline_ms == 0 && kept.queue_ms == 0,
              "%llu is off", (unsigned long long)off[i]);
  }
  salvo_timeouts_t kept = all(7), given = all(SALVO_TIMEOUT_MAX_MS);
  salvo__timeouts_apply(&kept, &given);
  cr_assert_eq(kept.deadline_ms, SALVO_TIMEOUT_MAX_MS, "the maximum itself is kept");
  cr_assert_eq(salvo__timeout_value(1), 1);
}

Test(timeouts, null_does_nothing) {
  salvo_timeouts_init(NULL);
  salvo_timeouts_inherit(NULL);
  salvo_timeouts_t t;
  salvo_timeouts_init(&t);
  cr_assert_eq(t.deadline_ms, 30000);
  cr_assert_eq(t.connect_ms, 3100);
}

Test(time, sums_saturate_instead_of_wrapping) {
  cr_assert_eq(salvo__add_ms(1, 2), 3);
  cr_assert_eq(salvo__add_ms(UINT64_MAX - 1, 1), UINT64_MAX);
  cr_assert_eq(salvo__add_ms(UINT64_MAX - 1, 2), UINT64_MAX);
  cr_assert_eq(salvo__add_ms(1000, UINT64_MAX), UINT64_MAX);
  cr_assert_eq(salvo__add_ms(UINT64_MAX, UINT64_MAX), UINT64_MAX);
  cr_assert_eq(salvo__add_ms(UINT64_C(1) << 63, UINT64_C(1) << 63), UINT64_MAX);
  cr_assert_eq(salvo__add_ms(0, 0), 0);
}

Test(time, doubles_convert_within_range) {
  cr_assert_eq(salvo__ms_from_double(12.9), 12);
  cr_assert_eq(salvo__ms_from_double(0), 0);
  cr_assert_eq(salvo__ms_from_double(-5), 0);
  cr_assert_eq(salvo__ms_from_double(NAN), 0);
  cr_assert_eq(salvo__ms_from_double(INFINITY), UINT64_MAX);
  cr_assert_eq(salvo__ms_from_double(1e300), UINT64_MAX);
  cr_assert_eq(salvo__ms_from_double(18446744073709551616.0), UINT64_MAX);
  cr_assert_eq(salvo__ms_from_double(9007199254740992.0), UINT64_C(9007199254740992));
}

/* Under a receive cap: reads of about 10 ms' worth within libcurl's
 * 1 KB .. 16 KB, so a burst of 101 reads is about a second's. */
Test(timeouts, recv_buffer_for_a_cap) {
  cr_assert_eq(salvo__recv_buffer_size(0, 16384), 16384, "no cap: libcurl's default");
  cr_assert_eq(salvo__recv_buffer_size(0, 131072), 131072, "no cap: the engine's recv_buffer_size");
  cr_assert_eq(salvo__recv_buffer_size(100000000, 131072), 16384, "a cap reads 16 KB at most");
  cr_assert_eq(salvo__recv_buffer_size(1, 16384), 1024, "libcurl's minimum");
  cr_assert_eq(salvo__recv_buffer_size(2000, 16384), 1024);
  cr_assert_eq(salvo__recv_buffer_size(102400, 16384), 1024);
  cr_assert_eq(salvo__recv_buffer_size(500000, 16384), 5000);
  cr_assert_eq(salvo__recv_buffer_size(1638400, 16384), 16384);
  cr_assert_eq(salvo__recv_buffer_size(1638499, 16384), 16384);
  cr_assert_eq(salvo__recv_buffer_size(100000000, 16384), 16384, "16 KB at most");
  cr_assert_eq(salvo__recv_buffer_size(INT64_MAX, 16384), 16384);
}

/* The longest hold after a burst: 101 buffers at the cap, rounded up. */
Test(timeouts, recv_pause_after_a_burst) {
  cr_assert_eq(salvo__recv_pause_ms(0, 1024), 0, "no cap, no hold");
  cr_assert_eq(salvo__recv_pause_ms(100000, 1024), 1035); /* 103,424 bytes at 100 KB/s */
  cr_assert_eq(salvo__recv_pause_ms(50000, 1024), 2069);
  cr_assert_eq(salvo__recv_pause_ms(1, 1024), 103424000);
  cr_assert_eq(salvo__recv_pause_ms(1638400, 16384), 1010);
  cr_assert_eq(salvo__recv_pause_ms(1000, 16384), 1654784, "a handle that kept 16 KB reads");
  cr_assert_eq(salvo__recv_pause_ms(INT64_MAX, 16384), 1, "rounded up, never 0 under a cap");
  for (uint64_t cap = 1; cap < 20000000; cap = cap * 3 + 1) {
    long buffer = salvo__recv_buffer_size(cap, 16384);
    uint64_t ms = salvo__recv_pause_ms(cap, buffer);
    cr_assert_geq(ms * cap, (uint64_t)101 * (uint64_t)buffer * 1000, "cap %llu: %llu ms is short",
                  (unsigned long long)cap, (unsigned long long)ms);
    if (cap >= 102400)
      cr_assert_leq(ms, 1100, "cap %llu: about a second, got %llu ms", (unsigned long long)cap,
                    (unsigned long long)ms);
  }
}
