/* A stand-in for criterion's <criterion/criterion.h>, for test programs run
 * under ThreadSanitizer: criterion's sandbox (BoxFort) maps its arena at
 * random fixed addresses that ThreadSanitizer's shadow memory takes, and
 * fails at start ("Could not initialize inheritable arena", criterion issue
 * #274). A test file built with this directory ahead on the include path
 * gets the few macros below instead, and main() from plain_main.c: each test
 * runs in a child process (suite .init, the test, suite .fini), one at a
 * time, and the report is TAP on stderr in criterion's form, so
 * tools/test-summary counts its cases the same way.
 *
 * Only what the tests built this way use: Test (with .signal, .timeout),
 * TestSuite (with .init, .fini, .timeout), cr_assert, cr_assert_eq and the
 * other comparisons, cr_assert_not_null, cr_assert_fail, cr_skip_test,
 * cr_log_info. A message, if given, is printed without format checking. */
#ifndef PLAIN_CRITERION_H
#define PLAIN_CRITERION_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
  void (*init)(void);
  void (*fini)(void);
  double timeout; /* seconds, 0 = none */
  int signal;     /* the test passes if it dies of this signal */
  int end_;       /* set by the macros: ISO C wants something in the braces */
} plain_opts_t;

void plain_register_suite(const char *suite, plain_opts_t opts);
void plain_register_test(const char *suite, const char *name, void (*fn)(void), plain_opts_t opts);
/* A failed assertion: prints where and why, ends the test's process. */
void plain_fail(const char *file, int line, const char *what, const char *fmt, ...)
    __attribute__((noreturn));
void plain_skip(const char *fmt, ...) __attribute__((noreturn));
void plain_log(const char *fmt, ...);

/* The options come after the names; .end_ keeps the variadic part of the
 * inner macros non-empty (ISO C wants one argument there). */
#define TestSuite(...) PLAIN_SUITE_(__VA_ARGS__, .end_ = 1)
#define PLAIN_SUITE_(suite, ...)                                                              \
  __attribute__((constructor)) static void plain_suite_##suite(void) {                        \
    plain_register_suite(#suite, (plain_opts_t){__VA_ARGS__});                                \
  }                                                                                           \
  extern int plain_suite_end_##suite /* takes the caller's ; */

#define Test(...) PLAIN_TEST_(__VA_ARGS__, .end_ = 1)
#define PLAIN_TEST_(suite, name, ...)                                                         \
  static void suite##_##name(void);                                                           \
  __attribute__((constructor)) static void plain_test_##suite##_##name(void) {                \
    plain_register_test(#suite, #name, suite##_##name, (plain_opts_t){__VA_ARGS__});          \
  }                                                                                           \
  static void suite##_##name(void)

/* The message arguments, if any, come after the operands; " " keeps the
 * variadic part of the inner macros non-empty. */
#define PLAIN_CHECK_(ok, what, ...)                                                           \
  do {                                                                                        \
    if (!(ok))                                                                                \
      plain_fail(__FILE__, __LINE__, what, __VA_ARGS__);                                      \
  } while (0)
#define PLAIN_CMP_(a, op, b, ...) PLAIN_CHECK_((a)op(b), #a " " #op " " #b, __VA_ARGS__)
#define PLAIN_EQ_(a, b, ...) PLAIN_CMP_(a, ==, b, __VA_ARGS__)
#define PLAIN_NEQ_(a, b, ...) PLAIN_CMP_(a, !=, b, __VA_ARGS__)
#define PLAIN_LT_(a, b, ...) PLAIN_CMP_(a, <, b, __VA_ARGS__)
#define PLAIN_LEQ_(a, b, ...) PLAIN_CMP_(a, <=, b, __VA_ARGS__)
#define PLAIN_GT_(a, b, ...) PLAIN_CMP_(a, >, b, __VA_ARGS__)
#define PLAIN_GEQ_(a, b, ...) PLAIN_CMP_(a, >=, b, __VA_ARGS__)
#define PLAIN_TRUE_(a, ...) PLAIN_CHECK_((a), #a, __VA_ARGS__)
#define PLAIN_NOT_NULL_(a, ...) PLAIN_CHECK_((a) != NULL, #a " != NULL", __VA_ARGS__)

#define cr_assert(...) PLAIN_TRUE_(__VA_ARGS__, " ")
#define cr_assert_eq(...) PLAIN_EQ_(__VA_ARGS__, " ")
#define cr_assert_neq(...) PLAIN_NEQ_(__VA_ARGS__, " ")
#define cr_assert_lt(...) PLAIN_LT_(__VA_ARGS__, " ")
#define cr_assert_leq(...) PLAIN_LEQ_(__VA_ARGS__, " ")
#define cr_assert_gt(...) PLAIN_GT_(__VA_ARGS__, " ")
#define cr_assert_geq(...) PLAIN_GEQ_(__VA_ARGS__, " ")
#define cr_assert_not_null(...) PLAIN_NOT_NULL_(__VA_ARGS__, " ")
#define cr_assert_fail(...) plain_fail(__FILE__, __LINE__, "failed", __VA_ARGS__)
#define cr_skip_test(...) plain_skip(__VA_ARGS__)
#define cr_log_info(...) plain_log(__VA_ARGS__)

#endif
