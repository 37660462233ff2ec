/* salvo-fetch: fetch many URLs, reliably; one JSON line per request out.
 * See fetch.h for how the program is split, options.c for the contract. */
#include "fetch.h"

int main(int argc, char **argv) {
  fetch_opts_t o;
  fetch_options(argc, argv, &o);
  int rc = fetch_operate(&o);
  fetch_options_free(&o);
  return rc;
}
