#!/usr/bin/env bash
# The tour: every documented example in turn, each under a heading naming the
# document section it reproduces. Usage: bazel run //apps:tour [-- TIME_SCALE]
# (default 0.4: the whole tour takes about a minute).
set -euo pipefail
scale=${1:-0.4}
root="${RUNFILES_DIR:-$0.runfiles}/multiprocessing_cpp"
[ -d "$root" ] || root="$(cd "$(dirname "$0")" && pwd)/tour.runfiles/multiprocessing_cpp"
work=$(mktemp -d /tmp/mp-tour.XXXXXX)
trap 'rm -rf "$work"' EXIT

run() {
  local section=$1 target=$2
  shift 2
  printf '\n\033[1m== %s  (bazel run //apps/%s)\033[0m\n' "$section" "${target/\//:}"
  (cd "$work" && "$root/apps/$target" --time_scale="$scale" "$@") || echo "(exit code $?)"
}

run "000 §1 Process: three workers, cpu_count, active_children" process/multi_workers
run "000 §2 A Process subclass (ClockProcess)" process/clock_process
run "002 例1.3 The same subclass, the second document's version" process/clock_process --document=002
run "000 §3 daemon: without it" process/daemon_no
sleep 2  # Let the non-daemonic child of the previous example finish its lines.
run "000 §3 daemon: with it" process/daemon_yes
run "000 §4 / 002 例1.4 join a daemonic process" process/daemon_join
run "001 6.2 §1 Two while loops (bounded by --iterations)" process/two_loops --iterations=3
run "001 6.2 §1 Two worker processes (bounded by --iterations)" process/two_workers --iterations=3
sleep 2
run "001 6.2 §2 Process ids" process/pid
run "001 6.2 §4 Arguments, terminate after 1 s" process/args_kwargs
run "001 6.2 §5 Globals are not shared" process/globals_not_shared
run "002 例1.1 pid, name, is_alive" process/process_info
sleep 3
run "002 例1.2 cpu_count and active_children" process/cpu_count_children
sleep 2
run "003 Mike's watch, with pids" process/watch_pid
run "003 The global the parent never sees" process/watch_global
run "004 方式一 Process with a target" process/piao
sleep 2
run "004 方式二 A Process subclass" process/piao_class
sleep 2
run "004 练习 2 Memory is not shared" process/exercise_globals
run "002 §2 Lock, with and without with" sync/lock_file
run "003 Ten processes, one lock" sync/lock_hello
run "002 §3 Semaphore(2)" sync/semaphore
sleep 2
run "002 §4 Event" sync/event
run "000 §6 Queue: writer and reader" ipc/queue_write_read
run "001 6.4 §1 Queue(3) basics" ipc/queue_basics
run "001 6.4 §2 Downloader and analyser" ipc/queue_download_analysis
run "001 6.4 §2 Write, then read" ipc/queue_write_then_read
run "002 §5 put(block=False)" ipc/queue_writer_nowait
run "003 A queue of [42, None, 'hello']" ipc/queue_list
run "002 §6 Pipe" ipc/pipe_proc
run "003 Pipe between Mike and me" ipc/pipe_watch
run "000 §5 Pool(4), six tasks" pool/long_time_task
run "001 6.5 Pool(3), ten tasks" pool/pool_workers
run "001 6.5 Manager().Queue() between pool workers" pool/manager_queue
run "002 例7.1 apply_async" pool/apply_async
run "002 例7.3 apply_async and get" pool/apply_async_results
for copier in copy_folder copy_folder_progress copy_folder_chunked; do
  if [ -x "$root/apps/copier/$copier" ]; then
    mkdir -p "$work/test"
    for i in 1 2 3 4 5; do head -c 20000 /dev/urandom >"$work/test/file$i.bin"; done
    printf '\n\033[1m== 001 6.6 Folder copier: %s  (input: test)\033[0m\n' "$copier"
    (cd "$work" && echo test | "$root/apps/copier/$copier" --time_scale="$scale") || echo "(exit code $?)"
    rm -rf "$work/test" "$work/test[复件]" "$work/test[副本]"
  fi
done
printf '\nTour done.\n'
