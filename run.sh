#!/usr/bin/env bash
# The README's quick start: `./run.sh tour` runs the tour of the documented
# examples; `./run.sh test` runs the whole test suite (with the clang build
# and a minute of fuzzing); `./run.sh fuzz [seconds]` runs each fuzzer for
# that long (60 s by default). All first install what is missing (Debian 12
# packages, idempotent and quiet when already there).
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(bazel-bootstrap g++ libabsl-dev libboost-dev libgtest-dev libgmock-dev
          libbenchmark-dev libgflags-dev libcereal-dev libssl-dev python3 hyperfine bc gnuplot-nox
          # The copier benchmark compares mpcopy with rsync -a; its tests use
          # setpriv, unshare and prlimit (util-linux, in every Debian).
          rsync util-linux
          # The clang build (-Wthread-safety) and the fuzzers (libFuzzer).
          clang-14 libclang-rt-14-dev
          # The MPI pool (//pool:mpi); everything else builds without these.
          openmpi-bin libopenmpi-dev libboost-mpi-dev)

usage() {
  echo "usage: $0 tour|test [extra bazel flags...] | fuzz [seconds per fuzzer]" >&2
  exit 2
}

# clang builds live in an output base of their own: a different compiler
# would otherwise make Bazel rebuild the default output base every time.
CLANG_OUTPUT_BASE="${HOME}/.cache/bazel-mp-clang"
bazel_clang() { bazel --output_base="$CLANG_OUTPUT_BASE" "$@"; }

# What the clang build builds: every package but the stand-ins, named by
# directory rather than as //... (which would follow the default build's
# bazel-* links into its output base, foreign to the clang one).
clang_targets() {
  local targets=(//:all) d
  for d in */; do
    d=${d%/}
    [ -L "$d" ] || [ "$d" = third_party ] || [ "$d" = examples ] && continue
    [ -n "$(find "$d" -name BUILD -print -quit)" ] || continue  # docs/: no packages
    targets+=("//$d/...")
  done
  echo "${targets[@]}"
}

FUZZERS=(codec_fuzzer stream_framing_fuzzer seqpacket_framing_fuzzer handshake_fuzzer)

# run_fuzzers SECONDS: builds the fuzzers with libFuzzer, ASan and UBSan and
# runs each for SECONDS on a scratch copy of its corpus (tests/fuzz/corpus,
# which stays as committed). Fails on any crash, leak, time-out or sanitizer
# report; the input that did it is left in the scratch directory.
run_fuzzers() {
  local seconds=$1
  # (gold warns once per ASan helper symbol when it links a fuzzer: noise.)
  bazel_clang build --config=fuzz "${FUZZERS[@]/#///tests/fuzz:}" 2>&1 |
    { grep -vE 'ld.gold: warning: Cannot export local symbol' || true; }
  local bin work rc=0
  bin=$(bazel_clang info --config=fuzz bazel-bin 2>/dev/null)/tests/fuzz
  work=$(mktemp -d /tmp/mp-fuzz.XXXXXX)
  for f in "${FUZZERS[@]}"; do
    mkdir -p "$work/$f/corpus" "$work/$f/artifacts"
    cp -r tests/fuzz/corpus/"$f"/. "$work/$f/corpus/"
    local dict=()
    [ -f "tests/fuzz/${f%_fuzzer}.dict" ] && dict=(-dict="$PWD/tests/fuzz/${f%_fuzzer}.dict")
    if (cd "$work/$f" && "$bin/$f" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
          -artifact_prefix=artifacts/ -print_final_stats=1 "${dict[@]}" corpus >log 2>&1); then
      echo "fuzz $f: ${seconds}s, $(grep -oE 'number_of_executed_units: *[0-9]+' "$work/$f/log" | grep -oE '[0-9]+$') runs, no crash"
    else
      echo "fuzz $f: FAILED (see $work/$f/log and $work/$f/artifacts)"
      tail -40 "$work/$f/log"
      rc=1
    fi
  done
  [ "$rc" -eq 0 ] && rm -rf "$work"
  return "$rc"
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

# step NAME LOG CMD...: runs CMD (output to LOG) if nothing failed so far,
# and counts it as one passed or failed check (the tail of LOG if failed).
step() {
  local name=$1 log=$2
  shift 2
  [ "$rc" -eq 0 ] || return 0
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1))
    echo "$name: PASSED"
  else
    failed=$((failed + 1))
    rc=1
    echo "$name: FAILED"
    tail -40 "$log"
  fi
}

# run_bazel_consumer builds and runs examples/bazel_consumer, a workspace of
# its own that depends on this one through deps.bzl, as another project
# would; its program checks what it computes.
run_bazel_consumer() {
  (cd examples/bazel_consumer && bazel run //:hello)
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
  # After the tests (each step only if all before it passed): the benchmark
  # report's smoke run (it checks that everything runs, not the numbers),
  # the clang build (-Wthread-safety, warnings are errors) and a minute of
  # fuzzing, 15 s per fuzzer; the clang server is stopped after.
  step "benchmark smoke run (tests/benchmarks/run --quick)" /tmp/mp-bench-smoke.log \
    timeout 1200 tests/benchmarks/run --quick
  step "clang build (--config=clang, -Wthread-safety)" /tmp/mp-clang-build.log \
    bazel_clang build --config=clang $(clang_targets)
  step "fuzzing (4 fuzzers, 15 s each)" /tmp/mp-fuzz.log run_fuzzers 15
  step "Bazel consumer (examples/bazel_consumer, another workspace)" /tmp/mp-bazel-consumer.log \
    run_bazel_consumer
  grep -s '^fuzz ' /tmp/mp-fuzz.log || true  # each fuzzer's runs
  bazel_clang shutdown >/dev/null 2>&1 || true
  (cd examples/bazel_consumer && bazel shutdown >/dev/null 2>&1) || true
  echo "$passed passed, $failed failed"
  [ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case "$cmd" in
  tour) install_missing; bazel run //apps:tour -- "$@" ;;
  test) install_missing; run_tests "$@" ;;
  fuzz)
    install_missing
    rc=0
    run_fuzzers "${1:-60}" || rc=$?
    bazel_clang shutdown >/dev/null 2>&1 || true
    exit "$rc"
    ;;
  *) usage ;;
esac
