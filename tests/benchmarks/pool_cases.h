// Pool workloads measured by more than one benchmark binary (pool_bench on
// local pools, mpi_pool_bench on local and MPI pools), so both measure the
// same work.
#ifndef TESTS_BENCHMARKS_POOL_CASES_H_
#define TESTS_BENCHMARKS_POOL_CASES_H_

#include <cstdint>
#include <numeric>
#include <vector>

#include "benchmark/benchmark.h"
#include "pool/pool.h"

namespace bench {

inline int Identity(int x) { return x; }

// Each case runs one untimed round first: a new pool's rings, tables and
// buffers are touched for the first time then (page faults cost ~12 us each
// on this VM), which is start-up, not the throughput measured here.

// ApplyAsyncTrivial: 20,000 apply_async(Identity) per iteration, then every get().
inline void ApplyAsyncTrivial(benchmark::State& state, mp::Pool& pool) {
  constexpr int kTasks = 20000;
  std::vector<mp::AsyncResult<int>> results;
  results.reserve(kTasks);
  auto round = [&] {
    results.clear();
    for (int i = 0; i < kTasks; ++i) results.push_back(pool.apply_async(Identity, i));
    for (auto& r : results) benchmark::DoNotOptimize(r.get());
  };
  round();
  for (auto _ : state) round();
  state.SetItemsProcessed(state.iterations() * kTasks);
}

// MapInts: map(Identity) over 1,000,000 ints with `chunksize` (0: default).
inline void MapInts(benchmark::State& state, mp::Pool& pool, size_t chunksize) {
  std::vector<int> xs(1000000);
  std::iota(xs.begin(), xs.end(), 0);
  benchmark::DoNotOptimize(pool.map(Identity, xs, chunksize));
  for (auto _ : state) benchmark::DoNotOptimize(pool.map(Identity, xs, chunksize));
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(xs.size()));
}

}  // namespace bench

#endif  // TESTS_BENCHMARKS_POOL_CASES_H_
