#!/bin/sh
# docs_test.sh DOXYGEN DOXYFILE WARNINGS_LOG — builds the API reference
# from include/udrpc.h and fails on any warning: an undocumented public
# symbol, or a broken doc comment. Skipped (77) without doxygen.
set -u
doxygen=$1 doxyfile=$2 log=$3
if ! command -v "$doxygen" >/dev/null 2>&1; then
    echo "doxygen not installed: skipped"; exit 77
fi
mkdir -p "$(dirname "$log")"
rm -f "$log"
"$doxygen" "$doxyfile" || exit 1
if [ -s "$log" ]; then
    echo "undocumented or badly documented public symbols:"; cat "$log"; exit 1
fi
echo "API reference: $(dirname "$log")/html/index.html, no warnings"
