// Every IPC and sync object reaches a child of every start method as a
// Process argument, and the child uses the same object (issue 23's matrix).
// Each worker is a plain function (what spawn and forkserver need); the
// parent checks the effect, so a copy instead of the shared object fails.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>

#include "ipc/connection.h"
#include "ipc/queue.h"
#include "ipc/shared_memory.h"
#include "manager/manager.h"
#include "pool/executor.h"
#include "pool/pool.h"
#include "process/context.h"
#include "process/process.h"
#include "sync/shared_value.h"
#include "sync/synchronize.h"
#include "tests/test_util.h"

namespace mp {
namespace {

using namespace std::chrono_literals;

// ---- Workers: each returns 0 when it saw and changed the parent's object.

void PutGreeting(Queue<std::string> q) { q.put("from " + current_process().name()); }
void PutNumber(SimpleQueue<int> q) { q.put(7); }
int ConsumeAll(JoinableQueue<int> q, int n) {
  for (int i = 0; i < n; ++i) {
    if (q.get(10s) != i) return 2;
    q.task_done();
  }
  return 0;
}
int Echo(Connection conn) {
  conn.send(conn.recv<std::string>() + " back");
  return 0;
}
int SendsQueueBack(Connection conn) {
  // A queue received over a connection inside the child, then used.
  auto q = conn.recv<Queue<int>>();
  q.put(99);
  return 0;
}
// Held by the parent: a copy of the lock would be free.
int FindsLockTaken(Lock lock) { return lock.acquire(false) ? 1 : 0; }
int FindsRLockTaken(RLock lock) { return lock.acquire(false) ? 1 : 0; }
void Releases(Semaphore s) { s.release(); }
int ReleasesPastBound(BoundedSemaphore s) {
  s.release();
  try {
    s.release();
    return 1;
  } catch (const ValueError&) {
    return 0;
  }
}
void Sets(Event e) { e.set(); }
void NotifiesAfter(Condition c, Value<int> v) {
  std::unique_lock<Condition> with(c);
  v.set_value(1);
  c.notify_all();
}
int Meets(Barrier b) { return b.wait(10s) >= 0 ? 0 : 1; }
void Writes42(Value<int> v) { v.set_value(42); }
void WritesRaw(RawValue<long> v, RawArray<int> a) {
  v.set_value(-5);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<int>(i * 10);
}
void Doubles(Array<double> a) {
  std::lock_guard<RLock> with(a.get_lock());
  for (double& x : a) x *= 2;
}
void WritesShm(SharedMemory shm) { std::memcpy(shm.buf().data(), "shared!", 8); }
void SetsInDict(proxy::Dict<std::string, int> d) { d.set("child", 1); }
void IncrementsValue(proxy::Value<int> v) { v.set_value(v.value() + 1); }
int IncrementsValueReturning(proxy::Value<int> v) {
  v.set_value(v.value() + 1);
  return v.value();
}

// A function object whose state travels (Python: a picklable callable).
struct AddTo {
  int amount = 0;
  void operator()(Value<int> v) const { v.set_value(v.value() + amount); }
  template <class Archive>
  void serialize(Archive& ar) {
    ar(amount);
  }
};

// A subclass, registered for spawn and forkserver.
class Reporter : public Process {
 public:
  Reporter() = default;
  Reporter(ProcessOptions options, int interval, Value<int> out)
      : Process(std::move(options)), interval_(interval), out_(out) {}
  void run() override { out_.set_value(interval_ * 100 + (current_process().name() == name() ? 1 : 0)); }
  template <class Archive>
  void serialize(Archive& ar) {
    ar(interval_, out_);
  }

 private:
  int interval_ = 0;
  Value<int> out_;
};
MP_SPAWNABLE_PROCESS(Reporter);

class Unregistered : public Process {
 public:
  using Process::Process;
  void run() override {}
};

// ---- The matrix.

class EveryMethod : public ::testing::TestWithParam<std::string> {
 protected:
  template <class F, class... Args>
  int RunChild(F f, Args&&... args) {
    Process p(ProcessOptions{.start_method = GetParam()}, f, std::forward<Args>(args)...);
    p.start();
    if (!p.join(20s)) {
      p.kill();
      p.join();
      return -1000;
    }
    return *p.exitcode();
  }
};

TEST_P(EveryMethod, Queue) {
  Queue<std::string> q;
  ASSERT_EQ(RunChild(&PutGreeting, q), 0);
  EXPECT_EQ(q.get(5s).rfind("from Process-", 0), 0u);
}

TEST_P(EveryMethod, SimpleQueue) {
  SimpleQueue<int> q;
  ASSERT_EQ(RunChild(&PutNumber, q), 0);
  EXPECT_EQ(q.get(), 7);
}

TEST_P(EveryMethod, JoinableQueue) {
  JoinableQueue<int> q;
  for (int i = 0; i < 5; ++i) q.put(i);
  ASSERT_EQ(RunChild(&ConsumeAll, q, 5), 0);
  EXPECT_TRUE(q.join(5s));
}

TEST_P(EveryMethod, ConnectionEnd) {
  auto [mine, theirs] = Pipe();
  mine.send(std::string("ping"));
  ASSERT_EQ(RunChild(&Echo, theirs), 0);
  EXPECT_EQ(mine.recv<std::string>(), "ping back");
}

TEST_P(EveryMethod, QueueSentOverAConnectionTheChildGot) {
  auto [mine, theirs] = Pipe();
  Queue<int> q;
  mine.send(q);
  ASSERT_EQ(RunChild(&SendsQueueBack, theirs), 0);
  EXPECT_EQ(q.get(5s), 99);
}

TEST_P(EveryMethod, Lock) {
  Lock lock;
  lock.acquire();
  EXPECT_EQ(RunChild(&FindsLockTaken, lock), 0);
  lock.release();
  EXPECT_EQ(RunChild(&FindsLockTaken, lock), 1);  // now free: the child takes it (and dies)
  EXPECT_TRUE(lock.acquire(5s));                   // robust: its death freed it
  EXPECT_TRUE(lock.owner_died());
  lock.release();
}

TEST_P(EveryMethod, RLock) {
  RLock lock;
  lock.acquire();
  EXPECT_EQ(RunChild(&FindsRLockTaken, lock), 0);
  lock.release();
}

TEST_P(EveryMethod, Semaphore) {
  Semaphore s(0);
  ASSERT_EQ(RunChild(&Releases, s), 0);
  EXPECT_TRUE(s.acquire(5s));
}

TEST_P(EveryMethod, BoundedSemaphore) {
  BoundedSemaphore s(1);
  s.acquire();
  EXPECT_EQ(RunChild(&ReleasesPastBound, s), 0);
  EXPECT_EQ(s.get_value(), 1);
}

TEST_P(EveryMethod, Event) {
  Event e;
  ASSERT_EQ(RunChild(&Sets, e), 0);
  EXPECT_TRUE(e.is_set());
}

TEST_P(EveryMethod, Condition) {
  Condition c;
  Value<int> v(0);
  Process p(ProcessOptions{.start_method = GetParam()}, &NotifiesAfter, c, v);
  {
    std::unique_lock<Condition> with(c);
    p.start();
    EXPECT_TRUE(c.wait_for([&] { return v.value() == 1; }, 20s));
  }
  ASSERT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 0);
}

TEST_P(EveryMethod, Barrier) {
  Barrier b(2);
  Process p(ProcessOptions{.start_method = GetParam()}, &Meets, b);
  p.start();
  EXPECT_GE(b.wait(20s), 0);
  ASSERT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 0);
}

TEST_P(EveryMethod, Value) {
  Value<int> v(0);
  ASSERT_EQ(RunChild(&Writes42, v), 0);
  EXPECT_EQ(v.value(), 42);
}

TEST_P(EveryMethod, RawValueAndRawArray) {
  RawValue<long> v(0);
  RawArray<int> a(4);
  ASSERT_EQ(RunChild(&WritesRaw, v, a), 0);
  EXPECT_EQ(v.value(), -5);
  EXPECT_EQ(a.to_vector(), (std::vector<int>{0, 10, 20, 30}));
}

TEST_P(EveryMethod, Array) {
  Array<double> a{1.5, 2.5};
  ASSERT_EQ(RunChild(&Doubles, a), 0);
  EXPECT_EQ(a.to_vector(), (std::vector<double>{3.0, 5.0}));
}

TEST_P(EveryMethod, SharedMemory) {
  SharedMemory shm(SharedMemory::create, 64);
  ASSERT_EQ(RunChild(&WritesShm, shm), 0);
  EXPECT_STREQ(reinterpret_cast<const char*>(shm.buf().data()), "shared!");
}

TEST_P(EveryMethod, ManagerProxies) {
  Manager manager;
  auto d = manager.dict<std::string, int>();
  auto v = manager.Value<int>(1);
  ASSERT_EQ(RunChild(&SetsInDict, d), 0);
  ASSERT_EQ(RunChild(&IncrementsValue, v), 0);
  EXPECT_EQ(d.get("child"), 1);
  EXPECT_EQ(v.value(), 2);
}

TEST_P(EveryMethod, FunctionObjectTarget) {
  Value<int> v(1);
  ASSERT_EQ(RunChild(AddTo{41}, v), 0);
  EXPECT_EQ(v.value(), 42);
}

TEST_P(EveryMethod, NoexceptLibcFunctionTarget) {
  Process p(ProcessOptions{.start_method = GetParam()}, &::getpid);  // noexcept in glibc
  p.start();
  ASSERT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), p.pid() & 0xff);  // its result is the exit code
}

TEST_P(EveryMethod, RegisteredSubclass) {
  Value<int> out(0);
  Reporter r(ProcessOptions{.start_method = GetParam()}, 7, out);
  r.start();
  ASSERT_TRUE(r.join(20s));
  EXPECT_EQ(r.exitcode(), 0);
  EXPECT_EQ(out.value(), 701);  // its state travelled, and it runs under its own name
}

TEST_P(EveryMethod, UnregisteredSubclassSaysWhy) {
  Unregistered u(ProcessOptions{.start_method = GetParam()});
  if (GetParam() == "fork") {
    u.start();
    EXPECT_TRUE(u.join(20s));
  } else {
    try {
      u.start();
      FAIL() << "started";
    } catch (const ProcessError& e) {
      EXPECT_NE(std::string(e.what()).find("MP_SPAWNABLE_PROCESS"), std::string::npos);
    }
  }
}

TEST_P(EveryMethod, NothingLeaks) {
  const auto fds = testing::OpenFds();
  const auto shm = testing::ShmEntries();
  for (int i = 0; i < 3; ++i) {
    Queue<std::string> q;
    Lock lock;
    Event e;
    auto [mine, theirs] = Pipe();
    ASSERT_EQ(RunChild(&PutGreeting, q), 0);
    ASSERT_EQ(RunChild(&Sets, e), 0);
    q.get(5s);
  }
  EXPECT_EQ(testing::OpenFds(), fds);
  EXPECT_EQ(testing::ShmEntries(), shm);
}

INSTANTIATE_TEST_SUITE_P(StartMethods, EveryMethod, ::testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return info.param; });

// ---- Pools of every method.

int Square(int x) { return x * x; }
int WorkerPid(int) { return static_cast<int>(getpid()); }
int DiesIfAsked(int x) {
  if (x < 0) ::kill(getpid(), SIGKILL);
  return x;
}
std::string WorkerName() { return current_process().name(); }
int g_initialized = 0;
void Initialize() { g_initialized = 17; }
int Initialized(int) { return g_initialized; }

class PoolOfEveryMethod : public ::testing::TestWithParam<std::string> {
 protected:
  PoolOptions Options(int processes) { return {.processes = processes, .start_method = GetParam()}; }
};

TEST_P(PoolOfEveryMethod, MapAndApply) {
  Pool pool(Options(2));
  std::vector<int> xs(100);
  for (int i = 0; i < 100; ++i) xs[i] = i;
  const auto squares = pool.map(&Square, xs, 7);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(squares[i], i * i);
  EXPECT_EQ(pool.apply(&Square, 9), 81);
  EXPECT_NE(pool.apply(&::getpid), getpid());  // a noexcept libc function as a task
  const std::string name = pool.apply(&WorkerName);
  const std::string prefix = GetParam() == "fork"         ? "ForkPoolWorker-"
                             : GetParam() == "spawn"      ? "SpawnPoolWorker-"
                                                          : "ForkServerPoolWorker-";
  EXPECT_EQ(name.rfind(prefix, 0), 0u) << name;
  pool.close();
  pool.join();
}

TEST_P(PoolOfEveryMethod, InitializerRunsInEveryWorker) {
  PoolOptions options = Options(2);
  options.initializer = &Initialize;
  Pool pool(options);
  EXPECT_EQ(pool.map(&Initialized, std::vector<int>{1, 2, 3, 4}, 1), (std::vector<int>{17, 17, 17, 17}));
}

TEST_P(PoolOfEveryMethod, MaxTasksPerChildReplacesWorkers) {
  PoolOptions options = Options(1);
  options.maxtasksperchild = 2;
  Pool pool(options);
  std::set<int> pids;
  for (int i = 0; i < 6; ++i) pids.insert(pool.apply(&WorkerPid, i));
  EXPECT_EQ(pids.size(), 3u);
}

TEST_P(PoolOfEveryMethod, ALostWorkerFailsItsTaskAndIsReplaced) {
  Pool pool(Options(2));
  auto lost = pool.apply_async(&DiesIfAsked, -1);
  EXPECT_THROW(lost.get(20s), WorkerLostError);
  EXPECT_EQ(pool.apply(&DiesIfAsked, 5), 5);
  std::vector<int> xs{1, 2, 3, 4};
  EXPECT_EQ(pool.map(&DiesIfAsked, xs), xs);
}

int PutsInto(Queue<int> q, int x) {
  q.put(x * 10);
  return x;
}
int HoldsTaken(Lock lock) { return lock.acquire(false) ? 1 : 0; }
void SetsEvent(Event e) { e.set(); }
int Replies(Connection c) {
  c.send(std::string("task here"));
  return 0;
}

TEST_P(PoolOfEveryMethod, SharedObjectsAsTaskArguments) {
  // Made after the pool's workers started: they can only arrive with the task
  // (Python cannot pass a Queue to a pool task at all).
  Pool pool(Options(2));
  pool.apply(&Square, 1);  // the workers are up
  Queue<int> q;
  std::vector<AsyncResult<int>> results;
  for (int i = 0; i < 20; ++i) results.push_back(pool.apply_async(&PutsInto, q, i));
  std::set<int> got;
  for (int i = 0; i < 20; ++i) got.insert(q.get(20s));
  for (auto& r : results) r.get(20s);
  EXPECT_EQ(got.size(), 20u);
  EXPECT_EQ(*got.rbegin(), 190);

  Lock lock;
  lock.acquire();
  EXPECT_EQ(pool.apply(&HoldsTaken, lock), 0);
  lock.release();
  Event e;
  pool.apply(&SetsEvent, e);
  EXPECT_TRUE(e.is_set());
  auto [mine, theirs] = Pipe();
  EXPECT_EQ(pool.apply(&Replies, theirs), 0);
  EXPECT_EQ(mine.recv<std::string>(), "task here");
  // map over shared objects: each chunk brings its own.
  std::vector<Event> events(6);
  pool.map(&SetsEvent, events, 2);
  for (Event& ev : events) EXPECT_TRUE(ev.is_set());
}

TEST_P(PoolOfEveryMethod, SharedObjectArgumentsLeakNothing) {
  const auto fds = testing::OpenFds();
  {
    Pool pool(Options(1));
    for (int i = 0; i < 10; ++i) {
      Event e;
      pool.apply(&SetsEvent, e);
    }
    pool.close();
    pool.join();
  }
  EXPECT_EQ(testing::OpenFds(), fds);
}

// A function object as a task: its state travels with each task.
struct Scale {
  int factor = 1;
  int operator()(int x) const { return x * factor; }
  template <class Archive>
  void serialize(Archive& ar) {
    ar(factor);
  }
};
struct AddPair {
  int bias = 0;
  int operator()(int a, int b) noexcept { return a + b + bias; }
  template <class Archive>
  void serialize(Archive& ar) {
    ar(bias);
  }
};

TEST_P(PoolOfEveryMethod, FunctionObjectTasks) {
  Pool pool(Options(2));
  EXPECT_EQ(pool.apply(Scale{3}, 14), 42);
  EXPECT_EQ(pool.map(Scale{-1}, std::vector<int>{1, 2, 3}, 2), (std::vector<int>{-1, -2, -3}));
  EXPECT_EQ(pool.starmap(AddPair{100}, std::vector<std::tuple<int, int>>{{1, 2}, {3, 4}}),
            (std::vector<int>{103, 107}));
  std::vector<int> got;
  for (int y : pool.imap(Scale{10}, std::vector<int>{1, 2, 3})) got.push_back(y);
  EXPECT_EQ(got, (std::vector<int>{10, 20, 30}));
}

int BlocksUntil(Event started, Event release, int x) {
  started.set();
  release.wait(30s);
  return x;
}
int Pauses(int x) {
  if (x == 1) ::pause();
  return x;
}
int ThrowsOutOfRange(int) { throw std::out_of_range("index 9 of 3"); }

TEST_P(PoolOfEveryMethod, ExecutorSubmitCancelTimeLimitAndExceptionTypes) {
  ProcessPoolExecutor ex({.max_workers = 1, .task_timeout = 1s, .start_method = GetParam()});
  Event started, release;
  Future<int> blocker = ex.submit(&BlocksUntil, started, release, 1);
  ASSERT_TRUE(started.wait(20s));
  EXPECT_TRUE(blocker.running());
  Future<int> queued = ex.submit(&Square, 3);
  EXPECT_TRUE(queued.cancel());
  EXPECT_THROW(queued.result(), CancelledError);
  release.set();
  EXPECT_EQ(blocker.result(20s), 1);
  EXPECT_THROW(ex.submit(&Pauses, 1).result(20s), TimeoutError);  // killed; a worker replaces it
  EXPECT_THROW(ex.submit(&ThrowsOutOfRange, 0).result(20s), std::out_of_range);
  std::vector<int> ys;
  for (int y : ex.map(&Square, std::views::iota(0), {.chunksize = 2, .buffersize = 4})) {
    ys.push_back(y);
    if (ys.size() == 10) break;
  }
  EXPECT_EQ(ys.back(), 81);
  ex.shutdown();
}

INSTANTIATE_TEST_SUITE_P(StartMethods, PoolOfEveryMethod,
                         ::testing::Values("fork", "spawn", "forkserver"),
                         [](const auto& info) { return info.param; });

TEST(PoolOfEveryMethod, AClosureInitializerIsRefusedUnderSpawn) {
  int captured = 1;
  PoolOptions options{.processes = 1, .start_method = "spawn"};
  options.initializer = [captured] { g_initialized = captured; };
  EXPECT_THROW(Pool pool(options), ValueError);
}

// ---- Contexts.

TEST(Context, MakesEverythingForItsMethod) {
  for (const std::string method : {"fork", "spawn", "forkserver"}) {
    auto ctx = get_context(method);
    // First: a fork-method manager's server is forked, and must not be
    // forked after the pool below starts threads (ThreadSanitizer cannot
    // start threads in such a child).
    auto m = ctx.Manager();
    auto d = m.dict<std::string, int>();
    d.set("x", 1);
    EXPECT_EQ(d.get("x"), 1);
    auto q = ctx.Queue<std::string>();
    auto p = ctx.Process(&PutGreeting, q);
    p.start();
    EXPECT_EQ(q.get(20s).rfind("from Process-", 0), 0u);
    ASSERT_TRUE(p.join(20s));
    auto named = ctx.Process(ProcessOptions{.name = "named"}, &Sets, ctx.Event());
    named.start();
    ASSERT_TRUE(named.join(20s));
    EXPECT_EQ(named.exitcode(), 0);

    auto pool = ctx.Pool(1);
    const std::string worker = pool.apply(&WorkerName);
    EXPECT_EQ(worker.find(method == "fork" ? "ForkPool" : method == "spawn" ? "SpawnPool" : "ForkServerPool"),
              0u) << worker;
    auto lock = ctx.Lock();
    auto v = ctx.Value<int>(0);
    auto a = ctx.Array<double>({1.0});
    auto sq = ctx.SimpleQueue<int>();
    auto jq = ctx.JoinableQueue<int>();
    auto [c1, c2] = ctx.Pipe();
    auto b = ctx.Barrier(1);
    EXPECT_EQ(b.wait(1s), 0);
  }
}

// The parent pid of process `pid` (/proc/<pid>/stat, field 4).
pid_t ParentOf(pid_t pid) {
  FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (f == nullptr) return -1;
  int ppid = -1;
  [[maybe_unused]] int n = std::fscanf(f, "%*d (%*[^)]) %*c %d", &ppid);
  std::fclose(f);
  return ppid;
}

TEST(Context, ManagerServerStartsByItsMethod) {
  // A spawn or forkserver server is not a fork of this process: under
  // forkserver its parent is the forkserver; under spawn it is this process
  // but a fresh program (its proxies work all the same).
  for (const std::string method : {"spawn", "forkserver"}) {
    Pool pool(1);  // threads exist: a forked server would be unsafe here
    Manager manager(ManagerOptions{.start_method = method});
    auto q = manager.Queue<std::string>();
    q.put("through " + method);
    EXPECT_EQ(q.get(10s), "through " + method);
    auto v = manager.Value<int>(1);
    EXPECT_EQ(pool.apply(&IncrementsValueReturning, v), 2);
    if (method == "forkserver") {
      EXPECT_NE(ParentOf(manager.pid()), getpid());  // the forkserver's child
    }
    manager.shutdown();
  }
}

TEST(Context, SetStartMethodOnceThenForce) {
  EXPECT_EQ(get_start_method(/*allow_none=*/true), "");
  EXPECT_EQ(get_start_method(), "fork");
  set_start_method("forkserver");
  EXPECT_EQ(get_start_method(), "forkserver");
  EXPECT_EQ(get_context().name(), "forkserver");
  EXPECT_THROW(set_start_method("spawn"), ProcessError);
  EXPECT_THROW(set_start_method("nope", true), ValueError);
  // The default reaches every object that makes processes.
  Queue<std::string> q;
  Process p(&PutGreeting, q);
  p.start();
  EXPECT_EQ(q.get(20s).rfind("from Process-", 0), 0u);
  ASSERT_TRUE(p.join(20s));
  {
    Pool pool(1);
    EXPECT_EQ(pool.apply(&WorkerName).rfind("ForkServerPoolWorker-", 0), 0u);
  }
  set_start_method("fork", /*force=*/true);
  EXPECT_EQ(get_start_method(), "fork");
}

// ---- What cannot travel says so.

TEST(SharedObjects, InsideAQueueItemIsAClearError) {
  Queue<Lock> q;
  Lock lock;
  EXPECT_THROW(q.put(lock), ValueError);
  Queue<std::vector<Queue<int>>> qq;
  EXPECT_THROW(qq.put({Queue<int>()}), ValueError);
}

TEST(SharedObjects, OverASimplexPipeIsAClearError) {
  auto [reader, writer] = Pipe(false);
  EXPECT_THROW(writer.send(Event()), ValueError);
}

TEST(SharedObjects, ADescriptorThatDidNotComeIsADecodeError) {
  // A message naming a descriptor it does not carry (a hostile or broken
  // peer): an error, not a crash or someone else's descriptor.
  auto [a, b] = Pipe();
  a.send(uint32_t{0});  // the encoding of a Lock is its descriptor's index
  EXPECT_THROW(b.recv<Lock>(), Error);
}

TEST(SharedObjects, AForeignDescriptorIsRefused) {
  // A peer that sends a descriptor that is not a sealed region of ours.
  auto [a, b] = Pipe();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  a.send_message(encode(uint32_t{0}), std::vector<int>{fds[0]});
  ::close(fds[0]);
  ::close(fds[1]);
  EXPECT_THROW(b.recv<Event>(), Error);
}

TEST(SharedObjects, UnusedDescriptorsAreClosed) {
  const auto fds = testing::OpenFds();
  {
    auto [a, b] = Pipe();
    a.send(Queue<int>());
    a.send(Lock());
    EXPECT_FALSE(b.recv_bytes().empty());  // read as bytes: its descriptor is dropped
    b.recv<Lock>();
  }
  EXPECT_EQ(testing::OpenFds(), fds);
}

}  // namespace
}  // namespace mp
