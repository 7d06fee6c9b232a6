// Tests of the MPI pool. Run under mpirun by mpi_pool_test.sh: rank 0 runs
// the tests; the other ranks serve its pools from mp::mpi::init.
//
// Groups the script runs separately (the default run filters them out):
// - RankDeath.*: needs `mpirun --enable-recovery`; a task kills its whole rank.
// - Refusal.*: ranks 1.. run another build of this test (MPMD launch).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "pool/mpi_pool.h"
#include "pool/pool.h"
#include "pool/test_tasks.h"
#include "tests/test_util.h"

#ifdef MP_OTHER_BUILD
// Makes this build's ELF build id differ from the main test's.
extern "C" const char kOtherBuild[] = "mpi_pool_test, other build";
#endif

namespace mp {
namespace {

using namespace std::chrono_literals;

// The pid of the rank's own process (a static initializer runs on every
// rank; a rank's local worker inherits the value).
const pid_t rank_pid = getpid();

using namespace test_tasks;  // NOLINT: Square, Add, Fail, CrashOn, ...

int MyRank(int) { return mpi::rank(); }
int KillRankOn(int x) {
  if (x == 7) kill(rank_pid, SIGKILL);
  std::this_thread::sleep_for(20ms);  // The rank's death reaches us too.
  return x;
}
int g_initialized = 0;
void Initialize() { g_initialized = 42; }
int ReadInitialized(int) { return g_initialized; }

std::vector<int> Range(int n) {
  std::vector<int> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

TEST(MpiPool, RunsUnderMpirunWithWorkerRanks) {
  ASSERT_EQ(mpi::rank(), 0);
  ASSERT_GE(mpi::size(), 3) << "run with mpirun -np 3";
  Pool pool;  // The default under mpirun is the MPI pool, all worker ranks.
  EXPECT_EQ(pool.processes(), mpi::size() - 1);
}

// Every rank runs on this host: rank 0's liveness listener was a private
// Unix socket (mp-XXXXXX/listener, which the accepted connections still
// name), not a TCP port open to the network.
// (Open MPI's own TCP listeners are there either way, so the test looks
// for ours among the Unix sockets of this process.)
TEST(MpiPool, LivenessListenerIsAPrivateUnixSocket) {
  std::set<std::string> sockets;  // inodes of our socket descriptors
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const std::string target = std::filesystem::read_symlink(entry.path(), ec).string();
    if (!ec && target.rfind("socket:[", 0) == 0) sockets.insert(target.substr(8, target.size() - 9));
  }
  std::ifstream in("/proc/net/unix");
  std::string line;
  std::getline(in, line);  // the header
  std::string found;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string num, refs, protocol, flags, type, state, inode, path;
    fields >> num >> refs >> protocol >> flags >> type >> state >> inode >> path;
    if (sockets.count(inode) && path.find("/mp-") != std::string::npos &&
        path.size() > 9 && path.compare(path.size() - 9, 9, "/listener") == 0) {
      found = path;
    }
  }
  EXPECT_FALSE(found.empty()) << "rank 0's liveness connections are not on a Unix socket";
  // The listener is gone once init has its connections, its directory too.
  struct stat st {};
  EXPECT_NE(stat(found.substr(0, found.rfind('/')).c_str(), &st), 0) << found << " is left behind";
}

TEST(MpiPool, ApplyAndApplyAsync) {
  Pool pool;
  EXPECT_EQ(pool.apply(Square, 7), 49);
  auto r = pool.apply_async(Add, 20, 22);
  EXPECT_EQ(r.get(20s), 42);
  EXPECT_TRUE(r.successful());
  EXPECT_EQ(pool.apply(Greet, "world"), "hello world");
  pool.apply_async(Nothing).get(20s);
  EXPECT_EQ(pool.apply([](int x) { return x + 1; }, 1), 2);
}

TEST(MpiPool, TasksRunOnOtherRanksInNamedWorkers) {
  Pool pool;
  std::set<int> ranks;
  std::set<std::string> names;
  for (int i = 0; i < 50 && ranks.size() < 2; ++i) {
    auto results = pool.map(MyRank, Range(40), 1);
    ranks.insert(results.begin(), results.end());
  }
  EXPECT_EQ(ranks, (std::set<int>{1, 2}));
  for (const std::string& name : pool.map(WorkerName, Range(8), 1)) {
    EXPECT_EQ(name.rfind("MpiPoolWorker-", 0), 0u) << name;
  }
}

TEST(MpiPool, MapStarmapImap) {
  Pool pool;
  std::vector<int> expected;
  for (int x : Range(1000)) expected.push_back(x * x);
  EXPECT_EQ(pool.map(Square, Range(1000)), expected);
  EXPECT_EQ(pool.map(Square, Range(1000), 7), expected);
  EXPECT_TRUE(pool.map(Square, std::vector<int>{}).empty());
  std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
  EXPECT_EQ(pool.starmap(Add, pairs), (std::vector<int>{3, 7, 11}));
  std::vector<int> in_order;
  for (int y : pool.imap(Square, Range(100))) in_order.push_back(y);
  EXPECT_EQ(in_order, std::vector<int>(expected.begin(), expected.begin() + 100));
  std::multiset<int> unordered;
  for (int y : pool.imap_unordered(Square, Range(100), 3)) unordered.insert(y);
  EXPECT_EQ(unordered, std::multiset<int>(expected.begin(), expected.begin() + 100));
  EXPECT_EQ(pool.map_async(Square, Range(10)).get(20s).back(), 81);
}

TEST(MpiPool, ManyTinyTasks) {
  Pool pool;
  std::vector<AsyncResult<int>> results;
  for (int i = 0; i < 20000; ++i) results.push_back(pool.apply_async(Square, i));
  long long sum = 0;
  for (auto& r : results) sum += r.get(60s);
  long long expected = 0;
  for (long long i = 0; i < 20000; ++i) expected += i * i;
  EXPECT_EQ(sum, expected);
}

TEST(MpiPool, Callbacks) {
  Pool pool;
  std::atomic<int> total{0};
  std::atomic<int> errors{0};
  std::vector<AsyncResult<int>> results;
  for (int i = 0; i < 6; ++i) {
    results.push_back(pool.apply_async(
        callbacks([&](int v) { total += v; }, [&](const Error&) { ++errors; }), Fail, i));
  }
  for (auto& r : results) r.wait();
  EXPECT_EQ(total.load(), 0 + 1 + 2 + 4 + 5);
  EXPECT_EQ(errors.load(), 1);
  std::atomic<size_t> mapped{0};
  pool.map_async(callbacks([&](const std::vector<int>& v) { mapped = v.size(); }), Square, Range(9))
      .wait();
  EXPECT_EQ(mapped.load(), 9u);
}

TEST(MpiPool, TaskExceptionKeepsItsType) {
  Pool pool;
  try {
    pool.apply(Fail, 3);
    FAIL() << "no exception";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("three is bad"), std::string::npos) << e.what();
  }
  EXPECT_THROW(pool.map(Fail, Range(10)), ValueError);
  EXPECT_EQ(pool.apply(Square, 4), 16);  // The workers go on.
}

TEST(MpiPool, CrashingTaskIsWorkerLostAndThePoolGoesOn) {
  Pool pool;
  auto lost = pool.apply_async(CrashOn, 5);
  EXPECT_THROW(lost.get(30s), WorkerLostError);
  std::vector<AsyncResult<int>> more;
  for (int i = 0; i < 1000; ++i) more.push_back(pool.apply_async(Square, i));
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(more[static_cast<size_t>(i)].get(30s), i * i);
}

TEST(MpiPool, InitializerAndMaxtasksperchild) {
  {
    Pool pool(PoolOptions{.initializer = Initialize});
    for (int v : pool.map(ReadInitialized, Range(10), 1)) EXPECT_EQ(v, 42);
  }
  {
    Pool pool(PoolOptions{.processes = 1, .maxtasksperchild = 2});
    std::set<int> pids;
    for (int i = 0; i < 6; ++i) pids.insert(pool.apply(MyPid, 0));
    EXPECT_GE(pids.size(), 3u);
  }
  EXPECT_THROW(Pool(PoolOptions{.initializer = [] { g_initialized = 1; }}), ValueError);
}

TEST(MpiPool, BadSizesAndOnePoolAtATime) {
  EXPECT_THROW((Pool(mpi::size())), ValueError);  // Only size-1 worker ranks.
  EXPECT_THROW(Pool(0), ValueError);
  Pool first(1);
  EXPECT_THROW(Pool(1), ProcessError);
  Pool local(PoolOptions{.processes = 2, .start_method = "fork"});  // Local pools still work.
  EXPECT_EQ(local.apply(Square, 3), 9);
  EXPECT_EQ(first.apply(Square, 5), 25);
}

TEST(MpiPool, CloseJoinAndSubmitAfterClose) {
  Pool pool;
  auto r = pool.map_async(SleepMs, std::vector<int>{50, 50, 50, 50}, 1);
  EXPECT_THROW(pool.join(), ProcessError);
  pool.close();
  EXPECT_THROW(pool.apply_async(Square, 1), ValueError);
  pool.join();
  EXPECT_TRUE(r.ready());
  EXPECT_EQ(r.get().size(), 4u);
}

TEST(MpiPool, TerminateWhileTasksRun) {
  Pool pool;
  // Running or still queued, every one of them fails at once.
  auto slow = pool.map_async(SleepMs, std::vector<int>(6, 20000), 1);
  const auto start = std::chrono::steady_clock::now();
  pool.terminate();
  pool.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_THROW(slow.get(1s), ProcessError);
  Pool next;  // The ranks serve the next pool.
  EXPECT_EQ(next.apply(Square, 6), 36);
}

TEST(MpiPool, DestructorTerminates) {
  std::optional<AsyncResult<int>> pending;
  {
    Pool pool;
    pending = pool.apply_async(SleepMs, 5000);
  }
  EXPECT_THROW(pending->get(1s), ProcessError);
}

// mpirun --enable-recovery: a whole rank dies mid-task.
TEST(RankDeath, InFlightTasksAreLostAndThePoolGoesOn) {
  Pool pool;
  std::vector<AsyncResult<int>> results;
  for (int i = 0; i < 20; ++i) results.push_back(pool.apply_async(KillRankOn, i));
  int lost = 0;
  for (int i = 0; i < 20; ++i) {
    try {
      EXPECT_EQ(results[static_cast<size_t>(i)].get(60s), i);
    } catch (const WorkerLostError& e) {
      ++lost;
      EXPECT_NE(std::string(e.what()).find("MPI rank"), std::string::npos) << e.what();
    }
  }
  EXPECT_GE(lost, 1);
  // One rank is left, and it does the rest.
  std::vector<int> expected;
  for (int x : Range(200)) expected.push_back(x * x);
  EXPECT_EQ(pool.map(Square, Range(200)), expected);
  pool.close();
  pool.join();
  Pool next;
  EXPECT_EQ(next.processes(), mpi::size() - 2);
}

// Ranks 1.. run a different build: no MPI pool may start.
TEST(Refusal, DifferentBinaryIsRefused) {
  try {
    Pool pool;
    FAIL() << "an MPI pool started on ranks that run another binary";
  } catch (const ProcessError& e) {
    std::cout << "refused as expected: " << e.what() << "\n";
    EXPECT_NE(std::string(e.what()).find("different binary"), std::string::npos) << e.what();
  }
  Pool local(PoolOptions{.processes = 1, .start_method = "fork"});
  EXPECT_EQ(local.apply(Square, 3), 9);
}

}  // namespace
}  // namespace mp

int main(int argc, char** argv) {
  mp::mpi::init(argc, argv);  // Worker ranks serve here and exit.
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
