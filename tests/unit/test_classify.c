#include <errno.h>

#include <criterion/criterion.h>

#include "internal.h"

static void expect(CURLcode rc, long os_errno, int stop, int sent, int64_t pre, int error,
                   int reached) {
  salvo__outcome_t o = salvo__classify(rc, os_errno, stop, sent, pre);
  cr_expect_eq(o.error, error, "curl %d stop %d: error %s, want %s", rc, stop,
               salvo_err_name(o.error), salvo_err_name(error));
  cr_expect_eq(o.reached, reached, "curl %d stop %d: reached %d, want %d", rc, stop, o.reached,
               reached);
}

Test(classify, never_reached_the_server) {
  expect(CURLE_COULDNT_RESOLVE_HOST, 0, 0, 0, 0, SALVO_EDNS, 0);
  expect(CURLE_COULDNT_CONNECT, ECONNREFUSED, 0, 0, 0, SALVO_ECONNREFUSED, 0);
  expect(CURLE_COULDNT_CONNECT, EHOSTUNREACH, 0, 0, 0, SALVO_ECONNECT, 0);
  /* this machine ran out of something: not the host's doing */
  expect(CURLE_COULDNT_CONNECT, EMFILE, 0, 0, 0, SALVO_ELOCAL, 0);
  expect(CURLE_COULDNT_CONNECT, ENFILE, 0, 0, 0, SALVO_ELOCAL, 0);
  expect(CURLE_COULDNT_CONNECT, EADDRNOTAVAIL, 0, 0, 0, SALVO_ELOCAL, 0);
  expect(CURLE_COULDNT_CONNECT, ENOBUFS, 0, 0, 0, SALVO_ELOCAL, 0);
  expect(CURLE_OPERATION_TIMEDOUT, 0, 0, 0, 0, SALVO_ECONNTIMEOUT, 0);
  expect(CURLE_SSL_CONNECT_ERROR, 0, 0, 0, 0, SALVO_ETLS, 0);
  expect(CURLE_PEER_FAILED_VERIFICATION, 0, 0, 0, 0, SALVO_ETLSVERIFY, 0);
}

Test(classify, reached_the_server) {
  expect(CURLE_OK, 0, 0, 1, 10, 0, 1);
  expect(CURLE_GOT_NOTHING, 0, 0, 1, 10, SALVO_ECLOSED, 1);
  expect(CURLE_SEND_ERROR, 0, 0, 1, 10, SALVO_ERESET, 1);
  expect(CURLE_RECV_ERROR, 0, 0, 1, 10, SALVO_ERESET, 1);
  expect(CURLE_PARTIAL_FILE, 0, 0, 1, 10, SALVO_ETRUNCATED, 1);
  expect(CURLE_HTTP2, 0, 0, 1, 10, SALVO_EHTTP2, 1);
  expect(CURLE_HTTP2_STREAM, 0, 0, 1, 10, SALVO_EHTTP2, 1);
  expect(CURLE_WEIRD_SERVER_REPLY, 0, 0, 1, 10, SALVO_EPROTO, 1);
  expect(CURLE_UNSUPPORTED_PROTOCOL, 0, 0, 1, 10, SALVO_EPROTO, 1); /* HTTP/0.9 garbage */
  expect(CURLE_FILESIZE_EXCEEDED, 0, 0, 1, 10, SALVO_EBODYLIMIT, 1);
}

Test(classify, a_timeout_after_the_request_was_sent_is_not_a_connect_timeout) {
  expect(CURLE_OPERATION_TIMEDOUT, 0, 0, 1, 10, SALVO_EATTEMPT, 1);
  expect(CURLE_OPERATION_TIMEDOUT, 0, 0, 0, 10, SALVO_EATTEMPT, 1);
}

Test(classify, salvo_own_reasons_win_over_curl_codes) {
  /* A short write makes libcurl say CURLE_WRITE_ERROR; salvo knows why. */
  expect(CURLE_WRITE_ERROR, 0, SALVO_EBODYLIMIT, 1, 10, SALVO_EBODYLIMIT, 1);
  expect(CURLE_WRITE_ERROR, 0, SALVO_EABORTED, 1, 10, SALVO_EABORTED, 1);
  expect(CURLE_OK, 0, SALVO_EIDLE, 1, 10, SALVO_EIDLE, 1);
  expect(CURLE_OK, 0, SALVO_EATTEMPT, 0, 0, SALVO_EATTEMPT, 0);
  expect(CURLE_OK, 0, SALVO_ECANCELED, 0, 0, SALVO_ECANCELED, 0);
  expect(CURLE_OK, 0, SALVO_EDEADLINE, 1, 0, SALVO_EDEADLINE, 1);
}

Test(classify, unexpected_codes_are_internal_not_success) {
  expect(CURLE_RECURSIVE_API_CALL, 0, 0, 0, 0, SALVO_EINTERNAL, 0);
  expect(CURLE_OUT_OF_MEMORY, 0, 0, 0, 0, SALVO_ENOMEM, 0);
}
