#include <string.h>

#include <criterion/criterion.h>
#include <salvo/salvo.h>

Test(error, every_code_has_a_distinct_name_and_message) {
  const char *seen[64] = {0};
  for (int e = SALVO_EINVAL; e >= SALVO_EPROXY; e--) {
    const char *name = salvo_err_name(e);
    cr_assert_str_neq(name, "unknown", "code %d has no name", e);
    cr_assert_str_neq(salvo_strerror(e), "unknown error", "code %d has no message", e);
    for (const char *p = name; *p; p++)
      cr_assert((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_', "name %s is not lower_snake_case", name);
    for (int i = 0; i < 64 && seen[i]; i++)
      cr_assert_str_neq(seen[i], name, "duplicate name %s", name);
    seen[-e - 1] = name;
  }
}

Test(error, names_users_script_against) {
  cr_assert_str_eq(salvo_err_name(0), "ok");
  cr_assert_str_eq(salvo_err_name(SALVO_ECONNREFUSED), "connect_refused");
  cr_assert_str_eq(salvo_err_name(SALVO_EIDLE), "idle_timeout");
  cr_assert_str_eq(salvo_err_name(SALVO_EDEADLINE), "deadline_exceeded");
  cr_assert_str_eq(salvo_err_name(SALVO_ECANCELED), "canceled");
  cr_assert_str_eq(salvo_err_name(SALVO_EINVAL), "invalid_input");
  cr_assert_str_eq(salvo_err_name(SALVO_ERETRYAFTER), "retry_after_too_long");
  cr_assert_str_eq(salvo_err_name(12345), "unknown");
  cr_assert_str_eq(salvo_strerror(-9999), "unknown error");
}

Test(version, matches_header) {
  cr_assert_str_eq(salvo_version(), SALVO_VERSION_STRING);
  cr_assert_eq(SALVO_VERSION_HEX,
               (SALVO_VERSION_MAJOR << 16) | (SALVO_VERSION_MINOR << 8) | SALVO_VERSION_PATCH);
}

/* Zero is success, not an unknown code; an unknown code says so. */
Test(error, zero_is_success_and_unknown_codes_say_so) {
  cr_assert_str_eq(salvo_strerror(0), "success");
  cr_assert_str_eq(salvo_strerror(-9999), "unknown error");
  cr_assert_str_eq(salvo_strerror(12345), "unknown error");
}

/* The enum, the names and the messages come from one list: every entry of
 * SALVO_ERRNO_MAP answers with its own name and message, the codes run from
 * -1 down without a gap, and the first code past the list is unknown. */
Test(error, the_map_is_the_one_list) {
  static const struct {
    int code, value;
    const char *name, *msg;
  } map[] = {
#define XX(code, value, name, msg) {SALVO_##code, value, name, msg},
      SALVO_ERRNO_MAP(XX)
#undef XX
  };
  size_t n = sizeof(map) / sizeof(map[0]);
  cr_assert_geq(n, 29, "the map lost classes: %zu", n);
  for (size_t i = 0; i < n; i++) {
    cr_assert_eq(map[i].code, -(int)(i + 1), "%s is %d, not %d", map[i].name, map[i].code, -(int)(i + 1));
    cr_assert_eq(map[i].code, map[i].value);
    cr_assert_str_eq(salvo_err_name(map[i].code), map[i].name);
    cr_assert_str_eq(salvo_strerror(map[i].code), map[i].msg);
  }
  cr_assert_str_eq(salvo_err_name(SALVO_EPROXY), "proxy_failure");
  cr_assert_str_eq(salvo_err_name(-(int)n - 1), "unknown");
  cr_assert_str_eq(salvo_strerror(-(int)n - 1), "unknown error");
  cr_assert_str_eq(salvo_err_name(-2147483647 - 1), "unknown");
}
