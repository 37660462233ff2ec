#include "nginx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    close(fd);
    return -1;
  }
  close(fd);
  return ntohs(a.sin_port);
}

static int port_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
  close(fd);
  return ok;
}

static int write_file(const char *path, const char *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (f == NULL)
    return -1;
  fwrite(data, 1, len, f);
  return fclose(f);
}

static int try_start(test_nginx_t *n) {
  n->http_port = free_port();
  n->https_port = free_port();
  if (n->http_port <= 0 || n->https_port <= 0 || n->http_port == n->https_port)
    return -1;
  char conf[4096], path[512];
  const char *d = n->dir;
  snprintf(conf, sizeof(conf),
           "daemon off;\nworker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log warn;\n"
           "%s"
           "events { worker_connections 8192; }\n"
           "http {\n"
           "  log_format conns '$server_port $connection $status';\n"
           "  access_log %s/access.log conns;\n"
           "  client_body_temp_path %s/tmp;\n  proxy_temp_path %s/tmp;\n"
           "  fastcgi_temp_path %s/tmp;\n  uwsgi_temp_path %s/tmp;\n  scgi_temp_path %s/tmp;\n"
           "  keepalive_requests 1000000;\n"
           "  default_type application/octet-stream;\n"
           "  server {\n"
           "    listen 127.0.0.1:%d;\n"
           "    listen 127.0.0.1:%d ssl http2;\n"
           "    ssl_certificate %s/cert.pem;\n    ssl_certificate_key %s/key.pem;\n"
           "    root %s/www;\n"
           "  }\n"
           "}\n",
           d, d, geteuid() == 0 ? "user root;\n" : "", d, d, d, d, d, d, n->http_port,
           n->https_port, d, d, d);
  snprintf(path, sizeof(path), "%s/nginx.conf", d);
  if (write_file(path, conf, strlen(conf)) != 0)
    return -1;
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    execl("/usr/sbin/nginx", "nginx", "-p", d, "-c", path, (char *)NULL);
    _exit(127);
  }
  n->pid = pid;
  for (int i = 0; i < 100; i++) { /* up to 5 s */
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      n->pid = 0;
      return -1; /* exited: most likely a port taken in the meantime */
    }
    if (port_open(n->http_port) && port_open(n->https_port))
      return 0;
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  test_nginx_stop(n);
  return -1;
}

int test_nginx_start(test_nginx_t *n) {
  memset(n, 0, sizeof(*n));
  if (access("/usr/sbin/nginx", X_OK) != 0)
    return -1;
  snprintf(n->dir, sizeof(n->dir), "/tmp/salvo-nginx-XXXXXX");
  if (mkdtemp(n->dir) == NULL)
    return -1;
  chmod(n->dir, 0755);
  char cmd[1024], path[512];
  snprintf(cmd, sizeof(cmd),
           "cd %s && mkdir -p www tmp && openssl req -x509 -newkey ec "
           "-pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem -days 2 "
           "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
           ">/dev/null 2>&1",
           n->dir);
  if (system(cmd) != 0)
    return -1;
  snprintf(n->ca_file, sizeof(n->ca_file), "%s/cert.pem", n->dir);
  for (int i = 0; i < 100; i++)
    n->small_body[i] = (char)('a' + i % 26);
  n->small_body[99] = '\n';
  snprintf(path, sizeof(path), "%s/www/small", n->dir);
  write_file(path, n->small_body, 100);
  static char big[64 * 1024];
  memset(big, 'z', sizeof(big));
  snprintf(path, sizeof(path), "%s/www/64k", n->dir);
  write_file(path, big, sizeof(big));
  for (int attempt = 0; attempt < 5; attempt++)
    if (try_start(n) == 0)
      return 0;
  return -1;
}

void test_nginx_stop(test_nginx_t *n) {
  if (n->pid > 0) {
    kill(n->pid, SIGTERM);
    waitpid(n->pid, NULL, 0);
    n->pid = 0;
  }
  if (n->dir[0] != '\0') {
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", n->dir);
    if (system(cmd) != 0)
      fprintf(stderr, "could not remove %s\n", n->dir);
    n->dir[0] = '\0';
  }
}

void test_nginx_reset_log(const test_nginx_t *n) {
  char path[512];
  snprintf(path, sizeof(path), "%s/access.log", n->dir);
  if (truncate(path, 0) != 0)
    perror("truncate access.log");
}

static int cmp_ul(const void *a, const void *b) {
  unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
  return x < y ? -1 : x > y;
}

void test_nginx_counts(const test_nginx_t *n, int port, unsigned *requests,
                       unsigned *connections) {
  char path[512];
  snprintf(path, sizeof(path), "%s/access.log", n->dir);
  *requests = *connections = 0;
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return;
  size_t cap = 1024, len = 0;
  unsigned long *ids = malloc(cap * sizeof(*ids));
  int p, status;
  unsigned long conn;
  while (fscanf(f, "%d %lu %d", &p, &conn, &status) == 3) {
    if (p != port)
      continue;
    (*requests)++;
    if (len == cap)
      ids = realloc(ids, (cap *= 2) * sizeof(*ids));
    ids[len++] = conn;
  }
  fclose(f);
  qsort(ids, len, sizeof(*ids), cmp_ul);
  for (size_t i = 0; i < len; i++)
    if (i == 0 || ids[i] != ids[i - 1])
      (*connections)++;
  free(ids);
}
