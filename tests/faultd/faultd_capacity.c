/* salvo-faultd's capacity pools (/capacity/N/MS): at most N requests of a
 * pool in service at once, each for MS; the rest wait in a FIFO queue of at
 * most Q, and past that are turned away with a 503 at once. What an adaptive
 * concurrency limiter is judged against: latency grows with the queue, and
 * the queue has an end.
 *
 * Protocol-independent: each request holds a faultd_slot_t in its transport
 * (an HTTP/1.1 connection, an HTTP/2 stream), which times the service with
 * its own loop timer. No thread ever sleeps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faultd_int.h"

typedef struct faultd_ghost_s ghost_t;

struct faultd_pool_s {
  char name[128];
  faultd_capacity_t stats;    /* numbers asked, state now, counts */
  int keep;                   /* ?keep=1, as its latest request asked */
  faultd_slot_t *head, *tail; /* waiting, oldest first */
  faultd_pool_t *next;
};

/* keep=1: the place of a request whose client went away, waiting or in
 * service, until its service would have ended. Owned by the server's list. */
struct faultd_ghost_s {
  faultd_slot_t slot;
  uv_timer_t timer;
  faultd_t *fd;
  ghost_t *next, *prev;       /* the server's ghosts */
};


static faultd_pool_t *pool_find(const faultd_t *fd, const char *name) {
  for (faultd_pool_t *pool = fd->pools; pool != NULL; pool = pool->next)
    if (strcmp(pool->name, name) == 0)
      return pool;
  return NULL;
}

/* The pool |plan| names, made on first use, with the plan's numbers. */
static faultd_pool_t *pool_get(faultd_t *fd, const fault_plan_t *plan) {
  faultd_pool_t *pool = pool_find(fd, plan->capacity.pool);
  if (pool == NULL) {
    pool = calloc(1, sizeof(*pool));
    snprintf(pool->name, sizeof(pool->name), "%s", plan->capacity.pool);
    faultd_pool_t **end = &fd->pools;
    while (*end != NULL)
      end = &(*end)->next;
    *end = pool;
  }
  pool->stats.limit = plan->capacity.limit;
  pool->stats.service_ms = plan->ms;
  pool->stats.queue_max = plan->capacity.queue_max;
  pool->keep = plan->capacity.keep;
  return pool;
}

static void queue_push(faultd_pool_t *pool, faultd_slot_t *slot) {
  slot->next = NULL;
  slot->prev = pool->tail;
  if (pool->tail != NULL)
    pool->tail->next = slot;
  else
    pool->head = slot;
  pool->tail = slot;
  if (++pool->stats.queued > pool->stats.max_queued)
    pool->stats.max_queued = pool->stats.queued;
}

static void queue_remove(faultd_pool_t *pool, faultd_slot_t *slot) {
  if (slot->prev != NULL)
    slot->prev->next = slot->next;
  else
    pool->head = slot->next;
  if (slot->next != NULL)
    slot->next->prev = slot->prev;
  else
    pool->tail = slot->prev;
  slot->next = slot->prev = NULL;
  pool->stats.queued--;
}

static void service_start(faultd_t *fd, faultd_pool_t *pool, faultd_slot_t *slot) {
  uint64_t now = uv_now(fd->loop);
  slot->in_service = 1;
  slot->queue_ms = (unsigned)(now - slot->arrived_ms);
  slot->service_ms = pool->stats.service_ms;
  if (++pool->stats.in_service > pool->stats.max_in_service)
    pool->stats.max_in_service = pool->stats.in_service;
  slot->start_cb(slot);
}

/* Starts waiting requests while the pool has room. A server that is closing
 * starts nothing: its connections are going. */
static void pump(faultd_t *fd, faultd_pool_t *pool) {
  while (!fd->closing && pool->head != NULL && pool->stats.in_service < pool->stats.limit) {
    faultd_slot_t *slot = pool->head;
    queue_remove(pool, slot);
    service_start(fd, pool, slot);
  }
}

static void reject(fault_plan_t *plan) {
  plan->kind = F_RESPOND;
  plan->status = 503;
  snprintf(plan->retry_after, sizeof(plan->retry_after), "%s", plan->capacity.retry_after);
  faultd__plan_body(plan, "queue full\n", 11);
}

int faultd__capacity_enter(faultd_t *fd, fault_plan_t *plan, faultd_slot_t *slot) {
  faultd_pool_t *pool = pool_get(fd, plan);
  pump(fd, pool); /* its numbers may have grown */
  slot->pool = NULL;
  slot->next = slot->prev = NULL;
  slot->in_service = 0;
  slot->queue_ms = slot->service_ms = 0;
  slot->arrived_ms = uv_now(fd->loop);
  if (pool->head == NULL && pool->stats.in_service < pool->stats.limit) {
    slot->pool = pool;
    service_start(fd, pool, slot);
    return 0;
  }
  if (pool->stats.queued < pool->stats.queue_max) {
    slot->pool = pool;
    queue_push(pool, slot);
    return 0;
  }
  pool->stats.rejected++;
  reject(plan);
  return -1;
}

static void ghost_closed(uv_handle_t *h) {
  ghost_t *g = h->data;
  faultd__handle_closed(g->fd);
  free(g);
}

static void ghost_end(ghost_t *g) {
  if (g->prev != NULL)
    g->prev->next = g->next;
  else
    g->fd->ghosts = g->next;
  if (g->next != NULL)
    g->next->prev = g->prev;
  uv_close((uv_handle_t *)&g->timer, ghost_closed);
}

/* Its service is over: the place is free, and the answer goes nowhere. */
static void ghost_done(uv_timer_t *t) {
  ghost_t *g = t->data;
  faultd_pool_t *pool = g->slot.pool;
  g->slot.pool = NULL;
  g->slot.in_service = 0;
  pool->stats.in_service--;
  pool->stats.wasted++;
  ghost_end(g);
  pump(g->fd, pool);
}

static void ghost_start(faultd_slot_t *slot) {
  ghost_t *g = slot->data;
  uv_timer_start(&g->timer, ghost_done, slot->service_ms, 0);
}

/* keep=1: a ghost takes the leaving request's place, in the queue or in service. */
static int ghost_replace(faultd_t *fd, faultd_pool_t *pool, faultd_slot_t *slot) {
  ghost_t *g = calloc(1, sizeof(*g));
  if (g == NULL)
    return -1;
  g->fd = fd;
  g->slot = *slot;
  g->slot.start_cb = ghost_start;
  g->slot.data = g;
  uv_timer_init(fd->loop, &g->timer);
  g->timer.data = g;
  fd->open_handles++;
  g->next = fd->ghosts;
  if (fd->ghosts != NULL)
    fd->ghosts->prev = g;
  fd->ghosts = g;
  if (slot->in_service) {
    uint64_t began = slot->arrived_ms + slot->queue_ms, now = uv_now(fd->loop);
    uint64_t left = began + slot->service_ms > now ? began + slot->service_ms - now : 0;
    uv_timer_start(&g->timer, ghost_done, left, 0);
  } else { /* the ghost stands where the request stood */
    if (slot->prev != NULL)
      slot->prev->next = &g->slot;
    else
      pool->head = &g->slot;
    if (slot->next != NULL)
      slot->next->prev = &g->slot;
    else
      pool->tail = &g->slot;
  }
  slot->pool = NULL;
  slot->next = slot->prev = NULL;
  slot->in_service = 0;
  pool->stats.canceled++;
  return 0;
}

void faultd__capacity_close(faultd_t *fd) {
  while (fd->ghosts != NULL) {
    ghost_t *g = fd->ghosts;
    faultd_pool_t *pool = g->slot.pool;
    if (g->slot.in_service)
      pool->stats.in_service--;
    else
      queue_remove(pool, &g->slot);
    g->slot.pool = NULL;
    uv_timer_stop(&g->timer);
    ghost_end(g);
  }
}

void faultd__capacity_leave(faultd_t *fd, faultd_slot_t *slot, int served) {
  faultd_pool_t *pool = slot->pool;
  if (pool == NULL)
    return;
  if (!served && pool->keep && !fd->closing && ghost_replace(fd, pool, slot) == 0)
    return;
  slot->pool = NULL;
  if (slot->in_service) {
    slot->in_service = 0;
    pool->stats.in_service--;
  } else {
    queue_remove(pool, slot);
  }
  if (served)
    pool->stats.served++;
  else
    pool->stats.canceled++;
  pump(fd, pool);
}

void faultd__capacity_answer(const faultd_slot_t *slot, fault_plan_t *plan) {
  plan->kind = F_RESPOND;
  plan->status = 200;
  plan->retry_after[0] = '\0';
  snprintf(plan->queue_ms, sizeof(plan->queue_ms), "%u", slot->queue_ms);
  faultd__plan_body(plan, "ok\n", 3);
}

int faultd_capacity(const faultd_t *fd, const char *name, faultd_capacity_t *out) {
  const faultd_pool_t *pool = pool_find(fd, name);
  if (pool == NULL)
    return -1;
  *out = pool->stats;
  return 0;
}

json_t *faultd__capacity_json(const faultd_t *fd) {
  json_t *all = json_object();
  for (const faultd_pool_t *pool = fd->pools; pool != NULL; pool = pool->next) {
    const faultd_capacity_t *s = &pool->stats;
    json_object_set_new(
        all, pool->name,
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "n",
                  (json_int_t)s->limit, "ms", (json_int_t)s->service_ms, "q",
                  (json_int_t)s->queue_max, "in_service", (json_int_t)s->in_service, "queued",
                  (json_int_t)s->queued, "served", (json_int_t)s->served, "rejected",
                  (json_int_t)s->rejected, "canceled", (json_int_t)s->canceled,
                  "max_in_service", (json_int_t)s->max_in_service, "max_queued",
                  (json_int_t)s->max_queued, "wasted", (json_int_t)s->wasted));
  }
  return all;
}

void faultd__capacity_reset(faultd_t *fd) {
  for (faultd_pool_t **at = &fd->pools; *at != NULL;) {
    faultd_pool_t *pool = *at;
    faultd_capacity_t *s = &pool->stats;
    if (s->in_service == 0 && s->queued == 0) {
      *at = pool->next;
      free(pool);
      continue;
    }
    s->served = s->rejected = s->canceled = s->wasted = 0;
    s->max_in_service = s->in_service;
    s->max_queued = s->queued;
    at = &pool->next;
  }
}

void faultd__capacity_free(faultd_t *fd) {
  while (fd->pools != NULL) {
    faultd_pool_t *pool = fd->pools;
    fd->pools = pool->next;
    free(pool);
  }
}
