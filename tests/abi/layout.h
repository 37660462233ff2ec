/* salvo.h's ABI as this compiler lays it out: the text tests/abi/test_abi.c
 * compares with the recorded layout-x86_64.txt, and abi-layout prints for
 * tools/abi-record. */
#ifndef SALVO_ABI_LAYOUT_H
#define SALVO_ABI_LAYOUT_H

#include <stdio.h>

/* One line per item, in the header's order:
 *   version MAJOR.MINOR
 *   struct TYPE size N align N
 *   field TYPE.FIELD offset N size N
 *   enum TYPE.CONSTANT value N */
void abi_layout_print(FILE *out);

#endif
