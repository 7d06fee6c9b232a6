#!/usr/bin/env bash
# count_primes gives the same count on a local pool and under mpirun.
set -euo pipefail
bin=$1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export TMPDIR=${TEST_TMPDIR:-/tmp}
mpirun=(mpirun -np 3 --oversubscribe --bind-to none)
# Under --config=asan: no leak check, Open MPI's own allocations outlive it
# (see //pool:mpi_pool_test); address errors are still caught.
if [ -n "${ASAN_OPTIONS:-}" ]; then
  export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"
  mpirun+=(-x ASAN_OPTIONS)
fi
expected="78498 primes below 1000000"
local_out=$(timeout 120 "$bin" --limit=1000000 --ranges=16)
echo "$local_out"
grep -q "local worker processes" <<<"$local_out"
grep -q "^$expected " <<<"$local_out"
mpi_out=$(timeout 120 "${mpirun[@]}" "$bin" --limit=1000000 --ranges=16)
echo "$mpi_out"
grep -q "on 2 MPI worker ranks" <<<"$mpi_out"
grep -q "^$expected " <<<"$mpi_out"
