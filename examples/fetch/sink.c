/* Where a body goes: counted and hashed as it arrives, and with -o written
 * to DIR/NAME.part, renamed to DIR/NAME when the request ends ok. A new
 * response (a retry) starts the part over; a 206 to a continued part adds
 * to what an earlier run left. The validator the part was fetched under
 * (ETag, else Last-Modified) is kept in an extended attribute of the part,
 * so a later --resume can ask for the rest with If-Range. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fetch.h"

#define XATTR_VALIDATOR "user.salvo.validator"

static void fail(fetch_sink_t *s, const char *what, const char *path, int err) {
  s->failed = 1;
  snprintf(s->why, sizeof(s->why), "cannot %s %.4000s: %s", what, path, strerror(err));
}

static int sha_reset(fetch_sink_t *s) {
  return s->sha == NULL || EVP_DigestInit_ex(s->sha, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

int fetch_sink_init(fetch_sink_t *s, const char *dir, const char *name, int may_continue, int hash) {
  memset(s, 0, sizeof(*s));
  s->fd = -1;
  if (hash && ((s->sha = EVP_MD_CTX_new()) == NULL || sha_reset(s) != 0)) {
    snprintf(s->why, sizeof(s->why), "out of memory");
    return -1;
  }
  if (dir == NULL)
    return 0;
  size_t len = strlen(dir) + 1 + strlen(name) + 1;
  s->path = malloc(len);
  s->part = malloc(len + 5);
  if (s->path == NULL || s->part == NULL) {
    snprintf(s->why, sizeof(s->why), "out of memory");
    return -1;
  }
  snprintf(s->path, len, "%s/%s", dir, name);
  snprintf(s->part, len + 5, "%s.part", s->path);
  if (!may_continue)
    return 0;
  /* An earlier run's part: continued only under the validator it was
   * fetched with, so that a file changed since is never spliced. */
  struct stat st;
  if (lstat(s->part, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
    return 0;
  ssize_t n = getxattr(s->part, XATTR_VALIDATOR, s->validator, sizeof(s->validator) - 1);
  if (n <= 0) {
    s->validator[0] = '\0';
    return 0;
  }
  s->validator[n] = '\0';
  s->has_xattr = 1;
  s->base = (uint64_t)st.st_size;
  s->range_sent = 1;
  return 0;
}

/* Feeds the part's first |len| bytes to the digest (a continued file). */
static int hash_part(fetch_sink_t *s, uint64_t len) {
  if (s->sha == NULL)
    return 0;
  char buf[1 << 16];
  uint64_t off = 0;
  while (off < len) {
    size_t want = len - off < sizeof(buf) ? (size_t)(len - off) : sizeof(buf);
    ssize_t n = pread(s->fd, buf, want, (off_t)off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      fail(s, "read", s->part, n < 0 ? errno : EIO);
      return -1;
    }
    EVP_DigestUpdate(s->sha, buf, (size_t)n);
    off += (uint64_t)n;
  }
  return 0;
}

/* The validator to continue this response's bytes under later: a strong
 * ETag, else Last-Modified; "" if neither. */
static void take_validator(fetch_sink_t *s, salvo_request_t *req) {
  const char *etag = salvo_response_header(req, "etag");
  const char *lm = salvo_response_header(req, "last-modified");
  const char *v = etag != NULL && strncmp(etag, "W/", 2) != 0 ? etag : lm;
  if (v == NULL || strlen(v) >= sizeof(s->validator) || strpbrk(v, "\r\n") != NULL) {
    s->validator[0] = '\0';
    if (!s->fresh)
      fremovexattr(s->fd, XATTR_VALIDATOR);
    s->has_xattr = 0;
    return;
  }
  snprintf(s->validator, sizeof(s->validator), "%s", v);
  /* Where the file system keeps no attributes, a later run starts over. */
  s->has_xattr = fsetxattr(s->fd, XATTR_VALIDATOR, s->validator, strlen(s->validator), 0) == 0;
}

/* Content-Range "bytes A-B/T": A, or -1. */
static int64_t range_start(salvo_request_t *req) {
  const char *cr = salvo_response_header(req, "content-range");
  unsigned long long a, b;
  char tail;
  if (cr == NULL || sscanf(cr, "bytes %llu-%llu/%c", &a, &b, &tail) != 3 || a > INT64_MAX)
    return -1;
  return (int64_t)a;
}

/* A 416 whose Content-Range "bytes * /T" (no space) says the part is whole. */
static int part_is_whole(const fetch_sink_t *s, salvo_request_t *req) {
  const char *cr = salvo_response_header(req, "content-range");
  unsigned long long total;
  char tail;
  return cr != NULL && sscanf(cr, "bytes */%llu%c", &total, &tail) == 1 && total == s->base;
}

int fetch_sink_head(fetch_sink_t *s, salvo_request_t *req, const salvo_response_head_t *head) {
  s->status = head->status;
  s->written = 0;
  s->part_whole = 0;
  /* Only the body of an answer that ends the request ok is kept: a held one
   * (a 503 that will be tried again) or an error's never reaches the file. */
  s->writing = !head->held && head->status >= 200 && head->status < 400 && head->status != 206;
  int continues = head->status == 206 && s->range_sent && range_start(req) == (int64_t)s->base;
  if (head->status == 206 && !s->range_sent)
    s->writing = !head->held; /* a range the caller asked for, or a server's own: a body */
  if ((head->status == 206 && s->range_sent && !continues) ||
      (head->status == 416 && s->range_sent && !part_is_whole(s, req))) {
    snprintf(s->why, sizeof(s->why), "the part from before (%" PRIu64 " bytes) could not be continued "
             "(the server answered %ld%s): fetched whole", s->base, head->status,
             head->status == 206 ? " for another range" : ", the file is shorter");
    s->restart = 1;
    return 1;
  }
  if (head->status == 416 && s->range_sent) {
    s->part_whole = 1;
    s->writing = 0;
  }
  if (sha_reset(s) != 0) {
    snprintf(s->why, sizeof(s->why), "out of memory");
    s->failed = 1;
    return 1;
  }
  if (s->path == NULL) {
    s->writing |= continues;
    return 0;
  }
  if (!s->writing && !continues && !s->part_whole)
    return 0;
  s->wlen = 0; /* what the last response left unwritten is not this one's */
  if (s->fd < 0) {
    /* Truncated as it opens when nothing of it is kept. */
    int keep_part = continues || s->part_whole;
    s->fd = open(s->part, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (keep_part ? 0 : O_TRUNC), 0644);
    if (s->fd < 0) {
      fail(s, "open", s->part, errno);
      return 1;
    }
    s->fresh = !keep_part;
  } else {
    s->fresh = 0;
  }
  if (s->part_whole)
    return hash_part(s, s->base) != 0;
  uint64_t keep = continues ? s->base : 0;
  if (!continues)
    s->base = 0; /* the whole body came instead: the earlier part is gone */
  if (!s->fresh && (ftruncate(s->fd, (off_t)keep) != 0 || lseek(s->fd, (off_t)keep, SEEK_SET) < 0)) {
    fail(s, "truncate", s->part, errno);
    return 1;
  }
  s->writing = 1;
  if (!continues)
    take_validator(s, req);
  return continues ? hash_part(s, keep) != 0 : 0;
}

static int write_all(fetch_sink_t *s, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(s->fd, data, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      fail(s, "write", s->part, errno);
      return -1;
    }
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

static int flush(fetch_sink_t *s) {
  size_t n = s->wlen;
  s->wlen = 0;
  return s->fd >= 0 && n > 0 ? write_all(s, s->wbuf, n) : 0;
}

int fetch_sink_data(fetch_sink_t *s, const char *data, size_t len) {
  if (!s->writing)
    return 0;
  if (s->sha != NULL)
    EVP_DigestUpdate(s->sha, data, len);
  s->written += len;
  if (s->fd < 0)
    return 0;
  if (s->wbuf == NULL && (s->wbuf = malloc(FETCH_WRITE_SIZE)) == NULL) {
    fail(s, "buffer a write to", s->part, ENOMEM);
    return 1;
  }
  while (len > 0) {
    size_t take = FETCH_WRITE_SIZE - s->wlen < len ? FETCH_WRITE_SIZE - s->wlen : len;
    memcpy(s->wbuf + s->wlen, data, take);
    s->wlen += take;
    data += take;
    len -= take;
    if (s->wlen == FETCH_WRITE_SIZE && flush(s) != 0)
      return 1;
  }
  return 0;
}

void fetch_sink_digest(const fetch_sink_t *s, unsigned char out[32]) {
  EVP_MD_CTX *copy = s->sha != NULL ? EVP_MD_CTX_new() : NULL;
  unsigned int n = 0;
  if (copy == NULL || EVP_MD_CTX_copy_ex(copy, s->sha) != 1 || EVP_DigestFinal_ex(copy, out, &n) != 1)
    memset(out, 0, 32);
  EVP_MD_CTX_free(copy);
}

int fetch_sink_finish(fetch_sink_t *s, int keep, int keep_part) {
  int rc = 0, opened = s->fd >= 0;
  /* What was gathered goes out also for a part that stays for --resume. */
  if ((keep || keep_part) && flush(s) != 0 && keep)
    rc = -1;
  if (s->fd >= 0 && close(s->fd) != 0 && keep && rc == 0) {
    fail(s, "write", s->part, errno);
    rc = -1;
  }
  s->fd = -1;
  if (s->path != NULL && keep && rc == 0) {
    /* An ok answer whose part was never opened (a 304, a HEAD) still gets its file. */
    if (!opened) {
      int fd = open(s->part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
      if (fd < 0 || close(fd) != 0) {
        fail(s, "create", s->part, errno);
        rc = -1;
      }
    }
    if (rc == 0 && rename(s->part, s->path) != 0) {
      fail(s, "rename", s->part, errno);
      rc = -1;
    } else if (rc == 0 && s->has_xattr) {
      removexattr(s->path, XATTR_VALIDATOR); /* a whole file needs none; a failed rename keeps it */
    }
  }
  if (s->path != NULL && (!keep || rc != 0) && !keep_part)
    unlink(s->part);
  EVP_MD_CTX_free(s->sha);
  s->sha = NULL;
  free(s->wbuf);
  s->wbuf = NULL;
  free(s->path);
  free(s->part);
  s->path = s->part = NULL;
  return rc;
}
