/*
 * salvo.h's ABI against the layout recorded for this version
 * (tests/abi/layout-x86_64.txt): the size and alignment of every public
 * struct, the offset and size of each of its fields, and the value of every
 * enum constant. The names come from salvo.h itself (tools/abi-list), so a
 * struct, field or constant added to the header is a difference too.
 *
 * Before 1.0 the soname carries the minor version, and any change here bumps
 * it (README, "API and ABI stability"). A failure says what changed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <salvo/salvo.h>

#include "layout.h"

#if defined(__x86_64__) && defined(__LP64__)
#define SKIP_UNLESS_RECORDED_ABI() ((void)0)
#else
#define SKIP_UNLESS_RECORDED_ABI() \
  cr_skip_test("the layout is recorded for x86_64 (LP64) only; this build is for another ABI")
#endif

#define RECORDED "tests/abi/layout-x86_64.txt"

typedef struct {
  char kind[16];  /* version, struct, field or enum */
  char name[192]; /* TYPE or TYPE.MEMBER; the version itself for "version" */
  char value[96]; /* the rest of the line: "size 40 align 8", "offset 8 size 8", "value -3" */
} item_t;

typedef struct {
  item_t items[1024];
  size_t len;
} layout_t;

static void layout_parse(layout_t *l, const char *text) {
  l->len = 0;
  while (*text) {
    const char *end = strchr(text, '\n');
    size_t n = end ? (size_t)(end - text) : strlen(text);
    char line[512];
    if (n >= sizeof(line))
      cr_assert_fail("a layout line is too long");
    memcpy(line, text, n);
    line[n] = '\0';
    text += end ? n + 1 : n;
    if (line[0] == '\0' || line[0] == '#')
      continue;
    if (l->len == sizeof(l->items) / sizeof(l->items[0]))
      cr_assert_fail("more layout lines than the test holds: make items[] larger");
    item_t *it = &l->items[l->len++];
    it->value[0] = '\0';
    if (sscanf(line, "%15s %191s %95[^\n]", it->kind, it->name, it->value) < 2)
      cr_assert_fail("unreadable layout line '%s'", line);
  }
}

static void layout_recorded(layout_t *l) {
  const char *path = getenv("SALVO_ABI_LAYOUT");
  cr_assert_not_null(path, "SALVO_ABI_LAYOUT is not set: run this test through meson test");
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "cannot read %s", path);
  static char text[256 * 1024];
  size_t n = fread(text, 1, sizeof(text) - 1, f);
  fclose(f);
  text[n] = '\0';
  layout_parse(l, text);
}

static void layout_current(layout_t *l) {
  char *text = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&text, &n);
  cr_assert_not_null(f);
  abi_layout_print(f);
  fclose(f);
  layout_parse(l, text);
  free(text);
}

static const item_t *layout_find(const layout_t *l, const char *kind, const char *name) {
  for (size_t i = 0; i < l->len; i++)
    if (strcmp(l->items[i].kind, kind) == 0 && (!name || strcmp(l->items[i].name, name) == 0))
      return &l->items[i];
  return NULL;
}

static int kind_in(const char *kind, const char *const *kinds) {
  for (; *kinds; kinds++)
    if (strcmp(kind, *kinds) == 0)
      return 1;
  return 0;
}

/* Every difference in the items of |kinds|, one line each, into *out (malloc'd). */
static size_t layout_diff(const layout_t *recorded, const layout_t *current,
                          const char *const *kinds, char **out) {
  size_t n = 0, len = 0;
  FILE *f = open_memstream(out, &len);
  cr_assert_not_null(f);
  for (size_t i = 0; i < current->len; i++) {
    const item_t *now = &current->items[i];
    if (!kind_in(now->kind, kinds))
      continue;
    const item_t *was = layout_find(recorded, now->kind, now->name);
    if (!was) {
      fprintf(f, "  added:   %s %s %s\n", now->kind, now->name, now->value);
      n++;
    } else if (strcmp(was->value, now->value) != 0) {
      fprintf(f, "  changed: %s %s: %s, recorded %s\n", now->kind, now->name, now->value,
              was->value);
      n++;
    }
  }
  for (size_t i = 0; i < recorded->len; i++) {
    const item_t *was = &recorded->items[i];
    if (kind_in(was->kind, kinds) && !layout_find(current, was->kind, was->name)) {
      fprintf(f, "  removed: %s %s %s\n", was->kind, was->name, was->value);
      n++;
    }
  }
  fclose(f);
  return n;
}

/* What to do about a difference: bump the minor version, unless it was bumped already. */
static const char *advice(const layout_t *recorded, char *buf, size_t size) {
  const item_t *was = layout_find(recorded, "version", NULL);
  char now[32];
  snprintf(now, sizeof(now), "%d.%d", SALVO_VERSION_MAJOR, SALVO_VERSION_MINOR);
  if (was && strcmp(was->name, now) == 0)
    snprintf(buf, size,
             "The public ABI of salvo.h changed, and the version is still %s. Bump the minor "
             "version in meson.build's project() (%s.x -> %d.%d.0: soname libsalvo.so.%d.%d), "
             "then record the new layout with tools/abi-record BUILD_DIR and commit it with the "
             "change (README, \"API and ABI stability\").",
             now, now, SALVO_VERSION_MAJOR, SALVO_VERSION_MINOR + 1, SALVO_VERSION_MAJOR,
             SALVO_VERSION_MINOR + 1);
  else
    snprintf(buf, size,
             "The version is %s already: record its layout with tools/abi-record BUILD_DIR "
             "and commit it.",
             now);
  return buf;
}

static void check(const char *const *kinds, const char *what) {
  static layout_t recorded, current;
  layout_recorded(&recorded);
  layout_current(&current);
  char *diff = NULL;
  char todo[512];
  size_t n = layout_diff(&recorded, &current, kinds, &diff);
  cr_expect_eq(n, 0, "%zu difference(s) in %s from " RECORDED ":\n%s%s", n, what, diff,
               advice(&recorded, todo, sizeof(todo)));
  free(diff);
}

Test(abi, recorded_for_this_version) {
  SKIP_UNLESS_RECORDED_ABI();
  static layout_t recorded;
  layout_recorded(&recorded);
  const item_t *was = layout_find(&recorded, "version", NULL);
  cr_assert_not_null(was, RECORDED " has no version line: record it with tools/abi-record");
  char now[32];
  snprintf(now, sizeof(now), "%d.%d", SALVO_VERSION_MAJOR, SALVO_VERSION_MINOR);
  cr_expect_str_eq(was->name, now,
                   RECORDED " was recorded for salvo %s, and this is %s: record this version's "
                   "layout with tools/abi-record BUILD_DIR (it refuses a changed layout under an "
                   "unchanged version)",
                   was->name, now);
}

Test(abi, struct_sizes_and_field_offsets) {
  SKIP_UNLESS_RECORDED_ABI();
  static const char *const kinds[] = {"struct", "field", NULL};
  check(kinds, "the public structs");
}

Test(abi, enum_values) {
  SKIP_UNLESS_RECORDED_ABI();
  static const char *const kinds[] = {"enum", NULL};
  check(kinds, "the public enums");
}
