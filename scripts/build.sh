#!/bin/sh
# Configures and builds cbrnn in build/ (or $1), passing further arguments
# to cmake. Warnings are errors here: the tree stays -Wall -Wextra clean.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-"$top/build"}; [ $# -gt 0 ] && shift
cmake -S "$top" -B "$dir" -DCBRNN_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)" -- --no-print-directory
