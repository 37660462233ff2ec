/* salvo-fetch's input, read through the loop: a slow producer on a pipe never
 * holds up requests in flight, timers or SIGINT. Pipes, sockets and
 * terminals are libuv streams; regular files and devices are read with
 * uv_fs_read() on libuv's thread pool. Lines are handed out one at a time,
 * and reading pauses while the caller wants none. */
#ifndef SALVO_FETCH_READER_H
#define SALVO_FETCH_READER_H

#include <stddef.h>

#include <uv.h>

typedef struct fetch_reader_s fetch_reader_t;

/* Called from the loop when fetch_reader_next() may have something new: a
 * line, the end, or an error. */
typedef void (*fetch_reader_cb)(fetch_reader_t *reader, void *user_data);

/* Opens |path| ("-" is stdin) for reading on |loop|. Lines longer than
 * |max_line| bytes are skipped and reported (FETCH_LINE_TOO_LONG). Reading
 * starts with fetch_reader_want(reader, 1). Returns 0 and sets *out, or a
 * libuv error code (UV_EISDIR for a directory, UV_EINVAL for a kind of file
 * that cannot be read as a stream of lines). Opening a FIFO waits for its
 * writer, as cat(1) does; nothing runs before that. */
int fetch_reader_open(uv_loop_t *loop, const char *path, size_t max_line, fetch_reader_cb cb,
                      void *user_data, fetch_reader_t **out);

enum {
  FETCH_LINE_END = -1,      /* end of input (or a read error: fetch_reader_error()) */
  FETCH_LINE_NONE = 0,      /* no whole line yet: wait for the callback */
  FETCH_LINE = 1,           /* *line holds one */
  FETCH_LINE_TOO_LONG = 2   /* a line longer than max_line was dropped */
};

/* The next line, without its '\n', NUL-terminated (a line may also hold NUL
 * bytes: *len counts them). Valid until the next call. The last line need
 * not end in '\n'. */
int fetch_reader_next(fetch_reader_t *reader, char **line, size_t *len);

/* Reads on (1) or pauses (0). Pausing keeps memory at one buffer however
 * fast the producer is. */
void fetch_reader_want(fetch_reader_t *reader, int want);

/* 0, or the libuv error that ended the input early. */
int fetch_reader_error(const fetch_reader_t *reader);

/* Stops reading and frees the reader once its handle or pending read is
 * done; the loop has nothing of it left after that. NULL is a no-op. */
void fetch_reader_close(fetch_reader_t *reader);

#endif
