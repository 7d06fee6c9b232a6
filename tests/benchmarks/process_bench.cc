// Process start+join per start method, beside the raw fork()+_exit+waitpid
// floor in the same binary. Goal (issue 3): fork-mode start+join within 1.5x
// of the raw loop. Python here: fork 1.6-2.1 ms, forkserver 7.5 ms, spawn
// 40-49 ms. Issue 23: spawn's floors (posix_spawn of /bin/true, and of this
// very binary exiting first thing in main), and queue and pipe traffic with
// a child of each method (the timed part starts once the child is up).
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>

#include "benchmark/benchmark.h"
#include "ipc/pipe.h"
#include "ipc/queue.h"
#include "process/process.h"
#include "sync/synchronize.h"

extern char** environ;

namespace {

constexpr char kExitAtMain[] = "MP_BENCH_EXIT_AT_MAIN";

void Noop() {}

void SpawnAndWait(const char* path) {
  char* argv[] = {const_cast<char*>(path), nullptr};
  pid_t pid;
  if (posix_spawn(&pid, path, nullptr, nullptr, argv, environ) != 0) std::abort();
  waitpid(pid, nullptr, 0);
}

void BM_PosixSpawnTrue(benchmark::State& state) {
  for (auto _ : state) SpawnAndWait("/bin/true");
}
BENCHMARK(BM_PosixSpawnTrue)->Unit(benchmark::kMicrosecond);

// The floor of a spawn child: exec of this binary, its shared libraries
// loaded and its static initializers run, then _exit at the top of main.
void BM_PosixSpawnSelfNoop(benchmark::State& state) {
  setenv(kExitAtMain, "1", 1);
  for (auto _ : state) SpawnAndWait("/proc/self/exe");
  unsetenv(kExitAtMain);
}
BENCHMARK(BM_PosixSpawnSelfNoop)->Unit(benchmark::kMicrosecond);

constexpr int kItems = 200000;

void Produce(mp::Queue<uint64_t> q, mp::Event go, int n) {
  go.wait();
  for (int i = 0; i < n; ++i) q.put(static_cast<uint64_t>(i));
}

// Items/s from a child of `method` to this process, 8-byte items.
void BM_QueueFromChild(benchmark::State& state, const char* method) {
  for (auto _ : state) {
    mp::Queue<uint64_t> q;
    mp::Event go;
    mp::Process p(mp::ProcessOptions{.start_method = method}, &Produce, q, go, kItems);
    p.start();
    const auto start = std::chrono::steady_clock::now();
    go.set();
    for (int i = 0; i < kItems; ++i) benchmark::DoNotOptimize(q.get());
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    p.join();
  }
  state.SetItemsProcessed(state.iterations() * kItems);
}
BENCHMARK_CAPTURE(BM_QueueFromChild, fork, "fork")->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_QueueFromChild, spawn, "spawn")->UseManualTime()->Unit(benchmark::kMillisecond);

constexpr int kRounds = 5000;

void EchoAll(mp::Connection conn, int n) {
  for (int i = 0; i < n; ++i) conn.send(conn.recv<uint64_t>());
}

// A round trip of an 8-byte message with a child of `method`.
void BM_ChildPipePingPong(benchmark::State& state, const char* method) {
  for (auto _ : state) {
    auto [mine, theirs] = mp::Pipe();
    mp::Process p(mp::ProcessOptions{.start_method = method}, &EchoAll, theirs, kRounds + 1);
    p.start();
    mine.send(uint64_t{0});
    mine.recv<uint64_t>();  // the child is up
    const auto start = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < kRounds; ++i) {
      mine.send(i);
      benchmark::DoNotOptimize(mine.recv<uint64_t>());
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    state.SetIterationTime(seconds);
    state.counters["us_per_round"] = seconds / kRounds * 1e6;
    p.join();
  }
}
BENCHMARK_CAPTURE(BM_ChildPipePingPong, fork, "fork")->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_ChildPipePingPong, spawn, "spawn")->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_RawForkWaitpid(benchmark::State& state) {
  for (auto _ : state) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    waitpid(pid, nullptr, 0);
  }
}
BENCHMARK(BM_RawForkWaitpid)->Unit(benchmark::kMicrosecond);

void BM_ProcessStartJoin(benchmark::State& state, const char* method) {
  for (auto _ : state) {
    mp::Process p(mp::ProcessOptions{.start_method = method}, Noop);
    p.start();
    p.join();
  }
}
BENCHMARK_CAPTURE(BM_ProcessStartJoin, fork, "fork")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_ProcessStartJoin, forkserver, "forkserver")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_ProcessStartJoin, spawn, "spawn")->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  if (std::getenv(kExitAtMain) != nullptr) _exit(0);
  mp::init(argc, argv);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
