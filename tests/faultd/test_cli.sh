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
start=$(date +%s)
kill -TERM $pid
wait $pid; rc=$?
[ $rc -eq 0 ] || fail "SIGTERM: exited $rc, want 0"
[ $(( $(date +%s) - start )) -le 3 ] || fail "SIGTERM took too long"

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
