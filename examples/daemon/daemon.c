/* salvo-daemon: an event-driven daemon that already runs a libuv loop and
 * polls a set of endpoints through salvo every few seconds. It shows how salvo
 * lives inside someone else's loop: the daemon owns the loop and its own
 * handles (a poll timer, signal watchers); salvo adds its engine to it. On
 * SIGTERM or SIGINT it stops polling, closes the engine (requests in flight
 * end as canceled, each with its one completion), closes its own handles, and
 * uv_loop_close() returns 0.
 *
 *   salvo-daemon [--interval MS] [--deadline MS] [--cacert FILE]
 *                [--workers N --report URL] [--upload FILE --upload-to URL] URL...
 *
 * One line per poll result on stdout: round, URL, status or error class,
 * attempts, milliseconds.
 *
 * Worker threads (--workers N): each builds a report every interval on its
 * own thread and hands it to the engine with salvo_request_submit_threadsafe()
 * (a POST to --report with an Idempotency-Key, so salvo may retry it); its
 * done callback runs on the loop's thread like any other. On shutdown the
 * engine is closed first (further hand-overs return SALVO_ECLOSING), then the
 * workers are joined, before the loop runs the close through.
 *
 * A streamed upload (--upload FILE --upload-to URL): the file is PUT once at
 * start, read as it is sent (salvo_request_set_body_file(): never held in
 * memory) and rewound if salvo must send it again (a 503, a reset). A head
 * callback reports each response as it begins.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdatomic.h>
#include <sys/stat.h>

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

/* worker threads and what they hand over */
#define MAX_WORKERS 16
static uv_thread_t workers[MAX_WORKERS];
static unsigned nworkers;
static const char *report_url;
static atomic_int workers_stop;
static atomic_uint reports_refused;

/* the upload */
static const char *upload_file, *upload_to;

/* salvo's own messages (a warning about an insecure setting, ...): on stderr. */
static void log_to_stderr(salvo_engine_t *engine, salvo_log_level_t level, const char *message,
                          void *user_data) {
  (void)engine;
  (void)user_data;
  fprintf(stderr, "salvo: %s: %s\n", salvo_log_level_name(level), message);
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

static void on_report(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  (void)req;
  uintptr_t id = (uintptr_t)ud;
  const char *what = r->error ? salvo_err_name(r->error) : NULL;
  char status[16];
  snprintf(status, sizeof(status), "%ld", r->status);
  printf("report worker %u seq %u  %-20s attempts %u  %.1f ms\n", (unsigned)(id >> 20),
         (unsigned)(id & 0xfffff), what ? what : status, r->attempts, (double)r->elapsed_us / 1000.0);
  fflush(stdout);
}

/* A worker thread: builds a report on its own thread and hands it over. Only
 * salvo_request_new(), the setters, salvo_request_free() and
 * salvo_request_submit_threadsafe() are called here (salvo.h, Threading). */
static void worker_main(void *arg) {
  unsigned w = (unsigned)(uintptr_t)arg;
  for (unsigned seq = 1; !atomic_load(&workers_stop); seq++) {
    char body[96], key[48];
    int n = snprintf(body, sizeof(body), "{\"worker\":%u,\"seq\":%u}", w, seq);
    snprintf(key, sizeof(key), "report-%u-%u-%d", w, seq, (int)uv_os_getpid());
    salvo_request_t *req = NULL;
    int rc = salvo_request_new(engine, "POST", report_url, &req);
    if (rc == 0 && (rc = salvo_request_set_body(req, body, (size_t)n)) == 0 &&
        (rc = salvo_request_add_header(req, "Content-Type", "application/json")) == 0 &&
        (rc = salvo_request_add_header(req, "Idempotency-Key", key)) == 0)
      rc = salvo_request_submit_threadsafe(req, on_report, (void *)(uintptr_t)((w << 20) | seq));
    if (rc != 0) {
      salvo_request_free(req); /* not accepted (NULL is fine): still ours */
      atomic_fetch_add(&reports_refused, 1);
      if (rc == SALVO_ECLOSING)
        return;
    }
    /* sleep an interval, in steps, so a shutdown is not kept waiting */
    for (uint64_t slept = 0; slept < interval_ms && !atomic_load(&workers_stop); slept += 20)
      uv_sleep(20);
  }
}

static int upload_head(salvo_request_t *req, const salvo_response_head_t *head, void *ud) {
  (void)req;
  (void)ud;
  printf("upload attempt %u: response %ld%s\n", head->attempt, head->status,
         head->held ? " (salvo will send it again)" : "");
  fflush(stdout);
  return 0;
}

static void on_upload(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  (void)req;
  (void)ud;
  const char *what = r->error ? salvo_err_name(r->error) : NULL;
  char status[16];
  snprintf(status, sizeof(status), "%ld", r->status);
  printf("upload %s -> %s  %s  attempts %u  %.1f ms\n", upload_file, upload_to,
         what ? what : status, r->attempts, (double)r->elapsed_us / 1000.0);
  fflush(stdout);
}

static int start_upload(void) {
  salvo_request_t *req = NULL;
  int rc = salvo_request_new(engine, "PUT", upload_to, &req);
  if (rc == 0 && (rc = salvo_request_set_body_file(req, upload_file)) == 0 &&
      (rc = salvo_request_set_head_cb(req, upload_head)) == 0)
    rc = salvo_request_submit(req, on_upload, NULL);
  if (rc != 0) {
    salvo_request_free(req);
    fprintf(stderr, "salvo-daemon: --upload %s: %s\n", upload_file, salvo_strerror(rc));
    return rc;
  }
  return 0;
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
  /* The engine stays valid until engine_closed() runs from the loop: join the
   * workers now, while their last hand-overs can still be refused. */
  atomic_store(&workers_stop, 1);
  for (unsigned i = 0; i < nworkers; i++)
    uv_thread_join(&workers[i]);
  if (nworkers > 0)
    printf("salvo-daemon: %u workers joined, %u reports refused\n", nworkers,
           atomic_load(&reports_refused));
  fflush(stdout);
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {{"interval", required_argument, NULL, 'i'},
                                           {"deadline", required_argument, NULL, 'd'},
                                           {"cacert", required_argument, NULL, 'c'},
                                           {"workers", required_argument, NULL, 'w'},
                                           {"report", required_argument, NULL, 'r'},
                                           {"upload", required_argument, NULL, 'u'},
                                           {"upload-to", required_argument, NULL, 't'},
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
    } else if (o == 'w') {
      unsigned long v = strtoul(optarg, &end, 10);
      if (*optarg == '\0' || *end != '\0' || v > MAX_WORKERS) {
        fprintf(stderr, "salvo-daemon: --workers needs 0..%d, got '%s'\n", MAX_WORKERS, optarg);
        return 2;
      }
      nworkers = (unsigned)v;
    } else if (o == 'r') {
      report_url = optarg;
    } else if (o == 'u') {
      upload_file = optarg;
    } else if (o == 't') {
      upload_to = optarg;
    } else {
      fprintf(stderr, "usage: salvo-daemon [--interval MS] [--deadline MS] [--cacert FILE]\n"
                      "                    [--workers N --report URL] [--upload FILE --upload-to URL] "
                      "URL...\n");
      return o == 'h' ? 0 : 2;
    }
  }
  if (optind >= argc) {
    fprintf(stderr, "salvo-daemon: no URL to poll (usage: salvo-daemon [--interval MS] URL...)\n");
    return 2;
  }
  urls = argv + optind;
  nurls = argc - optind;
  if (nworkers > 0 && report_url == NULL) {
    fprintf(stderr, "salvo-daemon: --workers needs --report URL\n");
    return 2;
  }
  if ((upload_file == NULL) != (upload_to == NULL)) {
    fprintf(stderr, "salvo-daemon: --upload and --upload-to go together\n");
    return 2;
  }

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
  if (upload_file != NULL && start_upload() != 0)
    return 2;
  for (unsigned i = 0; i < nworkers; i++)
    if (uv_thread_create(&workers[i], worker_main, (void *)(uintptr_t)(i + 1)) != 0) {
      fprintf(stderr, "salvo-daemon: cannot start worker thread %u\n", i + 1);
      return 1;
    }
  uv_timer_init(&loop, &poll_timer);
  uv_signal_init(&loop, &sig_term);
  uv_signal_init(&loop, &sig_int);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_timer_start(&poll_timer, poll_all, 0, interval_ms);
  printf("salvo-daemon: polling %d endpoints every %llu ms, %u worker threads\n", nurls,
         (unsigned long long)interval_ms, nworkers);
  fflush(stdout);

  uv_run(&loop, UV_RUN_DEFAULT);
  int closed = uv_loop_close(&loop);
  printf("salvo-daemon: stopped after %u rounds; loop closed: %s\n", round_no,
         closed == 0 ? "yes" : "no, handles left open");
  return closed == 0 ? 0 : 1;
}
