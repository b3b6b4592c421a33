#!/usr/bin/env bash
# install_test.sh BUILD_DIR SOURCE_DIR — `cmake --install` into a scratch
# prefix, then build apps/hello's client against it with pkg-config and with
# find_package(udrpc) (target udrpc::udrpc), and run both binaries' --help
# path (they must at least load the installed shared library).
set -euo pipefail
build=$1
src=$2
extra_cflags=${3:-} # a sanitizer build's flags, for programs that link its library
[ -n "$extra_cflags" ] && export ASAN_OPTIONS=detect_leaks=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(ls -d "$tmp"/prefix/lib* | head -n1)
test -f "$tmp/prefix/include/udrpc.h"

# 1. pkg-config
command -v pkg-config >/dev/null || { echo "no pkg-config"; exit 77; }
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -std=c11 -Wall -Werror $extra_cflags $(pkg-config --cflags udrpc) "$src/apps/hello/client.c" \
   -o "$tmp/hello_pc" $(pkg-config --libs udrpc) -Wl,-rpath,"$libdir"

# 2. find_package
mkdir "$tmp/consumer"
cat > "$tmp/consumer/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.20)
project(consumer C)
find_package(udrpc REQUIRED)
add_executable(hello_client $src/apps/hello/client.c)
target_link_libraries(hello_client PRIVATE udrpc::udrpc)
CM
cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
      -DCMAKE_C_FLAGS="$extra_cflags" -DCMAKE_EXE_LINKER_FLAGS="$extra_cflags" \
      -DCMAKE_BUILD_RPATH="$libdir" >/dev/null
cmake --build "$tmp/consumer/build" >/dev/null

# Both run: a connect to a port nobody serves fails cleanly (exit 1).
for exe in "$tmp/hello_pc" "$tmp/consumer/build/hello_client"; do
    set +e
    "$exe" 127.0.0.1:9 >/dev/null 2>&1
    rc=$?
    set -e
    [ "$rc" = 1 ] || { echo "$exe exited $rc"; exit 1; }
done
# 3. The README's own program (square.c, between its markers): the same as
# apps/square/square.c, built as the README says (with -Wextra -Werror) and
# run: it must print the three squares.
sed -n '/<!-- square.c begin -->/,/<!-- square.c end -->/p' "$src/README.md" |
    sed '1,2d;$d' | sed '$d' > "$tmp/square.c"
diff -u "$src/apps/square/square.c" "$tmp/square.c" ||
    { echo "README's square.c differs from apps/square/square.c"; exit 1; }
cc -std=c11 -Wall -Wextra -Werror $extra_cflags "$tmp/square.c" -o "$tmp/square" \
   $(pkg-config --cflags --libs udrpc) -Wl,-rpath,"$libdir"
out=$("$tmp/square")
[ "$out" = "$(printf 'ok -> 1\nok -> 4\nok -> 9')" ] || { echo "square printed: $out"; exit 1; }
echo "install: ok ($tmp/prefix), README's square.c runs"
