// Moving data between processes, each beside its floor and peer (issue 5):
// - Pipe ping-pong of a small message vs a raw socketpair (goal: within
//   1.3x), unpinned and pinned to one CPU. The floor is the byte-stream
//   socketpair of MEASURING.md (and of Python's Pipe); mp::Pipe itself runs
//   on a SOCK_SEQPACKET pair, which receives a small message in one call;
// - send_bytes of 1 MiB vs a socketpair with 1 MiB buffers (goal: >= 0.8x),
//   and over a simplex Pipe;
// - Queue of 8-byte items vs Boost.Interprocess message_queue (goal: at
//   least as fast) with a lock-free SPSC ring in shared memory as the floor;
//   1 MiB items (goal: >= 10 GiB/s).
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/interprocess/ipc/message_queue.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "ipc/connection.h"
#include "ipc/queue.h"
#include "process/process.h"
#include "tests/benchmarks/bench_util.h"

namespace {

void ReadFull(int fd, void* buf, size_t n) {
  char* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r <= 0) _exit(1);
    p += r;
    n -= static_cast<size_t>(r);
  }
}

void WriteFull(int fd, const void* buf, size_t n) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) _exit(1);
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void BM_RawSocketpairPingPong(benchmark::State& state) {
  if (state.range(0)) bench::Pin(0);
  int fds[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, fds);
  bench::RawChild child([&] {
    uint64_t v;
    for (;;) {
      ReadFull(fds[1], &v, sizeof v);
      WriteFull(fds[1], &v, sizeof v);
    }
  });
  uint64_t v = 1;
  for (auto _ : state) {
    WriteFull(fds[0], &v, sizeof v);
    ReadFull(fds[0], &v, sizeof v);
  }
  child.Kill();
  close(fds[0]);
  close(fds[1]);
  bench::Pin(-1);
}
BENCHMARK(BM_RawSocketpairPingPong)->Arg(0)->Arg(1)->ArgName("pinned")->UseRealTime();

void BM_PipePingPong(benchmark::State& state) {
  if (state.range(0)) bench::Pin(0);
  auto a_b = mp::Pipe();  // clang 14 cannot capture structured bindings
  auto& a = a_b.first;
  auto& b = a_b.second;
  mp::Process child([a, b]() mutable {
    a.close();  // The child's copy of the parent's end would keep EOF away.
    try {
      for (;;) b.send(b.recv<int64_t>());
    } catch (const mp::EOFError&) {
    }
  });
  child.start();
  b.close();
  int64_t v = 1;
  for (auto _ : state) {
    a.send(v);
    v = a.recv<int64_t>();
  }
  a.close();
  child.join();
  bench::Pin(-1);
}
BENCHMARK(BM_PipePingPong)->Arg(0)->Arg(1)->ArgName("pinned")->UseRealTime();

constexpr size_t kMiB = 1 << 20;

void BM_RawSocketpair1MiB(benchmark::State& state) {
  int fds[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, fds);
  int size = 1 << 20;
  for (int fd : fds) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  bench::RawChild child([&] {
    std::vector<char> buf(kMiB);
    char ack = 1;
    for (;;) {
      ReadFull(fds[1], buf.data(), kMiB);
      WriteFull(fds[1], &ack, 1);
    }
  });
  std::vector<char> buf(kMiB, 'x');
  char ack;
  for (auto _ : state) {
    WriteFull(fds[0], buf.data(), kMiB);
    ReadFull(fds[0], &ack, 1);
  }
  child.Kill();
  close(fds[0]);
  close(fds[1]);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kMiB));
}
BENCHMARK(BM_RawSocketpair1MiB)->UseRealTime();

void BM_PipeSendBytes1MiB(benchmark::State& state) {
  const bool duplex = state.range(0) != 0;
  auto reader_writer = mp::Pipe(duplex);  // clang 14 cannot capture structured bindings
  auto& reader = reader_writer.first;
  auto& writer = reader_writer.second;
  auto ack_reader_ack_writer = mp::Pipe(false);  // clang 14 cannot capture structured bindings
  auto& ack_reader = ack_reader_ack_writer.first;
  auto& ack_writer = ack_reader_ack_writer.second;
  mp::Process child([reader, writer, ack_reader, ack_writer]() mutable {
    writer.close();  // Close the ends the child does not use, or EOF never comes.
    ack_reader.close();
    try {
      for (;;) {
        std::string m = reader.recv_bytes();
        ack_writer.send_bytes("k");
      }
    } catch (const mp::Error&) {
    }
  });
  child.start();
  reader.close();
  ack_writer.close();
  const std::string payload(kMiB, 'x');
  for (auto _ : state) {
    writer.send_bytes(payload);
    ack_reader.recv_bytes();
  }
  writer.close();
  child.join();
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kMiB));
}
BENCHMARK(BM_PipeSendBytes1MiB)->Arg(1)->Arg(0)->ArgName("duplex")->UseRealTime();

constexpr int kItems = 200000;

// Floor: a single-producer single-consumer lock-free ring of 8-byte items in
// shared memory, spinning (no sleeps).
void BM_SpscRingFloor(benchmark::State& state) {
  struct Ring {
    alignas(64) std::atomic<uint64_t> head{0};
    alignas(64) std::atomic<uint64_t> tail{0};
    alignas(64) uint64_t slots[4096];
  };
  void* mem = mmap(nullptr, sizeof(Ring), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  for (auto _ : state) {
    Ring* r = new (mem) Ring;
    bench::RawChild producer([r] {
      for (uint64_t i = 0; i < kItems; ++i) {
        const uint64_t t = r->tail.load(std::memory_order_relaxed);
        while (t - r->head.load(std::memory_order_acquire) >= 4096) {
        }
        r->slots[t % 4096] = i;
        r->tail.store(t + 1, std::memory_order_release);
      }
    });
    uint64_t sum = 0;
    for (uint64_t i = 0; i < kItems; ++i) {
      const uint64_t h = r->head.load(std::memory_order_relaxed);
      while (r->tail.load(std::memory_order_acquire) == h) {
      }
      sum += r->slots[h % 4096];
      r->head.store(h + 1, std::memory_order_release);
    }
    benchmark::DoNotOptimize(sum);
    producer.Wait();
  }
  munmap(mem, sizeof(Ring));
  state.SetItemsProcessed(state.iterations() * kItems);
}
BENCHMARK(BM_SpscRingFloor)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_BoostMessageQueue8B(benchmark::State& state) {
  namespace bip = boost::interprocess;
  const std::string name = "mp_bench_mq_" + std::to_string(getpid());
  for (auto _ : state) {
    bip::message_queue::remove(name.c_str());
    bip::message_queue mq(bip::create_only, name.c_str(), 4096, sizeof(uint64_t));
    bench::RawChild producer([&] {
      bip::message_queue q(bip::open_only, name.c_str());
      for (uint64_t i = 0; i < kItems; ++i) q.send(&i, sizeof i, 0);
    });
    uint64_t v, sum = 0;
    size_t got;
    unsigned prio;
    for (int i = 0; i < kItems; ++i) {
      mq.receive(&v, sizeof v, got, prio);
      sum += v;
    }
    benchmark::DoNotOptimize(sum);
    producer.Wait();
  }
  bip::message_queue::remove(name.c_str());
  state.SetItemsProcessed(state.iterations() * kItems);
}
BENCHMARK(BM_BoostMessageQueue8B)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Queue8B(benchmark::State& state) {
  for (auto _ : state) {
    mp::Queue<int64_t> q;
    mp::Process producer([q]() mutable {
      for (int64_t i = 0; i < kItems; ++i) q.put(i);
    });
    producer.start();
    int64_t sum = 0;
    for (int i = 0; i < kItems; ++i) sum += q.get();
    benchmark::DoNotOptimize(sum);
    producer.join();
  }
  state.SetItemsProcessed(state.iterations() * kItems);
}
BENCHMARK(BM_Queue8B)->Unit(benchmark::kMillisecond)->UseRealTime();

// The 1 MiB streams are measured once set up: the queue and the producer
// process are made once per benchmark, and each iteration asks the producer
// for 256 more items. Setting up is not what these figures are about, and on
// this VM it would dominate them: the first touch of each page of a fresh
// 4 MiB shared ring costs about 12 us in each process (MEASURING.md's
// "memory" trap), some 25 ms per queue against 40 ms for 256 MiB. One
// untimed round touches the ring's pages first, as any long stream does.
constexpr int kBig = 256;

void BM_Queue1MiB(benchmark::State& state) {
  mp::Queue<std::string> q;
  mp::Queue<int> requests;  // how many items to send next; 0: exit
  mp::Process producer([q, requests]() mutable {
    const std::string item(kMiB, 'x');
    while (const int n = requests.get()) {
      for (int i = 0; i < n; ++i) q.put(item);
    }
  });
  producer.start();
  auto round = [&] {
    requests.put(kBig);
    size_t total = 0;
    for (int i = 0; i < kBig; ++i) total += q.get().size();
    benchmark::DoNotOptimize(total);
  };
  round();
  for (auto _ : state) round();
  requests.put(0);
  producer.join();
  state.SetBytesProcessed(state.iterations() * kBig * static_cast<int64_t>(kMiB));
}
BENCHMARK(BM_Queue1MiB)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_BoostMessageQueue1MiB(benchmark::State& state) {
  namespace bip = boost::interprocess;
  const std::string name = "mp_bench_mq_big_" + std::to_string(getpid());
  const std::string requests_name = name + "_requests";
  bip::message_queue::remove(name.c_str());
  bip::message_queue::remove(requests_name.c_str());
  {
    bip::message_queue mq(bip::create_only, name.c_str(), 4, kMiB);
    bip::message_queue requests(bip::create_only, requests_name.c_str(), 4, sizeof(int));
    bench::RawChild producer([&] {
      bip::message_queue q(bip::open_only, name.c_str());
      bip::message_queue r(bip::open_only, requests_name.c_str());
      const std::string item(kMiB, 'x');
      int n;
      size_t got;
      unsigned prio;
      for (r.receive(&n, sizeof n, got, prio); n != 0; r.receive(&n, sizeof n, got, prio)) {
        for (int i = 0; i < n; ++i) q.send(item.data(), item.size(), 0);
      }
    });
    std::string buf(kMiB, '\0');
    auto round = [&] {
      const int n = kBig;
      requests.send(&n, sizeof n, 0);
      size_t got;
      unsigned prio;
      for (int i = 0; i < kBig; ++i) mq.receive(buf.data(), buf.size(), got, prio);
    };
    round();
    for (auto _ : state) round();
    const int stop = 0;
    requests.send(&stop, sizeof stop, 0);
    producer.Wait();
  }
  bip::message_queue::remove(name.c_str());
  bip::message_queue::remove(requests_name.c_str());
  state.SetBytesProcessed(state.iterations() * kBig * static_cast<int64_t>(kMiB));
}
BENCHMARK(BM_BoostMessageQueue1MiB)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
