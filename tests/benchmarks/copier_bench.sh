#!/usr/bin/env bash
# Times the folder copiers on three trees, warm page cache, in one run:
# mpcopy (this project, --config=opt), cp -a, rsync -a (Debian's) and the
# document's Python copier (python/copier.py). Trees: 2,000 files of 64 KiB
# in 20 folders ("small"); 20,000 files of 4 KiB in 200 folders ("meta",
# metadata-bound); 8 files of 64 MiB ("big"). Each figure is the median of
# REPS runs; the commands alternate (A B C D A B C D), each copy goes to a
# fresh, randomly named folder and is checked and deleted right after, and a
# create-probe (1,000 empty files) is timed before each tree, since this
# ext4 creates files slowly for minutes after a big delete (see
# ../shared/MEASURING.md).
# Usage: tests/benchmarks/copier_bench.sh [--quick] [MPCOPY_BINARY]
# Prints CSV: tree,command,median_s,runs,all_s (and probe lines).
set -euo pipefail
reps=5
small_files=2000
meta_files=20000
big_files=8
if [ "${1:-}" = "--quick" ]; then reps=1; small_files=200; meta_files=400; big_files=2; shift; fi
here=$(cd "$(dirname "$0")" && pwd)
mpcopy=${1:-}
if [ -z "$mpcopy" ]; then
  (cd "$here/../.." && bazel build --config=opt //apps/copier:mpcopy >/dev/null 2>&1)
  mpcopy="$here/../../bazel-bin/apps/copier/mpcopy"
fi
# COPIER_COMMANDS="mpcopy cp" and COPIER_REPS=N narrow a run (while tuning).
read -r -a commands <<<"${COPIER_COMMANDS:-mpcopy cp rsync python}"
reps=${COPIER_REPS:-$reps}
work=$(mktemp -d /tmp/mp-copier-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# make_tree NAME FOLDERS FILES SIZE: FILES random files of SIZE bytes spread
# over FOLDERS folders (one write per folder: the tree is made quickly).
make_tree() {
  local name=$1 folders=$2 files=$3 size=$4 d f
  for d in $(seq 1 "$folders"); do
    mkdir -p "$work/$name/d$d"
    python3 - "$work/$name/d$d" $((files / folders)) "$size" <<'EOF'
import os, sys
folder, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(count):
    with open(os.path.join(folder, "f%d" % i), "wb") as f:
        f.write(os.urandom(size))
EOF
  done
}

time_one() {  # time_one NAME TREE -> seconds
  local name=$1 tree=$2 dst start end
  dst="$work/out-$RANDOM$RANDOM"
  start=$(date +%s.%N)
  case $name in
    mpcopy) "$mpcopy" "$work/$tree" "$dst" --quiet 2>/dev/null ;;
    cp) cp -a "$work/$tree" "$dst" ;;
    rsync) rsync -a "$work/$tree/" "$dst" ;;
    python) python3 "$here/python/copier.py" "$work/$tree" "$dst" ;;
  esac
  end=$(date +%s.%N)
  diff -rq "$work/$tree" "$dst" >/dev/null || { echo "copy by $name differs" >&2; exit 1; }
  rm -rf "$dst"
  echo "$end - $start" | bc
}

# The create-probe: seconds to create 1,000 empty files in a fresh folder.
probe() {
  local d="$work/probe-$RANDOM$RANDOM" start end
  mkdir "$d"
  start=$(date +%s.%N)
  (cd "$d" && python3 -c 'import os
for i in range(1000): os.close(os.open("p%d" % i, os.O_CREAT | os.O_WRONLY, 0o644))')
  end=$(date +%s.%N)
  rm -rf "$d"
  echo "$end - $start" | bc
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

make_tree small 20 "$small_files" 65536
make_tree meta 200 "$meta_files" 4096
make_tree big 1 "$big_files" $((64 << 20))
cat "$work"/small/*/* "$work"/meta/*/* "$work"/big/*/* >/dev/null  # Warm the page cache.
echo "tree,command,median_s,runs,all_s"
for tree in small meta big; do
  echo "probe,$tree,$(probe),1,"
  declare -A results=()
  for rep in $(seq 1 "$reps"); do
    for name in "${commands[@]}"; do results[$name]+="$(time_one "$name" "$tree") "; done
  done
  for name in "${commands[@]}"; do
    echo "$tree,$name,$(echo ${results[$name]} | tr ' ' '\n' | median),$reps,$(echo ${results[$name]})"
  done
  unset results
done
