/* Error names and messages. */
#include "internal.h"

#define SALVO_ERRNO_MAP(X)                                                                 \
  X(SALVO_EINVAL, "invalid_input", "invalid input")                                        \
  X(SALVO_ENOMEM, "out_of_memory", "out of memory")                                        \
  X(SALVO_EDNS, "dns_failure", "host name could not be resolved")                          \
  X(SALVO_ECONNREFUSED, "connect_refused", "connection refused")                           \
  X(SALVO_ECONNECT, "connect_failed", "could not connect (host or network unreachable)")   \
  X(SALVO_ECONNTIMEOUT, "connect_timeout", "connect timed out")                            \
  X(SALVO_ETLS, "tls_handshake", "TLS handshake failed")                                   \
  X(SALVO_ETLSVERIFY, "tls_verification", "TLS certificate verification failed")          \
  X(SALVO_ECLOSED, "closed_without_response", "connection closed without a response")      \
  X(SALVO_ERESET, "connection_reset", "connection reset or broken")                        \
  X(SALVO_ETRUNCATED, "truncated_body", "response body shorter than announced")            \
  X(SALVO_EIDLE, "idle_timeout", "no data received within the idle timeout")               \
  X(SALVO_EATTEMPT, "attempt_timeout", "attempt took longer than the attempt timeout")     \
  X(SALVO_EDEADLINE, "deadline_exceeded", "request deadline exceeded")                     \
  X(SALVO_EQUEUE, "queue_timeout", "waited too long in the queue for a free slot")        \
  X(SALVO_EHTTP2, "http2_error", "HTTP/2 protocol or stream error")                        \
  X(SALVO_EBODYLIMIT, "body_too_large", "response body larger than the allowed maximum")   \
  X(SALVO_ECANCELED, "canceled", "request canceled")                                       \
  X(SALVO_ECLOSING, "engine_closing", "engine is closing")                                 \
  X(SALVO_ENOTSUP, "not_supported", "not supported by this libcurl")                       \
  X(SALVO_EPROTO, "protocol_error", "malformed HTTP response")                             \
  X(SALVO_EABORTED, "aborted_by_callback", "stopped by the data callback")                 \
  X(SALVO_EINTERNAL, "internal_error", "internal error in libcurl or libuv")                \
  X(SALVO_ERETRYAFTER, "retry_after_too_long", "server asked to wait longer than allowed")  \
  X(SALVO_ECIRCUIT, "circuit_open", "the host's circuit breaker is open")                   \
  X(SALVO_ERATELIMIT, "rate_limited", "the host's rate limit would pass the deadline")       \
  X(SALVO_EREDIRECT, "redirect_refused", "a redirect salvo will not follow")                \
  X(SALVO_ELOCAL, "local_resource", "out of a local resource (file descriptors, ports, buffers)") \
  X(SALVO_EPROXY, "proxy_failure", "the proxy could not be reached or refused the request")

const char *salvo_err_name(int err) {
  if (err == 0)
    return "ok";
  switch (err) {
#define X(code, name, msg) \
  case code:               \
    return name;
    SALVO_ERRNO_MAP(X)
#undef X
  }
  return "unknown";
}

const char *salvo_strerror(int err) {
  if (err == 0)
    return "success";
  switch (err) {
#define X(code, name, msg) \
  case code:               \
    return msg;
    SALVO_ERRNO_MAP(X)
#undef X
  }
  return "unknown error";
}
