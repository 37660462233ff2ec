/* The process's resident set size, for the memory figures of the soak test
 * and the benchmarks. Linux only (/proc). */
#ifndef SALVO_TOOLS_RSS_H
#define SALVO_TOOLS_RSS_H

#include <stdio.h>

/* VmRSS in KiB, or -1 if /proc cannot tell. */
static inline long salvo_tool_rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f != NULL && fgets(line, sizeof(line), f) != NULL)
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
      break;
  if (f != NULL)
    fclose(f);
  return kb;
}

#endif
