/* --demo: a built-in salvo-faultd on 127.0.0.1 and a few thousand requests
 * to it, across healthy, slow, flaky, rate-limited, dropping and refused
 * endpoints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faultd.h"
#include "fetch.h"

/* A few thousand requests across healthy, slow, flaky, rate-limited,
 * dropping and refused endpoints of a built-in salvo-faultd. */
int fetch_demo_start(uv_loop_t *loop, char *path, size_t path_len, faultd_t **server) {
  faultd_opts_t fo;
  faultd_opts_init(&fo);
  const char *err = NULL;
  if (faultd_start(loop, &fo, server, &err) != 0) {
    fprintf(stderr, "salvo-fetch: --demo: %s\n", err);
    return -1;
  }
  snprintf(path, path_len, "/tmp/salvo-fetch-demo-XXXXXX");
  int fd = mkstemp(path);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (f == NULL) {
    fprintf(stderr, "salvo-fetch: --demo: cannot write its input to %s\n", path);
    if (fd >= 0)
      close(fd);
    return -1;
  }
  int http = faultd_port(*server, FAULTD_PORT_HTTP);
  int refused = faultd_port(*server, FAULTD_PORT_REFUSED);
  struct {
    const char *path;
    int count;
  } kinds[] = {
      {"/ok", 2000},
      {"/sleep/300", 300},
      {"/fail-until/3/flaky-%d", 300},
      {"/fail-until/2/limited-%d?status=429&retry-after=1", 100},
      {"/status/503", 50},
      {"/random/30/%d", 200},
      {"/fail-until/2/drop-%d?fault=reset", 200},
      {"/hang", 20},
      {"/status/404", 50},
      {"refused", 50},
  };
  int n = 0;
  for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
    for (int i = 0; i < kinds[k].count; i++, n++) {
      char p[160];
      snprintf(p, sizeof(p), kinds[k].path, i);
      if (strcmp(p, "refused") == 0)
        fprintf(f, "{\"id\":\"demo-%d\",\"url\":\"http://127.0.0.1:%d/\",\"method\":\"POST\",\"body\":\"x\"}\n",
                n, refused);
      else
        fprintf(f, "{\"id\":\"demo-%d\",\"url\":\"http://127.0.0.1:%d%s\"}\n", n, http, p);
    }
  if (fclose(f) != 0) {
    fprintf(stderr, "salvo-fetch: --demo: cannot write its input to %s\n", path);
    return -1;
  }
  fprintf(stderr,
          "salvo-fetch --demo: %d requests to a built-in fault server on 127.0.0.1 (healthy, slow,\n"
          "flaky, 429 with Retry-After, 503, random failures, dropped connections, hanging,\n"
          "404, refused), default retry policy, idle timeout 1 s\n",
          n);
  return 0;
}

