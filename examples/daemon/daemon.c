/* salvo-daemon: an event-driven daemon that already runs a libuv loop and
 * polls a set of endpoints through salvo every few seconds. It shows how salvo
 * lives inside someone else's loop: the daemon owns the loop and its own
 * handles (a poll timer, signal watchers); salvo adds its engine to it. On
 * SIGTERM or SIGINT it stops polling, closes the engine (requests in flight
 * end as canceled, each with its one completion), closes its own handles, and
 * uv_loop_close() returns 0.
 *
 *   salvo-daemon [--interval MS] [--deadline MS] [--cacert FILE] URL...
 *
 * One line per poll result on stdout: time, URL, status or error class,
 * attempts, milliseconds. A line per round with the host's circuit state.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <salvo/salvo.h>
#include <uv.h>

static uv_loop_t loop;
static uv_timer_t poll_timer;
static uv_signal_t sig_term, sig_int;
static salvo_engine_t *engine;
static char **urls;
static int nurls;
static uint64_t interval_ms = 5000;
static unsigned in_flight, round_no;
static int stopping;

/* salvo's own messages (a warning about an insecure setting, ...): on stderr. */
static void log_to_stderr(salvo_engine_t *engine, salvo_log_level_t level, const char *message,
                          void *user_data) {
  (void)engine;
  (void)user_data;
  static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
  fprintf(stderr, "salvo: %s: %s\n", (unsigned)level < 4 ? names[level] : "LOG", message);
}

static void on_result(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  (void)ud;
  in_flight--;
  const char *what = r->error ? salvo_err_name(r->error) : NULL;
  char status[16];
  snprintf(status, sizeof(status), "%ld", r->status);
  printf("round %u  %-40s  %-20s attempts %u  %.1f ms\n", round_no, salvo_request_url(req),
         what ? what : status, r->attempts, (double)r->elapsed_us / 1000.0);
  fflush(stdout);
}

static void poll_all(uv_timer_t *t) {
  (void)t;
  if (stopping)
    return;
  if (in_flight > 0) { /* the last round is still out: skip, do not pile up */
    printf("round %u  skipped: %u requests of the last round still in flight\n", round_no, in_flight);
    fflush(stdout);
    return;
  }
  round_no++;
  for (int i = 0; i < nurls; i++) {
    salvo_request_t *req = NULL;
    int rc = salvo_request_new(engine, "GET", urls[i], &req);
    if (rc == 0) {
      rc = salvo_request_submit(req, on_result, NULL);
      if (rc != 0)
        salvo_request_free(req); /* not accepted: still ours */
    }
    if (rc != 0) {
      fprintf(stderr, "salvo-daemon: %s: %s\n", urls[i], salvo_strerror(rc));
      continue;
    }
    in_flight++;
  }
}

static void engine_closed(salvo_engine_t *e, void *ud) {
  (void)e;
  (void)ud;
  engine = NULL;
  printf("salvo-daemon: engine closed, %u requests left in flight\n", in_flight);
  fflush(stdout);
}

static void on_signal(uv_signal_t *sig, int signum) {
  (void)sig;
  if (stopping)
    return;
  stopping = 1;
  printf("salvo-daemon: %s: shutting down\n", signum == SIGTERM ? "SIGTERM" : "SIGINT");
  fflush(stdout);
  uv_timer_stop(&poll_timer);
  uv_close((uv_handle_t *)&poll_timer, NULL);
  uv_close((uv_handle_t *)&sig_term, NULL);
  uv_close((uv_handle_t *)&sig_int, NULL);
  salvo_engine_close(engine, engine_closed, NULL); /* in-flight requests complete as canceled */
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {{"interval", required_argument, NULL, 'i'},
                                           {"deadline", required_argument, NULL, 'd'},
                                           {"cacert", required_argument, NULL, 'c'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  salvo_engine_opts_t opts;
  salvo_engine_opts_init(&opts);
  opts.log_cb = log_to_stderr;
  opts.timeouts.deadline_ms = 4000;
  opts.hosts.breaker = 1; /* a daemon polling forever should not hammer a dead endpoint */
  int o;
  while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    char *end = NULL;
    if (o == 'i' || o == 'd') {
      unsigned long long v = strtoull(optarg, &end, 10);
      if (*optarg == '\0' || *end != '\0' || v == 0 || v > 86400000ULL) {
        fprintf(stderr, "salvo-daemon: --%s needs milliseconds (1..86400000), got '%s'\n",
                o == 'i' ? "interval" : "deadline", optarg);
        return 2;
      }
      if (o == 'i')
        interval_ms = v;
      else
        opts.timeouts.deadline_ms = v;
    } else if (o == 'c') {
      opts.ca_file = optarg;
    } else {
      fprintf(stderr, "usage: salvo-daemon [--interval MS] [--deadline MS] [--cacert FILE] URL...\n");
      return o == 'h' ? 0 : 2;
    }
  }
  if (optind >= argc) {
    fprintf(stderr, "salvo-daemon: no URL to poll (usage: salvo-daemon [--interval MS] URL...)\n");
    return 2;
  }
  urls = argv + optind;
  nurls = argc - optind;

  if (uv_loop_init(&loop) != 0)
    return 1;
  int rc = salvo_engine_new(&loop, &opts, &engine);
  if (rc != 0) {
    fprintf(stderr, "salvo-daemon: %s\n", salvo_strerror(rc));
    return 1;
  }
  /* Every URL is checked once up front: a typo stops the daemon at start. */
  for (int i = 0; i < nurls; i++) {
    salvo_request_t *req;
    if (salvo_request_new(engine, "GET", urls[i], &req) != 0) {
      fprintf(stderr, "salvo-daemon: not an http(s) URL: '%s'\n", urls[i]);
      return 2;
    }
    salvo_request_free(req);
  }
  uv_timer_init(&loop, &poll_timer);
  uv_signal_init(&loop, &sig_term);
  uv_signal_init(&loop, &sig_int);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_timer_start(&poll_timer, poll_all, 0, interval_ms);
  printf("salvo-daemon: polling %d endpoints every %llu ms\n", nurls, (unsigned long long)interval_ms);
  fflush(stdout);

  uv_run(&loop, UV_RUN_DEFAULT);
  int closed = uv_loop_close(&loop);
  printf("salvo-daemon: stopped after %u rounds; loop closed: %s\n", round_no,
         closed == 0 ? "yes" : "no, handles left open");
  return closed == 0 ? 0 : 1;
}
