#!/usr/bin/env bash
# The README's quick start: `./run.sh tour` runs the tour of the documented
# examples; `./run.sh test` runs the whole test suite. Both first install what
# is missing (Debian 12 packages, idempotent and quiet when already there).
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(bazel-bootstrap g++ libabsl-dev libboost-dev libgtest-dev libgmock-dev
          libbenchmark-dev libgflags-dev libcereal-dev libssl-dev python3 hyperfine bc gnuplot-nox
          # The MPI pool (//pool:mpi); everything else builds without these.
          openmpi-bin libopenmpi-dev libboost-mpi-dev)

usage() {
  echo "usage: $0 tour|test [extra bazel flags...]" >&2
  exit 2
}

install_missing() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      echo "run.sh: these Debian packages are missing: ${missing[*]}" >&2
      echo "run.sh: installing them needs root; run as root, or install them with" >&2
      echo "        apt-get install ${missing[*]}" >&2
      exit 3
    fi
  fi
  if ! command -v apt-get >/dev/null; then
    echo "run.sh: apt-get not found; this quick start needs Debian 12 (missing: ${missing[*]})" >&2
    exit 3
  fi
  echo "run.sh: installing ${missing[*]}" >&2
  "${sudo[@]}" apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
}

run_tests() {
  local log
  log=$(mktemp)
  local rc=0
  bazel test //... --test_output=errors "$@" 2>&1 | tee "$log" || rc=$?
  # Bazel's summary is one line per test target; CI reads the plain line below.
  local passed failed
  passed=$(grep -cE '^//[^ ]+ +(\(cached\) )?PASSED' "$log" || true)
  failed=$(grep -cE '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|FAILED TO BUILD)' "$log" || true)
  rm -f "$log"
  if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi  # e.g. a build error
  # The benchmark report's smoke run (it checks that everything runs, not the numbers).
  if [ "$rc" -eq 0 ]; then
    if timeout 1200 tests/benchmarks/run --quick >/tmp/mp-bench-smoke.log 2>&1; then
      passed=$((passed + 1))
      echo "benchmark smoke run (tests/benchmarks/run --quick): PASSED"
    else
      failed=$((failed + 1))
      rc=1
      echo "benchmark smoke run (tests/benchmarks/run --quick): FAILED"
      tail -30 /tmp/mp-bench-smoke.log
    fi
  fi
  echo "$passed passed, $failed failed"
  [ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case "$cmd" in
  tour) install_missing; bazel run //apps:tour -- "$@" ;;
  test) install_missing; run_tests "$@" ;;
  *) usage ;;
esac
