/* A plain driver for the fuzz targets where libFuzzer is not available (gcc):
 * it feeds every file of the corpus directories (or files) on the command line
 * to LLVMFuzzerTestOneInput() once, so the seeds and the regression inputs run
 * in every build's test command. A target reports a bug by crashing or
 * aborting, as under libFuzzer; an unreadable corpus or an empty one fails.
 *   replay DIR|FILE... */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    perror(path);
    return -1;
  }
  size_t cap = 4096, len = 0;
  uint8_t *buf = malloc(cap);
  size_t n;
  while (buf != NULL && (n = fread(buf + len, 1, cap - len, f)) > 0) {
    len += n;
    if (len == cap) {
      uint8_t *bigger = realloc(buf, cap * 2);
      if (bigger == NULL) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = bigger;
      cap *= 2;
    }
  }
  int bad = ferror(f) || buf == NULL;
  fclose(f);
  if (bad) {
    fprintf(stderr, "%s: cannot read\n", path);
    free(buf);
    return -1;
  }
  /* an exact-size copy, so a read past the input's end is caught by ASan and valgrind */
  uint8_t *exact = malloc(len ? len : 1);
  if (exact == NULL) {
    free(buf);
    return -1;
  }
  memcpy(exact, buf, len);
  free(buf);
  LLVMFuzzerTestOneInput(exact, len);
  free(exact);
  return 1;
}

static int replay(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    perror(path);
    return -1;
  }
  if (!S_ISDIR(st.st_mode))
    return replay_file(path);
  struct dirent **names;
  int n = scandir(path, &names, NULL, alphasort); /* a fixed order: failures repeat */
  if (n < 0) {
    perror(path);
    return -1;
  }
  int count = 0;
  for (int i = 0; i < n; i++) {
    if (names[i]->d_name[0] != '.' && count >= 0) {
      char file[4096];
      snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
      int r = replay_file(file);
      count = r < 0 ? -1 : count + r;
    }
    free(names[i]);
  }
  free(names);
  return count;
}

int main(int argc, char **argv) {
  int total = 0;
  for (int i = 1; i < argc; i++) {
    int r = replay(argv[i]);
    if (r < 0)
      return 1;
    total += r;
  }
  if (total == 0) {
    fprintf(stderr, "replay: no inputs in the corpus given\n");
    return 1;
  }
  printf("replay: %d inputs, no crash\n", total);
  return 0;
}
