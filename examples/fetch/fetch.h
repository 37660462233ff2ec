/* salvo-fetch: fetch many URLs, reliably; one JSON line per request out.
 *
 * The program is split the way curl's tool is:
 *   options.c   the command line: fetch_opts_t, usage, checks
 *   operate.c   the run: input lines to requests, feeding the engine, the
 *               request callbacks, shutting down
 *   sink.c      where a body goes: counted, hashed, and with -o streamed to
 *               DIR/NAME.part, renamed to DIR/NAME when it ends ok
 *   resume.c    --resume: an earlier run's result lines
 *   output.c    result lines, the counts, the summary on stderr
 *   progress.c  the progress line
 *   demo.c      --demo's input and built-in server
 *   input.c     pure text work shared with the fuzzer: input lines, names,
 *               what may be shown
 *   reader.c    reading the input through the loop
 * Each struct has one owner: the file that defines its functions. */
#ifndef SALVO_FETCH_H
#define SALVO_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <salvo/salvo.h>

/* ------------------------------------------------------------ options.c */

/* What the command line asked for. Filled by fetch_options(), read-only after. */
typedef struct {
  salvo_engine_opts_t engine;  /* the engine's options, as the flags set them */
  const char *input_path;      /* -i, NULL = none */
  char **cli_urls;             /* URLs on the command line */
  int cli_nurls;
  const char *method;          /* -X, NULL = GET, or POST with a body */
  json_t *headers;             /* -H, name -> value */
  char *body;                  /* -d / --data-file */
  size_t body_len;
  int has_body;
  size_t max_in_flight;        /* -c, before the open-file limit cuts it */
  int max_body_given;          /* --max-body-size was given */
  const char *output_dir;      /* -o */
  const char *output_template; /* --output-template, "{id}" by default */
  int keep_part;               /* --keep-part */
  const char *resume_path;     /* --resume */
  int resume_http_error_done;  /* --resume-done ok,http_error */
  const char *batch_id;        /* --batch-id */
  int idempotency_auto;        /* --idempotency-key auto: salvo-fetch derives the keys */
  unsigned char checksum[32];  /* --checksum sha256=HEX */
  int has_checksum;
  const char **resolve;        /* --resolve, NULL-terminated */
  const char **connect_to;     /* --connect-to, NULL-terminated */
  uint64_t limit_rate;         /* --limit-rate, bytes per second per transfer, 0 = none */
  size_t shard_k, shard_n;     /* --shard K/N */
  int progress;
  int demo;
} fetch_opts_t;

/* Parses argv into *o (exits 2 with a message on a usage error, 0 after --help). */
void fetch_options(int argc, char **argv, fetch_opts_t *o);
void fetch_options_free(fetch_opts_t *o);
/* Prints "salvo-fetch: MESSAGE\n(see salvo-fetch --help)" and exits 2; fmt has one %s. */
_Noreturn void fetch_die_usage(const char *fmt, const char *arg);

/* ------------------------------------------------------------ sink.c */

#define FETCH_WRITE_SIZE ((size_t)64 << 10)

/* Where one request's body goes. Owned by sink.c; lives in the item. */
typedef struct {
  int fd;                  /* the part file, -1 when none is open */
  int fresh;               /* it was created empty by this request: nothing to truncate or unset */
  int has_xattr;           /* the part carries a validator attribute */
  char *wbuf;              /* writes gathered to FETCH_WRITE_SIZE (libcurl hands out 16 KiB at
                              a time), so the file is written in whole, aligned blocks */
  size_t wlen;
  char *path;              /* -o: DIR/NAME, and DIR/NAME.part; NULL without -o */
  char *part;
  uint64_t base;           /* bytes of an earlier run's part kept (a range continued) */
  char validator[256];     /* the ETag or Last-Modified the part was fetched under, "" if none */
  int range_sent;          /* the request asks for bytes=base- */
  int writing;             /* the response being received is the body to keep */
  int part_whole;          /* a 416 said the part already holds the whole file */
  int restart;             /* the part from before cannot be continued (a 206 elsewhere, a 416
                              for a part longer than the file): fetch it whole (why[]) */
  long status;             /* the response being received */
  uint64_t written;        /* bytes of it kept */
  void *sha;               /* EVP_MD_CTX, over the whole file (base included); NULL = not hashed */
  int failed;              /* a write or read of the part failed: why[] */
  char why[4400];
} fetch_sink_t;

/* Sets up |s| for one request: with a path (-o) its part may be continued
 * (|may_continue|: a GET with --resume, and no --compressed); |hash|: keep
 * its SHA-256 (a checksum to check). Returns 0, or -1 with s->why. */
int fetch_sink_init(fetch_sink_t *s, const char *dir, const char *name, int may_continue, int hash);
/* A new response begins (the head callback): 0 to go on, non-zero to stop. */
int fetch_sink_head(fetch_sink_t *s, salvo_request_t *req, const salvo_response_head_t *head);
/* Body bytes: 0 to go on, non-zero to stop (a write failed). */
int fetch_sink_data(fetch_sink_t *s, const char *data, size_t len);
/* The SHA-256 of what the sink holds so far, into out[32]. */
void fetch_sink_digest(const fetch_sink_t *s, unsigned char out[32]);
/* The request ended: keep (1: rename the part to its name) or not. Returns 0,
 * or -1 with s->why when keeping failed. Frees what the sink holds. */
int fetch_sink_finish(fetch_sink_t *s, int keep, int keep_part);

/* ------------------------------------------------------------ resume.c */

/* Reads an earlier run's result lines. Returns 0, or -1 after a message. */
int fetch_resume_load(const char *path, int http_error_done);
/* Whether |id| is done in it: 1 (with this method and this URL, as result
 * lines show it), -1 (done, but as another request: the input changed), 0. */
int fetch_resume_done(const char *id, const char *method, const char *shown_url);
/* The batch id its lines carry, or NULL. */
const char *fetch_resume_batch(void);
/* Ids skipped so far, for the summary. */
size_t fetch_resume_skipped(void);
void fetch_resume_count_skip(void);
void fetch_resume_free(void);

/* ------------------------------------------------------------ output.c */

/* Counts of result lines, owned by output.c. */
typedef struct {
  size_t total, ok, http_error, failed, canceled, retried_requests, retries;
} fetch_counts_t;

const fetch_counts_t *fetch_counts(void);
/* Returns 0, or -1 when out of memory. */
int fetch_output_init(const char *batch);
void fetch_output_free(void);
/* salvo's log messages, on stderr. */
void fetch_log(salvo_engine_t *engine, salvo_log_level_t level, const char *message, void *ud);
/* One line on stderr: prefix, then |text| (it may come from the input: URLs
 * redacted, escaped). */
void fetch_warn(const char *prefix, const char *text);
/* A line that is not sent: error "invalid_input", "duplicate_id", ... */
void fetch_refuse_line(size_t line, const char *id, const char *url, const char *error,
                       const char *why);
/* The result line of a request that ran. |error|/|detail|: salvo-fetch's own
 * error class for the line (checksum_mismatch, save_failed), else NULL. */
typedef struct {
  const char *id, *url, *method;
  size_t line;
  const char *outcome;
  const char *error, *detail;  /* salvo-fetch's own, overriding the result's */
  const char *file;            /* -o: the name saved */
  uint64_t resumed_from;       /* bytes of an earlier part continued */
  const char *sha256;          /* hex, when one was checked */
  size_t max_body;
} fetch_line_t;
void fetch_result_line(salvo_request_t *req, const salvo_result_t *r, const fetch_line_t *l);
/* Engine and host stats kept when the engine closes, for the summary. */
void fetch_output_keep_stats(salvo_engine_t *engine);
void fetch_summary(const fetch_opts_t *o, double seconds);
/* Whether result lines are shown (not with --demo on a terminal). */
void fetch_output_quiet(int quiet);

/* ------------------------------------------------------------ progress.c */

void fetch_progress_start(uv_loop_t *loop, int on);
/* |pending|: requests not yet done; |input_done|: no more lines come. */
void fetch_progress_update(size_t pending, size_t lines, int input_done);
void fetch_progress_stop(void);

/* ------------------------------------------------------------ demo.c */

typedef struct faultd_s faultd_t;
/* Starts the built-in server and writes the demo's input to a temporary
 * file, whose path goes to |path|. Returns 0, or -1 after a message. */
int fetch_demo_start(uv_loop_t *loop, char *path, size_t path_len, faultd_t **server);

/* ------------------------------------------------------------ operate.c */

/* Runs the whole batch; returns the exit code. */
int fetch_operate(const fetch_opts_t *o);

#endif
