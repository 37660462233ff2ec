/* Fetch every URL given on the command line, all at once, and print what happened. */
#include <stdio.h>
#include <salvo/salvo.h>

static int pending;

static void done(salvo_request_t *req, const salvo_result_t *r, void *user_data) {
  (void)user_data;
  printf("%s -> status %ld, %s, %u attempt(s), %zu bytes, %.1f ms\n", salvo_request_url(req),
         r->status, salvo_err_name(r->error), r->attempts, r->body_len, r->elapsed_us / 1000.0);
  if (--pending == 0) /* last one: let the loop end */
    salvo_engine_close(salvo_request_engine(req), NULL, NULL);
}

int main(int argc, char **argv) {
  salvo_engine_t *engine;
  if (salvo_engine_new(uv_default_loop(), NULL, &engine) != 0)
    return 1;
  for (int i = 1; i < argc; i++) {
    salvo_request_t *req;
    int rc = salvo_request_new(engine, "GET", argv[i], &req);
    if (rc == 0 && (rc = salvo_request_submit(req, done, NULL)) != 0)
      salvo_request_free(req);
    if (rc == 0)
      pending++;
    else
      fprintf(stderr, "%s: %s\n", argv[i], salvo_strerror(rc));
  }
  if (pending == 0)
    salvo_engine_close(engine, NULL, NULL);
  return uv_run(uv_default_loop(), UV_RUN_DEFAULT) == 0 ? 0 : 1;
}
