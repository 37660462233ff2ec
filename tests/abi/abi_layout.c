/* abi-layout: prints salvo.h's ABI as this build lays it out, in the format
 * of layout-x86_64.txt. Run by tools/abi-record, which writes that file. */
#include <stdio.h>

#include "layout.h"

int main(void) {
#if defined(__x86_64__) && defined(__LP64__)
  abi_layout_print(stdout);
  return 0;
#else
  fprintf(stderr, "abi-layout: the recorded layout is for x86_64 (LP64), and this build is not\n");
  return 1;
#endif
}
