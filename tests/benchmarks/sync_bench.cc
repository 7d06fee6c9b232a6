// Locks and events, each beside its floor in the same binary (issue 4):
// - uncontended acquire+release: mp::Lock vs std::mutex (goal: within 2x),
//   a robust pthread mutex and Boost.Interprocess's mutex as peers;
// - two processes incrementing a Value<int> under its lock (goal: >= 3x
//   Python's 1.3 M/s);
// - Event set -> wake-up across processes vs a raw futex (goal: within 1.2x),
//   measured as half a ping-pong, unpinned and pinned to one CPU.
#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <atomic>
#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <mutex>
#include <thread>

#include "benchmark/benchmark.h"
#include "process/process.h"
#include "sync/shared_value.h"
#include "sync/synchronize.h"
#include "tests/benchmarks/bench_util.h"

namespace {

void BM_StdMutex(benchmark::State& state) {
  std::mutex m;
  for (auto _ : state) {
    m.lock();
    m.unlock();
  }
}
BENCHMARK(BM_StdMutex);

// glibc skips the atomic instructions of a private mutex while the process
// has a single thread (__libc_single_threaded), which a lock shared between
// processes can never do. With a second thread alive, std::mutex pays for
// its atomics as any cross-process lock must: the fair floor.
void BM_StdMutexMultithreaded(benchmark::State& state) {
  std::mutex m;
  std::thread idle([] {});
  idle.join();  // Once a thread has existed, glibc stays in multi-threaded mode.
  for (auto _ : state) {
    m.lock();
    m.unlock();
  }
}
BENCHMARK(BM_StdMutexMultithreaded);

void BM_MpLock(benchmark::State& state) {
  mp::Lock m;
  for (auto _ : state) {
    m.acquire();
    m.release();
  }
}
BENCHMARK(BM_MpLock);

void BM_PthreadRobustSharedMutex(benchmark::State& state) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_t m;
  pthread_mutex_init(&m, &attr);
  for (auto _ : state) {
    pthread_mutex_lock(&m);
    pthread_mutex_unlock(&m);
  }
  pthread_mutex_destroy(&m);
}
BENCHMARK(BM_PthreadRobustSharedMutex);

void BM_BoostInterprocessMutex(benchmark::State& state) {
  boost::interprocess::interprocess_mutex m;
  for (auto _ : state) {
    m.lock();
    m.unlock();
  }
}
BENCHMARK(BM_BoostInterprocessMutex);

// Two processes, each adding `per_process` to a shared counter under its lock.
void BM_ValueIncrementTwoProcesses(benchmark::State& state) {
  constexpr int kPerProcess = 200000;
  for (auto _ : state) {
    mp::Value<int> v(0);
    auto work = [v]() mutable {
      for (int i = 0; i < kPerProcess; ++i) {
        std::lock_guard<mp::RLock> with(v.get_lock());
        v.set_value(v.value() + 1);
      }
    };
    mp::Process child(work);
    child.start();
    work();
    child.join();
    if (v.value() != 2 * kPerProcess) state.SkipWithError("lost updates");
  }
  state.SetItemsProcessed(state.iterations() * 2 * kPerProcess);
}
BENCHMARK(BM_ValueIncrementTwoProcesses)->Unit(benchmark::kMillisecond)->UseRealTime();

// Floor: the same with a process-shared Boost mutex around a plain int.
void BM_BoostMutexIncrementTwoProcesses(benchmark::State& state) {
  constexpr int kPerProcess = 200000;
  struct Shared {
    boost::interprocess::interprocess_mutex m;
    int value = 0;
  };
  void* mem = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  for (auto _ : state) {
    Shared* s = new (mem) Shared;
    auto work = [s] {
      for (int i = 0; i < kPerProcess; ++i) {
        s->m.lock();
        ++s->value;
        s->m.unlock();
      }
    };
    bench::RawChild child(work);
    work();
    child.Wait();
    if (s->value != 2 * kPerProcess) state.SkipWithError("lost updates");
  }
  munmap(mem, sizeof(Shared));
  state.SetItemsProcessed(state.iterations() * 2 * kPerProcess);
}
BENCHMARK(BM_BoostMutexIncrementTwoProcesses)->Unit(benchmark::kMillisecond)->UseRealTime();

// Event ping-pong: the parent sets `ping`, the child wakes, clears it and
// sets `pong`. Half the round trip is one set -> wake-up.
void BM_EventWakeup(benchmark::State& state) {
  const bool pinned = state.range(0) != 0;
  mp::Event ping, pong;
  mp::RawValue<int> stop(0);
  if (pinned) bench::Pin(0);
  mp::Process child([&] {
    for (;;) {
      ping.wait();
      ping.clear();
      if (stop.value()) return;
      pong.set();
    }
  });
  child.start();
  for (auto _ : state) {
    ping.set();
    pong.wait();
    pong.clear();
  }
  stop.set_value(1);
  ping.set();
  child.join();
  bench::Pin(-1);
  state.counters["s_per_wakeup"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * 2, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_EventWakeup)->Arg(0)->Arg(1)->ArgName("pinned")->UseRealTime();

long Futex(std::atomic<uint32_t>* word, int op, uint32_t value) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op, value, nullptr, nullptr, 0);
}

// Floor: the same ping-pong on two raw futex words.
void BM_RawFutexWakeup(benchmark::State& state) {
  const bool pinned = state.range(0) != 0;
  auto* words = static_cast<std::atomic<uint32_t>*>(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  std::atomic<uint32_t>* ping = &words[0];
  std::atomic<uint32_t>* pong = &words[16];
  std::atomic<uint32_t>* stop = &words[32];
  if (pinned) bench::Pin(0);
  auto wait_and_clear = [](std::atomic<uint32_t>* w) {
    while (w->load() == 0) Futex(w, FUTEX_WAIT, 0);
    w->store(0);
  };
  auto set = [](std::atomic<uint32_t>* w) {
    w->store(1);
    Futex(w, FUTEX_WAKE, 1);
  };
  bench::RawChild child([&] {
    for (;;) {
      wait_and_clear(ping);
      if (stop->load()) return;
      set(pong);
    }
  });
  for (auto _ : state) {
    set(ping);
    wait_and_clear(pong);
  }
  stop->store(1);
  set(ping);
  child.Wait();
  bench::Pin(-1);
  munmap(words, 4096);
  state.counters["s_per_wakeup"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * 2, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_RawFutexWakeup)->Arg(0)->Arg(1)->ArgName("pinned")->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
