/* main() for test programs built on the criterion stand-in
 * (plain/criterion/criterion.h): runs every registered test in a child
 * process of its own, one at a time, in the order they were registered, and
 * reports TAP on stderr as criterion does with --tap=-. Options: --filter
 * SUITE/NAME runs one test (the others are reported skipped, as criterion
 * does); criterion's other options (--jobs, --tap, ...) are accepted and
 * ignored. Exit status 0 if every test passed or was skipped, else 1. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#define MAX_TESTS 64
#define MAX_SUITES 8
#define SKIP_STATUS 77

typedef struct {
  const char *suite, *name;
  void (*fn)(void);
  plain_opts_t opts;
} test_t;

static test_t tests[MAX_TESTS];
static size_t ntests;
static struct {
  const char *name;
  plain_opts_t opts;
} suites[MAX_SUITES];
static size_t nsuites;
static int skip_fd = -1; /* in a test's process: where a skip's reason goes */

void plain_register_suite(const char *suite, plain_opts_t opts) {
  if (nsuites == MAX_SUITES)
    abort();
  suites[nsuites].name = suite;
  suites[nsuites++].opts = opts;
}

void plain_register_test(const char *suite, const char *name, void (*fn)(void), plain_opts_t opts) {
  if (ntests == MAX_TESTS)
    abort();
  tests[ntests++] = (test_t){suite, name, fn, opts};
}

void plain_fail(const char *file, int line, const char *what, const char *fmt, ...) {
  fprintf(stderr, "# %s:%d: assertion failed: %s:", file, line, what);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

void plain_skip(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (skip_fd >= 0) {
    char reason[256];
    vsnprintf(reason, sizeof(reason), fmt, ap);
    if (write(skip_fd, reason, strlen(reason)) < 0)
      perror("write");
  }
  va_end(ap);
  exit(SKIP_STATUS);
}

void plain_log(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("# ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static const plain_opts_t *suite_opts(const char *suite) {
  static const plain_opts_t none;
  for (size_t i = 0; i < nsuites; i++)
    if (strcmp(suites[i].name, suite) == 0)
      return &suites[i].opts;
  return &none;
}

/* In the child: .init, the test, .fini. */
static void run_child(const test_t *t, int fd) {
  const plain_opts_t *s = suite_opts(t->suite);
  double timeout = t->opts.timeout > 0 ? t->opts.timeout : s->timeout;
  skip_fd = fd;
  if (timeout > 0)
    alarm((unsigned)timeout + 1);
  if (s->init != NULL)
    s->init();
  t->fn();
  if (s->fini != NULL)
    s->fini();
  exit(0);
}

/* Runs one test: 1 if it passed or was skipped, 0 if it failed. */
static int run_one(const test_t *t) {
  int fds[2];
  if (pipe(fds) != 0) {
    perror("pipe");
    return 0;
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 0;
  }
  if (pid == 0) {
    close(fds[0]);
    run_child(t, fds[1]);
  }
  close(fds[1]);
  char reason[256];
  ssize_t n = read(fds[0], reason, sizeof(reason) - 1);
  reason[n > 0 ? n : 0] = '\0';
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    ;
  const char *verdict = NULL;
  int ok = 0;
  if (WIFSIGNALED(status) && t->opts.signal != 0 && WTERMSIG(status) == t->opts.signal) {
    ok = 1;
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == SKIP_STATUS) {
    fprintf(stderr, "ok - %s::%s  # SKIP %s\n", t->suite, t->name, reason);
    return 1;
  } else if (WIFSIGNALED(status)) {
    verdict = WTERMSIG(status) == SIGALRM ? "timed out" : strsignal(WTERMSIG(status));
  } else if (WEXITSTATUS(status) != 0) {
    verdict = "failed";
  } else if (t->opts.signal != 0) {
    verdict = "did not die of the expected signal";
  } else {
    ok = 1;
  }
  if (ok)
    fprintf(stderr, "ok - %s::%s\n", t->suite, t->name);
  else
    fprintf(stderr, "not ok - %s::%s  # %s\n", t->suite, t->name, verdict);
  return ok;
}

int main(int argc, char **argv) {
  const char *filter = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
      filter = argv[++i];
    else if (strncmp(argv[i], "--filter=", 9) == 0)
      filter = argv[i] + 9;
  }
  fprintf(stderr, "TAP version 13\n1..%zu\n# plain runner (criterion stand-in)\n", ntests);
  int failed = 0;
  for (size_t i = 0; i < ntests; i++) {
    char full[256];
    snprintf(full, sizeof(full), "%s/%s", tests[i].suite, tests[i].name);
    if (filter != NULL && strcmp(filter, full) != 0) {
      fprintf(stderr, "ok - %s::%s  # SKIP test was skipped\n", tests[i].suite, tests[i].name);
      continue;
    }
    failed += !run_one(&tests[i]);
  }
  fprintf(stderr, "# %zu tests, %d failed\n", ntests, failed);
  return failed ? 1 : 0;
}
