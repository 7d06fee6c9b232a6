#!/usr/bin/env bash
# Times the folder copiers on two trees, warm page cache, in one run:
# mpcopy (this project, --config=opt), cp -r, and the document's Python
# copier (python/copier.py). Trees: 2,000 files of 64 KiB in 20 subfolders,
# and 8 files of 64 MiB. Each figure is the median of REPS runs; runs of the
# three commands alternate (A B C A B C), each copy goes to a fresh folder
# and is checked and deleted right after (see ../shared/MEASURING.md).
# Usage: tests/benchmarks/copier_bench.sh [--quick] [MPCOPY_BINARY]
set -euo pipefail
reps=5
small_files=2000
big_files=8
if [ "${1:-}" = "--quick" ]; then reps=1; small_files=200; big_files=2; shift; fi
here=$(cd "$(dirname "$0")" && pwd)
mpcopy=${1:-}
if [ -z "$mpcopy" ]; then
  (cd "$here/../.." && bazel build --config=opt //apps/copier:mpcopy >/dev/null 2>&1)
  mpcopy="$here/../../bazel-bin/apps/copier/mpcopy"
fi
work=$(mktemp -d /tmp/mp-copier-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

make_trees() {
  mkdir -p "$work/small" "$work/big"
  for d in $(seq 1 20); do
    mkdir -p "$work/small/d$d"
    for f in $(seq 1 $((small_files / 20))); do head -c 65536 /dev/urandom >"$work/small/d$d/f$f"; done
  done
  for f in $(seq 1 "$big_files"); do head -c $((64 << 20)) /dev/urandom >"$work/big/f$f"; done
  cat "$work"/small/*/* "$work"/big/* >/dev/null  # Warm the page cache.
}

time_one() {  # time_one NAME TREE -> seconds
  local name=$1 tree=$2 dst
  dst="$work/out-$RANDOM$RANDOM"
  local start end
  start=$(date +%s.%N)
  case $name in
    mpcopy) "$mpcopy" "$work/$tree" "$dst" --quiet 2>/dev/null ;;
    cp) cp -r "$work/$tree" "$dst" ;;
    python) python3 "$here/python/copier.py" "$work/$tree" "$dst" ;;
  esac
  end=$(date +%s.%N)
  diff -rq "$work/$tree" "$dst" >/dev/null || { echo "copy by $name differs" >&2; exit 1; }
  rm -rf "$dst"
  echo "$end - $start" | bc
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

make_trees
echo "tree,command,median_s,runs,all_s"
for tree in small big; do
  declare -A results=()
  for rep in $(seq 1 "$reps"); do
    for name in mpcopy cp python; do results[$name]+="$(time_one $name $tree) "; done
  done
  for name in mpcopy cp python; do
    echo "$tree,$name,$(echo ${results[$name]} | tr ' ' '\n' | median),$reps,$(echo ${results[$name]})"
  done
  unset results
done
