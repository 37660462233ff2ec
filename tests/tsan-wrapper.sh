#!/bin/sh
# `meson test --setup tsan` in a -Db_sanitize=thread -Db_lundef=false build:
# runs one test program and fails it if ThreadSanitizer reported anything.
# Needed because criterion runs each test in a worker process whose report
# does not change the exit status the way a crash does.
#
# ThreadSanitizer of gcc 12 (Debian 12) cannot map its shadow memory when the
# kernel randomizes mmap with more than 28 bits (vm.mmap_rnd_bits 32, the
# default of some newer kernels): it dies at start with "FATAL:
# ThreadSanitizer: unexpected memory mapping". Address-space randomization is
# switched off for the test (setarch -R), where this machine lets us.
out=$(mktemp)
norandom=
if setarch "$(uname -m)" -R true 2>/dev/null; then
  norandom="setarch $(uname -m) -R"
fi
$norandom "$@" >"$out" 2>&1
rc=$?
cat "$out"
if grep -qE "WARNING: ThreadSanitizer|FATAL: ThreadSanitizer|ThreadSanitizer: (reported|CHECK failed)" "$out"; then
  echo "tsan-wrapper: ThreadSanitizer report found in the output above" >&2
  rm -f "$out"
  exit 1
fi
rm -f "$out"
exit $rc
