#!/bin/sh
# Runs one test program and fails it if any sanitizer reported anything.
# Needed because criterion runs each test in a worker whose LeakSanitizer
# report does not change the exit status.
out=$(mktemp)
export SALVO_UNDER_SANITIZER=1 # the few tests sized for native speed size themselves down
"$@" >"$out" 2>&1
rc=$?
cat "$out"
if grep -qE "ERROR: (LeakSanitizer|AddressSanitizer)|runtime error:" "$out"; then
  echo "sanitize-wrapper: sanitizer report found in the output above" >&2
  rm -f "$out"
  exit 1
fi
rm -f "$out"
exit $rc
