#!/bin/sh
# salvo-faultd as a program: loopback only, bad options, the start-up JSON
# line, serving, SIGTERM, and --lifetime. Uses salvo-get as the client.
#   test_cli.sh SALVO_FAULTD SALVO_GET
set -u
faultd=$1
get=$2
fail() { echo "FAIL: $*"; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

"$faultd" --host 0.0.0.0 --lifetime 1 >/dev/null 2>"$dir/err"; rc=$?
[ $rc -eq 1 ] || fail "--host 0.0.0.0 exited $rc, want 1"
grep -q "loopback only" "$dir/err" || fail "no loopback message: $(cat "$dir/err")"
# refused for being off loopback, not for any other reason (a failure to start
# at all would pass a bare "exit status is not 0")
"$faultd" --host 192.168.1.1 --lifetime 1 >/dev/null 2>"$dir/err"; rc=$?
[ $rc -eq 1 ] && grep -q "loopback only" "$dir/err" || fail "--host 192.168.1.1: rc $rc, $(cat "$dir/err")"
# and loopback itself is accepted: the refusals above are not a blanket refusal
"$faultd" --host 127.0.0.1 --lifetime 1 >"$dir/lo" 2>"$dir/err"; rc=$?
[ $rc -eq 0 ] && grep -q '"http":' "$dir/lo" || fail "--host 127.0.0.1: rc $rc, $(cat "$dir/err")"
"$faultd" --no-such-option >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "unknown option exited $rc, want 2"
"$faultd" --lifetime abc >/dev/null 2>"$dir/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--lifetime" "$dir/err" || fail "bad --lifetime: rc $rc"
"$faultd" --help | grep -q "/fail-until/N/KEY" || fail "--help does not list the faults"

"$faultd" --lifetime 30 >"$dir/ports" 2>"$dir/err" &
pid=$!
for i in 1 2 3 4 5 6 7 8 9 10; do [ -s "$dir/ports" ] && break; sleep 0.2; done
line=$(head -n 1 "$dir/ports")
for name in http tls refused accept_silent close_on_accept reset_on_accept garbage_on_accept tls_stall cert; do
  echo "$line" | grep -q "\"$name\":" || fail "start-up line lacks $name: $line"
done
http=$(echo "$line" | sed 's/.*"http":\([0-9]*\).*/\1/')
"$get" "http://127.0.0.1:$http/ok" | grep -q "status 200" || fail "/ok did not answer 200"
"$get" "http://127.0.0.1:$http/status/503" | grep -q "status 503" || fail "/status/503"
# found by fuzz_faultd_plan: a status outside 100..999 is refused, not sent
"$get" "http://127.0.0.1:$http/status/5" | grep -q "status 400" || fail "/status/5 is not a 400"
"$get" "http://127.0.0.1:$http/random/100/1?status=5020" | grep -q "status 400" || fail "?status=5020 is not a 400"
# found by fuzz_faultd_plan: sizes that overflowed an allocation are refused
"$get" "http://127.0.0.1:$http/bytes/4294967295" | grep -q "status 400" || fail "/bytes/4294967295 is not a 400"
"$get" "http://127.0.0.1:$http/huge-headers/4194304" | grep -q "status 400" || fail "/huge-headers/4194304 is not a 400"
"$get" "http://127.0.0.1:$http/capacity/1/10" | grep -q "status 200" || fail "/capacity/1/10"
"$get" "http://127.0.0.1:$http/capacity/0/10" | grep -q "status 400" || fail "/capacity/0/10 is not a 400"
"$get" "http://127.0.0.1:$http/capacity/1/10?q=x" | grep -q "status 400" || fail "?q=x is not a 400"
"$get" "http://127.0.0.1:$http/counters" | grep -q "status 200" || fail "/counters"
# Found by the soak test: a HEAD response carried a body, which the next
# response on the connection then started with. Nothing may follow the headers.
python3 - "$http" <<'PY' || fail "a HEAD response carried a body"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"HEAD /status/503 HTTP/1.1\r\nHost: x\r\n\r\n")
s.settimeout(0.5)
data = b""
try:
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    pass
head, sep, rest = data.partition(b"\r\n\r\n")
sys.exit(0 if sep and head.startswith(b"HTTP/1.1 503") and rest == b"" else 1)
PY

# /file and /keyed, with the curl command-line tool as the control.
command -v curl >/dev/null || fail "curl not found (apt-get install curl, or .ci/install-deps)"
curl() { command curl --max-time 20 "$@"; } # a stalled body fails here, not at meson's timeout
base="http://127.0.0.1:$http"
# file_sha SIZE SEED [FIRST [LAST]]: sha256 of the bytes FIRST..LAST of /file/SIZE/SEED,
# rebuilt from the formula in faultd.h, one 64 KiB block (a 256-byte pattern) at a time
file_sha() {
  python3 - "$@" <<'PY'
import hashlib, sys
size, seed = int(sys.argv[1]), int(sys.argv[2])
first = int(sys.argv[3]) if len(sys.argv) > 3 else 0
last = int(sys.argv[4]) if len(sys.argv) > 4 else size - 1
h = hashlib.sha256()
for block in range(first >> 16, (last >> 16) + 1):
    pattern = bytes((k * 7 + block * 13 + seed) & 0xff for k in range(256))
    data = pattern * 256
    start = max(first, block << 16) - (block << 16)
    end = min(last + 1, (block + 1) << 16) - (block << 16)
    h.update(data[start:end])
print(h.hexdigest())
PY
}
sha() { python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"; }
counter() { # counter PYTHON-EXPR-ON-d: a value from /counters
  curl -sS "$base/counters" | python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"
}
whole=$(file_sha 3000000 7)
# the formula itself, byte by byte, against the block-wise rebuild used below
[ "$(python3 -c 'import hashlib; print(hashlib.sha256(bytes((i * 7 + (i >> 16) * 13 + 7) & 0xff
for i in range(3000000))).hexdigest())')" = "$whole" ] || fail "file_sha does not follow the formula"
out=$(curl -sS -o "$dir/f" -D "$dir/h" -w '%{http_code} %{size_download}' "$base/file/3000000/7")
[ "$out" = "200 3000000" ] || fail "/file/3000000/7: $out"
[ "$(sha "$dir/f")" = "$whole" ] || fail "/file/3000000/7 does not match the formula"
for h in 'Content-Length: 3000000' 'Accept-Ranges: bytes' 'ETag: "3000000-7"' \
         'Last-Modified: Wed, 21 Oct 2026 07:28:00 GMT' 'Content-Type: application/octet-stream'; do
  tr -d '\r' <"$dir/h" | grep -qx "$h" || fail "/file lacks $h: $(cat "$dir/h")"
done
# curl -C - continues a partial file with one Range request: one 206, the same file
curl -sS "$base/counters/reset" >/dev/null
python3 -c 'import sys; open(sys.argv[1], "wb").write(open(sys.argv[2], "rb").read(1000000))' \
  "$dir/part" "$dir/f"
out=$(curl -sS -C - -o "$dir/part" -D "$dir/h" -w '%{http_code} %{size_download}' "$base/file/3000000/7")
[ "$out" = "206 2000000" ] || fail "curl -C -: $out"
tr -d '\r' <"$dir/h" | grep -qx 'Content-Range: bytes 1000000-2999999/3000000' ||
  fail "curl -C -: $(cat "$dir/h")"
[ "$(sha "$dir/part")" = "$whole" ] || fail "curl -C -: the continued file does not match"
[ "$(counter "d['ranges_served']")" = 1 ] || fail "ranges_served is not 1: $(counter d)"
# a changed file (?etag=other): the old ETag in If-Range gets the whole file
out=$(curl -sS -o "$dir/g" -w '%{http_code} %{size_download}' -H 'If-Range: "3000000-7"' \
  -r 1000000- "$base/file/3000000/7?etag=other")
[ "$out" = "200 3000000" ] && [ "$(sha "$dir/g")" = "$whole" ] || fail "If-Range of another ETag: $out"
# ...and the same ETag, or the Last-Modified date, gets the range
out=$(curl -sS -o "$dir/g" -w '%{http_code} %{size_download}' -H 'If-Range: "3000000-7"' \
  -r 1000000-1999999 "$base/file/3000000/7")
[ "$out" = "206 1000000" ] && [ "$(sha "$dir/g")" = "$(file_sha 3000000 7 1000000 1999999)" ] ||
  fail "If-Range of the ETag: $out"
out=$(curl -sS -o /dev/null -w '%{http_code} %{size_download}' -r 5- \
  -H 'If-Range: Wed, 21 Oct 2026 07:28:00 GMT' "$base/file/3000000/7")
[ "$out" = "206 2999995" ] || fail "If-Range of the date: $out"
out=$(curl -sS -o /dev/null -w '%{http_code} %{size_download}' -r 5- -H 'If-Range: W/"3000000-7"' \
  "$base/file/3000000/7")
[ "$out" = "200 3000000" ] || fail "a weak If-Range: $out"
out=$(curl -sS -o "$dir/g" -D "$dir/h" -w '%{http_code} %{size_download}' -r 5000000- "$base/file/3000000/7")
[ "$out" = "416 0" ] || fail "-r 5000000-: $out"
tr -d '\r' <"$dir/h" | grep -qx 'Content-Range: bytes \*/3000000' || fail "416: $(cat "$dir/h")"
out=$(curl -sS -o /dev/null -w '%{http_code} %{size_download}' -r 0-9,20-29 "$base/file/3000000/7")
[ "$out" = "200 3000000" ] || fail "two ranges: $out"
[ "$(counter "d['ranges_served']")" = 3 ] || fail "ranges_served is not 3: $(counter d)"
# ?ranges=0: no Accept-Ranges, and curl -C - refuses the 200 (exit 33), the part left as it was
head -c 1000000 "$dir/f" >"$dir/part"
out=$(curl -sS -C - -o "$dir/part" -D "$dir/h" -w '%{http_code}' "$base/file/3000000/7?ranges=0" 2>"$dir/cerr")
rc=$?
[ $rc -eq 33 ] && [ "$out" = 200 ] && grep -q "support byte ranges" "$dir/cerr" ||
  fail "curl -C - with ranges=0: exit $rc, $out, $(cat "$dir/cerr")"
tr -d '\r' <"$dir/h" | grep -q '^Accept-Ranges' && fail "ranges=0 sent Accept-Ranges"
[ "$(wc -c <"$dir/part")" -eq 1000000 ] || fail "curl -C - with ranges=0 changed the part"
# HEAD: the headers of a GET, and nothing after them (a body would open the next answer)
curl -sS -I -o /dev/null -D "$dir/h" -w '%{http_code}' "$base/file/3000000/7" | grep -qx 200 || fail "HEAD /file"
tr -d '\r' <"$dir/h" | grep -qx 'Content-Length: 3000000' || fail "HEAD /file: $(cat "$dir/h")"
python3 - "$http" <<'PY' || fail "a HEAD /file response carried a body"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"HEAD /file/3000000/7 HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
s.settimeout(1)
data = b""
try:
    while not data.endswith(b"ok\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    pass
head, sep, rest = data.partition(b"\r\n\r\n")
sys.exit(0 if head.startswith(b"HTTP/1.1 200") and rest.startswith(b"HTTP/1.1 200") else 1)
PY
# ?corrupt=2&key=K: the first answer has its middle byte changed, the second is right
out=$(curl -sS -o "$dir/g" -w '%{http_code} %{size_download}' "$base/file/3000000/7?corrupt=2&key=c")
[ "$out" = "200 3000000" ] || fail "corrupt=2, 1st: $out"
python3 - "$dir/g" "$dir/f" <<'PY' || fail "corrupt=2: the 1st answer is not the file with byte 1500000 xor 0xff"
import sys
a, b = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
sys.exit(0 if [i for i in range(len(b)) if a[i] != b[i]] == [1500000] and a[1500000] == b[1500000] ^ 0xff else 1)
PY
curl -sS -o "$dir/g" "$base/file/3000000/7?corrupt=2&key=c"
[ "$(sha "$dir/g")" = "$whole" ] || fail "corrupt=2: the 2nd answer is not right"
[ "$(counter "d['keys']['c']['requests']")" = 2 ] || fail "corrupt=2: KEY c not counted: $(counter d)"
# ?rate=: 100,000 bytes at 200,000 per second take about half a second
out=$(curl -sS -o "$dir/g" -w '%{http_code} %{size_download} %{time_total}' "$base/file/100000/3?rate=200000")
[ "$(sha "$dir/g")" = "$(file_sha 100000 3)" ] || fail "rate=200000: $out"
echo "$out" | awk '{ exit !($1 == 200 && $3 >= 0.4 && $3 <= 5) }' || fail "rate=200000 took: $out"
# over TLS, HTTP/2 and HTTP/1.1 by ALPN: the same file, the same continuation; paced over HTTP/2
tls=$(echo "$line" | sed 's/.*"tls":\([0-9]*\).*/\1/')
cert=$(echo "$line" | sed 's/.*"cert":"\([^"]*\)".*/\1/')
for proto in 2 1.1; do
  out=$(curl -sS --http$proto --cacert "$cert" -o "$dir/g" -w '%{http_version} %{http_code} %{size_download}' \
    "https://127.0.0.1:$tls/file/3000000/7")
  [ "$out" = "$proto 200 3000000" ] && [ "$(sha "$dir/g")" = "$whole" ] || fail "TLS, HTTP/$proto: $out"
  python3 -c 'import sys; open(sys.argv[1], "wb").write(open(sys.argv[2], "rb").read(1000000))' \
    "$dir/part" "$dir/f"
  out=$(curl -sS --http$proto --cacert "$cert" -C - -o "$dir/part" -w '%{http_code} %{size_download}' \
    "https://127.0.0.1:$tls/file/3000000/7")
  [ "$out" = "206 2000000" ] && [ "$(sha "$dir/part")" = "$whole" ] || fail "TLS, HTTP/$proto, -C -: $out"
done
out=$(curl -sS --http2 --cacert "$cert" -o "$dir/g" -w '%{http_code} %{size_download} %{time_total}' \
  "https://127.0.0.1:$tls/file/100000/3?rate=200000")
[ "$(sha "$dir/g")" = "$(file_sha 100000 3)" ] || fail "HTTP/2, rate=200000: $out"
echo "$out" | awk '{ exit !($1 == 200 && $3 >= 0.4 && $3 <= 5) }' || fail "HTTP/2, rate=200000 took: $out"
# /keyed/KEY?ms=: counted per Idempotency-Key, answered after ms
for i in 1 2; do
  out=$(curl -sS -H 'Idempotency-Key: a' -o "$dir/g" -w '%{http_code} %{time_total}' "$base/keyed/k1?ms=200")
  echo "$out" | awk '{ exit !($1 == 200 && $2 >= 0.19) }' && [ "$(cat "$dir/g")" = ok ] ||
    fail "/keyed/k1?ms=200: $out"
done
[ "$(counter "d['keys']['k1']['idempotency_keys']['a']")" = 2 ] || fail "keys.k1: $(counter d)"
out=$(curl -sS -X POST -d hello -o "$dir/g" -w '%{http_code}' "$base/keyed/k2?status=503")
[ "$out" = 503 ] && [ "$(cat "$dir/g")" = ok ] || fail "/keyed/k2?status=503: $out"
[ "$(counter "d['keys']['k2']['requests'], d['body_bytes']")" = "1 5" ] || fail "keys.k2: $(counter d)"
# malformed: 400, never a crash
for bad in /file/1 /file/1/2/3 /file/-1/2 /file/+1/2 /file/68719476737/1 /file/1/4294967296 \
    '/file/1/2?rate=0' '/file/1/2?ranges=2' '/file/1/2?corrupt=2' '/file/1/2?etag=a%20b' \
    '/file/1/2?lastmod=x' /keyed/ /keyed/a/b '/keyed/a?ms=600001' '/keyed/a?ms=x' '/keyed/a?status=99'; do
  out=$(curl -sS -o /dev/null -w '%{http_code}' "$base$bad")
  [ "$out" = 400 ] || fail "$bad: $out, want 400"
done

# a kept-alive connection takes the next request after a /drip (curl reuses it)
out=$(curl -sS -o /dev/null -w '%{http_code} %{num_connects}\n' "$base/drip/3/20" -o /dev/null "$base/ok" | tr '\n' ' ')
[ "$out" = "200 1 200 0 " ] || fail "/drip then /ok on one connection: $out (want '200 1 200 0 ')"

# /capacity ?keep=1: a client that gives up (curl --max-time) leaves its work
# behind, and the next request waits for it; without keep=1 it does not.
# One place, 600 ms of service: curl A leaves after 0.2 s, curl B comes at once.
for keep in 1 0; do
  url="$base/capacity/1/600?name=keep$keep&keep=$keep"
  out=$(curl -sS -o /dev/null --max-time 0.2 -w '%{http_code}' "$url"); rc=$?
  [ $rc -eq 28 ] || fail "keep=$keep: curl A exited $rc ($out), want 28 (timed out)"
  out=$(curl -sS -D "$dir/h" -o "$dir/g" -w '%{http_code}' "$url")
  q=$(tr -d '\r' <"$dir/h" | sed -n 's/^[Xx]-[Qq]ueue-[Mm]s: //p')
  [ "$out" = 200 ] && [ "$(cat "$dir/g")" = ok ] || fail "keep=$keep: curl B got $out"
  if [ $keep = 1 ]; then
    [ "${q:-0}" -ge 250 ] || fail "keep=1: curl B waited ${q:-?} ms, want the rest of A's 600 ms"
    [ "$(counter "d['capacity']['keep1']['canceled'], d['capacity']['keep1']['wasted'], d['capacity']['keep1']['served']")" = "1 1 1" ] ||
      fail "keep=1 counts: $(counter "d['capacity']['keep1']")"
  else
    [ "${q:-999}" -lt 150 ] || fail "keep=0: curl B waited ${q:-?} ms, want the place A gave back"
    [ "$(counter "d['capacity']['keep0']['canceled'], d['capacity']['keep0']['wasted']")" = "1 0" ] ||
      fail "keep=0 counts: $(counter "d['capacity']['keep0']")"
  fi
done

start=$(date +%s)
kill -TERM $pid
wait $pid; rc=$?
[ $rc -eq 0 ] || fail "SIGTERM: exited $rc, want 0: $(cat "$dir/err")"
[ $(( $(date +%s) - start )) -le 3 ] || fail "SIGTERM took too long"
grep -qE "Sanitizer|runtime error" "$dir/err" && fail "salvo-faultd: $(cat "$dir/err")"

start=$(date +%s)
"$faultd" --lifetime 1 >/dev/null 2>&1; rc=$?
[ $rc -eq 0 ] || fail "--lifetime 1 exited $rc"
[ $(( $(date +%s) - start )) -le 4 ] || fail "--lifetime 1 did not stop by itself in time"
if [ -s /proc/net/if_inet6 ]; then
  "$faultd" --host ::1 --no-by-port --lifetime 30 >"$dir/ports6" 2>&1 &
  pid=$!
  for i in 1 2 3 4 5 6 7 8 9 10; do [ -s "$dir/ports6" ] && break; sleep 0.2; done
  grep -q '"host":"::1"' "$dir/ports6" || fail "::1: $(cat "$dir/ports6")"
  http=$(sed 's/.*"http":\([0-9]*\).*/\1/' "$dir/ports6")
  "$get" "http://[::1]:$http/ok" | grep -q "status 200" || fail "/ok over ::1"
  grep -q '"refused"' "$dir/ports6" && fail "--no-by-port still opened by-port listeners"
  kill -TERM $pid; wait $pid
else
  echo "no IPv6 loopback here: ::1 not checked"
fi
# --cert/--key: a certificate of our own is used and named in the start-up line
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/key.pem" \
  -out "$dir/cert.pem" -days 1 -subj /CN=localhost >/dev/null 2>&1 || fail "openssl"
"$faultd" --cert "$dir/cert.pem" --key "$dir/key.pem" --no-by-port --lifetime 30 >"$dir/ports7" 2>&1 &
pid=$!
for i in 1 2 3 4 5 6 7 8 9 10; do [ -s "$dir/ports7" ] && break; sleep 0.2; done
grep -q "\"cert\":\"$dir/cert.pem\"" "$dir/ports7" || fail "--cert not used: $(cat "$dir/ports7")"
kill -TERM $pid; wait $pid
"$faultd" --cert "$dir/cert.pem" --lifetime 1 >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "--cert without --key exited $rc, want 2"
echo "salvo-faultd CLI: 1 passed, 0 failed"
