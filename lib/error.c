/* Error names and messages, made from SALVO_ERRNO_MAP (salvo.h). */
#include "internal.h"

/* The map's order numbers: SALVO__ERRIDX_EINVAL = 0, ... */
enum {
#define XX(code, value, name, msg) SALVO__ERRIDX_##code,
  SALVO_ERRNO_MAP(XX)
#undef XX
  SALVO__ERR_COUNT
};

/* Values run from -1 down without a gap, in the map's order... */
#define XX(code, value, name, msg) \
  _Static_assert((value) == -(SALVO__ERRIDX_##code + 1), "SALVO_ERRNO_MAP: " #code " out of order");
SALVO_ERRNO_MAP(XX)
#undef XX
/* ...and fit salvo_host_stats_t.by_error (index -error) and SALVO_ERRBIT's 64 bits. */
_Static_assert(SALVO__ERR_COUNT < sizeof(((salvo_host_stats_t *)0)->by_error) /
                                      sizeof(((salvo_host_stats_t *)0)->by_error[0]),
               "SALVO_ERRNO_MAP: more classes than salvo_host_stats_t.by_error holds");

static const char *const names[SALVO__ERR_COUNT + 1] = {
    "ok",
#define XX(code, value, name, msg) name,
    SALVO_ERRNO_MAP(XX)
#undef XX
};

static const char *const messages[SALVO__ERR_COUNT + 1] = {
    "success",
#define XX(code, value, name, msg) msg,
    SALVO_ERRNO_MAP(XX)
#undef XX
};

const char *salvo_err_name(int err) {
  return err <= 0 && err >= -SALVO__ERR_COUNT ? names[-err] : "unknown";
}

const char *salvo_strerror(int err) {
  return err <= 0 && err >= -SALVO__ERR_COUNT ? messages[-err] : "unknown error";
}

int salvo__err_index(int err) {
  return err < 0 && err >= -SALVO__ERR_COUNT ? -err : 0;
}
