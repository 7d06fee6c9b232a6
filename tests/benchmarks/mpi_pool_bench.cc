// The cost of the distributed path (issue 12): the same Pool calls, from the
// same program, run the two ways a user would run it:
//   bazel-bin/tests/benchmarks/mpi_pool_bench           # .../local: fork Pool(2)
//   mpirun -np 3 --oversubscribe --bind-to none bazel-bin/tests/benchmarks/mpi_pool_bench
//                                                       # .../mpi: ranks 1 and 2
// (as root, with OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1).
// tests/benchmarks/run does both and prints MPI / local ratios. The local
// baseline runs without MPI on purpose: under mpirun, Open MPI's memory hooks
// slow a local pool's big allocations too (map over ints drops from ~240 to
// ~30-40 M items/s here), which would flatter the MPI pool.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <numeric>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "pool/mpi_pool.h"
#include "pool/pool.h"
#include "tests/benchmarks/pool_cases.h"

namespace {

constexpr int kWorkers = 2;

// A CPU-heavy task: the primes in [n * 20000, (n + 1) * 20000).
int CountPrimesInBlock(int n) {
  int count = 0;
  for (int64_t x = int64_t{n} * 20000; x < int64_t{n + 1} * 20000; ++x) {
    bool prime = x >= 2;
    for (int64_t d = 2; d * d <= x && prime; ++d) prime = x % d != 0;
    count += prime;
  }
  return count;
}

mp::PoolOptions Options(const std::string& start_method) {
  return mp::PoolOptions{.processes = kWorkers, .start_method = start_method};
}

void ApplyAsyncTrivial(benchmark::State& state, std::string start_method) {
  mp::Pool pool(Options(start_method));
  bench::ApplyAsyncTrivial(state, pool);
}

void MapInts(benchmark::State& state, std::string start_method) {
  mp::Pool pool(Options(start_method));
  bench::MapInts(state, pool, 50000);
}

void MapCountPrimes(benchmark::State& state, std::string start_method) {
  mp::Pool pool(Options(start_method));
  std::vector<int> blocks(64);
  std::iota(blocks.begin(), blocks.end(), 0);
  for (auto _ : state) benchmark::DoNotOptimize(pool.map(CountPrimesInBlock, blocks, 1));
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(blocks.size()));
}


}  // namespace

int main(int argc, char** argv) {
  const bool under_mpirun = std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr;
  std::string method = "fork";
  if (under_mpirun) {
    mp::mpi::init(argc, argv);  // Ranks 1 and 2 serve the MPI pools from here.
    if (mp::mpi::size() != kWorkers + 1) {
      std::fprintf(stderr, "mpi_pool_bench: run with mpirun -np %d\n", kWorkers + 1);
      return 2;
    }
    method = "mpi";
  }
  const std::string suffix = under_mpirun ? "/mpi" : "/local";
  for (auto [name, function] : {std::pair{"BM_ApplyAsyncTrivial", &ApplyAsyncTrivial},
                                std::pair{"BM_MapInts", &MapInts},
                                std::pair{"BM_MapCountPrimes", &MapCountPrimes}}) {
    benchmark::RegisterBenchmark((name + suffix).c_str(), function, method)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
