#!/bin/sh
# The symbols libsalvo.so exports against tests/abi/symbols.txt, recorded for
# this version: a symbol that appears or vanishes fails, named.
#   check-symbols.sh NM LIBSALVO.so SYMBOLS.txt MAJOR.MINOR
#   check-symbols.sh --print NM LIBSALVO.so MAJOR.MINOR   (what tools/abi-record writes)
set -u
print=0
if [ "${1:-}" = "--print" ]; then
  print=1
  shift
fi

# Every symbol the library defines for others to link against, less what
# the toolchain puts in every shared object.
exported() {
  "$1" -D --defined-only "$2" | awk 'NF >= 3 { print $3 }' |
    grep -v -E '^(_init|_fini|_edata|_end|__bss_start)$' | LC_ALL=C sort -u
}

if [ $print = 1 ]; then
  echo "# The symbols libsalvo.so exports, recorded by tools/abi-record for the version below;"
  echo "# tests/abi/check-symbols.sh compares each build's with them. Do not edit by hand."
  echo "version $3"
  exported "$1" "$2"
  exit
fi

nm=$1 lib=$2 list=$3 version=$4
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
exported "$nm" "$lib" >"$dir/now" || { echo "check-symbols: $nm failed on $lib"; exit 1; }
grep -v -E '^(#|version |$)' "$list" | LC_ALL=C sort -u >"$dir/recorded"
recorded_version=$(sed -n 's/^version //p' "$list")

failed=0
added=$(LC_ALL=C comm -13 "$dir/recorded" "$dir/now")
removed=$(LC_ALL=C comm -23 "$dir/recorded" "$dir/now")
if [ -n "$added" ]; then
  failed=1
  echo "libsalvo.so exports symbols that tests/abi/symbols.txt does not list:"
  echo "$added" | sed 's/^/  added:   /'
  echo "If one is not meant to be API, make it static, or internal (salvo__ prefix, no SALVO_EXTERN)."
fi
if [ -n "$removed" ]; then
  failed=1
  echo "libsalvo.so no longer exports symbols that tests/abi/symbols.txt lists (programs that call"
  echo "them fail to load):"
  echo "$removed" | sed 's/^/  removed: /'
fi
if [ $failed = 1 ]; then
  if [ "$recorded_version" = "$version" ]; then
    echo "The library's ABI changed, and the version is still $version. Bump the minor version in"
    echo "meson.build's project(), then record the new list with tools/abi-record BUILD_DIR and"
    echo "commit it with the change (README, \"API and ABI stability\")."
  else
    echo "The version is $version already: record its symbols with tools/abi-record BUILD_DIR."
  fi
elif [ "$recorded_version" != "$version" ]; then
  failed=1
  echo "tests/abi/symbols.txt was recorded for salvo $recorded_version, and this is $version: record this"
  echo "version's list with tools/abi-record BUILD_DIR."
fi
if [ $failed = 0 ]; then
  echo "libsalvo.so exports the $(wc -l <"$dir/now") symbols recorded for $version"
fi
echo "exported symbols: $((1 - failed)) passed, $failed failed"
exit $failed
