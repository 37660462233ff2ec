/* Requests handed to an engine from other threads: a locked queue that the
 * loop drains when one uv_async_t wakes it. Owns salvo__injector_t. The one
 * file of lib/ whose code runs on threads other than the loop's (in
 * salvo_request_submit_threadsafe()); everything it shares with them is
 * under the injector's lock, and the requests it queues belong to nobody
 * else until the loop takes them. */
#include "internal.h"

static void wake_cb(uv_async_t *wake);

int salvo__inject_init(salvo_engine_t *engine) {
  salvo__injector_t *inj = &engine->inject;
  salvo__list_init(&inj->queue);
  if (uv_mutex_init(&inj->lock) != 0)
    return SALVO_EINTERNAL;
  /* Fails only when the loop's own wake-up descriptor cannot be made, and
   * then leaves nothing on the loop. */
  if (uv_async_init(engine->loop, &inj->wake, wake_cb) != 0) {
    uv_mutex_destroy(&inj->lock);
    return SALVO_EINTERNAL;
  }
  /* An engine keeps no loop alive by itself (uv_run() returns once its
   * requests are done): neither does its wake handle. */
  uv_unref((uv_handle_t *)&inj->wake);
  inj->wake.data = engine;
  inj->made = 1;
  return 0;
}

int salvo_request_submit_threadsafe(salvo_request_t *req, salvo_done_cb done_cb, void *user_data) {
  int rc = salvo__request_check_hand_over(req, done_cb);
  if (rc != 0)
    return rc;
  salvo__injector_t *inj = &req->engine->inject; /* set by salvo_request_new(), never changed */
  uv_mutex_lock(&inj->lock);
  if (inj->closing) {
    rc = SALVO_ECLOSING;
  } else {
    salvo__request_hand_over(req, done_cb, user_data);
    salvo__list_push_back(&inj->queue, &req->node);
    /* Under the lock: once it is released, a close on the loop may take the
     * request, close the handle and free the engine. */
    uv_async_send(&inj->wake);
  }
  uv_mutex_unlock(&inj->lock);
  return rc;
}

/* Moves everything queued into |batch| in one locked swap. */
static void take_all(salvo__injector_t *inj, salvo__list_t *batch) {
  salvo__list_init(batch);
  uv_mutex_lock(&inj->lock);
  if (!salvo__list_empty(&inj->queue)) {
    batch->next = inj->queue.next;
    batch->prev = inj->queue.prev;
    batch->next->prev = batch;
    batch->prev->next = batch;
    salvo__list_init(&inj->queue);
  }
  uv_mutex_unlock(&inj->lock);
}

/* Each request of |batch| enters the engine, oldest first. Its done callback
 * may run here (a refusal) and call anything, close included. */
static void take_batch(salvo__list_t *batch) {
  while (!salvo__list_empty(batch)) {
    salvo_request_t *req = SALVO__CONTAINER_OF(batch->next, salvo_request_t, node);
    salvo__list_remove(&req->node);
    salvo__request_take_handed(req);
  }
}

static void wake_cb(uv_async_t *wake) {
  salvo_engine_t *engine = wake->data;
  salvo__engine_saw_loop(engine);
  salvo__list_t batch;
  take_all(&engine->inject, &batch);
  take_batch(&batch);
}

void salvo__inject_close(salvo_engine_t *engine) {
  salvo__injector_t *inj = &engine->inject;
  uv_mutex_lock(&inj->lock);
  inj->closing = 1;
  uv_mutex_unlock(&inj->lock);
}

static void wake_closed_cb(uv_handle_t *handle) { salvo__engine_handle_closed(handle->data); }

void salvo__inject_teardown(salvo_engine_t *engine) {
  /* closing is set: the queue only shrinks from here */
  salvo__list_t batch;
  take_all(&engine->inject, &batch);
  take_batch(&batch); /* canceled: the engine is closing */
  uv_close((uv_handle_t *)&engine->inject.wake, wake_closed_cb);
}

void salvo__inject_free(salvo_engine_t *engine) {
  if (engine->inject.made)
    uv_mutex_destroy(&engine->inject.lock);
}
