// Manager throughput and latency (issue 7): items/s through a Manager Queue
// from a pool worker to the parent (Python here: ~28-33 k items/s; goal
// 500 k, issue 21), and the round trip of one proxy call beside a raw
// Unix-socket ping-pong.
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

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

// The floor of a proxy call: a raw ping-pong of a small message over a Unix
// stream socket with a process that answers it (issue 21: a proxy call
// within 1.5x of this, measured beside it).
void BM_RawUnixSocketPingPong(benchmark::State& state) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
  const pid_t echo = fork();
  if (echo == 0) {
    close(fds[0]);
    char buf[64];
    for (;;) {
      const ssize_t n = read(fds[1], buf, sizeof buf);
      if (n <= 0 || write(fds[1], buf, static_cast<size_t>(n)) != n) _exit(0);
    }
  }
  close(fds[1]);
  char msg[32] = {1};
  for (auto _ : state) {
    if (write(fds[0], msg, sizeof msg) != sizeof msg) std::abort();
    size_t got = 0;
    while (got < sizeof msg) {
      const ssize_t n = read(fds[0], msg + got, sizeof msg - got);
      if (n <= 0) std::abort();
      got += static_cast<size_t>(n);
    }
  }
  close(fds[0]);
  waitpid(echo, nullptr, 0);
}
BENCHMARK(BM_RawUnixSocketPingPong)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
