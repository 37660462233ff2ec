/* salvo-faultd: encoded bodies. /gzip/BYTES and /br/BYTES compress a
 * known text; /gzip-bomb/GB is gigabytes of zeros in a few megabytes of
 * gzip, made up as it is sent (F_REPEAT) so the server never holds it;
 * /bad-gzip says gzip and is not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <brotli/encode.h>
#include <zlib.h>

#include "faultd_int.h"

#define ENC_MAX_BYTES (256u * 1024 * 1024) /* as /bytes/N */
#define ENC_MAX_GB 1024u
#define BOMB_BLOCK ((size_t)1 << 20) /* the zeros one repeated deflate block decodes to */
/* A chunk of the text, a whole number of alphabets so that every chunk is alike. */
#define TEXT_CHUNK (26u * 2520u)

/* Byte i of the text /gzip and /br encode: "abc...z" again and again. */
static void fill_text(unsigned char *buf, size_t len) {
  for (size_t i = 0; i < len; i++)
    buf[i] = (unsigned char)('a' + i % 26);
}

static void refuse(fault_plan_t *p, const char *why) {
  p->status = 400;
  faultd__plan_body(p, why, strlen(why));
}

/* A gzip member of |bytes| of text, as the plan's body. 0, or -1 (out of memory). */
static int gzip_text(fault_plan_t *p, size_t bytes) {
  z_stream z;
  memset(&z, 0, sizeof(z));
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) /* +16: gzip */
    return -1;
  size_t cap = deflateBound(&z, (uLong)bytes);
  unsigned char *out = malloc(cap), *text = malloc(TEXT_CHUNK);
  int rc = out != NULL && text != NULL ? 0 : -1;
  if (rc == 0)
    fill_text(text, TEXT_CHUNK);
  z.next_out = out;
  z.avail_out = (uInt)cap;
  for (size_t left = bytes; rc == 0;) {
    size_t n = left < TEXT_CHUNK ? left : TEXT_CHUNK;
    z.next_in = text;
    z.avail_in = (uInt)n;
    left -= n;
    int r = deflate(&z, left == 0 ? Z_FINISH : Z_NO_FLUSH);
    if (r == Z_STREAM_END)
      break;
    if (r != Z_OK)
      rc = -1;
  }
  if (rc == 0) {
    free(p->body);
    p->body = (char *)out;
    p->body_len = cap - z.avail_out;
    out = NULL;
  }
  deflateEnd(&z);
  free(out);
  free(text);
  return rc;
}

/* A brotli stream of |bytes| of text, as the plan's body. 0, or -1. */
static int brotli_text(fault_plan_t *p, size_t bytes) {
  BrotliEncoderState *s = BrotliEncoderCreateInstance(NULL, NULL, NULL);
  size_t cap = BrotliEncoderMaxCompressedSize(bytes);
  unsigned char *out = cap ? malloc(cap) : NULL, *text = malloc(TEXT_CHUNK);
  int rc = s != NULL && out != NULL && text != NULL ? 0 : -1;
  if (rc == 0) {
    fill_text(text, TEXT_CHUNK);
    BrotliEncoderSetParameter(s, BROTLI_PARAM_QUALITY, 5); /* 11, the default, takes seconds */
  }
  size_t out_left = cap, left = bytes;
  unsigned char *next_out = out;
  while (rc == 0) {
    size_t n = left < TEXT_CHUNK ? left : TEXT_CHUNK;
    const uint8_t *next_in = text;
    size_t in_left = n;
    left -= n;
    BrotliEncoderOperation op = left == 0 ? BROTLI_OPERATION_FINISH : BROTLI_OPERATION_PROCESS;
    do {
      if (!BrotliEncoderCompressStream(s, op, &in_left, &next_in, &out_left, &next_out, NULL)) {
        rc = -1;
        break;
      }
    } while (in_left > 0 || (op == BROTLI_OPERATION_FINISH && !BrotliEncoderIsFinished(s)));
    if (left == 0)
      break;
  }
  if (rc == 0) {
    free(p->body);
    p->body = (char *)out;
    p->body_len = cap - out_left;
    out = NULL;
  }
  if (s != NULL)
    BrotliEncoderDestroyInstance(s);
  free(out);
  free(text);
  return rc;
}

static void put_le32(unsigned char *at, uint32_t v) {
  for (int i = 0; i < 4; i++)
    at[i] = (unsigned char)(v >> (8 * i));
}

/* A gzip member that decodes to |gb| GiB of zeros, as F_REPEAT: the gzip
 * header, one deflate block of 1 MiB of zeros repeated gb x 1024 times, an
 * empty final block and the trailer. The block is flushed with
 * Z_FULL_FLUSH: it ends byte-aligned and refers to nothing before it, so
 * its copies can follow one another. 0, or -1. */
static int gzip_bomb(fault_plan_t *p, unsigned gb) {
  unsigned char *zeros = calloc(1, BOMB_BLOCK), *block = malloc(4096);
  unsigned char final[16];
  z_stream z;
  memset(&z, 0, sizeof(z));
  int rc = zeros != NULL && block != NULL &&
                   deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) == Z_OK /* raw */
               ? 0
               : -1;
  if (rc == 0) {
    z.next_in = zeros;
    z.avail_in = (uInt)BOMB_BLOCK;
    z.next_out = block;
    z.avail_out = 4096;
    rc = deflate(&z, Z_FULL_FLUSH) == Z_OK && z.avail_in == 0 ? 0 : -1;
  }
  size_t block_len = 4096 - z.avail_out;
  if (rc == 0) {
    z.next_out = final;
    z.avail_out = sizeof(final);
    rc = deflate(&z, Z_FINISH) == Z_STREAM_END ? 0 : -1; /* the empty final block */
  }
  if (rc == 0) {
    static const unsigned char head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    uint64_t blocks = (uint64_t)gb * 1024;
    uLong crc_block = crc32(0, zeros, (uInt)BOMB_BLOCK), crc = crc32(0, Z_NULL, 0);
    for (uint64_t i = 0; i < blocks; i++)
      crc = crc32_combine(crc, crc_block, (z_off_t)BOMB_BLOCK);
    memcpy(p->repeat.head, head, sizeof(head));
    p->repeat.head_len = sizeof(head);
    size_t final_len = sizeof(final) - z.avail_out;
    memcpy(p->repeat.tail, final, final_len);
    put_le32(p->repeat.tail + final_len, (uint32_t)crc);
    put_le32(p->repeat.tail + final_len + 4, (uint32_t)(blocks * BOMB_BLOCK)); /* ISIZE: mod 2^32 */
    p->repeat.tail_len = final_len + 8;
    p->repeat.count = blocks;
    p->kind = F_REPEAT;
    free(p->body);
    p->body = (char *)block;
    p->body_len = block_len;
    block = NULL;
  }
  deflateEnd(&z);
  free(zeros);
  free(block);
  return rc;
}

int faultd__enc_plan(const char *path, fault_plan_t *p) {
  unsigned a = 0;
  char tail;
  int rc = 0;
  if (sscanf(path, "/gzip/%u%c", &a, &tail) == 1 || sscanf(path, "/br/%u%c", &a, &tail) == 1) {
    if (a > ENC_MAX_BYTES) {
      refuse(p, "at most 256 MiB\n");
      return 1;
    }
    rc = path[1] == 'g' ? gzip_text(p, a) : brotli_text(p, a);
    p->content_encoding = path[1] == 'g' ? "gzip" : "br";
  } else if (sscanf(path, "/gzip-bomb/%u%c", &a, &tail) == 1) {
    if (a == 0 || a > ENC_MAX_GB) {
      refuse(p, "GB must be 1..1024\n");
      return 1;
    }
    rc = gzip_bomb(p, a);
    p->content_encoding = "gzip";
  } else if (strcmp(path, "/bad-gzip") == 0) {
    faultd__plan_body(p, "this is not gzip\n", 17);
    p->content_encoding = "gzip";
  } else {
    return 0;
  }
  if (rc != 0) {
    p->kind = F_RESPOND;
    p->content_encoding = NULL;
    p->status = 503;
    faultd__plan_body(p, "out of memory\n", 14);
  }
  return 1;
}

uint64_t faultd__body_size(const fault_plan_t *p) {
  if (p->kind == F_FILE)
    return p->file.length;
  if (p->kind != F_REPEAT)
    return p->body_len;
  return p->repeat.head_len + p->repeat.count * p->body_len + p->repeat.tail_len;
}

/* Copies into |out|, which holds the body's bytes [off, off + cap), those of
 * them that |part| holds: it sits at [from, from + len) of the body. */
static void copy_part(const void *part, uint64_t from, size_t len, uint64_t off,
                      unsigned char *out, size_t cap) {
  uint64_t lo = from > off ? from : off;
  uint64_t hi = from + len < off + cap ? from + len : off + cap;
  if (lo < hi)
    memcpy(out + (lo - off), (const unsigned char *)part + (lo - from), (size_t)(hi - lo));
}

static size_t repeat_read(const fault_plan_t *p, uint64_t off, void *buf, size_t cap) {
  uint64_t size = faultd__body_size(p);
  if (off >= size)
    return 0;
  if (cap > size - off)
    cap = (size_t)(size - off);
  unsigned char *out = buf;
  uint64_t head = p->repeat.head_len, end = head + p->repeat.count * p->body_len;
  copy_part(p->repeat.head, 0, p->repeat.head_len, off, out, cap);
  uint64_t at = off > head ? off : head;
  at = head + (at - head) / p->body_len * p->body_len; /* the first block in the range */
  for (; at < end && at < off + cap; at += p->body_len)
    copy_part(p->body, at, p->body_len, off, out, cap);
  copy_part(p->repeat.tail, end, p->repeat.tail_len, off, out, cap);
  return cap;
}

size_t faultd__body_read(const fault_plan_t *p, uint64_t off, void *buf, size_t cap) {
  return p->kind == F_FILE ? faultd__file_read(p, off, buf, cap) : repeat_read(p, off, buf, cap);
}
