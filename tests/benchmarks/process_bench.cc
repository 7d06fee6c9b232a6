// Process start+join per start method, beside the raw fork()+_exit+waitpid
// floor in the same binary. Goal (issue 3): fork-mode start+join within 1.5x
// of the raw loop. Python here: fork 1.6-2.1 ms, forkserver 7.5 ms, spawn
// 40-49 ms.
#include <sys/wait.h>
#include <unistd.h>

#include "benchmark/benchmark.h"
#include "process/process.h"

namespace {

void Noop() {}

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
  mp::init(argc, argv);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
