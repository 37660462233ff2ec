/* salvo-faultd: the fault-injection server as a program. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "faultd.h"

static const char usage[] =
    "usage: salvo-faultd [OPTIONS]\n"
    "An HTTP/1.1 and HTTP/2 server on loopback that fails in every way the network fails.\n"
    "\n"
    "  --host ADDR           127.0.0.1 (default) or ::1; nothing else is allowed\n"
    "  --port N              plain HTTP/1.1 port (0 = the OS picks, the default)\n"
    "  --tls-port N          TLS port, h2 and http/1.1 by ALPN (0 = the OS picks)\n"
    "  --cert FILE --key FILE  certificate and key (PEM); default: a self-signed one made at start\n"
    "  --cert-out FILE       where to write the generated certificate for clients to trust\n"
    "  --h2-max-streams N    SETTINGS_MAX_CONCURRENT_STREAMS (100)\n"
    "  --no-by-port          do not open the by-port fault listeners\n"
    "  --no-h2               the TLS port speaks HTTP/1.1 only (ALPN offers http/1.1 alone)\n"
    "  --lifetime SECONDS    stop after this long (600); SIGTERM and SIGINT stop it too\n"
    "  -h, --help            this text\n"
    "\n"
    "On start it prints one JSON line with its ports: http, tls, refused, accept_silent,\n"
    "close_on_accept, reset_on_accept, garbage_on_accept, tls_stall, and the certificate path.\n"
    "Faults by path: /ok /status/CODE?retry-after=V&reset=R /sleep/MS /hang /close /reset /garbage\n"
    "/headers-then-stall /drip/BYTES/INTERVAL_MS /truncate /truncate-hang /overlong\n"
    "/huge-headers/KB /bad-chunk /fail-until/N/KEY?status=S&retry-after=V\n"
    "/random/PERCENT/SEED?status=S /slow-some/PERCENT/MS/SEED /ratelimit/RATE/KEY?retry-after=V\n"
    "/capacity/N/MS?q=Q&name=NAME&retry-after=V\n"
    "/gzip/BYTES /br/BYTES /gzip-bomb/GB /bad-gzip\n"
    "/file/SIZE/SEED?ranges=0&etag=none|TEXT&lastmod=none&rate=BYTES&corrupt=N&key=KEY\n"
    "  (byte i is (i * 7 + (i >> 16) * 13 + SEED) & 0xff; Range, If-Range, HEAD)\n"
    "/keyed/KEY?ms=MS&status=S\n"
    "/h2/goaway-after/N /h2/rst/refused /h2/rst/internal\n"
    "/h2/stall /counters /counters/reset (see the README).\n";

static faultd_t *server;
static uv_timer_t lifetime_timer;
static uv_signal_t sig_term, sig_int;

static void stop(void) {
  if (server == NULL)
    return;
  faultd_close(server);
  server = NULL;
  uv_close((uv_handle_t *)&lifetime_timer, NULL);
  uv_close((uv_handle_t *)&sig_term, NULL);
  uv_close((uv_handle_t *)&sig_int, NULL);
}

static void on_lifetime(uv_timer_t *t) {
  (void)t;
  fprintf(stderr, "salvo-faultd: lifetime over, stopping\n");
  stop();
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)s;
  fprintf(stderr, "salvo-faultd: signal %d, stopping\n", signum);
  stop();
}

static long number(const char *opt, const char *arg, long min, long max) {
  char *end;
  long v = strtol(arg, &end, 10);
  if (*arg == '\0' || *end != '\0' || v < min || v > max) {
    fprintf(stderr, "salvo-faultd: %s needs a number from %ld to %ld, got '%s'\n", opt, min, max,
            arg);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  faultd_opts_t opts;
  faultd_opts_init(&opts);
  long lifetime = 600;
  static const struct option longopts[] = {
      {"host", required_argument, NULL, 'H'},     {"port", required_argument, NULL, 'p'},
      {"tls-port", required_argument, NULL, 't'}, {"cert", required_argument, NULL, 'c'},
      {"key", required_argument, NULL, 'k'},      {"cert-out", required_argument, NULL, 'o'},
      {"h2-max-streams", required_argument, NULL, 'm'},
      {"no-by-port", no_argument, NULL, 'n'},     {"lifetime", required_argument, NULL, 'l'},
      {"no-h2", no_argument, NULL, '1'},
      {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
  int opt;
  while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (opt) {
    case 'H':
      opts.host = optarg;
      break;
    case 'p':
      opts.port[FAULTD_PORT_HTTP] = (int)number("--port", optarg, 0, 65535);
      break;
    case 't':
      opts.port[FAULTD_PORT_TLS] = (int)number("--tls-port", optarg, 0, 65535);
      break;
    case 'c':
      opts.cert_file = optarg;
      break;
    case 'k':
      opts.key_file = optarg;
      break;
    case 'o':
      opts.cert_out = optarg;
      break;
    case 'm':
      opts.h2_max_streams = (unsigned)number("--h2-max-streams", optarg, 1, 1 << 20);
      break;
    case 'n':
      for (int i = FAULTD_PORT_REFUSED; i < FAULTD_PORTS; i++)
        opts.port[i] = -1;
      break;
    case 'l':
      lifetime = number("--lifetime", optarg, 1, 30L * 24 * 3600);
      break;
    case '1':
      opts.no_h2 = 1;
      break;
    case 'h':
      fputs(usage, stdout);
      return 0;
    default:
      fputs(usage, stderr);
      return 2;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "salvo-faultd: unexpected argument '%s'\n", argv[optind]);
    return 2;
  }
  if ((opts.cert_file == NULL) != (opts.key_file == NULL)) {
    fprintf(stderr, "salvo-faultd: --cert and --key go together\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t *loop = uv_default_loop();
  const char *error = NULL;
  if (faultd_start(loop, &opts, &server, &error) != 0) {
    fprintf(stderr, "salvo-faultd: %s\n", error);
    return 1;
  }
  json_t *ports = json_object();
  for (int i = 0; i < FAULTD_PORTS; i++)
    if (faultd_port(server, (faultd_port_t)i) > 0)
      json_object_set_new(ports, faultd_port_name((faultd_port_t)i),
                          json_integer(faultd_port(server, (faultd_port_t)i)));
  json_object_set_new(ports, "host", json_string(opts.host));
  json_object_set_new(ports, "cert", json_string(faultd_cert_file(server)));
  json_object_set_new(ports, "pid", json_integer(getpid()));
  char *line = json_dumps(ports, JSON_COMPACT | JSON_PRESERVE_ORDER);
  printf("%s\n", line);
  fflush(stdout);
  free(line);
  json_decref(ports);

  uv_timer_init(loop, &lifetime_timer);
  uv_timer_start(&lifetime_timer, on_lifetime, (uint64_t)lifetime * 1000, 0);
  uv_signal_init(loop, &sig_term);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  uv_signal_init(loop, &sig_int);
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_run(loop, UV_RUN_DEFAULT);
  return uv_loop_close(loop) == 0 ? 0 : 1;
}
