#!/bin/sh
# examples/daemon: polls endpoints of a salvo-faultd it starts, then gets
# SIGTERM with a request hanging in flight; it must cancel it, close its loop
# cleanly and exit 0 within a few seconds.
#   test_daemon.sh SALVO_DAEMON SALVO_FAULTD
set -eu
daemon=$1 faultd=$2
dir=$(mktemp -d)
trap 'kill $fpid 2>/dev/null || true; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; echo "--- daemon output:"; cat "$dir/out"; exit 1; }

"$faultd" --lifetime 60 >"$dir/ports" 2>/dev/null &
fpid=$!
for i in $(seq 50); do [ -s "$dir/ports" ] && break; sleep 0.1; done
http=$(sed 's/.*"http":\([0-9]*\).*/\1/' "$dir/ports")
refused=$(sed 's/.*"refused":\([0-9]*\).*/\1/' "$dir/ports")
base="http://127.0.0.1:$http"

# usage errors name the problem and exit 2
if "$daemon" >/dev/null 2>"$dir/err"; then fail "no URL accepted"; fi
grep -q "no URL" "$dir/err" || fail "no URL: $(cat "$dir/err")"
if "$daemon" ftp://x/ >/dev/null 2>"$dir/err"; then fail "ftp URL accepted"; fi
grep -q "not an http(s) URL" "$dir/err" || fail "bad URL: $(cat "$dir/err")"
if "$daemon" --interval soon "$base/ok" >/dev/null 2>"$dir/err"; then fail "bad interval accepted"; fi
grep -q -- "--interval" "$dir/err" || fail "bad interval: $(cat "$dir/err")"

"$daemon" --interval 300 --deadline 10000 "$base/ok" "$base/status/503" \
  "http://127.0.0.1:$refused/" "$base/hang" >"$dir/out" 2>&1 &
dpid=$!
sleep 1.6
kill -TERM $dpid
start=$(date +%s)
wait $dpid && rc=0 || rc=$?
took=$(( $(date +%s) - start ))
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM"
[ "$took" -le 3 ] || fail "took ${took}s to stop"
ok=$(grep -c "/ok .* 200 " "$dir/out" || true)
[ "$ok" -ge 1 ] || fail "no successful poll of /ok"
grep -q "SIGTERM: shutting down" "$dir/out" || fail "no shutdown line"
grep -q "/hang .* canceled" "$dir/out" || fail "the hanging request did not end as canceled"
grep -q "skipped" "$dir/out" || fail "rounds did not wait for the hanging one"
grep -q "loop closed: yes" "$dir/out" || fail "loop left handles open"
rounds=$(grep -c '^round' "$dir/out")

# Worker threads hand reports over (salvo_request_submit_threadsafe), and a
# 3 MiB file is PUT streamed, answered 503 once and sent again from its start.
curl_counters() { # the server's counters, over bash's /dev/tcp (no curl needed)
  bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"
    printf "GET /counters HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" >&3
    n=0
    while IFS= read -r line <&3; do
      line=${line%$'"'"'\r'"'"'}
      [ -z "$line" ] && break
      case $line in Content-Length:*) n=${line#*: } ;; esac
    done
    head -c "$n" <&3' counters "$http"
}
before=$(curl_counters | sed -n 's/.*"body_bytes":\([0-9]*\).*/\1/p')
head -c 3145728 /dev/zero >"$dir/upload.bin"
"$daemon" --interval 200 --workers 3 --report "$base/echo" --upload "$dir/upload.bin" \
  --upload-to "$base/fail-until/2/daemon-upload-$$" "$base/ok" >"$dir/out" 2>&1 &
dpid=$!
# until the upload has ended (10 s at most), and 3 report rounds more
for i in $(seq 100); do grep -q "^upload .* attempts" "$dir/out" && break; sleep 0.1; done
sleep 0.7
kill -TERM $dpid
wait $dpid && rc=0 || rc=$?
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM (workers)"
grep -q "upload attempt 1: response 503 (salvo will send it again)" "$dir/out" || fail "no held 503 head"
grep -q "upload attempt 2: response 200" "$dir/out" || fail "no second upload attempt"
grep -q "upload .* 200  attempts 2" "$dir/out" || fail "upload did not end 200 after 2 attempts"
for w in 1 2 3; do
  n=$(grep -c "^report worker $w seq .* 200 " "$dir/out" || true)
  [ "$n" -ge 2 ] || fail "worker $w: $n reports answered 200"
done
grep -q "3 workers joined" "$dir/out" || fail "workers not joined"
grep -q "loop closed: yes" "$dir/out" || fail "loop left handles open (workers)"
after=$(curl_counters | sed -n 's/.*"body_bytes":\([0-9]*\).*/\1/p')
up=$(( after - before ))
reports=$(grep -c "^report worker" "$dir/out")
# the server read the file twice, plus each report's small JSON body
[ "$up" -ge $(( 2 * 3145728 )) ] && [ "$up" -le $(( 2 * 3145728 + 64 * (reports + 10) )) ] ||
  fail "the server read $up body bytes for 2 x 3145728 and $reports reports"
echo "ok: $rounds result lines, stopped in ${took}s; $reports reports from 3 workers, upload sent twice ($up body bytes read)"
