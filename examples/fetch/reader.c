/* salvo-fetch's input through the loop. See reader.h. */
#include "reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK 65536

struct fetch_reader_s {
  uv_loop_t *loop;
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_pipe_t pipe;
    uv_tcp_t tcp;
    uv_tty_t tty;
  } h;
  uv_fs_t fs;             /* a file's pending read */
  int is_stream;          /* h is open; else the fd is read with uv_fs_read() */
  uv_file fd;             /* the file's descriptor (-1 once closed) */
  int own_fd;             /* opened here: close it at the end */
  int fs_pending;         /* a uv_fs_read() is under way */
  int reading;            /* uv_read_start() is on */
  int want;               /* the caller wants more lines */
  int eof;                /* nothing more will arrive */
  int error;              /* the libuv error that ended it early, or 0 */
  int closing;            /* fetch_reader_close() was called */
  int skipping;           /* dropping the rest of a line that was too long */
  char *buf;              /* bytes read, [start, len) not handed out yet */
  size_t start, len, cap;
  size_t scanned;         /* bytes from start known to hold no '\n' */
  size_t max_line;
  fetch_reader_cb cb;
  void *user_data;
};

static void reader_free(fetch_reader_t *r) {
  if (r->own_fd && r->fd >= 0)
    close(r->fd);
  free(r->buf);
  free(r);
}

/* Room for CHUNK more bytes (and a NUL) at the end of the buffer. */
static int make_room(fetch_reader_t *r) {
  if (r->start > 0) {
    memmove(r->buf, r->buf + r->start, r->len - r->start);
    r->len -= r->start;
    r->start = 0;
  }
  if (r->len + CHUNK + 1 <= r->cap)
    return 0;
  size_t cap = r->len + CHUNK + 1;
  char *p = realloc(r->buf, cap);
  if (p == NULL)
    return -1;
  r->buf = p;
  r->cap = cap;
  return 0;
}

/* |n| new bytes at buf + len: keep them, unless they finish a dropped line. */
static void took(fetch_reader_t *r, size_t n) {
  if (!r->skipping) {
    r->len += n;
    return;
  }
  char *nl = memchr(r->buf + r->len, '\n', n);
  if (nl == NULL)
    return; /* still inside the long line */
  size_t rest = n - (size_t)(nl + 1 - (r->buf + r->len));
  memmove(r->buf + r->len, nl + 1, rest);
  r->len += rest;
  r->skipping = 0;
}

static void ended(fetch_reader_t *r, int error) {
  r->eof = 1;
  r->error = error;
  if (r->reading)
    uv_read_stop(&r->h.stream);
  r->reading = 0;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  fetch_reader_t *r = h->data;
  if (make_room(r) != 0) {
    *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
    return;
  }
  *buf = uv_buf_init(r->buf + r->len, CHUNK);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  fetch_reader_t *r = s->data;
  if (n == 0)
    return; /* EAGAIN */
  if (n > 0)
    took(r, (size_t)n);
  else
    ended(r, n == UV_EOF ? 0 : (int)n);
  r->cb(r, r->user_data);
}

static void fs_read_start(fetch_reader_t *r);

static void fs_read_cb(uv_fs_t *req) {
  fetch_reader_t *r = req->data;
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  r->fs_pending = 0;
  if (r->closing) {
    reader_free(r);
    return;
  }
  if (n > 0)
    took(r, (size_t)n);
  else
    ended(r, (int)n); /* 0 is the end of the file */
  if (r->want)
    fs_read_start(r);
  r->cb(r, r->user_data);
}

static void fs_read_start(fetch_reader_t *r) {
  if (r->fs_pending || r->eof || r->closing)
    return;
  if (make_room(r) != 0) {
    ended(r, UV_ENOMEM);
    return;
  }
  uv_buf_t b = uv_buf_init(r->buf + r->len, CHUNK);
  r->fs.data = r;
  /* Offset -1: the file's own position, so stdin and devices work too. */
  int rc = uv_fs_read(r->loop, &r->fs, r->fd, &b, 1, -1, fs_read_cb);
  if (rc != 0)
    ended(r, rc);
  else
    r->fs_pending = 1;
}

/* A stream handle for |fd|, or 0 to read it as a file. */
static int open_stream(fetch_reader_t *r, int fd) {
  switch (uv_guess_handle(fd)) {
  case UV_TTY:
    return uv_tty_init(r->loop, &r->h.tty, fd, 1) == 0 ? 1 : -1;
  case UV_NAMED_PIPE:
    if (uv_pipe_init(r->loop, &r->h.pipe, 0) != 0)
      return -1;
    if (uv_pipe_open(&r->h.pipe, fd) != 0) {
      uv_close(&r->h.handle, NULL);
      return -1;
    }
    return 1;
  case UV_TCP:
    if (uv_tcp_init(r->loop, &r->h.tcp) != 0)
      return -1;
    if (uv_tcp_open(&r->h.tcp, fd) != 0) {
      uv_close(&r->h.handle, NULL);
      return -1;
    }
    return 1;
  case UV_FILE:
    return 0;
  default:
    return -1;
  }
}

int fetch_reader_open(uv_loop_t *loop, const char *path, size_t max_line, fetch_reader_cb cb,
                      void *user_data, fetch_reader_t **out) {
  int is_stdin = strcmp(path, "-") == 0;
  int fd = is_stdin ? 0 : open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return uv_translate_sys_error(errno);
  struct stat st;
  int rc = fstat(fd, &st) != 0 ? uv_translate_sys_error(errno) : S_ISDIR(st.st_mode) ? UV_EISDIR : 0;
  fetch_reader_t *r = rc == 0 ? calloc(1, sizeof(*r)) : NULL;
  if (r == NULL) {
    if (!is_stdin)
      close(fd);
    return rc != 0 ? rc : UV_ENOMEM;
  }
  r->loop = loop;
  r->fd = fd;
  r->own_fd = !is_stdin;
  r->max_line = max_line;
  r->cb = cb;
  r->user_data = user_data;
  int stream = open_stream(r, fd);
  if (stream < 0) {
    reader_free(r);
    return UV_EINVAL;
  }
  if (stream) {
    r->is_stream = 1;
    r->own_fd = 0; /* the handle closes it */
    r->h.handle.data = r;
  }
  *out = r;
  return 0;
}

int fetch_reader_next(fetch_reader_t *r, char **line, size_t *len) {
  char *from = r->buf + r->start;
  size_t held = r->len - r->start;
  char *nl = held > r->scanned ? memchr(from + r->scanned, '\n', held - r->scanned) : NULL;
  if (nl != NULL) {
    *nl = '\0';
    *line = from;
    *len = (size_t)(nl - from);
    r->start += *len + 1;
    r->scanned = 0;
    return *len > r->max_line ? FETCH_LINE_TOO_LONG : FETCH_LINE;
  }
  r->scanned = held;
  if (held > r->max_line) { /* no end in sight: drop what there is, and the rest as it comes */
    r->start = r->len = r->scanned = 0;
    r->skipping = !r->eof;
    return FETCH_LINE_TOO_LONG;
  }
  if (!r->eof)
    return FETCH_LINE_NONE;
  if (held == 0)
    return FETCH_LINE_END;
  from[held] = '\0'; /* the last line, with no '\n': make_room() left a byte for this */
  *line = from;
  *len = held;
  r->start = r->len;
  r->scanned = 0;
  return FETCH_LINE;
}

void fetch_reader_want(fetch_reader_t *r, int want) {
  r->want = want;
  if (r->eof || r->closing)
    return;
  if (!r->is_stream) {
    if (want)
      fs_read_start(r);
    return;
  }
  if (want && !r->reading) {
    int rc = uv_read_start(&r->h.stream, alloc_cb, read_cb);
    if (rc != 0)
      ended(r, rc);
    else
      r->reading = 1;
  } else if (!want && r->reading) {
    uv_read_stop(&r->h.stream);
    r->reading = 0;
  }
}

int fetch_reader_error(const fetch_reader_t *r) { return r->error; }

static void closed_cb(uv_handle_t *h) { reader_free(h->data); }

void fetch_reader_close(fetch_reader_t *r) {
  if (r == NULL || r->closing)
    return;
  r->closing = 1;
  if (r->is_stream) {
    if (r->reading)
      uv_read_stop(&r->h.stream);
    uv_close(&r->h.handle, closed_cb);
  } else if (!r->fs_pending) {
    reader_free(r);
  } /* else fs_read_cb frees it */
}
