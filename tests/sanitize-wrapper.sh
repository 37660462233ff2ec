#!/bin/sh
# Runs one test program and fails it if any sanitizer reported anything.
# Needed because criterion runs each test in a worker whose LeakSanitizer
# report does not change the exit status.
out=$(mktemp)
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
