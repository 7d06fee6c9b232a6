// Manager throughput and latency (issue 7): items/s through a Manager Queue
// from a pool worker to the parent (Python here: ~28-33 k items/s; goal
// 280 k), and the round trip of one proxy call.
#include "benchmark/benchmark.h"
#include "manager/manager.h"
#include "pool/pool.h"

namespace {

constexpr int kItems = 50000;

int Produce(mp::proxy::Queue<int> q, int n) {
  for (int i = 0; i < n; ++i) q.put(i);
  return n;
}

void BM_ManagerQueueWorkerToParent(benchmark::State& state) {
  mp::Pool pool(1);
  mp::Manager manager;
  auto q = manager.Queue<int>();
  for (auto _ : state) {
    auto done = pool.apply_async(Produce, q, kItems);
    long sum = 0;
    for (int i = 0; i < kItems; ++i) sum += q.get();
    benchmark::DoNotOptimize(sum);
    done.get();
  }
  state.SetItemsProcessed(state.iterations() * kItems);
}
BENCHMARK(BM_ManagerQueueWorkerToParent)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ProxyCallRoundTrip(benchmark::State& state) {
  mp::Manager manager;
  auto v = manager.Value<int>(1);
  for (auto _ : state) benchmark::DoNotOptimize(v.value());
}
BENCHMARK(BM_ProxyCallRoundTrip)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
