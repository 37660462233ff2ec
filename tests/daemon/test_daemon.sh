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
echo "ok: $(grep -c '^round' "$dir/out") result lines, stopped in ${took}s"
