/* Hedging: when an idempotent request's attempt has no response after the
 * host's hedge delay, a second attempt goes out; the first response wins and
 * the other attempt is canceled. Owns salvo__hedge_t; the host decides
 * whether it has room and budget for one (host.c), the request records what
 * each attempt did (request.c). */
#include "internal.h"

static const char canceled_why[] = "canceled: the other attempt answered first";

void salvo__hedge_plan(salvo_request_t *req, const salvo__slot_t *slot) {
  const salvo_host_policy_t *hp = &req->host->policy;
  req->hedge.at_ms = 0;
  if ((hp->hedge_delay_ms != 0 || hp->hedge_p95) && !req->hedge.sent && req->idempotent &&
      req->data_cb == NULL && !req->has_reader) { /* idempotent, buffered requests whose body is
                                                     in memory, one hedge per request */
    uint64_t delay = salvo__host_hedge_delay(req->host);
    if (delay != 0)
      req->hedge.at_ms = salvo__add_ms(slot->started_ms, delay);
  }
}

/* The attempt has no response after the hedge delay: send a second one. */
static void send_hedge(salvo_request_t *req) {
  salvo_engine_t *engine = req->engine;
  uint64_t now = uv_now(engine->loop);
  /* never past max_in_flight, nor past what the host's connections carry;
   * hedges spend the retry budget */
  if (req->hedge.sent || engine->closing || engine->stats.in_flight >= engine->max_in_flight ||
      !salvo__host_may_hedge(req->host, now))
    return;
  salvo__slot_t *slot = salvo__slot_get(engine);
  if (slot == NULL)
    return;
  if (salvo__attempt_setup(slot, req, req->attempts + 1) != 0 ||
      salvo__engine_add_attempt(engine, slot) != 0) {
    salvo__slot_put(slot);
    return;
  }
  req->hedge.sent = 1;
  req->hedge.slot = slot;
  req->hedge.winner = NULL;
  salvo__request_count_attempt(req);
  salvo__host_count_hedge(req->host, now);
  salvo__attempt_arm_timer(slot);
}

void salvo__hedge_check(salvo__slot_t *slot, uint64_t now) {
  salvo_request_t *req = slot->req;
  if (req->hedge.at_ms != 0 && now >= req->hedge.at_ms && slot == req->slot) {
    req->hedge.at_ms = 0;
    if (req->hedge.slot == NULL && !slot->responded)
      send_hedge(req);
  }
}

int salvo__hedge_on_response(salvo__slot_t *slot) {
  salvo_request_t *req = slot->req;
  if (req->hedge.slot == NULL)
    return 0; /* one attempt */
  if (req->hedge.winner != NULL && req->hedge.winner != slot)
    return SALVO_ECANCELED;
  req->hedge.winner = slot;
  /* The other attempt ends from the loop: not inside libcurl's callback. */
  salvo__attempt_stop_later(slot == req->slot ? req->hedge.slot : req->slot, SALVO_ECANCELED);
  return 0;
}

void salvo__slot_finish(salvo__slot_t *slot, CURLcode rc) {
  salvo_request_t *req = slot->req;
  if (req->hedge.slot == NULL) {
    salvo__request_finish_attempt(req, slot, rc);
    return;
  }
  salvo__slot_t *other = slot == req->slot ? req->hedge.slot : req->slot;
  int decides = req->hedge.winner == slot ||
                (req->hedge.winner == NULL && rc == CURLE_OK && slot->stop_reason == 0);
  req->hedge.slot = NULL;
  req->hedge.winner = NULL;
  salvo__slot_t *dropped = decides ? other : slot;
  if (salvo__list_linked(&dropped->cancel_node))
    salvo__list_remove(&dropped->cancel_node);
  if (decides) {
    salvo__attempt_stop(other, SALVO_ECANCELED);
    salvo__request_drop_attempt(req, other, CURLE_OK, slot, canceled_why);
    salvo__request_finish_attempt(req, slot, rc);
  } else {
    salvo__request_drop_attempt(req, slot, rc, other,
                                slot->stop_reason == SALVO_ECANCELED
                                    ? canceled_why
                                    : "failed while the other attempt goes on");
  }
}

void salvo__hedge_stop(salvo_request_t *req, int reason) {
  if (req->hedge.slot != NULL) {
    salvo__attempt_stop(req->hedge.slot, reason);
    salvo__slot_finish(req->hedge.slot, CURLE_OK);
  }
}
