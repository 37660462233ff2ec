/* The run: input lines become requests, the engine is fed only while it has
 * room (memory stays flat however long the input), each request's body goes
 * to its sink, and each ends in one result line. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "faultd.h"
#include "fetch.h"
#include "input.h"
#include "reader.h"

/* One request in the engine. */
typedef struct {
  char *id;              /* input id, or the 1-based line number */
  char *url;
  char *method;
  char *name;            /* -o: the file name, else NULL */
  size_t line;
  unsigned char sha256[32];
  int has_sha256;
  unsigned mismatches;   /* attempts whose body did not match it */
  int buffered;          /* --hedge: the body comes whole at the end (a hedged request cannot
                            stream: two attempts may run at once) */
  json_t *headers;       /* the line's own headers (a reference), for a restart */
  char *restarted;       /* why an earlier run's part was dropped and the body fetched whole */
  fetch_sink_t sink;
} item_t;

static struct {
  const fetch_opts_t *o;    /* the command line, read only */
  salvo_engine_opts_t engine_opts; /* the engine's options: the command line's, fitted to the
                               machine (open files, read buffers) and the run (--demo, checksums) */
  uv_loop_t *loop;
  salvo_engine_t *engine;
  fetch_reader_t *reader;   /* -i, read through the loop; NULL once it ended */
  const char *input_name;   /* for messages: the path, or "stdin" */
  int input_error;          /* the input could not be read to its end: exit 2 */
  int input_done;
  size_t line;
  int cli_next;
  json_t *names;            /* -o: file name -> line that claimed it */
  char batch[257];          /* --idempotency-key auto: the batch the keys derive from (--batch-id
                               takes up to 256 bytes, all of them count) */
  size_t in_engine;         /* submitted, not yet done */
  int interrupted;
  int closing;
  uv_signal_t sigint;
  faultd_t *demo_server;
  uint64_t start_ns;
} run;

static void feed(void);

/* Longest input line: a JSON line may carry a request body. */
#define MAX_LINE (64u * 1024 * 1024)
#define MAX_LINE_TEXT "67108864"

/* libcurl's read buffer per transfer: 128 KiB, and 32 MiB for all at most. */
#define RECV_BUFFER_MAX ((size_t)128 << 10)
#define RECV_BUFFERS ((size_t)32 << 20)

/* A request body (-d, --data-file) is copied into each request from submit:
 * the requests queued in the engine hold at most this much of them. */
#define MAX_QUEUED_BODIES ((size_t)256 << 20)

static void item_free(item_t *it) {
  json_decref(it->headers);
  free(it->restarted);
  free(it->id);
  free(it->url);
  free(it->method);
  free(it->name);
  free(it);
}

static const char *outcome_of(const salvo_result_t *r) {
  if (r->error == SALVO_ECANCELED)
    return "canceled";
  if (r->error == 0 && r->status >= 200 && r->status < 400)
    return "ok";
  if (r->error == 0 && r->status > 0)
    return "http_error";
  return "failed";
}

static void hex(const unsigned char *b, size_t n, char *out) {
  for (size_t i = 0; i < n; i++)
    snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* ------------------------------------------------------------ callbacks */

static int on_head(salvo_request_t *req, const salvo_response_head_t *head, void *ud) {
  item_t *it = ud;
  return fetch_sink_head(&it->sink, req, head);
}

static int on_data(salvo_request_t *req, const char *data, size_t len, void *ud) {
  (void)req;
  item_t *it = ud;
  return fetch_sink_data(&it->sink, data, len);
}

static int digest_matches(item_t *it) {
  unsigned char d[32];
  fetch_sink_digest(&it->sink, d);
  return memcmp(d, it->sha256, 32) == 0;
}

/* A body that came whole but does not match its checksum was damaged on the
 * way: a GET is fetched again, backing off as the policy would. */
static salvo_decision_t on_decide(salvo_request_t *req, const salvo_attempt_info_t *info,
                                  salvo_decision_t decision, uint64_t *wait_ms, void *ud) {
  (void)ud;
  item_t *it = salvo_request_data(req);
  if (decision != SALVO_DECIDE_STOP || it == NULL || !it->has_sha256 || info->error != 0 ||
      !it->sink.writing || digest_matches(it))
    return decision;
  it->mismatches++;
  const salvo_retry_policy_t *p = &run.engine_opts.retry;
  if (strcmp(info->method, "GET") != 0 || info->attempt >= p->max_attempts || it->sink.status == 206)
    return decision; /* a continued body that does not match: the part is dropped (done()) */
  uint64_t cap = p->backoff_base_ms;
  for (unsigned i = 1; i < info->attempt && cap < p->backoff_max_ms; i++)
    cap *= 2;
  if (cap > p->backoff_max_ms)
    cap = p->backoff_max_ms;
  *wait_ms = cap > 0 ? (uint64_t)random() % (cap + 1) : 0; /* full jitter */
  return SALVO_DECIDE_RETRY;
}

/* A buffered body (--hedge) goes to the sink at the end, as if it had
 * streamed: the same file, digest and checks. */
static void sink_buffered(salvo_request_t *req, const salvo_result_t *r, item_t *it) {
  if (r->status == 0)
    return;
  salvo_response_head_t head = {.attempt = r->attempts, .status = r->status,
                                .http_version = r->http_version, .content_length = -1};
  if (fetch_sink_head(&it->sink, req, &head) == 0 && r->body != NULL)
    fetch_sink_data(&it->sink, r->body, r->body_len);
}

static void build(const fetch_spec_t *in, size_t line, const char *name, const char *restarted);

/* The part an earlier run left could not be continued, or its whole did not
 * match the checksum: it is dropped and the body fetched whole, once, in a
 * new request for the line (whose result line is the line's). Returns 1 if
 * that request was made. */
static int restart_whole(item_t *it, const char *why) {
  if (it->restarted != NULL || strcmp(it->method, "GET") != 0 || run.closing)
    return 0;
  fetch_sink_finish(&it->sink, 0, 0); /* deletes the part */
  fetch_spec_t in;
  memset(&in, 0, sizeof(in));
  in.id = it->id;
  in.url = it->url;
  in.method = it->method;
  in.headers = it->headers;
  in.has_sha256 = it->has_sha256;
  memcpy(in.sha256, it->sha256, 32);
  build(&in, it->line, it->name, why);
  return 1;
}

static void done(salvo_request_t *req, const salvo_result_t *r, void *ud) {
  item_t *it = ud;
  run.in_engine--;
  if (it->buffered)
    sink_buffered(req, r, it);
  int continued = it->sink.status == 206 || it->sink.part_whole;
  if ((it->sink.restart && restart_whole(it, it->sink.why)) ||
      (continued && it->has_sha256 && r->error == 0 && !digest_matches(it) &&
       restart_whole(it, "the part from before and the rest did not match the checksum: fetched whole"))) {
    item_free(it);
    feed();
    return;
  }
  fetch_line_t l = {.id = it->id, .url = it->url, .method = it->method, .line = it->line,
                    .outcome = outcome_of(r), .max_body = run.engine_opts.max_body_size};
  char why[256], digest_hex[65];
  if (it->sink.part_whole && r->error == 0) {
    l.outcome = "ok"; /* a 416 to bytes=N-: the part held the whole file already */
    l.detail = "the part file from before held the whole file (the server answered 416 to the rest)";
  }
  int ok = strcmp(l.outcome, "ok") == 0;
  if (ok && it->sink.failed) {
    ok = 0;
    l.outcome = "failed";
    l.error = "save_failed";
    l.detail = it->sink.why;
  } else if (ok && it->has_sha256) {
    unsigned char d[32];
    fetch_sink_digest(&it->sink, d);
    hex(d, 32, digest_hex);
    l.sha256 = digest_hex;
    if (memcmp(d, it->sha256, 32) != 0) {
      ok = 0;
      l.outcome = "failed";
      l.error = "checksum_mismatch";
      char want[65];
      hex(it->sha256, 32, want);
      snprintf(why, sizeof(why), "the body's SHA-256 is not %s (%u attempts had a body that did not match)",
               want, it->mismatches);
      l.detail = why;
    }
  } else if (!ok && it->sink.failed && r->error == SALVO_EABORTED) {
    l.error = "save_failed";
    l.detail = it->sink.why;
  }
  int canceled = strcmp(l.outcome, "canceled") == 0;
  int damaged = l.error != NULL && strcmp(l.error, "checksum_mismatch") == 0;
  uint64_t resumed = it->sink.status == 206 || it->sink.part_whole ? it->sink.base : 0;
  /* A canceled request's part stays for a later --resume, as a killed one's does. */
  if (fetch_sink_finish(&it->sink, ok, (run.o->keep_part || canceled) && !damaged) != 0) {
    ok = 0;
    l.outcome = "failed";
    l.error = "save_failed";
    l.detail = it->sink.why;
  }
  if (it->restarted != NULL && l.detail == NULL)
    l.detail = it->restarted;
  if (ok && it->name != NULL)
    l.file = it->name;
  if (ok)
    l.resumed_from = resumed;
  if (l.error != NULL && strcmp(l.error, "save_failed") == 0)
    fetch_warn("", l.detail);
  fetch_result_line(req, r, &l);
  item_free(it);
  fetch_progress_update(run.in_engine, run.line, run.input_done);
  feed();
}

/* ------------------------------------------------------------ requests */

/* A header name from the input is shown only if it is a token: a "name" that
 * is not may be a whole "Authorization: Bearer ..." line pasted in. */
static int is_token(const char *s) {
  if (*s == '\0')
    return 0;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) || (unsigned char)*s >= 0x80)
      if (strchr("!#$%&'*+-.^_`|~", *s) == NULL)
        return 0;
  return 1;
}

static int apply_headers(salvo_request_t *req, json_t *headers, char *why, size_t why_len) {
  const char *name;
  json_t *v;
  json_object_foreach(headers, name, v) {
    const char *shown = is_token(name) && strlen(name) <= 64 ? name : "(name not shown: not a token)";
    if (!json_is_string(v)) {
      snprintf(why, why_len, "header %s: value is not a string", shown);
      return -1;
    }
    if (salvo_request_add_header(req, name, json_string_value(v)) != 0) {
      const char *reserved = salvo_header_reserved(name);
      if (reserved != NULL)
        snprintf(why, why_len, "header %s: not accepted: %s", shown, reserved);
      else if (strcasecmp(name, "Host") == 0)
        snprintf(why, why_len, "header %s: must name the URL's own host (and port)", shown);
      else
        snprintf(why, why_len, "header %s: invalid name or value (CR, LF, NUL?)", shown);
      return -1;
    }
  }
  return 0;
}

static int has_header(json_t *headers, const char *want) {
  const char *name;
  json_t *v;
  json_object_foreach(headers, name, v) {
    if (strcasecmp(name, want) == 0)
      return 1;
  }
  return 0;
}

/* --idempotency-key auto: the key of a POST or PATCH, the same in every run
 * of the batch (a resumed one too): a hash of the batch, the id, the method,
 * the URL and the body, written as a UUID. */
static int add_idempotency_key(salvo_request_t *req, const char *id, const char *method,
                               const char *url, const char *body, size_t body_len) {
  static const char tag[] = "salvo-fetch idempotency-key 1";
  unsigned char d[32];
  unsigned int n = 0;
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  int ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1;
  const char *parts[] = {tag, run.batch, id, method, url};
  for (size_t i = 0; ok && i < sizeof(parts) / sizeof(parts[0]); i++)
    ok = EVP_DigestUpdate(c, parts[i], strlen(parts[i]) + 1) == 1; /* with the NUL: no ambiguity */
  ok = ok && EVP_DigestUpdate(c, body != NULL ? body : "", body_len) == 1 &&
       EVP_DigestFinal_ex(c, d, &n) == 1;
  EVP_MD_CTX_free(c);
  if (!ok)
    return SALVO_ENOMEM;
  char h[33], key[40];
  hex(d, 16, h);
  snprintf(key, sizeof(key), "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
  return salvo_request_add_header(req, "Idempotency-Key", key);
}

/* Why salvo_request_new() refused: the method, or the URL (shown redacted). */
static void explain_new(const char *url, char *why, size_t why_len) {
  salvo_request_t *probe = NULL;
  if (salvo_request_new(run.engine, "GET", url, &probe) == 0) {
    salvo_request_free(probe);
    snprintf(why, why_len, "invalid method: not an HTTP token (not shown)");
    return;
  }
  char *shown = fetch_redact_url(url, 0);
  snprintf(why, why_len, "invalid URL \"%.300s%s\" (absolute http:// or https:// URLs only%s)",
           shown ? shown : "", shown && strlen(shown) > 300 ? "..." : "",
           strchr(url, '@') != NULL ? "; '/', '?', '#' and '@' in a user name or password must be "
                                      "percent-encoded"
                                    : "");
  free(shown);
}

/* The request's headers, body, key and callbacks; its sink, with the Range
 * of a part to continue. Returns 0, or -1 with |why|. */
static int set_up(salvo_request_t *req, item_t *it, const fetch_spec_t *in, char *why, size_t why_len) {
  const fetch_opts_t *o = run.o;
  if (apply_headers(req, o->headers, why, why_len) != 0)
    return -1;
  if (in->headers != NULL && apply_headers(req, in->headers, why, why_len) != 0)
    return -1;
  const char *body = in->body != NULL ? in->body : o->has_body ? o->body : NULL;
  size_t body_len = in->body != NULL ? in->body_len : o->body_len;
  snprintf(why, why_len, "out of memory");
  if (body != NULL && salvo_request_set_body(req, body, body_len) != 0)
    return -1;
  if (o->idempotency_auto && (strcmp(it->method, "POST") == 0 || strcmp(it->method, "PATCH") == 0) &&
      !has_header(o->headers, "Idempotency-Key") &&
      (in->headers == NULL || !has_header(in->headers, "Idempotency-Key")) &&
      add_idempotency_key(req, it->id, it->method, it->url, body, body_len) != 0)
    return -1;
  int may_continue = o->resume_path != NULL && it->restarted == NULL && strcmp(it->method, "GET") == 0 &&
                     run.engine_opts.hosts.hedge_delay_ms == 0 &&
                     !run.engine_opts.accept_encoding && !has_header(o->headers, "Range") &&
                     (in->headers == NULL || !has_header(in->headers, "Range"));
  if (fetch_sink_init(&it->sink, o->output_dir, it->name, may_continue, it->has_sha256) != 0) {
    snprintf(why, why_len, "%.400s", it->sink.why);
    return -1;
  }
  if (it->sink.range_sent) {
    char range[64];
    snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)it->sink.base);
    if (salvo_request_add_header(req, "Range", range) != 0 ||
        salvo_request_add_header(req, "If-Range", it->sink.validator) != 0) {
      it->sink.range_sent = 0; /* a validator that is no header value: start over */
      it->sink.base = 0;
    }
  }
  if (salvo_request_set_data(req, it) != 0)
    return -1;
  it->buffered = run.engine_opts.hosts.hedge_delay_ms > 0;
  if (!it->buffered && (salvo_request_set_head_cb(req, on_head) != 0 ||
                        salvo_request_set_data_cb(req, on_data) != 0 ||
                        salvo_request_set_data_restartable(req, 1) != 0))
    return -1;
  return 0;
}

/* Builds, checks and submits one request; reports bad input as a result line. */
static void build(const fetch_spec_t *in, size_t line, const char *name, const char *restarted) {
  char why[512] = "out of memory";
  const fetch_opts_t *o = run.o;
  const char *m = in->method != NULL ? in->method : o->method;
  if (m == NULL)
    m = in->body != NULL || o->has_body ? "POST" : "GET";
  salvo_request_t *req = NULL;
  if (salvo_request_new(run.engine, m, in->url, &req) != 0) {
    explain_new(in->url, why, sizeof(why));
    fetch_refuse_line(line, in->id, in->url, "invalid_input", why);
    return;
  }
  item_t *it = calloc(1, sizeof(*it));
  if (it != NULL) {
    it->sink.fd = -1;
    it->line = line;
    it->id = strdup(in->id);
    it->url = strdup(in->url);
    it->method = strdup(m);
    it->name = name != NULL ? strdup(name) : NULL;
    it->has_sha256 = in->has_sha256 || o->has_checksum;
    memcpy(it->sha256, in->has_sha256 ? in->sha256 : o->checksum, 32);
    it->headers = json_incref(in->headers);
    it->restarted = restarted != NULL ? strdup(restarted) : NULL;
  }
  int rc = -1;
  if (it != NULL && it->id != NULL && it->url != NULL && it->method != NULL &&
      (name == NULL || it->name != NULL) && (restarted == NULL || it->restarted != NULL))
    rc = set_up(req, it, in, why, sizeof(why));
  if (rc == 0 && (rc = salvo_request_submit(req, done, it)) != 0)
    snprintf(why, sizeof(why), "cannot submit: %s", salvo_strerror(rc));
  if (rc != 0) {
    salvo_request_free(req);
    if (it != NULL)
      fetch_sink_finish(&it->sink, 0, 1); /* a part from before stays */
    fetch_refuse_line(line, in->id, in->url, "invalid_input", why);
    if (it != NULL)
      item_free(it);
    return;
  }
  run.in_engine++;
}

/* -o: the file names an id takes (DIR/NAME and DIR/NAME.part) are its own
 * for the whole run; a later line whose name is taken is refused (error
 * "duplicate_id") rather than overwrite the other's body. */
static int claim_name(const char *name, size_t line, char *why, size_t why_len) {
  char part[FETCH_NAME_MAX + 8];
  snprintf(part, sizeof(part), "%s.part", name);
  json_t *first = json_object_get(run.names, name);
  if (first == NULL)
    first = json_object_get(run.names, part);
  if (first != NULL) {
    snprintf(why, why_len, "-o: its file name is the same as line %" JSON_INTEGER_FORMAT "'s",
             json_integer_value(first));
    return -1;
  }
  json_object_set_new(run.names, name, json_integer((json_int_t)line));
  json_object_set_new(run.names, part, json_integer((json_int_t)line));
  return 0;
}

/* --resume: whether the line was done in the run resumed (1), is to run (0),
 * or has an id that was done there as another request (-1: refused). */
static int done_before(const fetch_spec_t *in, size_t line) {
  if (run.o->resume_path == NULL)
    return 0;
  const char *m = in->method != NULL ? in->method : run.o->method;
  if (m == NULL)
    m = in->body != NULL || run.o->has_body ? "POST" : "GET";
  char *shown = fetch_redact_url(in->url, 1);
  int d = shown != NULL ? fetch_resume_done(in->id, m, shown) : 0;
  free(shown);
  if (d < 0) {
    char why[256];
    snprintf(why, sizeof(why), "--resume: id %.64s%s was done in the earlier run as another request (a "
             "different method or URL: lines %s reordered?): not sent", in->id, strlen(in->id) > 64 ? "..." : "",
             in->id_given ? "edited or" : "without an id are named by their number, so they were");
    fetch_refuse_line(line, in->id, in->url, "resume_conflict", why);
  }
  return d;
}

/* One input line (or command-line URL). */
static void take(const char *text, size_t line) {
  fetch_spec_t in;
  char why[512], name[FETCH_NAME_MAX];
  int d, r = fetch_parse_line(text, line, &in, why, sizeof(why));
  if (r < 0) {
    fetch_refuse_line(line, in.id_given ? in.id : NULL, in.url, "invalid_input", why);
  } else if (r > 0 && run.o->output_dir != NULL &&
             (fetch_output_name(run.o->output_template, in.id, in.url, line, name, why, sizeof(why)) != 0 ||
              claim_name(name, line, why, sizeof(why)) != 0)) {
    fetch_refuse_line(line, in.id, in.url, "duplicate_id", why); /* as in the run resumed */
  } else if (r > 0 && (d = done_before(&in, line)) != 0) {
    if (d > 0)
      fetch_resume_count_skip();
  } else if (r > 0) {
    build(&in, line, run.o->output_dir != NULL ? name : NULL, NULL);
  }
  fetch_spec_free(&in);
}

/* ------------------------------------------------------------ feeding */

/* Requests in the engine at most: a few times the concurrency, so that hosts
 * that wait (rate, pauses, their in-flight limit) do not idle the others and
 * the engine's fair share has other hosts' requests to choose from; with a
 * rate, no more than half a deadline's worth (the deadline runs from
 * submit). Queued requests hold no response body (bodies are streamed). */
static size_t room_for(void) {
  const salvo_engine_opts_t *e = &run.engine_opts;
  size_t room = e->max_in_flight * 4;
  if (e->hosts.rate > 0 && e->timeouts.deadline_ms > 0) {
    double ahead = e->hosts.rate * (double)e->timeouts.deadline_ms / 2000.0;
    if (ahead < (double)room)
      room = ahead < 1 ? 1 : (size_t)ahead;
  }
  if (run.o->body_len > 0 && room > MAX_QUEUED_BODIES / run.o->body_len)
    room = MAX_QUEUED_BODIES / run.o->body_len > 0 ? MAX_QUEUED_BODIES / run.o->body_len : 1;
  return room;
}

static void input_ended(void) {
  int err = fetch_reader_error(run.reader);
  if (err != 0) {
    run.input_error = 1;
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "-i: cannot read past line %zu of ", run.line);
    char msg[4096 + 128];
    snprintf(msg, sizeof(msg), "'%s': %s", run.input_name, uv_strerror(err));
    fetch_warn(prefix, msg);
  }
  fetch_reader_close(run.reader);
  run.reader = NULL;
  run.input_done = 1;
}

/* One line from the reader, or 0 if none is ready. */
static int next_line(size_t room) {
  char *text;
  size_t n;
  if (run.in_engine >= room)
    return 0;
  int r = fetch_reader_next(run.reader, &text, &n);
  if (r == FETCH_LINE_NONE)
    return 0;
  if (r == FETCH_LINE_END) {
    input_ended();
    return 0;
  }
  run.line++;
  if (run.o->shard_n > 1 && (run.line - 1) % run.o->shard_n != run.o->shard_k - 1)
    return 1;
  if (r == FETCH_LINE_TOO_LONG)
    fetch_refuse_line(run.line, NULL, NULL, "invalid_input", "the line is longer than " MAX_LINE_TEXT " bytes");
  else if (strlen(text) != n)
    fetch_refuse_line(run.line, NULL, NULL, "invalid_input", "the line contains a NUL byte");
  else
    take(text, run.line);
  return 1;
}

/* The one way the run ends, when the input is done and every request with
 * it, or on SIGINT: the engine closes (canceling what is left: each still
 * gets its result line), and so does everything else on the loop. */
static void shut_down(void) {
  if (run.closing)
    return;
  run.closing = 1;
  fetch_reader_close(run.reader); /* a producer that is still writing is not waited for */
  run.reader = NULL;
  run.input_done = 1;
  fetch_output_keep_stats(run.engine);
  salvo_engine_close(run.engine, NULL, NULL);
  fetch_progress_stop();
  uv_close((uv_handle_t *)&run.sigint, NULL);
  if (run.demo_server != NULL)
    faultd_close(run.demo_server);
}

/* Takes input only while there is room: memory stays flat however long the
 * input is, and reading pauses meanwhile. Called when a line may be ready
 * and whenever a request ends. */
static void feed(void) {
  size_t room = room_for();
  while (!run.closing && run.cli_next < run.o->cli_nurls && run.in_engine < room) {
    run.line++;
    take(run.o->cli_urls[run.cli_next++], run.line);
  }
  if (run.cli_next < run.o->cli_nurls)
    return; /* command-line URLs come first */
  if (run.reader == NULL)
    run.input_done = 1;
  while (!run.closing && run.reader != NULL && next_line(room))
    ;
  if (run.reader != NULL)
    fetch_reader_want(run.reader, !run.closing && run.in_engine < room);
  fetch_progress_update(run.in_engine, run.line, run.input_done);
  if (run.input_done && run.in_engine == 0)
    shut_down();
}

static void on_input(fetch_reader_t *reader, void *user_data) {
  (void)reader;
  (void)user_data;
  feed();
}

/* SIGINT: take no more input, cancel what is in flight; every result still prints. */
static void on_sigint(uv_signal_t *sig, int signum) {
  (void)sig;
  (void)signum;
  if (run.interrupted)
    return;
  run.interrupted = 1;
  fprintf(stderr, "\nsalvo-fetch: interrupted: canceling %zu requests\n", run.in_engine);
  shut_down();
}

/* ------------------------------------------------------------ limits */

/* Each request in flight holds a socket, and while its host name resolves,
 * libcurl's resolver holds a socket pair; with -o, its part file too. Keep
 * some for the loop, the input and libcurl. */
#define FDS_SPARE 32

/* Descriptors the process holds already (inherited ones included). */
static rlim_t fds_open(void) {
  rlim_t n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL)
    return 0;
  while (readdir(d) != NULL)
    n++;
  closedir(d);
  return n > 3 ? n - 3 : 0; /* ".", ".." and the directory's own descriptor */
}

/* The concurrency the open-file limit allows: the soft limit is raised
 * toward the hard one first; if that is not enough, say so and run fewer. */
static size_t fit_fd_limit(size_t want, salvo_engine_opts_t *e, int files) {
  rlim_t per = files ? 3 : 2;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return want;
  rlim_t spare = FDS_SPARE + fds_open();
  rlim_t need = (rlim_t)want * per + spare;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
    struct rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need ? rl.rlim_max : need;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
      rl = raised;
  }
  size_t fit = want;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
    fit = rl.rlim_cur > spare + per ? (size_t)((rl.rlim_cur - spare) / per) : 1;
    fprintf(stderr,
            "salvo-fetch: -c %zu needs about %llu open files, but the limit (ulimit -n) is %llu "
            "(hard limit %llu): running %zu requests at a time instead\n",
            want, (unsigned long long)need, (unsigned long long)rl.rlim_cur,
            rl.rlim_max == RLIM_INFINITY ? 0ULL : (unsigned long long)rl.rlim_max, fit);
  }
  /* Idle connections kept for reuse hold descriptors too: cap them with the rest. */
  size_t conns = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur <= spare ? 0 : (size_t)((rl.rlim_cur - spare) / per);
  if (conns > 0 && (e->max_connections == 0 || (size_t)e->max_connections > conns))
    e->max_connections = (long)conns;
  return fit;
}

/* --idempotency-key auto: the batch the keys derive from. Given, or the one
 * the --resume file's lines carry, or a new one. Returns 0, or -1 after a
 * message. */
static int choose_batch(const fetch_opts_t *o) {
  const char *earlier = o->resume_path != NULL ? fetch_resume_batch() : NULL;
  if (o->batch_id != NULL) {
    if (earlier != NULL && strcmp(earlier, o->batch_id) != 0)
      fprintf(stderr, "salvo-fetch: warning: --batch-id differs from the batch in '%s': POSTs "
              "interrupted there get new keys\n", o->resume_path);
    snprintf(run.batch, sizeof(run.batch), "%s", o->batch_id);
    return 0;
  }
  if (earlier != NULL) {
    snprintf(run.batch, sizeof(run.batch), "%.256s", earlier);
    return 0;
  }
  if (o->resume_path != NULL) {
    fprintf(stderr, "salvo-fetch: --resume: '%s' names no batch, so the keys of POSTs that were in "
            "flight cannot be known: give --batch-id (the first run printed it on stderr)\n",
            o->resume_path);
    return -1;
  }
  unsigned char b[16];
  if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
    fprintf(stderr, "salvo-fetch: cannot make a batch id: %s\n", strerror(errno));
    return -1;
  }
  hex(b, sizeof(b), run.batch);
  fprintf(stderr, "salvo-fetch: --idempotency-key auto: batch %s (each result line carries it; "
          "--resume reads it back)\n", run.batch);
  return 0;
}

/* ------------------------------------------------------------ the run */

static int start(const fetch_opts_t *o, char *demo_path, size_t demo_path_len) {
  salvo_engine_opts_t *e = &run.engine_opts;
  const char *input_path = o->input_path;
  if (o->demo) {
    if (fetch_demo_start(run.loop, demo_path, demo_path_len, &run.demo_server) != 0)
      return 1;
    input_path = demo_path;
    e->ca_file = faultd_cert_file(run.demo_server);
    e->timeouts.idle_ms = 1000;
    fetch_output_quiet(isatty(1));
    if (isatty(1))
      fprintf(stderr, "(result lines are not shown on a terminal: add '> results.jsonl' to keep them)\n");
  }
  if (input_path != NULL) {
    run.input_name = strcmp(input_path, "-") == 0 ? "stdin" : input_path;
    int err = fetch_reader_open(run.loop, input_path, MAX_LINE, on_input, NULL, &run.reader);
    if (err != 0) {
      char msg[4096 + 128];
      snprintf(msg, sizeof(msg), "'%s': %s", run.input_name,
               err == UV_EINVAL ? "not a file, pipe, socket or terminal" : uv_strerror(err));
      fetch_warn("-i: cannot read ", msg);
      return 2;
    }
  }
  if (demo_path[0])
    unlink(demo_path); /* open already: the file goes away when we are done */
  if (o->resume_path != NULL && fetch_resume_load(o->resume_path, o->resume_http_error_done) != 0)
    return 2;
  if (o->idempotency_auto && choose_batch(o) != 0)
    return 2;
  if (fetch_output_init(o->idempotency_auto ? run.batch : NULL) != 0) {
    fprintf(stderr, "salvo-fetch: out of memory\n");
    return 2;
  }
  e->retry.decide_cb = on_decide; /* checksums */
  e->max_in_flight = fit_fd_limit(o->max_in_flight, e, o->output_dir != NULL);
  /* Larger reads for bodies (a fifth less CPU for bulk downloads), while
   * all transfers' buffers together stay within RECV_BUFFERS. */
  size_t buffer = RECV_BUFFERS / e->max_in_flight;
  e->recv_buffer_size = buffer > RECV_BUFFER_MAX ? RECV_BUFFER_MAX : buffer < 16384 ? 16384 : buffer;
  int rc = salvo_engine_new(run.loop, e, &run.engine);
  if (rc != 0) {
    fprintf(stderr, "salvo-fetch: %s%s\n", salvo_strerror(rc),
            rc == SALVO_EINVAL && (e->proxy != NULL || e->proxy_from_env)
                ? " (check --proxy (or http_proxy, https_proxy, all_proxy), --resolve and --connect-to: "
                  "the message above names the one)"
                : "");
    return 2;
  }
  if (e->insecure_skip_verify)
    fprintf(stderr, "salvo-fetch: WARNING: --insecure: TLS certificates are not verified\n");
  return 0;
}

int fetch_operate(const fetch_opts_t *o) {
  memset(&run, 0, sizeof(run));
  run.o = o;
  run.engine_opts = o->engine;
  run.loop = uv_default_loop();
  run.names = json_object();
  if (run.names == NULL) {
    fprintf(stderr, "salvo-fetch: out of memory\n");
    return 2;
  }
  srandom((unsigned)uv_hrtime());
  signal(SIGPIPE, SIG_IGN);
  char demo_path[64] = "";
  int rc = start(o, demo_path, sizeof(demo_path));
  if (rc != 0) {
    fetch_reader_close(run.reader);
    if (run.demo_server != NULL)
      faultd_close(run.demo_server);
    uv_run(run.loop, UV_RUN_DEFAULT);
    json_decref(run.names);
    fetch_resume_free();
    return rc;
  }
  fetch_progress_start(run.loop, o->progress);
  uv_signal_init(run.loop, &run.sigint);
  uv_signal_start(&run.sigint, on_sigint, SIGINT);
  run.start_ns = uv_hrtime();
  feed();
  uv_run(run.loop, UV_RUN_DEFAULT);
  fetch_summary(o, (double)(uv_hrtime() - run.start_ns) / 1e9);
  const fetch_counts_t *n = fetch_counts();
  json_decref(run.names);
  fetch_output_free();
  fetch_resume_free();
  uv_loop_close(run.loop);
  if (run.interrupted)
    return 130;
  if (run.input_error)
    return 2;
  if (o->demo) /* its failures are on purpose: 0 means every request ended exactly once */
    return n->total == run.line ? 0 : 1;
  return n->ok == n->total ? 0 : 1;
}
