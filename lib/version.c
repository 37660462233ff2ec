#include "internal.h"

const char *salvo_version(void) { return SALVO_VERSION_STRING; }
