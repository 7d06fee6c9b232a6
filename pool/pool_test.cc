#include "pool/pool.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <numeric>
#include <set>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "gtest/gtest.h"
#include "pool/test_tasks.h"
#include "sync/synchronize.h"
#include "tests/test_util.h"

namespace mp {
namespace {

using namespace std::chrono_literals;

using namespace test_tasks;  // NOLINT: Square, Add, Fail, CrashOn, ...

int g_initialized = 0;
int ReadInitialized(int) { return g_initialized; }

// Made before any pool in this test binary, so every worker shares them.
Event& LongTaskStarted() {
  static Event* started = new Event;
  return *started;
}
Event& LongTaskRelease() {
  static Event* release = new Event;
  return *release;
}
int WaitForRelease(int) {
  LongTaskStarted().set();
  return LongTaskRelease().wait(30s) ? 1 : 0;
}

TEST(Pool, IdleWorkerTakesTasksWhileAnotherRunsALongOne) {
  LongTaskStarted();
  LongTaskRelease();
  Pool pool(2);
  auto long_one = pool.apply_async(WaitForRelease, 0);
  ASSERT_TRUE(LongTaskStarted().wait(10s));
  // Nothing marks "the other worker is asleep": give its spin (a fraction of
  // a millisecond) ample time to end, so that the tasks below must wake it.
  std::this_thread::sleep_for(50ms);
  std::vector<AsyncResult<int>> short_ones;
  for (int i = 0; i < 200; ++i) short_ones.push_back(pool.apply_async(Square, i));
  for (int i = 0; i < 200; ++i) ASSERT_EQ(short_ones[i].get(10s), i * i);
  EXPECT_FALSE(long_one.ready());
  LongTaskRelease().set();
  EXPECT_EQ(long_one.get(10s), 1);
}

int One(std::monostate) { return 1; }

// Python's pool.map(f, [None] * n): empty values in a chunk encode as its
// size alone, and must still decode (issue 20).
TEST(Pool, MapOverEmptyValues) {
  Pool pool(2);
  EXPECT_EQ(pool.map(One, std::vector<std::monostate>(100)), std::vector<int>(100, 1));
}

TEST(Pool, ApplyAndApplyAsync) {
  Pool pool(2);
  EXPECT_EQ(pool.apply(Square, 7), 49);
  auto r = pool.apply_async(Add, 20, 22);
  EXPECT_EQ(r.get(10s), 42);
  EXPECT_TRUE(r.ready());
  EXPECT_TRUE(r.successful());
  EXPECT_EQ(pool.apply(Greet, "world"), "hello world");
  auto v = pool.apply_async(Nothing);
  v.get(10s);
  auto lambda = pool.apply_async([](int x) { return x + 1; }, 1);
  EXPECT_EQ(lambda.get(10s), 2);
}

TEST(Pool, ZeroProcessesIsValueError) {
  EXPECT_THROW(Pool(0), ValueError);
  EXPECT_THROW(Pool(PoolOptions{.processes = -1}), ValueError);
}

TEST(Pool, MapKeepsOrderWithAnyChunksize) {
  Pool pool(2);
  std::vector<int> xs(1000);
  std::iota(xs.begin(), xs.end(), 0);
  std::vector<int> expected;
  for (int x : xs) expected.push_back(x * x);
  EXPECT_EQ(pool.map(Square, xs), expected);
  EXPECT_EQ(pool.map(Square, xs, 1), expected);
  EXPECT_EQ(pool.map(Square, xs, 333), expected);
  EXPECT_EQ(pool.map(Square, std::vector<int>{}), std::vector<int>{});
  EXPECT_EQ(pool.map(Square, {1, 2, 3}), (std::vector<int>{1, 4, 9}));
}

TEST(Pool, StarmapAndMapAsync) {
  Pool pool(2);
  std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
  EXPECT_EQ(pool.starmap(Add, pairs), (std::vector<int>{3, 7, 11}));
  auto r = pool.map_async(Square, std::vector<int>{2, 3});
  EXPECT_EQ(r.get(10s), (std::vector<int>{4, 9}));
}

TEST(Pool, ImapInOrderAndImapUnorderedComplete) {
  Pool pool(2);
  std::vector<int> xs{30, 1, 20, 2, 10, 3};
  std::vector<int> ordered;
  for (int y : pool.imap(SleepMs, xs)) ordered.push_back(y);
  EXPECT_EQ(ordered, xs);
  std::multiset<int> unordered;
  for (int y : pool.imap_unordered(SleepMs, xs)) unordered.insert(y);
  EXPECT_EQ(unordered, std::multiset<int>(xs.begin(), xs.end()));
  auto it = pool.imap(Square, std::vector<int>{4}, 1);
  EXPECT_EQ(it.next(10s), 16);
  EXPECT_THROW(it.next(), ValueError);
}

TEST(Pool, TaskExceptionReachesGetAndWorkerSurvives) {
  Pool pool(1);
  const int pid_before = pool.apply(MyPid, 0);
  auto r = pool.apply_async(Fail, 3);
  try {
    r.get(10s);
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {  // a registered type comes back as itself
    EXPECT_STREQ(e.what(), "three is bad");
  }
  EXPECT_FALSE(r.successful());
  EXPECT_EQ(pool.apply(MyPid, 0), pid_before);
  EXPECT_THROW(pool.map(Fail, std::vector<int>{1, 2, 3, 4}), ValueError);
  auto it = pool.imap(Fail, std::vector<int>{2, 3});
  EXPECT_EQ(it.next(), 2);
  EXPECT_THROW(it.next(), ValueError);
}

TEST(Pool, CallbacksRunInThisProcess) {
  Pool pool(2);
  const pid_t me = getpid();
  std::atomic<int> got{0};
  std::atomic<pid_t> callback_pid{0};
  std::atomic<bool> error_seen{false};
  auto ok = pool.apply_async(callbacks([&](int v) {
                               got = v;
                               callback_pid = getpid();
                             }),
                             Square, 9);
  auto bad = pool.apply_async(callbacks([](int) {}, [&](const Error& e) {
                                error_seen = std::string(e.what()) == "three is bad";
                              }),
                              Fail, 3);
  ok.wait();
  EXPECT_THROW(bad.get(10s), ValueError);
  EXPECT_EQ(got, 81);
  EXPECT_EQ(callback_pid, me);
  EXPECT_TRUE(error_seen);
}

TEST(Pool, GetTimeoutAndSuccessfulBeforeReady) {
  Pool pool(1);
  auto r = pool.apply_async(SleepMs, 300);
  EXPECT_THROW(r.get(10ms), TimeoutError);
  EXPECT_THROW(r.successful(), ValueError);
  EXPECT_FALSE(r.wait(1ms));
  EXPECT_EQ(r.get(10s), 300);
}

TEST(Pool, WorkersAreNamedLikePythons) {
  Pool pool(2);
  std::set<std::string> names;
  for (const auto& n : pool.map(WorkerName, std::vector<int>(50, 0), 1)) names.insert(n);
  for (const auto& n : names) EXPECT_EQ(n.rfind("ForkPoolWorker-", 0), 0u) << n;
}

TEST(Pool, InitializerRunsInEachWorker) {
  Pool pool(PoolOptions{.processes = 2, .initializer = [] { g_initialized = 42; }});
  for (int v : pool.map(ReadInitialized, std::vector<int>(20, 0), 1)) EXPECT_EQ(v, 42);
  EXPECT_EQ(g_initialized, 0);  // Only the workers ran it.
}

TEST(Pool, MaxTasksPerChildReplacesWorkers) {
  Pool pool(PoolOptions{.processes = 1, .maxtasksperchild = 2});
  std::set<int> pids;
  for (int i = 0; i < 6; ++i) pids.insert(pool.apply(MyPid, i));
  EXPECT_EQ(pids.size(), 3u);
}

TEST(Pool, DeadWorkerFailsOnlyItsTaskAndPoolGoesOn) {
  Pool pool(2);
  auto crash = pool.apply_async(CrashOn, 5);
  EXPECT_THROW(crash.get(20s), WorkerLostError);
  std::vector<AsyncResult<int>> more;
  for (int i = 0; i < 1000; ++i) more.push_back(pool.apply_async(Square, i));
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(more[i].get(20s), i * i);
  EXPECT_THROW(pool.map(CrashOn, std::vector<int>{4, 5, 6}, 1), WorkerLostError);
  EXPECT_EQ(pool.apply(Square, 3), 9);
}

TEST(Pool, WorkerKilledFromOutsideMidTask) {
  Pool pool(1);
  auto victim_pid = pool.apply(MyPid, 0);
  auto slow = pool.apply_async(SleepMs, 5000);
  std::this_thread::sleep_for(100ms);  // Let the worker take the task: no signal for "taken".
  kill(victim_pid, SIGKILL);
  EXPECT_THROW(slow.get(20s), WorkerLostError);
  EXPECT_EQ(pool.apply(Square, 4), 16);
}

TEST(Pool, CloseJoinAndMisuse) {
  Pool pool(2);
  EXPECT_THROW(pool.join(), ProcessError);
  auto r = pool.apply_async(SleepMs, 50);
  pool.close();
  EXPECT_THROW(pool.apply_async(Square, 1), ValueError);
  pool.join();
  EXPECT_EQ(r.get(1s), 50);  // Queued work finishes before the workers exit.
}

TEST(Pool, TerminateWhileTasksRun) {
  Pool pool(2);
  std::vector<AsyncResult<int>> rs;
  for (int i = 0; i < 10; ++i) rs.push_back(pool.apply_async(SleepMs, 2000));
  pool.terminate();
  pool.join();
  for (auto& r : rs) EXPECT_THROW(r.get(5s), ProcessError);
}

TEST(Pool, NoZombieOrFdLeftAfterJoin) {
  const auto fds = testing::OpenFds();
  {
    Pool pool(2);
    pool.map(Square, std::vector<int>(100, 1));
    pool.close();
    pool.join();
  }
  active_children();
  EXPECT_EQ(testing::OpenFds(), fds);
  EXPECT_TRUE(testing::ChildPids().empty());
}

TEST(Pool, DestructorTerminatesLikePythonsWith) {
  const auto fds = testing::OpenFds();
  {
    Pool pool(2);
    pool.apply_async(SleepMs, 5000);
  }
  active_children();
  EXPECT_EQ(testing::OpenFds(), fds);
  EXPECT_TRUE(testing::ChildPids().empty());
}

}  // namespace
}  // namespace mp
