/* salvo-fetch's input lines, parsed with jansson, and what of them may be
 * shown. See input.h. */
#include "input.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* jansson's own message quotes the text near the error ("near '\"Bearer
 * ...'"): say what kind of error it is instead. */
static const char *json_reason(const json_error_t *err) {
  switch (json_error_code(err)) {
  case json_error_out_of_memory:
    return "out of memory";
  case json_error_stack_overflow:
    return "nested too deeply";
  case json_error_invalid_utf8:
    return "invalid UTF-8";
  case json_error_premature_end_of_input:
    return "the JSON ends too early";
  case json_error_end_of_input_expected:
    return "text after the JSON object";
  case json_error_null_character:
  case json_error_null_byte_in_key:
    return "\\u0000 in a string";
  case json_error_duplicate_key:
    return "a key appears twice";
  case json_error_numeric_overflow:
    return "a number is too large";
  default:
    return "invalid JSON";
  }
}

static int set_id(fetch_spec_t *sp, const char *id, size_t len) {
  char *copy = malloc(len + 1);
  if (copy == NULL)
    return -1;
  memcpy(copy, id, len);
  copy[len] = '\0';
  free(sp->id);
  sp->id = copy;
  return 0;
}

static int set_line_id(fetch_spec_t *sp, size_t line) {
  char num[32];
  int n = snprintf(num, sizeof(num), "%zu", line);
  return set_id(sp, num, (size_t)n);
}

static int parse_bare(const char *text, fetch_spec_t *sp, char *why, size_t why_len) {
  size_t n = strlen(text);
  while (n > 0 && isspace((unsigned char)text[n - 1]))
    n--;
  if (n == 0)
    return 0; /* blank lines are skipped, but keep their number */
  /* A URL holds none of these unencoded; a line that does is something else
   * (JSON that is not one object, a pasted header), and may hold secrets:
   * never shown. */
  for (size_t i = 0; i < n; i++)
    if (strchr("{}[]\"<> \t", text[i]) != NULL || (unsigned char)text[i] < 0x20) {
      snprintf(why, why_len, "neither a URL nor a JSON object (not shown: it may hold secrets)");
      return -1;
    }
  sp->bare_url = strndup(text, n);
  if (sp->bare_url == NULL) {
    snprintf(why, why_len, "out of memory");
    return -1;
  }
  sp->url = sp->bare_url;
  return 1;
}

/* The id of a parsed object: a string or an integer, whole, or the line number. */
static const char *take_id(fetch_spec_t *sp, json_t *id) {
  if (json_is_string(id)) {
    if (json_string_length(id) > FETCH_ID_MAX)
      return "\"id\" is longer than " FETCH_ID_MAX_TEXT " bytes";
    if (set_id(sp, json_string_value(id), json_string_length(id)) != 0)
      return "out of memory";
    sp->id_given = 1;
  } else if (json_is_integer(id)) {
    char num[32];
    int n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
    if (set_id(sp, num, (size_t)n) != 0)
      return "out of memory";
    sp->id_given = 1;
  } else if (id != NULL && !json_is_null(id)) {
    return "\"id\" must be a string or an integer";
  }
  return NULL;
}

int fetch_parse_line(const char *text, size_t line, fetch_spec_t *sp, char *why, size_t why_len) {
  memset(sp, 0, sizeof(*sp));
  if (set_line_id(sp, line) != 0) {
    snprintf(why, why_len, "out of memory");
    return -1;
  }
  const char *start = text;
  if (strncmp(text, "\xef\xbb\xbf", 3) == 0) /* stops at a shorter line's NUL */
    text += 3; /* a byte order mark, as Windows tools write */
  while (isspace((unsigned char)*text))
    text++;
  if (*text != '{') /* a bare URL */
    return parse_bare(text, sp, why, why_len);
  json_error_t err;
  sp->obj = json_loads(text, JSON_REJECT_DUPLICATES, &err);
  if (sp->obj == NULL) {
    snprintf(why, why_len, "column %d (byte %zu): %s", err.column + (int)(text - start),
             (size_t)err.position + (size_t)(text - start), json_reason(&err));
    return -1;
  }
  if (!json_is_object(sp->obj)) {
    snprintf(why, why_len, "column %d: not a JSON object", (int)(text - start) + 1);
    return -1;
  }
  json_t *url = json_object_get(sp->obj, "url");
  json_t *method = json_object_get(sp->obj, "method");
  json_t *headers = json_object_get(sp->obj, "headers");
  json_t *body = json_object_get(sp->obj, "body");
  json_t *sha = json_object_get(sp->obj, "sha256");
  sp->url = json_string_value(url); /* NULL unless a string */
  const char *problem = take_id(sp, json_object_get(sp->obj, "id"));
  if (problem != NULL)
    ;
  else if (!json_is_string(url))
    problem = "\"url\" is missing or not a string";
  else if (method != NULL && !json_is_string(method))
    problem = "\"method\" must be a string";
  else if (headers != NULL && !json_is_object(headers))
    problem = "\"headers\" must be an object of strings";
  else if (body != NULL && !json_is_string(body))
    problem = "\"body\" must be a string";
  else if (sha != NULL && (!json_is_string(sha) || fetch_parse_sha256(json_string_value(sha), sp->sha256) != 0))
    problem = "\"sha256\" must be 64 hex digits";
  if (problem != NULL) {
    snprintf(why, why_len, "%s", problem);
    return -1;
  }
  sp->has_sha256 = sha != NULL;
  sp->method = method != NULL ? json_string_value(method) : NULL;
  sp->headers = headers;
  if (body != NULL) {
    sp->body = json_string_value(body);
    sp->body_len = json_string_length(body);
  }
  return 1;
}

void fetch_spec_free(fetch_spec_t *sp) {
  json_decref(sp->obj);
  free(sp->bare_url);
  free(sp->id);
  sp->obj = NULL;
  sp->bare_url = NULL;
  sp->id = NULL;
}

/* ------------------------------------------------------------ showing */

/* |url| with [from, to) replaced by "***". */
static char *splice_stars(const char *url, size_t from, size_t to) {
  size_t len = strlen(url);
  char *out = malloc(len - (to - from) + 4);
  if (out == NULL)
    return NULL;
  memcpy(out, url, from);
  memcpy(out + from, "***", 3);
  memcpy(out + from + 3, url + to, len - to + 1);
  return out;
}

static char *redact_n(const char *url, size_t len, int parsed) {
  const char *sep = NULL;
  for (size_t i = 0; i + 3 <= len && sep == NULL; i++)
    if (memcmp(url + i, "://", 3) == 0)
      sep = url + i;
  size_t auth = sep != NULL ? (size_t)(sep - url) + 3 : 0;
  size_t end = len;
  if (parsed && sep != NULL)
    end = auth + strcspn(url + auth, "/?#");
  size_t at = 0;
  int found = 0;
  for (size_t i = auth; i < end && i < len; i++)
    if (url[i] == '@') {
      at = i;
      found = 1;
    }
  char *copy = strndup(url, len);
  if (copy == NULL || !found)
    return copy;
  char *out = splice_stars(copy, auth, at);
  free(copy);
  return out;
}

char *fetch_redact_url(const char *url, int parsed) { return redact_n(url, strlen(url), parsed); }

char *fetch_redact_text(const char *text) {
  size_t len = strlen(text), cap = len + 1, n = 0;
  char *out = malloc(cap);
  if (out == NULL)
    return NULL;
  size_t i = 0;
  while (i < len) {
    const char *sep = strstr(text + i, "://");
    if (sep == NULL) {
      memcpy(out + n, text + i, len - i);
      n += len - i;
      break;
    }
    /* The URL starts after the last delimiter before "://", ends at the next one. */
    size_t start = (size_t)(sep - text);
    while (start > i && strchr(" \t\"'(<", text[start - 1]) == NULL)
      start--;
    size_t stop = (size_t)(sep - text) + 3;
    while (stop < len && strchr(" \t\"')>", text[stop]) == NULL)
      stop++;
    char *shown = redact_n(text + start, stop - start, 0);
    if (shown == NULL) {
      free(out);
      return NULL;
    }
    memcpy(out + n, text + i, start - i); /* shown is never longer than the original + 3 */
    n += start - i;
    size_t slen = strlen(shown);
    if (n + slen + (len - stop) + 1 > cap) {
      cap = n + slen + (len - stop) + 1;
      char *grown = realloc(out, cap);
      if (grown == NULL) {
        free(shown);
        free(out);
        return NULL;
      }
      out = grown;
    }
    memcpy(out + n, shown, slen);
    n += slen;
    free(shown);
    i = stop;
  }
  out[n] = '\0';
  return out;
}

/* Length of the UTF-8 sequence at |s| (1-4), or 0 if it is not one
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t utf8_len(const unsigned char *s, uint32_t *cp) {
  size_t n;
  uint32_t c;
  if (s[0] < 0x80) {
    *cp = s[0];
    return 1;
  } else if ((s[0] & 0xE0) == 0xC0) {
    n = 2;
    c = s[0] & 0x1F;
  } else if ((s[0] & 0xF0) == 0xE0) {
    n = 3;
    c = s[0] & 0x0F;
  } else if ((s[0] & 0xF8) == 0xF0) {
    n = 4;
    c = s[0] & 0x07;
  } else {
    return 0;
  }
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0; /* also stops at the terminating NUL */
    c = (c << 6) | (s[i] & 0x3F);
  }
  static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (c < min[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
    return 0;
  *cp = c;
  return n;
}

char *fetch_escape(const char *text) {
  size_t len = strlen(text);
  char *out = malloc(len * 6 + 1); /* \u009f is the longest: 6 bytes for 2 */
  if (out == NULL)
    return NULL;
  const unsigned char *s = (const unsigned char *)text;
  size_t n = 0;
  while (*s) {
    uint32_t cp;
    size_t k = utf8_len(s, &cp);
    if (k == 0) {
      n += (size_t)sprintf(out + n, "\\x%02x", *s);
      s++;
      continue;
    }
    if (cp == '\\')
      n += (size_t)sprintf(out + n, "\\\\");
    else if (cp == '\n')
      n += (size_t)sprintf(out + n, "\\n");
    else if (cp == '\r')
      n += (size_t)sprintf(out + n, "\\r");
    else if (cp == '\t')
      n += (size_t)sprintf(out + n, "\\t");
    else if (cp < 0x20 || cp == 0x7F)
      n += (size_t)sprintf(out + n, "\\x%02x", (unsigned)cp);
    else if (cp >= 0x80 && cp <= 0x9F)
      n += (size_t)sprintf(out + n, "\\u%04x", (unsigned)cp);
    else {
      memcpy(out + n, s, k);
      n += k;
    }
    s += k;
  }
  out[n] = '\0';
  return out;
}

/* FNV-1a, 64 bits, names the file of a long id: its offset basis. */
#define FNV_OFFSET UINT64_C(14695981039346656037)

/* |src| made safe into out[*n..]: [A-Za-z0-9._-] kept, other bytes '_'.
 * *hash (FNV-1a) takes every byte of |src|, also those past |cap|. */
static void safe_append(char *out, size_t *n, size_t cap, const char *src, size_t len, uint64_t *hash) {
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)src[i];
    *hash = (*hash ^ c) * UINT64_C(1099511628211);
    if (*n + 1 < cap)
      out[(*n)++] = (isalnum(c) || c == '-' || c == '_' || c == '.') && c < 0x80 ? (char)c : '_';
  }
  out[*n] = '\0';
}

/* A made-safe name of any length into FETCH_NAME_MAX bytes: long ones cut
 * and tagged with |hash| (of the whole), a leading dot turned into '_'. */
static void finish_name(char *name, size_t n, uint64_t hash, size_t line, char *out) {
  if (n > 200) {
    snprintf(out, FETCH_NAME_MAX, "%.183s-%016llx", name, (unsigned long long)hash);
  } else if (n == 0) {
    snprintf(out, FETCH_NAME_MAX, "line-%zu", line);
  } else {
    memcpy(out, name, n + 1);
  }
  if (out[0] == '.')
    out[0] = '_'; /* no hidden files, and never "." or ".." */
}

void fetch_file_name(const char *id, size_t line, char *out) {
  char name[FETCH_ID_MAX + 1];
  size_t n = 0;
  uint64_t hash = FNV_OFFSET;
  safe_append(name, &n, sizeof(name), id, strlen(id), &hash);
  finish_name(name, n, hash, line, out);
}

/* The host and the path of |url| (for a template): no userinfo, no port,
 * no query. Both may be empty. */
static void url_parts(const char *url, const char **host, size_t *host_len, const char **path,
                      size_t *path_len) {
  const char *auth = strstr(url, "://");
  auth = auth != NULL ? auth + 3 : url;
  size_t alen = strcspn(auth, "/?#");
  const char *h = auth;
  for (size_t i = 0; i < alen; i++)
    if (auth[i] == '@')
      h = auth + i + 1;
  size_t hlen = (size_t)(auth + alen - h);
  if (hlen > 0 && h[0] == '[') {
    const char *close = memchr(h, ']', hlen);
    hlen = close != NULL ? (size_t)(close - h) + 1 : hlen;
  } else {
    const char *colon = memchr(h, ':', hlen);
    if (colon != NULL)
      hlen = (size_t)(colon - h);
  }
  *host = h;
  *host_len = hlen;
  *path = auth + alen;
  *path_len = (*path)[0] == '/' ? strcspn(*path, "?#") : 0;
}

int fetch_output_name(const char *tmpl, const char *id, const char *url, size_t line, char *out,
                      char *why, size_t why_len) {
  char name[4 * FETCH_ID_MAX + 64], num[32];
  size_t n = 0;
  uint64_t hash = FNV_OFFSET;
  const char *host, *path;
  size_t host_len, path_len;
  url_parts(url, &host, &host_len, &path, &path_len);
  while (path_len > 0 && path[0] == '/') { /* "/a/b" names as "a_b" */
    path++;
    path_len--;
  }
  for (const char *t = tmpl; *t;) {
    if ((t[0] == '{' && t[1] == '{') || (t[0] == '}' && t[1] == '}')) {
      safe_append(name, &n, sizeof(name), t, 1, &hash);
      t += 2;
    } else if (t[0] == '}') {
      snprintf(why, why_len, "--output-template: a '}' without its '{' in '%%s'");
      return -1;
    } else if (t[0] != '{') {
      safe_append(name, &n, sizeof(name), t, 1, &hash);
      t++;
    } else if (strncmp(t, "{id}", 4) == 0) {
      safe_append(name, &n, sizeof(name), id, strlen(id), &hash);
      t += 4;
    } else if (strncmp(t, "{host}", 6) == 0) {
      safe_append(name, &n, sizeof(name), host, host_len, &hash);
      t += 6;
    } else if (strncmp(t, "{path}", 6) == 0) {
      safe_append(name, &n, sizeof(name), path, path_len, &hash);
      t += 6;
    } else if (strncmp(t, "{line}", 6) == 0) {
      int k = snprintf(num, sizeof(num), "%zu", line);
      safe_append(name, &n, sizeof(name), num, (size_t)k, &hash);
      t += 6;
    } else {
      snprintf(why, why_len, "--output-template knows {id}, {host}, {path} and {line}: '%%s'");
      return -1;
    }
  }
  finish_name(name, n, hash, line, out);
  return 0;
}

static int hexval(char c) {
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

int fetch_parse_sha256(const char *hex, unsigned char out[32]) {
  if (strlen(hex) != 64)
    return -1;
  for (int i = 0; i < 32; i++) {
    int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return -1;
    out[i] = (unsigned char)(hi << 4 | lo);
  }
  return 0;
}
