#include <string.h>

#include <criterion/criterion.h>

#include "internal.h"

Test(validate, methods) {
  cr_assert(salvo__valid_method("GET"));
  cr_assert(salvo__valid_method("PATCH"));
  cr_assert(salvo__valid_method("X-CUSTOM"));
  cr_assert_not(salvo__valid_method(NULL));
  cr_assert_not(salvo__valid_method(""));
  cr_assert_not(salvo__valid_method("GET "));
  cr_assert_not(salvo__valid_method("GE\r\nT"));
  cr_assert_not(salvo__valid_method("G(T"));
}

Test(validate, header_values_reject_cr_lf_and_controls) {
  cr_assert(salvo__valid_header_value("a b\tc", 5));
  cr_assert(salvo__valid_header_value("", 0));
  cr_assert(salvo__valid_header_value("caf\xc3\xa9", 5)); /* obs-text is allowed */
  cr_assert_not(salvo__valid_header_value("a\rb", 3));
  cr_assert_not(salvo__valid_header_value("a\nb", 3));
  cr_assert_not(salvo__valid_header_value("a\0b", 3));
  cr_assert_not(salvo__valid_header_value("a\x7f", 2));
}

Test(validate, header_lines) {
  const char *n, *v;
  size_t nl, vl;
  cr_assert_eq(salvo__split_header_line("X-Id:  42  ", &n, &nl, &v, &vl), 0);
  cr_assert_eq(nl, 4);
  cr_assert_eq(strncmp(n, "X-Id", nl), 0);
  cr_assert_eq(vl, 2);
  cr_assert_eq(strncmp(v, "42", vl), 0);
  cr_assert_eq(salvo__split_header_line("Empty:", &n, &nl, &v, &vl), 0);
  cr_assert_eq(vl, 0);
  cr_assert_eq(salvo__split_header_line("NoColon", &n, &nl, &v, &vl), SALVO_EINVAL);
  cr_assert_eq(salvo__split_header_line(": value", &n, &nl, &v, &vl), SALVO_EINVAL);
  cr_assert_eq(salvo__split_header_line("Bad Name: v", &n, &nl, &v, &vl), SALVO_EINVAL);
  cr_assert_eq(salvo__split_header_line("X: a\r\nInjected: 1", &n, &nl, &v, &vl), SALVO_EINVAL);
}

Test(validate, header_line_spelling_for_curl) {
  char *l = salvo__header_line("X-A", 3, "v", 1);
  cr_assert_str_eq(l, "X-A: v");
  free(l);
  l = salvo__header_line("X-A", 3, "", 0);
  cr_assert_str_eq(l, "X-A;"); /* libcurl's way to send an empty header */
  free(l);
}

Test(validate, urls) {
  int https = -1;
  cr_assert_eq(salvo__parse_url("http://127.0.0.1:8080/a?b=c", &https, NULL), 0);
  cr_assert_eq(https, 0);
  cr_assert_eq(salvo__parse_url("HTTPS://example.com/", &https, NULL), 0);
  cr_assert_eq(https, 1);
  cr_assert_eq(salvo__parse_url("ftp://example.com/", &https, NULL), SALVO_EINVAL);
  cr_assert_eq(salvo__parse_url("file:///etc/passwd", &https, NULL), SALVO_EINVAL);
  cr_assert_eq(salvo__parse_url("example.com/path", &https, NULL), SALVO_EINVAL);
  cr_assert_eq(salvo__parse_url("http://", &https, NULL), SALVO_EINVAL);
  cr_assert_eq(salvo__parse_url("http://exa mple.com/", &https, NULL), SALVO_EINVAL);
  cr_assert_eq(salvo__parse_url("http://a.com/\r\nX: y", &https, NULL), SALVO_EINVAL);
  cr_assert_eq(salvo__parse_url("", &https, NULL), SALVO_EINVAL);
  cr_assert_eq(salvo__parse_url(NULL, &https, NULL), SALVO_EINVAL);
  cr_assert_eq(salvo__parse_url("http://:80/", &https, NULL), SALVO_EINVAL, "no host");
  cr_assert_eq(salvo__parse_url("http://?x", &https, NULL), SALVO_EINVAL, "no host");
  cr_assert_eq(salvo__parse_url("httpx://a.com/", &https, NULL), SALVO_EINVAL);
  CURLU *parsed = NULL; /* the parsed URL is kept for libcurl */
  cr_assert_eq(salvo__parse_url("https://b.com/p?q=1", &https, &parsed), 0);
  cr_assert_eq(https, 1);
  char *host = NULL;
  cr_assert_eq(curl_url_get(parsed, CURLUPART_HOST, &host, 0), CURLUE_OK);
  cr_assert_str_eq(host, "b.com");
  curl_free(host);
  curl_url_cleanup(parsed);
}

/* Every shape of a URL without a host is refused here, before libcurl could
 * take a path for a host name and resolve it ("http:///ok" is the host "ok"
 * to libcurl 7.88). No DNS: nothing is resolved in this test. */
Test(validate, a_url_without_a_host_is_refused) {
  static const char *const no_host[] = {
      "http:///ok", "https:///ok", "HTTP:///ok", "http:///", "http:////ok", "http://:80/",
      "http://:/", "http://@/", "http://@:80/", "http://user@/", "http://u:p@/x", "http://[]/",
      "http://[/", "http://]/", "http://#f", "http://?x", "http:/ok", "http:ok"};
  for (size_t i = 0; i < sizeof(no_host) / sizeof(no_host[0]); i++) {
    int https = -1;
    CURLU *u = NULL;
    cr_assert_eq(salvo__parse_url(no_host[i], &https, &u), SALVO_EINVAL, "%s", no_host[i]);
    cr_assert_null(u, "%s: nothing handed out", no_host[i]);
  }
  /* and the shapes with a host still pass */
  static const char *const with_host[] = {"http://127.0.0.1/", "http://[::1]:8080/x",
                                          "http://u:p@127.0.0.1/", "https://a.example/"};
  for (size_t i = 0; i < sizeof(with_host) / sizeof(with_host[0]); i++) {
    int https = -1;
    cr_assert_eq(salvo__parse_url(with_host[i], &https, NULL), 0, "%s", with_host[i]);
  }
}

Test(validate, no_proxy_lists_match_hosts_and_their_subdomains) {
  cr_assert(salvo__no_proxy_match("*", "anything.test"));
  cr_assert(salvo__no_proxy_match("example.com", "example.com"));
  cr_assert(salvo__no_proxy_match("example.com", "API.Example.COM"), "subdomain, any case");
  cr_assert(salvo__no_proxy_match(".example.com", "api.example.com"), "a leading dot is ignored");
  cr_assert(salvo__no_proxy_match(".example.com", "example.com"));
  cr_assert_not(salvo__no_proxy_match("example.com", "badexample.com"), "not a suffix of a label");
  cr_assert_not(salvo__no_proxy_match("api.example.com", "example.com"));
  cr_assert(salvo__no_proxy_match("localhost, 127.0.0.1", "127.0.0.1"), "spaces and commas");
  cr_assert_not(salvo__no_proxy_match("127.0.0.1", "127.0.0.10"));
  cr_assert(salvo__no_proxy_match("::1", "[::1]"), "an IPv6 literal as a URL gives it");
  cr_assert(salvo__no_proxy_match("[::1]", "[::1]"));
  cr_assert_not(salvo__no_proxy_match("0.0.1", "127.0.0.1"), "addresses never match by suffix");
  cr_assert_not(salvo__no_proxy_match(".0.1", "127.0.0.1"));
  cr_assert(salvo__no_proxy_match("127.0.0.0/8", "127.0.0.1"), "CIDR, as curl 7.86+");
  cr_assert_not(salvo__no_proxy_match("10.0.0.0/8", "127.0.0.1"));
  cr_assert(salvo__no_proxy_match("fd00::/8", "[fd12::1]"));
  cr_assert_not(salvo__no_proxy_match("127.0.0.0/99", "127.0.0.1"), "a bad prefix length");
  cr_assert_not(salvo__no_proxy_match("", "example.com"));
  cr_assert_not(salvo__no_proxy_match(",,", "example.com"));
  cr_assert_not(salvo__no_proxy_match(NULL, "example.com"));
}

static int merge_all(const char *const *lines) {
  int64_t seen = -1;
  for (; *lines != NULL; lines++)
    if (salvo__content_length_merge(&seen, *lines, strlen(*lines)) != 0)
      return -1;
  return (int)seen;
}

Test(validate, content_length_values_must_agree) {
  const char *one[] = {"HTTP/1.1 200 OK\r\n", "Content-Length: 5\r\n", NULL};
  cr_assert_eq(merge_all(one), 5);
  const char *same[] = {"HTTP/1.1 200 OK\r\n", "Content-Length: 5\r\n", "content-length: 5, 5\r\n", NULL};
  cr_assert_eq(merge_all(same), 5, "the same value again is allowed (RFC 9112 6.3)");
  const char *two[] = {"HTTP/1.1 200 OK\r\n", "Content-Length: 5\r\n", "Content-Length: 2\r\n", NULL};
  cr_assert_eq(merge_all(two), -1);
  const char *list[] = {"HTTP/1.1 200 OK\r\n", "Content-Length: 5, 2\r\n", NULL};
  cr_assert_eq(merge_all(list), -1);
  const char *h2[] = {"HTTP/2 200 \r\n", "content-length: 7\r\n", NULL};
  cr_assert_eq(merge_all(h2), 7);
  const char *interim[] = {"HTTP/1.1 100 Continue\r\n", "Content-Length: 9\r\n", "\r\n",
                           "HTTP/1.1 200 OK\r\n", "Content-Length: 3\r\n", NULL};
  cr_assert_eq(merge_all(interim), 3, "a new status line starts a new response");
  const char *other[] = {"HTTP/1.1 200 OK\r\n", "Content-Lengthy: 1\r\n", "X-Content-Length: 2\r\n", NULL};
  int64_t seen = -1;
  for (int i = 0; other[i] != NULL; i++)
    cr_assert_eq(salvo__content_length_merge(&seen, other[i], strlen(other[i])), 0);
  cr_assert_eq(seen, -1, "other fields are not Content-Length");
}

/* Host is found whatever the case of its name (HTTP/2 sends names in lower
 * case; a caller may write any case), and nothing else is taken for it. */
Test(validate, the_host_header_in_any_case) {
  static const char *const yes[] = {"Host", "host", "HOST", "hOsT"};
  static const char *const no[] = {"Hos", "Hosts", "X-Host", "Ghost"};
  for (size_t i = 0; i < 4; i++) {
    cr_assert(salvo__is_host_header(yes[i], strlen(yes[i])), "%s", yes[i]);
    cr_assert(!salvo__is_host_header(no[i], strlen(no[i])), "%s", no[i]);
  }
}

/* opts.resolve entries: "HOST:PORT:ADDR[,ADDR...]" with IP literals only, so
 * that no typo ever turns into a DNS lookup. */
Test(validate, resolve_entries) {
  static const char *const good[] = {
      "salvo-pinned.invalid:8080:127.0.0.1",
      "Example.COM:443:10.0.0.1,10.0.0.2",
      "example.com:443:[::1]",
      "example.com:443:[::1],127.0.0.1,[2001:db8::7]",
      "127.0.0.1:80:10.1.2.3",        /* an IPv4 host, as a URL spells it */
      "under_score.example:1:1.2.3.4", /* port 1 */
      "h:65535:1.2.3.4",
  };
  static const char *const bad[] = {
      "",
      "salvo-pinned.invalid",
      "salvo-pinned.invalid:8080",       /* no address */
      "salvo-pinned.invalid:8080:",      /* empty address */
      ":8080:127.0.0.1",                 /* empty HOST */
      "h::127.0.0.1",                    /* missing port */
      "h:0:127.0.0.1",                   /* port 0 */
      "h:70000:127.0.0.1",               /* port above 65535 */
      "h:65536:127.0.0.1",
      "h:123456:127.0.0.1",
      "h:-80:127.0.0.1",
      "h:+80:127.0.0.1",
      "h:8o:127.0.0.1",
      "h: 80:127.0.0.1",
      "h:80:localhost",                  /* a name, not an address */
      "h:80:1.2.3",                      /* not a dotted quad */
      "h:80:1.2.3.256",
      "h:80:127.0.0.1,",                 /* empty address at the end */
      "h:80:127.0.0.1,,10.0.0.1",
      "h:80:127.0.0.1,localhost",
      "h:80:::1",                        /* IPv6 without brackets */
      "h:80:[::1",
      "h:80:[127.0.0.1]",                /* brackets hold IPv6 only */
      "h:80:[fe80::1%eth0]",             /* no zone */
      "h:80:[]",
      "h:80: 127.0.0.1",
      "+h:80:127.0.0.1",                 /* curl's expiring form */
      "-h:80",                           /* curl's removal form */
      "-h:80:127.0.0.1",
      "*:80:127.0.0.1",                  /* wildcard host */
      "[::1]:80:127.0.0.1",              /* libcurl 7.88 cannot pin an IPv6 host */
      "bad host:80:127.0.0.1",
      "h/x:80:127.0.0.1",
      "user@h:80:127.0.0.1",
  };
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    cr_assert(salvo__valid_resolve_entry(good[i]), "refused \"%s\"", good[i]);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    cr_assert_not(salvo__valid_resolve_entry(bad[i]), "took \"%s\"", bad[i]);
  cr_assert_not(salvo__valid_resolve_entry(NULL));
  char longest[300];
  memset(longest, 'a', 255);
  strcpy(longest + 255, ":80:127.0.0.1");
  cr_assert(salvo__valid_resolve_entry(longest), "a 255-byte host name");
  memset(longest, 'a', 256);
  strcpy(longest + 256, ":80:127.0.0.1");
  cr_assert_not(salvo__valid_resolve_entry(longest), "a 256-byte host name");
}

/* opts.connect_to entries: four fields, any of them empty, as curl's
 * --connect-to. */
Test(validate, connect_to_entries) {
  static const char *const good[] = {
      "salvo-pinned.invalid:80:127.0.0.1:8080",
      "example.com:443:backend.example:8443", /* a name to connect to is allowed */
      "::127.0.0.1:8080",                     /* any host, any port */
      "example.com:::8080",                   /* any port; the URL's host */
      "example.com:443::",                    /* changes nothing */
      ":::",
      "[::1]:80:[2001:db8::1]:81",
      "example.com:80:[::1]:",
      "127.0.0.1:80:10.0.0.1:1",
      "h:65535:h2:65535",
  };
  static const char *const bad[] = {
      "",
      "example.com",
      "example.com:80",
      "example.com:80:127.0.0.1",          /* three fields */
      "example.com:80:127.0.0.1:8080:9",   /* five */
      "example.com:0:127.0.0.1:8080",
      "example.com:80:127.0.0.1:0",
      "example.com:70000:127.0.0.1:8080",
      "example.com:80:127.0.0.1:70000",
      "example.com:8o:127.0.0.1:8080",
      "example.com:80:127.0.0.1:-1",
      "example.com:80:::1:8080",           /* IPv6 without brackets */
      "example.com:80:[::1:8080",
      "example.com:80:[localhost]:8080",   /* brackets hold IPv6 only */
      "[::1:80:127.0.0.1:8080",
      "bad host:80:127.0.0.1:8080",
      "example.com:80:bad/host:8080",
      "example.com:80:127.0.0.1:80 ",
  };
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    cr_assert(salvo__valid_connect_to_entry(good[i]), "refused \"%s\"", good[i]);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    cr_assert_not(salvo__valid_connect_to_entry(bad[i]), "took \"%s\"", bad[i]);
  cr_assert_not(salvo__valid_connect_to_entry(NULL));
}
