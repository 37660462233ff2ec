/* Starts a private nginx on 127.0.0.1 for a test: one worker, plain HTTP/1.1
 * on one port and HTTPS (h2 + http/1.1 by ALPN) on another, both picked by
 * the OS, with a self-signed certificate made for this run. Serves
 * /small (100 bytes) and /64k. Stops with test_nginx_stop(). */
#ifndef SALVO_TEST_NGINX_H
#define SALVO_TEST_NGINX_H

#include <sys/types.h>

typedef struct {
  pid_t pid;
  char dir[256];
  char ca_file[320];   /* the self-signed certificate, to trust via ca_file */
  int http_port;
  int https_port;
  char small_body[101];
} test_nginx_t;

/* Returns 0, or -1 if nginx or openssl is missing or would not start. */
int test_nginx_start(test_nginx_t *n);
void test_nginx_stop(test_nginx_t *n);
/* From the access log: requests and distinct connections seen on |port|. */
void test_nginx_counts(const test_nginx_t *n, int port, unsigned *requests, unsigned *connections);
/* Truncates the access log. */
void test_nginx_reset_log(const test_nginx_t *n);

#endif
