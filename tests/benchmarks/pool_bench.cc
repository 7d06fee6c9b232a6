// Pool throughput (issue 6), beside the raw cost of a Queue round trip in the
// same binary. Python's Pool(2) here: 38-49 k trivial tasks/s (apply_async),
// 11 M items/s (map, default chunksize), 68 k items/s (imap_unordered,
// chunksize 1). Goals: >= 1 M tasks/s, >= 10x Python on imap_unordered with
// chunksize 1, >= 100 M items/s through map with a tuned chunksize.
#include <numeric>
#include <vector>

#include "benchmark/benchmark.h"
#include "ipc/queue.h"
#include "pool/pool.h"
#include "process/process.h"
#include "tests/benchmarks/pool_cases.h"

namespace {

using bench::Identity;

void BM_RawQueueRoundTrip(benchmark::State& state) {
  mp::Queue<int> to_child, to_parent;
  mp::Process echo([to_child, to_parent]() mutable {
    for (;;) {
      int v = to_child.get();
      if (v < 0) return;
      to_parent.put(v);
    }
  });
  echo.start();
  for (auto _ : state) {
    to_child.put(1);
    benchmark::DoNotOptimize(to_parent.get());
  }
  to_child.put(-1);
  echo.join();
}
BENCHMARK(BM_RawQueueRoundTrip)->UseRealTime();

void BM_ApplyAsyncTrivial(benchmark::State& state) {
  mp::Pool pool(2);
  bench::ApplyAsyncTrivial(state, pool);
}
BENCHMARK(BM_ApplyAsyncTrivial)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_MapInts(benchmark::State& state) {
  mp::Pool pool(2);
  bench::MapInts(state, pool, static_cast<size_t>(state.range(0)));
}
BENCHMARK(BM_MapInts)->Arg(0)->Arg(50000)->ArgName("chunksize")->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ImapUnorderedChunk1(benchmark::State& state) {
  mp::Pool pool(2);
  std::vector<int> xs(20000);
  std::iota(xs.begin(), xs.end(), 0);
  for (auto _ : state) {
    long sum = 0;
    for (int y : pool.imap_unordered(Identity, xs, 1)) sum += y;
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(xs.size()));
}
BENCHMARK(BM_ImapUnorderedChunk1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
