#!/usr/bin/env bash
# Runs mpi_pool_test under mpirun -np 3, three times:
#  1. every Pool call (rank 0 runs the tests, ranks 1-2 are the workers);
#  2. with --enable-recovery, a task kills its whole rank (RankDeath.*);
#     rank 0's gtest summary decides (mpirun reports the dead rank itself);
#  3. ranks 1-2 run another build of the test (MPMD): refused (Refusal.*).
set -uo pipefail
test_bin=$1
other_bin=$2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export TMPDIR=${TEST_TMPDIR:-/tmp}
mpirun=(mpirun --oversubscribe --bind-to none)
# Sanitizer settings reach the ranks only when passed on (mpirun -x). Under
# --config=asan, leak checking is off here: Open MPI keeps allocations until
# exit in MCA components it dlclose()s, whose stacks LeakSanitizer can then
# neither symbolize nor suppress. Address errors are still caught; the
# library's own leaks are checked by every other test.
if [ -n "${ASAN_OPTIONS:-}" ]; then
  export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"
  mpirun+=(-x ASAN_OPTIONS)
fi
[ -n "${TSAN_OPTIONS:-}" ] && mpirun+=(-x TSAN_OPTIONS)
failed=0

run() {  # run NAME EXPECTED_SUMMARY MPIRUN_ARGS...
  local name=$1 expected=$2
  shift 2
  local log="$TMPDIR/$name.log"
  echo "=== $name: ${mpirun[*]} $*"
  timeout -k 5 120 "${mpirun[@]}" "$@" >"$log" 2>&1
  local rc=$?
  cat "$log"
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "=== $name: FAILED (did not finish in 120 s)"
    failed=1
  elif ! grep -q "$expected" "$log" || grep -q '\[  FAILED  \]' "$log"; then
    echo "=== $name: FAILED (mpirun exit $rc)"
    failed=1
  elif [ "$name" = main ] && [ $rc -ne 0 ]; then
    echo "=== $name: FAILED (mpirun exit $rc)"
    failed=1
  else
    echo "=== $name: ok"
  fi
}

run main '\[  PASSED  \]' -np 3 "$test_bin" --gtest_color=no --gtest_filter='-RankDeath.*:Refusal.*'
run rank_death '\[  PASSED  \] 1 test' --enable-recovery -np 3 "$test_bin" --gtest_color=no \
  --gtest_filter='RankDeath.*'
run refusal '\[  PASSED  \] 1 test' -np 1 "$test_bin" --gtest_color=no --gtest_filter='Refusal.*' : -np 2 "$other_bin"
# A clean exit: no rank, worker or helper of any run is left behind (a
# process whose executable is one of the two binaries).
binaries=("$(readlink -f "$test_bin")" "$(readlink -f "$other_bin")")
for exe in /proc/[0-9]*/exe; do
  target=$(readlink "$exe" 2>/dev/null) || continue
  for b in "${binaries[@]}"; do
    if [ "$target" = "$b" ]; then
      pid=${exe#/proc/}
      echo "=== left behind: pid ${pid%/exe} ($target)"
      failed=1
    fi
  done
done
exit $failed
