#include "layout.h"

#include <stddef.h>

#include <salvo/salvo.h>

#include "abi_names.h" /* made from salvo.h by tools/abi-list */

void abi_layout_print(FILE *out) {
  fprintf(out, "version %d.%d\n", SALVO_VERSION_MAJOR, SALVO_VERSION_MINOR);
#define ABI_STRUCT(type) \
  fprintf(out, "struct %s size %zu align %zu\n", #type, sizeof(type), _Alignof(type));
#define ABI_FIELD(type, field)                                                             \
  fprintf(out, "field %s.%s offset %zu size %zu\n", #type, #field, offsetof(type, field), \
          sizeof(((type *)0)->field));
#define ABI_ENUM(type, constant) \
  fprintf(out, "enum %s.%s value %lld\n", #type, #constant, (long long)(constant));
  SALVO_ABI_STRUCTS(ABI_STRUCT, ABI_FIELD)
  SALVO_ABI_ENUMS(ABI_ENUM)
}
