// Pool throughput (issue 6), beside the raw cost of a Queue round trip in the
// same binary. Python's Pool(2) here: 38-49 k trivial tasks/s (apply_async),
// 11 M items/s (map, default chunksize), 68 k items/s (imap_unordered,
// chunksize 1). Goals: >= 1 M tasks/s, >= 10x Python on imap_unordered with
// chunksize 1, >= 100 M items/s through map with a tuned chunksize.
#include <sys/resource.h>

#include <numeric>
#include <ranges>
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

// Issue 24: submit + result of trivial tasks (goal >= 1 M tasks/s, against
// apply_async in the same run).
void BM_SubmitResultTrivial(benchmark::State& state) {
  mp::Pool pool(2);
  constexpr int kTasks = 20000;
  std::vector<mp::Future<int>> futures;
  futures.reserve(kTasks);
  auto round = [&] {
    futures.clear();
    for (int i = 0; i < kTasks; ++i) futures.push_back(pool.submit(Identity, i));
    for (auto& f : futures) benchmark::DoNotOptimize(f.result());
  };
  round();  // untimed: first-touch page faults (see pool_cases.h)
  for (auto _ : state) round();
  state.SetItemsProcessed(state.iterations() * kTasks);
}
BENCHMARK(BM_SubmitResultTrivial)->Unit(benchmark::kMillisecond)->UseRealTime();

long PeakRssKb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// Issue 24: lazy imap_unordered, chunksize 1, from an endless input (goal
// >= 700 k items/s), 1 M items per iteration.
void BM_ImapUnorderedLazyChunk1(benchmark::State& state) {
  mp::Pool pool(2);
  constexpr int kItems = 1000000;
  for (auto _ : state) {
    long sum = 0;
    auto it = pool.imap_unordered(Identity, std::views::iota(0), 1, 4096);
    for (int i = 0; i < kItems; ++i) sum += it.next();
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * kItems);
}
BENCHMARK(BM_ImapUnorderedLazyChunk1)->Unit(benchmark::kMillisecond)->UseRealTime();

// Issue 24: memory over 10 M items of an endless input: peak RSS after the
// first 1 M and after all 10 M (flat: the same).
void BM_ImapUnorderedLazyMemory(benchmark::State& state) {
  mp::Pool pool(2);
  for (auto _ : state) {
    long sum = 0;
    auto it = pool.imap_unordered(Identity, std::views::iota(0), 1, 4096);
    for (int i = 0; i < 1000000; ++i) sum += it.next();
    state.counters["peak_rss_kb_at_1M"] = static_cast<double>(PeakRssKb());
    for (int i = 1000000; i < 10000000; ++i) sum += it.next();
    state.counters["peak_rss_kb_at_10M"] = static_cast<double>(PeakRssKb());
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * 10000000);
}
// One run of 10 M items is ~15 s here: one repetition, whatever the flags.
BENCHMARK(BM_ImapUnorderedLazyMemory)->Iterations(1)->Repetitions(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
