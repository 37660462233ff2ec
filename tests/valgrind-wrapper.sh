#!/bin/sh
# `meson test --setup valgrind`: runs one test program under valgrind
# (memcheck, children too: criterion runs each test in a worker process) and
# fails it on any error valgrind reports, leaks of the test's own process
# included. Scripts (the python and shell tests) run as they are: valgrind
# would only measure the interpreter.
case "$1" in
  *.py|*.sh) exec "$@" ;;
esac
out=$(mktemp)
export SALVO_UNDER_VALGRIND=1 # the few throughput comparisons skip themselves
valgrind --quiet --trace-children=yes --child-silent-after-fork=no --error-exitcode=99 \
  --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
  --track-fds=no "$@" >"$out" 2>&1
rc=$?
cat "$out"
if grep -qE "^==[0-9]+== (Invalid|Conditional|Syscall param|Mismatched|Source and destination|[0-9,]+ bytes in [0-9,]+ blocks are definitely lost)" "$out"; then
  echo "valgrind-wrapper: valgrind reported errors in the output above" >&2
  rm -f "$out"
  exit 1
fi
rm -f "$out"
exit $rc
