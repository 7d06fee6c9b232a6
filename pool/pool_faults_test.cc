// The Pool under faults, threads and misuse (issue 19): every scenario ends
// within a bounded time, and no task is lost or run twice.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "pool/pool.h"
#include "pool/test_tasks.h"
#include "sync/shared_value.h"
#include "sync/synchronize.h"
#include "tests/test_util.h"

namespace mp {
namespace {

using namespace std::chrono_literals;
using namespace test_tasks;  // NOLINT: Square, SleepMs, ...
using mp::testing::ForkChild;
using mp::testing::WaitChild;
using mp::testing::WaitUntil;

// The pid of the pool's launcher: this process's one direct child (its
// workers are the launcher's children).
std::vector<pid_t> LauncherPids() {
  const auto children = mp::testing::ChildPids();
  return std::vector<pid_t>(children.begin(), children.end());
}

// The pids of a pool's workers, as this process's registry lists them.
std::vector<pid_t> PidsNamed(const std::string& prefix) {
  std::vector<pid_t> out;
  for (const auto& child : active_children()) {
    if (child.name().rfind(prefix, 0) == 0) out.push_back(child.pid());
  }
  return out;
}

// ---- 3. Callbacks that throw ----

TEST(PoolFaults, CallbackThatThrowsIsReportedAndTheResultCompletes) {
  Pool pool(2);
  ::testing::internal::CaptureStderr();
  auto r = pool.apply_async(callbacks([](int) { throw std::runtime_error("boom"); }), Square, 3);
  EXPECT_EQ(r.get(10s), 9);
  auto e = pool.apply_async(
      callbacks([](int) {}, [](const Error&) { throw std::logic_error("bad handler"); }), Fail, 3);
  EXPECT_THROW(e.get(10s), ValueError);
  auto m = pool.map_async(callbacks([](const std::vector<int>&) { throw 42; }), Square,
                          std::vector<int>{1, 2, 3});
  EXPECT_EQ(m.get(10s), (std::vector<int>{1, 4, 9}));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("Exception in callback of task 1: std::runtime_error: boom"), std::string::npos)
      << err;
  EXPECT_NE(err.find("Exception in callback of task 2: std::logic_error: bad handler"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("Exception in callback of task"), err.rfind("Exception in callback of task"));
  // The pool goes on.
  EXPECT_EQ(pool.apply(Square, 5), 25);
}

// ---- 5. Submit racing close/terminate/join ----

void SubmitWhileClosing(bool terminate) {
  Pool pool(2);
  std::mutex mu;
  std::vector<AsyncResult<int>> results;
  std::atomic<int> refused{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> submitters;
  for (int t = 0; t < 3; ++t) {
    submitters.emplace_back([&] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < 20000; ++i) {
        try {
          auto r = pool.apply_async(Square, i);
          std::lock_guard<std::mutex> lock(mu);
          results.push_back(r);
        } catch (const ValueError&) {
          ++refused;
          return;
        }
      }
    });
  }
  go.store(true);
  std::this_thread::sleep_for(5ms);  // Let submissions and closing overlap.
  if (terminate) {
    pool.terminate();
  } else {
    pool.close();
  }
  for (auto& t : submitters) t.join();
  pool.join();
  EXPECT_THROW(pool.apply_async(Square, 1), ValueError);
  int ok = 0, failed = 0;
  for (auto& r : results) {
    ASSERT_TRUE(r.wait(20s)) << "a returned AsyncResult never completed";
    if (r.successful()) {
      ++ok;
    } else {
      ++failed;
    }
  }
  if (!terminate) {
    EXPECT_EQ(failed, 0);  // close() runs everything queued before it
  }
  EXPECT_GT(ok + failed, 0);
}

TEST(PoolFaults, SubmitRacingCloseCompletesEveryResultAndLaterSubmitsThrow) {
  SubmitWhileClosing(false);
}

TEST(PoolFaults, SubmitRacingTerminateCompletesEveryResult) { SubmitWhileClosing(true); }

TEST(PoolFaults, CloseFromACallbackAndJoinFromACallbackIsRefused) {
  Pool pool(1);
  std::atomic<bool> join_refused{false};
  auto r = pool.apply_async(callbacks([&](int) {
                              pool.close();
                              try {
                                pool.join();
                              } catch (const ProcessError&) {
                                join_refused = true;
                              }
                            }),
                            Square, 2);
  EXPECT_EQ(r.get(10s), 4);
  EXPECT_TRUE(join_refused.load());
  pool.join();
}

// ---- 11. Backpressure: a callback submits while the task ring is full ----

std::string Echo(std::string s) { return s; }

TEST(PoolFaults, CallbackThatSubmitsIntoAFullRingDoesNotDeadlock) {
  Pool pool(2);
  constexpr int kTotal = 200;
  const std::string big(256 << 10, 'x');  // a 4 MiB ring holds ~15 of these
  std::mutex mu;
  std::condition_variable cv;
  int completed = 0;
  std::atomic<int> submitted{0};
  std::function<void(const std::string&)> on_done;
  on_done = [&](const std::string& s) {
    EXPECT_EQ(s.size(), big.size());
    // Each completion submits two more (from the pool's result thread)
    // until kTotal were submitted: the ring fills up behind them.
    for (int k = 0; k < 2; ++k) {
      if (submitted.fetch_add(1) < kTotal) {
        pool.apply_async(callbacks([&](const std::string& t) { on_done(t); }), Echo, big);
      } else {
        submitted.fetch_sub(1);
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    ++completed;
    cv.notify_all();
  };
  for (int i = 0; i < 30; ++i) {
    submitted.fetch_add(1);
    pool.apply_async(callbacks([&](const std::string& t) { on_done(t); }), Echo, big);
  }
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, 60s, [&] { return completed >= kTotal; }))
      << "completed " << completed << " of " << kTotal;
}

// ---- 7. terminate() is bounded ----

int BlockSigtermAndSleep(int ms) {
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigprocmask(SIG_BLOCK, &term, nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}

TEST(PoolFaults, TerminateKillsAWorkerThatBlocksSigtermAfterTheGracePeriod) {
  const auto start = std::chrono::steady_clock::now();
  AsyncResult<int> r = [&] {
    Pool pool(PoolOptions{.processes = 1, .terminate_grace = 200ms});
    auto blocked = pool.apply_async(BlockSigtermAndSleep, 60000);
    // The worker must have the task (and SIGTERM blocked) before terminate.
    EXPECT_TRUE(WaitUntil([&] { return !PidsNamed("ForkPoolWorker").empty(); }));
    std::this_thread::sleep_for(100ms);  // No event says "the task has started".
    pool.terminate();
    pool.join();
    return blocked;
  }();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  ASSERT_TRUE(r.ready());
  EXPECT_THROW(r.get(), ProcessError);
}

TEST(PoolFaults, DestructorIsBoundedWhenATaskIgnoresSigterm) {
  const auto start = std::chrono::steady_clock::now();
  {
    Pool pool(PoolOptions{.processes = 2, .terminate_grace = 100ms});
    auto a = pool.apply_async(BlockSigtermAndSleep, 60000);
    auto b = pool.apply_async(BlockSigtermAndSleep, 60000);
    std::this_thread::sleep_for(100ms);  // No event says "the tasks have started".
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

// ---- 8. A result that cannot be encoded ----

struct Unencodable {
  template <class Archive>
  void save(Archive&) const {
    throw std::runtime_error("Unencodable refuses");
  }
  template <class Archive>
  void load(Archive&) {}
};

Unencodable MakeUnencodable(int) { return {}; }

TEST(PoolFaults, ResultThatCannotBeEncodedFailsOnlyThatTask) {
  Pool pool(1);
  const pid_t worker = pool.apply(MyPid, 0);
  try {
    pool.apply(MakeUnencodable, 1);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("could not be encoded"), std::string::npos) << what;
    EXPECT_NE(what.find("Unencodable refuses"), std::string::npos) << what;
  }
  EXPECT_EQ(pool.apply(MyPid, 0), worker);  // The same worker goes on.
}

// ---- 9. An initializer that throws ----

RawValue<int>* g_init_calls = nullptr;

void FailingInitializer() {
  std::atomic_ref<int>(**g_init_calls).fetch_add(1);
  throw std::runtime_error("no database");
}

TEST(PoolFaults, InitializerThatKeepsThrowingBreaksThePool) {
  RawValue<int> calls(0);
  g_init_calls = &calls;
  Pool pool(PoolOptions{.processes = 2, .initializer = FailingInitializer});
  auto r = pool.apply_async(Square, 2);
  const auto start = std::chrono::steady_clock::now();
  try {
    r.get(20s);
    FAIL() << "no error";
  } catch (const TimeoutError&) {
    FAIL() << "the task hangs";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("std::runtime_error: no database"), std::string::npos)
        << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  // New tasks fail the same way, at once.
  auto later = pool.apply_async(Square, 3);
  ASSERT_TRUE(later.wait(1s));
  EXPECT_THROW(later.get(), Error);
  // No fork loop: a few tries, not thousands.
  std::this_thread::sleep_for(200ms);  // Would let a fork loop show in the count.
  EXPECT_LE(std::atomic_ref<int>(*calls).load(), 6);
}

// ---- 4. Workers that cannot be replaced ----

// In a child running as `nobody` (RLIMIT_NPROC binds only unprivileged
// users): the launcher may fork no more processes.
int RunWithForkFailures(bool restore) {
  if (setgid(65534) != 0 || setuid(65534) != 0) return 50;
  Pool pool(2);
  if (pool.apply(Square, 3) != 9) return 51;
  const auto launcher = LauncherPids();
  if (launcher.size() != 1) return 52;
  rlimit before{};
  if (prlimit(launcher[0], RLIMIT_NPROC, nullptr, &before) != 0) return 53;
  const rlimit none{1, before.rlim_max};  // the soft limit only: it can be raised again
  if (prlimit(launcher[0], RLIMIT_NPROC, &none, nullptr) != 0) return 53;
  for (pid_t worker : PidsNamed("ForkPoolWorker")) ::kill(worker, SIGKILL);
  auto pending = pool.apply_async(Square, 4);
  if (restore) {
    // The first replacement tries fail meanwhile; no event marks them.
    std::this_thread::sleep_for(50ms);
    if (prlimit(launcher[0], RLIMIT_NPROC, &before, nullptr) != 0) return 54;
    return pending.get(20s) == 16 ? 0 : 55;
  }
  try {
    pending.get(20s);
    return 56;
  } catch (const TimeoutError&) {
    return 57;
  } catch (const Error& e) {
    if (std::string(e.what()).find("no worker process could be started") == std::string::npos) {
      return 58;
    }
  }
  auto later = pool.apply_async(Square, 5);
  if (!later.wait(1s)) return 59;
  try {
    later.get();
    return 60;
  } catch (const Error&) {
  }
  return 0;
}

TEST(PoolFaults, ForkFailuresAreRetriedAndTheWorkersComeBack) {
  EXPECT_EQ(WaitChild(ForkChild([] { return RunWithForkFailures(true); }), 30s), 0);
}

TEST(PoolFaults, NoWorkerAtAllFailsPendingAndNewTasks) {
  EXPECT_EQ(WaitChild(ForkChild([] { return RunWithForkFailures(false); }), 30s), 0);
}

TEST(PoolFaults, LauncherKilledIsRestartedAndTasksGoOn) {
  Pool pool(2);
  EXPECT_EQ(pool.apply(Square, 3), 9);
  const auto launcher = LauncherPids();
  ASSERT_EQ(launcher.size(), 1u);
  const auto workers = PidsNamed("ForkPoolWorker");
  ::kill(launcher[0], SIGKILL);
  // Its workers die with it; the pool makes a new launcher and new workers.
  for (pid_t worker : workers) {
    EXPECT_TRUE(WaitUntil([worker] { return mp::testing::ProcessEnded(worker); }));
  }
  std::vector<AsyncResult<int>> results;
  for (int i = 0; i < 20; ++i) results.push_back(pool.apply_async(Square, i));
  for (int i = 0; i < 20; ++i) {
    try {
      EXPECT_EQ(results[i].get(20s), i * i);
    } catch (const WorkerLostError&) {
      // A task its worker was running when the launcher died.
    }
  }
  EXPECT_EQ(pool.apply_async(Square, 7).get(20s), 49);
  const auto relaunched = LauncherPids();
  ASSERT_EQ(relaunched.size(), 1u);
  EXPECT_NE(relaunched[0], launcher[0]);
  for (pid_t worker : PidsNamed("ForkPoolWorker")) {
    EXPECT_TRUE(std::find(workers.begin(), workers.end(), worker) == workers.end());
  }
}

// ---- 6. At most once ----

RawArray<int>* g_runs = nullptr;

int CountRun(int i) {
  std::atomic_ref<int>((*g_runs)[static_cast<size_t>(i)]).fetch_add(1);
  return i;
}

TEST(PoolFaults, TasksRunAtMostOnceWhileWorkersAreKilled) {
  constexpr int kTasks = 20000;
  RawArray<int> runs(kTasks);
  g_runs = &runs;
  Pool pool(2);
  std::vector<AsyncResult<int>> results;
  std::atomic<bool> stop{false};
  std::thread killer([&] {
    while (!stop.load()) {
      for (pid_t worker : PidsNamed("ForkPoolWorker")) ::kill(worker, SIGKILL);
      std::this_thread::sleep_for(2ms);  // Kills at random moments, on purpose.
    }
  });
  for (int i = 0; i < kTasks; ++i) results.push_back(pool.apply_async(CountRun, i));
  int lost = 0;
  for (int i = 0; i < kTasks; ++i) {
    ASSERT_TRUE(results[i].wait(60s)) << "task " << i << " never completed";
    if (i == kTasks / 2) stop.store(true);
    try {
      EXPECT_EQ(results[i].get(), i);
      EXPECT_EQ(std::atomic_ref<int>(runs[i]).load(), 1) << "task " << i;
    } catch (const WorkerLostError&) {
      ++lost;
      EXPECT_LE(std::atomic_ref<int>(runs[i]).load(), 1) << "task " << i << " ran again";
    }
  }
  stop.store(true);
  killer.join();
  pool.close();
  pool.join();
  for (int i = 0; i < kTasks; ++i) ASSERT_LE(std::atomic_ref<int>(runs[i]).load(), 1) << i;
  EXPECT_LT(lost, kTasks);
}

// ---- 10. Ctrl-C ----

TEST(PoolFaults, CtrlCStopsTheProgramAndNoWorkerOrLauncherSurvives) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = ForkChild([&] {
    setpgid(0, 0);  // A foreground group of its own, as a shell makes.
    ::close(fds[0]);
    Pool pool(2);
    auto a = pool.apply_async(SleepMs, 60000);
    auto b = pool.apply_async(SleepMs, 60000);
    std::vector<pid_t> pids = PidsNamed("ForkPoolWorker");
    for (pid_t p : LauncherPids()) pids.push_back(p);
    const int n = static_cast<int>(pids.size());
    if (::write(fds[1], &n, sizeof n) != sizeof n) return 2;
    if (::write(fds[1], pids.data(), sizeof(pid_t) * pids.size()) < 0) return 2;
    ::close(fds[1]);
    a.get(60s);
    return 1;
  });
  ::close(fds[1]);
  int n = 0;
  ASSERT_EQ(::read(fds[0], &n, sizeof n), static_cast<ssize_t>(sizeof n));
  ASSERT_EQ(n, 3);
  std::vector<pid_t> pids(static_cast<size_t>(n));
  ASSERT_EQ(::read(fds[0], pids.data(), sizeof(pid_t) * pids.size()),
            static_cast<ssize_t>(sizeof(pid_t) * pids.size()));
  ::close(fds[0]);
  ASSERT_EQ(::kill(-child, SIGINT), 0);  // Ctrl-C: the whole foreground group
  EXPECT_EQ(WaitChild(child, 10s), -SIGINT);
  for (pid_t pid : pids) {
    EXPECT_TRUE(WaitUntil([pid] { return mp::testing::ProcessEnded(pid); }, 5s))
        << "pid " << pid << " survived Ctrl-C";
  }
}

// ---- 1. Pools made on short-lived threads ----

TEST(PoolFaults, PoolMadeOnAShortLivedThreadKeepsItsWorkers) {
  std::unique_ptr<Pool> pool;
  std::thread([&] { pool = std::make_unique<Pool>(2); }).join();
  std::vector<AsyncResult<int>> results;
  for (int i = 0; i < 50; ++i) results.push_back(pool->apply_async(Square, i));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(results[i].get(20s), i * i);
  pool->close();
  pool->join();
}

}  // namespace
}  // namespace mp
