/* Input checks on what callers hand us: methods, header lines, URLs. Pure. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pure.h"

/* RFC 9110 §5.6.2 tchar */
static int is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
    return 1;
  return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int valid_token(const char *s, size_t len) {
  if (len == 0)
    return 0;
  for (size_t i = 0; i < len; i++)
    if (!is_tchar((unsigned char)s[i]))
      return 0;
  return 1;
}

int salvo__valid_method(const char *method) {
  return method != NULL && valid_token(method, strlen(method));
}

int salvo__valid_header_name(const char *name, size_t len) {
  return len <= 256 && valid_token(name, len);
}

int salvo__valid_header_value(const char *value, size_t len) {
  if (len > SALVO_MAX_HEADER_LINE_SIZE)
    return 0;
  /* RFC 9110 §5.5: field values never carry CR, LF or NUL; other controls
   * except HTAB are rejected too, as nghttp2 does. */
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)value[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return 0;
  }
  return 1;
}

int salvo__split_header_line(const char *line, const char **name, size_t *name_len,
                             const char **value, size_t *value_len) {
  const char *colon = strchr(line, ':');
  if (colon == NULL)
    return SALVO_EINVAL;
  *name = line;
  *name_len = (size_t)(colon - line);
  const char *v = colon + 1;
  while (*v == ' ' || *v == '\t')
    v++;
  size_t vlen = strlen(v);
  while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
    vlen--;
  *value = v;
  *value_len = vlen;
  if (!salvo__valid_header_name(*name, *name_len) || !salvo__valid_header_value(v, vlen))
    return SALVO_EINVAL;
  return 0;
}

char *salvo__header_line(const char *name, size_t name_len, const char *value, size_t value_len) {
  /* libcurl drops "Name:" (it means "remove the internal header"); "Name;"
   * is its spelling of a header sent with an empty value. */
  size_t n = name_len + 2 + value_len + 1;
  char *line = malloc(n);
  if (line == NULL)
    return NULL;
  memcpy(line, name, name_len);
  if (value_len == 0) {
    line[name_len] = ';';
    line[name_len + 1] = '\0';
    return line;
  }
  line[name_len] = ':';
  line[name_len + 1] = ' ';
  memcpy(line + name_len + 2, value, value_len);
  line[name_len + 2 + value_len] = '\0';
  return line;
}

int salvo__header_has_name(const struct curl_slist *list, const char *name, size_t name_len) {
  for (; list != NULL; list = list->next) {
    const char *l = list->data;
    if (strncasecmp(l, name, name_len) == 0 && (l[name_len] == ':' || l[name_len] == ';'))
      return 1;
  }
  return 0;
}

int salvo__parse_url(const char *url, int *is_https, CURLU **out) {
  if (url == NULL || *url == '\0' || strnlen(url, SALVO_MAX_URL_SIZE + 1) > SALVO_MAX_URL_SIZE)
    return SALVO_EINVAL;
  /* The scheme by hand (no allocation), the rest by libcurl's parser, which
   * refuses an empty host ("http://:80/", "http://user@/", "http://[]/";
   * tests/unit/test_validate.c holds the shapes). No CURLU_GUESS_SCHEME: a
   * URL must say what it is. */
  if (strncasecmp(url, "https://", 8) == 0)
    *is_https = 1;
  else if (strncasecmp(url, "http://", 7) == 0)
    *is_https = 0;
  else
    return SALVO_EINVAL;
  /* But for an empty authority: libcurl 7.88 reads "http:///ok" as the
   * host "ok", and would resolve that through DNS. */
  if (url[*is_https ? 8 : 7] == '/')
    return SALVO_EINVAL;
  CURLU *u = curl_url();
  if (u == NULL)
    return SALVO_ENOMEM;
  if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
    curl_url_cleanup(u);
    return SALVO_EINVAL;
  }
  if (out != NULL)
    *out = u;
  else
    curl_url_cleanup(u);
  return 0;
}

void salvo__redact_url(const char *url, char *out, size_t cap) {
  /* A password in the userinfo becomes "***"; the rest is cut to fit. */
  const char *auth = strstr(url, "://");
  const char *colon = NULL, *at = NULL;
  if (auth != NULL) {
    auth += 3;
    size_t alen = strcspn(auth, "/?#");
    for (size_t i = 0; i < alen; i++)
      if (auth[i] == '@')
        at = auth + i;
    if (at != NULL)
      colon = memchr(auth, ':', (size_t)(at - auth));
  }
  if (colon == NULL)
    snprintf(out, cap, "%s", url);
  else
    snprintf(out, cap, "%.*s***%s", (int)(colon + 1 - url), url, at);
}

/* Framing and hop-by-hop fields are salvo's (and libcurl's) to write: given
 * by a caller they could frame a second request on the wire (Content-Length:
 * 0 before a body) or change what the connection does. */
const char *salvo__header_reserved(const char *name, size_t len) {
  static const struct {
    const char *name;
    const char *why;
  } reserved[] = {
      {"Content-Length", "salvo frames the body itself"},
      {"Transfer-Encoding", "salvo frames the body itself"},
      {"TE", "a hop-by-hop field"},
      {"Trailer", "salvo sends no trailers"},
      {"Connection", "a hop-by-hop field; salvo manages connections"},
      {"Keep-Alive", "a hop-by-hop field; salvo manages connections"},
      {"Proxy-Connection", "a hop-by-hop field; salvo manages connections"},
      {"Upgrade", "salvo does not switch protocols"},
  };
  for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
    if (strlen(reserved[i].name) == len && strncasecmp(name, reserved[i].name, len) == 0)
      return reserved[i].why;
  return NULL;
}

int salvo__is_host_header(const char *name, size_t len) {
  return len == 4 && strncasecmp(name, "Host", 4) == 0;
}

const char *salvo_header_reserved(const char *name) {
  return name != NULL ? salvo__header_reserved(name, strlen(name)) : NULL;
}

/* Does IP literal |host| fall in |entry| ("10.0.0.1", "10.0.0.0/8", "::1",
 * "fd00::/8")? */
static int ip_in(const unsigned char *host, int family, const char *entry, size_t n) {
  char text[64];
  if (n == 0 || n >= sizeof(text))
    return 0;
  memcpy(text, entry, n);
  text[n] = '\0';
  char *slash = strchr(text, '/');
  int max = family == AF_INET ? 32 : 128, bits = max;
  if (slash != NULL) {
    *slash = '\0';
    char *end;
    long b = strtol(slash + 1, &end, 10);
    if (*end != '\0' || b < 0 || b > max)
      return 0;
    bits = (int)b;
  }
  unsigned char net[16];
  if (inet_pton(family, text, net) != 1)
    return 0;
  for (int i = 0; i < bits; i++) {
    unsigned char mask = (unsigned char)(0x80 >> (i % 8));
    if ((host[i / 8] & mask) != (net[i / 8] & mask))
      return 0;
  }
  return 1;
}

/* curl's NO_PROXY convention: a comma-separated list, "*" for every host. A
 * host name matches an entry naming it or a domain it is in (a leading dot
 * is ignored); an IP address matches an address or a CIDR range, never by
 * suffix. Compared without case. */
int salvo__no_proxy_match(const char *list, const char *host) {
  if (list == NULL || host == NULL)
    return 0;
  size_t hlen = strlen(host);
  char bare[64];
  if (hlen > 1 && host[0] == '[' && host[hlen - 1] == ']' && hlen - 2 < sizeof(bare)) {
    memcpy(bare, host + 1, hlen - 2); /* an IPv6 literal as a URL gives it */
    bare[hlen - 2] = '\0';
    host = bare;
    hlen -= 2;
  }
  unsigned char ip[16];
  int family = inet_pton(AF_INET, host, ip) == 1 ? AF_INET
               : inet_pton(AF_INET6, host, ip) == 1 ? AF_INET6 : 0;
  const char *p = list;
  while (*p != '\0') {
    while (*p == ' ' || *p == ',')
      p++;
    size_t n = strcspn(p, ", ");
    const char *entry = p;
    p += n;
    if (n == 0)
      continue;
    if (n == 1 && entry[0] == '*')
      return 1;
    if (entry[0] == '[' && n > 2 && entry[n - 1] == ']') {
      entry++;
      n -= 2;
    }
    if (family != 0) {
      if (ip_in(ip, family, entry, n))
        return 1;
      continue;
    }
    if (entry[0] == '.') {
      entry++;
      n--;
    }
    if (n == 0 || n > hlen)
      continue;
    if (strncasecmp(host + hlen - n, entry, n) == 0 && (n == hlen || host[hlen - n - 1] == '.'))
      return 1;
  }
  return 0;
}

/* RFC 9112 §6.3: Content-Length values that disagree (in one field, "5, 2",
 * or in several) are an unrecoverable framing error; libcurl 7.88 takes the
 * last one and calls a shorter body complete. Fed every response header line
 * in order; a status line starts a new response (after a 1xx). */
int salvo__content_length_merge(int64_t *seen, const char *line, size_t len) {
  if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
    *seen = -1;
    return 0;
  }
  if (len < 15 || strncasecmp(line, "content-length:", 15) != 0)
    return 0;
  const char *p = line + 15, *end = line + len;
  while (p < end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
      p++;
    if (p >= end || *p == '\r' || *p == '\n')
      break;
    int64_t v = 0;
    const char *digits = p;
    while (p < end && *p >= '0' && *p <= '9' && v < INT64_MAX / 10)
      v = v * 10 + (*p++ - '0');
    if (p == digits)
      return 0; /* not a number: libcurl's own parser refuses it */
    if (*seen >= 0 && *seen != v)
      return -1;
    *seen = v;
    while (p < end && *p != ',')
      p++;
  }
  return 0;
}

/* "scheme://host:port" from a URL libcurl already accepted: the authority
 * without userinfo, lower-cased, with the default port when none is given. */
size_t salvo__host_key(const char *url, int is_https, char *out, size_t cap) {
  const char *a = strstr(url, "://");
  a = a != NULL ? a + 3 : url;
  size_t alen = strcspn(a, "/?#");
  const char *at = NULL;
  for (size_t i = 0; i < alen; i++)
    if (a[i] == '@')
      at = a + i;
  if (at != NULL) {
    alen -= (size_t)(at + 1 - a);
    a = at + 1;
  }
  const char *scheme = is_https ? "https://" : "http://";
  size_t n = strlen(scheme);
  if (n + alen + 7 >= cap)
    alen = cap - n - 7; /* absurdly long host names share a key; still correct, just coarser */
  memcpy(out, scheme, n);
  int has_port = 0;
  for (size_t i = 0; i < alen; i++) {
    out[n++] = (char)tolower((unsigned char)a[i]);
    if (a[i] == ']')
      has_port = 0;
    else if (a[i] == ':')
      has_port = a[0] != '[' || memchr(a, ']', i) != NULL;
  }
  if (!has_port) {
    const char *port = is_https ? ":443" : ":80";
    size_t pl = strlen(port);
    memcpy(out + n, port, pl);
    n += pl;
  }
  out[n] = '\0';
  return n;
}

/* ------------------------------------------------------ pinned addresses */

/* A port as the pinning entries give it: 1 to 5 digits, 1..65535. */
static int valid_port(const char *s, size_t len) {
  if (len == 0 || len > 5)
    return 0;
  unsigned long v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return 0;
    v = v * 10 + (unsigned long)(s[i] - '0');
  }
  return v >= 1 && v <= 65535;
}

/* A host name or an IPv4 address as a URL gives it: letters, digits, '-',
 * '.', '_', at most 255 bytes (libcurl's limit for a resolve entry). */
static int valid_host_name(const char *s, size_t len) {
  if (len == 0 || len > 255)
    return 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!isalnum(c) && c != '-' && c != '.' && c != '_')
      return 0;
  }
  return 1;
}

/* An IP literal: a dotted IPv4 address, or an IPv6 one in brackets. Checked
 * with inet_pton(), so "localhost" or "1.2.3" never reach a resolver. */
static int valid_ip_literal(const char *s, size_t len) {
  char text[64];
  int family = AF_INET;
  if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
    family = AF_INET6;
    s++;
    len -= 2;
  }
  if (len == 0 || len >= sizeof(text))
    return 0;
  memcpy(text, s, len);
  text[len] = '\0';
  unsigned char addr[16];
  return inet_pton(family, text, addr) == 1;
}

/* "HOST:PORT:ADDR[,ADDR...]": the form of curl's --resolve that pins for
 * good. Its '+' (expiring) and '-' (removal) forms are refused, and so is
 * the '*' host (valid_host_name()). */
int salvo__valid_resolve_entry(const char *entry) {
  if (entry == NULL || entry[0] == '+' || entry[0] == '-')
    return 0;
  const char *colon = strchr(entry, ':');
  if (colon == NULL || !valid_host_name(entry, (size_t)(colon - entry)))
    return 0;
  const char *port = colon + 1;
  const char *addrs = strchr(port, ':');
  if (addrs == NULL || !valid_port(port, (size_t)(addrs - port)))
    return 0;
  const char *a = addrs + 1;
  for (;;) {
    size_t n = strcspn(a, ",");
    if (!valid_ip_literal(a, n))
      return 0; /* an empty one too: "h:80:" and "h:80:1.2.3.4," */
    if (a[n] == '\0')
      return 1;
    a += n + 1;
  }
}

/* One field of a connect-to entry at *p: "[...]" or a run without ':'. Sets
 * *len and moves *p past the field; 0 if a bracket is not closed. */
static int connect_to_field(const char **p, size_t *len) {
  const char *s = *p;
  size_t n;
  if (*s == '[') {
    const char *close = strchr(s, ']');
    if (close == NULL)
      return 0;
    n = (size_t)(close + 1 - s);
  } else {
    n = strcspn(s, ":");
  }
  *len = n;
  *p = s + n;
  return 1;
}

/* A host field of a connect-to entry: empty (any host, or the URL's), an
 * IPv6 literal in brackets, or a host name or IPv4 address. */
static int valid_connect_to_host(const char *s, size_t len) {
  if (len == 0)
    return 1;
  if (s[0] == '[')
    return valid_ip_literal(s, len);
  return valid_host_name(s, len);
}

/* "HOST:PORT:CONNECT_TO_HOST:CONNECT_TO_PORT", each field possibly empty as
 * curl's --connect-to allows; ports 1..65535. */
int salvo__valid_connect_to_entry(const char *entry) {
  if (entry == NULL)
    return 0;
  const char *p = entry;
  for (int field = 0; field < 4; field++) {
    const char *s = p;
    size_t len;
    if (!connect_to_field(&p, &len))
      return 0;
    int ok = field % 2 == 0 ? valid_connect_to_host(s, len) : len == 0 || valid_port(s, len);
    if (!ok)
      return 0;
    if (field < 3 && *p++ != ':')
      return 0;
  }
  return *p == '\0';
}
