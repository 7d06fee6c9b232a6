// Futures: Pool::submit, ProcessPoolExecutor, as_completed, wait, cancel,
// lazy imap and Executor::map, task time limits, exception types, and
// ThreadPool. Real worker processes (fork), except for ThreadPool.
#include "pool/future.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <new>
#include <optional>
#include <ranges>
#include <set>
#include <sstream>
#include <ios>
#include <stdexcept>
#include <system_error>
#include <string>
#include <thread>
#include <typeinfo>
#include <variant>
#include <vector>

#include "base/exception_types.h"
#include "gtest/gtest.h"
#include "pool/executor.h"
#include "pool/pool.h"
#include "pool/test_tasks.h"
#include "sync/shared_value.h"
#include "sync/synchronize.h"
#include "tests/test_util.h"

namespace mp {
namespace {

using namespace std::chrono_literals;
using namespace test_tasks;  // NOLINT: Square, Fail, CrashOn, SleepMs

// Made before any pool, so every (forked) worker shares them.
Event& Started() {
  static Event* e = new Event;
  return *e;
}
Event& Release() {
  static Event* e = new Event;
  return *e;
}
RawArray<int>& Ran() {
  static RawArray<int>* v = new RawArray<int>(1);
  return *v;
}
[[maybe_unused]] const bool kMadeBeforePools = (Started(), Release(), Ran(), true);

int Block(int x) {
  Started().set();
  Release().wait(30s);
  return x;
}
int CountRun(int x) {
  std::atomic_ref<int>(Ran()[0]).fetch_add(1);
  return x;
}
int Hang(int x) {
  if (x == 1) ::pause();
  return x;
}

// Each test that blocks tasks resets the events first.
void ResetEvents() {
  Started().clear();
  Release().clear();
}

TEST(Future, SubmitAndResult) {
  Pool pool(2);
  Future<int> f = pool.submit(Square, 7);
  EXPECT_EQ(f.result(10s), 49);
  EXPECT_TRUE(f.done());
  EXPECT_FALSE(f.running());
  EXPECT_FALSE(f.cancelled());
  EXPECT_FALSE(f.cancel());  // ended: cannot be cancelled
  EXPECT_EQ(f.exception(), nullptr);
  Future<void> v = pool.submit(Nothing);
  v.result(10s);
  EXPECT_TRUE(v.done());
}

TEST(Future, ResultTimesOutAndRunningIsTrueWhileAWorkerRunsIt) {
  ResetEvents();
  Pool pool(1);
  Future<int> f = pool.submit(Block, 1);
  ASSERT_TRUE(Started().wait(10s));
  EXPECT_TRUE(f.running());
  EXPECT_FALSE(f.done());
  EXPECT_THROW(f.result(50ms), TimeoutError);
  EXPECT_THROW(f.exception(50ms), TimeoutError);
  EXPECT_FALSE(f.cancel());  // it runs
  Release().set();
  EXPECT_EQ(f.result(10s), 1);
}

TEST(Future, CancelSucceedsOnlyBeforeAWorkerStartsTheTask) {
  ResetEvents();
  Ran()[0] = 0;
  Pool pool(1);
  Future<int> blocker = pool.submit(Block, 0);
  ASSERT_TRUE(Started().wait(10s));
  std::vector<Future<int>> queued;
  for (int i = 0; i < 10; ++i) queued.push_back(pool.submit(CountRun, i));
  for (int i = 0; i < 10; i += 2) {
    EXPECT_FALSE(queued[i].running());
    EXPECT_TRUE(queued[i].cancel());
    EXPECT_TRUE(queued[i].cancel());  // cancelled already: still true
    EXPECT_TRUE(queued[i].cancelled());
    EXPECT_TRUE(queued[i].done());
    EXPECT_THROW(queued[i].result(), CancelledError);
    EXPECT_THROW(queued[i].exception(), CancelledError);
  }
  Release().set();
  EXPECT_EQ(blocker.result(10s), 0);
  for (int i = 1; i < 10; i += 2) EXPECT_EQ(queued[i].result(10s), i);
  // The cancelled ones never ran.
  EXPECT_EQ(std::atomic_ref<int>(Ran()[0]).load(), 5);
}

TEST(Future, CancelRacingTheWorkersEitherCancelsOrRunsEachTaskNeverBoth) {
  Ran()[0] = 0;
  Pool pool(2);
  constexpr int kTasks = 4000;
  std::vector<Future<int>> futures;
  for (int i = 0; i < kTasks; ++i) futures.push_back(pool.submit(CountRun, i));
  int cancelled = 0;
  for (int i = kTasks - 1; i >= 0; --i) cancelled += futures[i].cancel() ? 1 : 0;
  int completed = 0;
  for (int i = 0; i < kTasks; ++i) {
    if (futures[i].cancelled()) {
      EXPECT_THROW(futures[i].result(10s), CancelledError);
    } else {
      EXPECT_EQ(futures[i].result(10s), i);
      ++completed;
    }
  }
  pool.close();
  pool.join();  // every worker is done: the count is final
  EXPECT_EQ(cancelled + completed, kTasks);
  EXPECT_EQ(std::atomic_ref<int>(Ran()[0]).load(), completed);
  EXPECT_GT(cancelled, 0);  // 4000 queued behind 2 workers: some were cancelled
}

TEST(Future, ExceptionsKeepTheirType) {
  Pool pool(1);
  Future<int> f = pool.submit(Fail, 3);
  EXPECT_THROW(f.result(10s), ValueError);  // registered: mp::ValueError itself
  std::exception_ptr e = f.exception();
  ASSERT_NE(e, nullptr);
  try {
    std::rethrow_exception(e);
  } catch (const ValueError& error) {
    EXPECT_STREQ(error.what(), "three is bad");
  }
}

TEST(Future, DoneCallbacksRunOnceAfterTheResultIsSetAndAtOnceWhenAlreadyDone) {
  ResetEvents();
  Pool pool(1);
  Future<int> f = pool.submit(Block, 5);
  std::atomic<int> calls{0};
  std::atomic<int> seen{0};
  Event called;
  f.add_done_callback([&](Future<int>& g) {
    seen = g.result();  // ready inside the callback
    ++calls;
    called.set();
  });
  f.add_done_callback([](Future<int>&) { throw std::runtime_error("callbacks may throw"); });
  EXPECT_EQ(calls.load(), 0);
  Release().set();
  ASSERT_TRUE(called.wait(10s));
  EXPECT_EQ(f.result(10s), 5);
  int late = 0;
  f.add_done_callback([&](Future<int>& g) { late = g.result(); });  // runs here, now
  EXPECT_EQ(late, 5);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(seen.load(), 5);
}

TEST(Future, AsCompletedYieldsEachFutureAsItEnds) {
  Pool pool(2);
  std::vector<Future<int>> futures;
  for (int ms : {300, 10, 150}) futures.push_back(pool.submit(SleepMs, ms));
  std::vector<int> order;
  for (Future<int>& f : as_completed(futures, 20s)) order.push_back(f.result());
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(std::set<int>(order.begin(), order.end()), (std::set<int>{10, 150, 300}));
  EXPECT_EQ(order.front(), 10);
  EXPECT_EQ(order.back(), 300);
}

TEST(Future, AsCompletedRaisesTimeoutErrorForTheUnfinished) {
  ResetEvents();
  Pool pool(2);
  std::vector<Future<int>> futures{pool.submit(Square, 2), pool.submit(Block, 1)};
  int yielded = 0;
  EXPECT_THROW(
      {
        for (Future<int>& f : as_completed(futures, 300ms)) {
          EXPECT_EQ(f.result(), 4);
          ++yielded;
        }
      },
      TimeoutError);
  EXPECT_EQ(yielded, 1);
  Release().set();
}

TEST(Future, WaitFirstCompletedFirstExceptionAllCompleted) {
  ResetEvents();
  Pool pool(2);
  std::vector<Future<int>> futures{pool.submit(Block, 1), pool.submit(Square, 3)};
  auto [done, not_done] = futures::wait(futures, FIRST_COMPLETED, 10s);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].result(), 9);
  ASSERT_EQ(not_done.size(), 1u);
  // Timeout: returns with the unfinished ones in not_done.
  auto all = futures::wait(futures, ALL_COMPLETED, 100ms);
  EXPECT_EQ(all.not_done.size(), 1u);

  std::vector<Future<int>> failing{pool.submit(Fail, 3)};
  failing.push_back(futures[0]);
  auto first_error = futures::wait(failing, FIRST_EXCEPTION, 10s);
  ASSERT_EQ(first_error.done.size(), 1u);
  EXPECT_THROW(first_error.done[0].result(), ValueError);

  Release().set();
  auto finished = futures::wait(futures);  // ALL_COMPLETED
  EXPECT_EQ(finished.done.size(), 2u);
  EXPECT_TRUE(finished.not_done.empty());
  // FIRST_EXCEPTION without any exception waits for all.
  std::vector<Future<int>> fine{pool.submit(Square, 1), pool.submit(SleepMs, 100)};
  auto none_failed = futures::wait(fine, FIRST_EXCEPTION, 10s);
  EXPECT_EQ(none_failed.done.size(), 2u);
}

TEST(Future, CrashedWorkerFailsOnlyItsFuture) {
  Pool pool(2);
  std::vector<Future<int>> futures;
  for (int i = 0; i < 10; ++i) futures.push_back(pool.submit(CrashOn, i));
  for (int i = 0; i < 10; ++i) {
    if (i == 5) {
      EXPECT_THROW(futures[i].result(20s), WorkerLostError);
    } else {
      EXPECT_EQ(futures[i].result(20s), i);
    }
  }
}

TEST(Future, StreamsAsPythonReprs) {
  ResetEvents();
  Pool pool(1);
  Future<int> running = pool.submit(Block, 1);
  ASSERT_TRUE(Started().wait(10s));
  Future<int> pending = pool.submit(Square, 2);
  auto text = [](const auto& f) {
    std::ostringstream out;
    out << f;
    return out.str();
  };
  EXPECT_NE(text(running).find("state=running>"), std::string::npos) << text(running);
  EXPECT_NE(text(pending).find("state=pending>"), std::string::npos) << text(pending);
  EXPECT_EQ(text(pending).rfind("<Future at 0x", 0), 0u) << text(pending);
  ASSERT_TRUE(pending.cancel());
  EXPECT_NE(text(pending).find("state=cancelled>"), std::string::npos);
  Release().set();
  running.result(10s);
  EXPECT_NE(text(running).find("state=finished returned int>"), std::string::npos) << text(running);
  Future<int> failed = pool.submit(Fail, 3);
  failed.exception(10s);
  EXPECT_NE(text(failed).find("state=finished raised mp::ValueError>"), std::string::npos)
      << text(failed);
}

// Executor.

TEST(Executor, SubmitMapShutdown) {
  ProcessPoolExecutor ex({.max_workers = 2});
  EXPECT_EQ(ex.max_workers(), 2);
  EXPECT_EQ(ex.submit(Square, 9).result(10s), 81);
  std::vector<int> ys;
  for (int y : ex.map(Square, std::vector<int>{1, 2, 3, 4})) ys.push_back(y);
  EXPECT_EQ(ys, (std::vector<int>{1, 4, 9, 16}));
  ex.shutdown();
  EXPECT_THROW(ex.submit(Square, 1), ProcessError);
  EXPECT_THROW(ex.map(Square, std::vector<int>{1}), ProcessError);
  ex.shutdown();  // twice: a no-op
}

TEST(Executor, ShutdownCancelFuturesCancelsThoseNotStarted) {
  ResetEvents();
  Ran()[0] = 0;
  ProcessPoolExecutor ex({.max_workers = 1});
  Future<int> blocker = ex.submit(Block, 0);
  ASSERT_TRUE(Started().wait(10s));
  std::vector<Future<int>> queued;
  for (int i = 0; i < 20; ++i) queued.push_back(ex.submit(CountRun, i));
  ex.shutdown(/*wait=*/false, /*cancel_futures=*/true);
  for (auto& f : queued) EXPECT_TRUE(f.cancelled());
  Release().set();
  EXPECT_EQ(blocker.result(10s), 0);
  ex.shutdown(true);
  EXPECT_EQ(std::atomic_ref<int>(Ran()[0]).load(), 0);
}

TEST(Executor, MapTimeoutCountsFromTheCall) {
  ResetEvents();
  ProcessPoolExecutor ex({.max_workers = 2});
  auto results = ex.map(Block, std::vector<int>{1, 2}, {.timeout = 200ms});
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(results.next(), TimeoutError);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  Release().set();
}

// An endless input that counts how far it was read.
struct CountingInput {
  std::atomic<int>* read;
  auto range() const {
    return std::views::iota(0) | std::views::transform([r = read](int x) {
             r->fetch_add(1);
             return x;
           });
  }
};

TEST(Executor, MapTakesAnEndlessInputAndReadsItOnlyAsResultsAreTaken) {
  std::atomic<int> read{0};
  ProcessPoolExecutor ex({.max_workers = 2});
  auto results = ex.map(Square, CountingInput{&read}.range(), {.chunksize = 4, .buffersize = 8});
  EXPECT_LE(read.load(), 8 * 4);  // buffersize chunks of chunksize items, no more
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(results.next(10s), i * i);
  EXPECT_LE(read.load(), 1000 + 8 * 4);
}

TEST(Executor, UnderEveryStartMethodIsInStartMethodsTest) { SUCCEED(); }

// Lazy imap on Pool.

TEST(LazyImap, FirstResultComesBeforeTheInputEnds) {
  Pool pool(2);
  std::atomic<int> read{0};
  auto it = pool.imap_unordered(Square, CountingInput{&read}.range(), 1, 16);
  std::set<int> first;
  for (int i = 0; i < 100; ++i) first.insert(it.next(10s));
  EXPECT_EQ(first.size(), 100u);
  EXPECT_LE(read.load(), 100 + 16);
}

TEST(LazyImap, OrderedResultsOfAFiniteUnsizedInput) {
  Pool pool(2);
  auto evens = std::views::iota(0, 50) | std::views::filter([](int x) { return x % 2 == 0; });
  std::vector<int> got;
  for (int y : pool.imap(Square, evens, 3, 2)) got.push_back(y);
  ASSERT_EQ(got.size(), 25u);
  for (int i = 0; i < 25; ++i) EXPECT_EQ(got[i], (2 * i) * (2 * i));
}

TEST(LazyImap, ATaskErrorArrivesInItsTurnAndTheRestGoOn) {
  Pool pool(2);
  auto it = pool.imap(Fail, std::views::iota(0, 6), 1, 2);
  EXPECT_EQ(it.next(10s), 0);
  EXPECT_EQ(it.next(10s), 1);
  EXPECT_EQ(it.next(10s), 2);
  EXPECT_THROW(it.next(10s), ValueError);
  EXPECT_EQ(it.next(10s), 4);
  EXPECT_EQ(it.next(10s), 5);
  EXPECT_THROW(it.next(10s), ValueError);  // no more results
}

TEST(LazyImap, SizedInputIsSubmittedWholeSoTheIteratorOutlivesClose) {
  Pool pool(2);
  auto it = pool.imap(Square, std::vector<int>{1, 2, 3});
  pool.close();
  pool.join();
  std::vector<int> got;
  for (int y : it) got.push_back(y);
  EXPECT_EQ(got, (std::vector<int>{1, 4, 9}));
}

TEST(LazyImap, AnIteratorThatOutlivesItsPoolThrowsInsteadOfTouchingIt) {
  std::optional<IMapIterator<int>> it;
  {
    Pool pool(1);
    it.emplace(pool.imap(Square, std::views::iota(0), 1, 2));
    EXPECT_EQ(it->next(10s), 0);
  }
  // The chunks in flight were failed by the pool's end; feeding more says why.
  bool threw = false;
  for (int i = 0; i < 4 && !threw; ++i) {
    try {
      it->next(10s);
    } catch (const Error&) {
      threw = true;
    }
  }
  EXPECT_TRUE(threw);
}

TEST(Future, WaitInALoopLeavesNoCallbacksBehind) {
  ResetEvents();
  Pool pool(1);
  Future<int> slow = pool.submit(Block, 1);
  // Each timed-out wait takes its callback back: the future's own
  // callbacks are all that run when it ends.
  for (int i = 0; i < 1000; ++i) futures::wait(std::vector<Future<int>>{slow}, FIRST_COMPLETED, 0s);
  std::atomic<int> calls{0};
  slow.add_done_callback([&](Future<int>&) { ++calls; });
  Release().set();
  EXPECT_EQ(slow.result(10s), 1);
  EXPECT_EQ(calls.load(), 1);
}

// Task time limits.

TEST(TaskTimeout, ATaskPastItsLimitIsKilledWithItsWorkerAndOthersGoOn) {
  Pool pool(PoolOptions{.processes = 2, .task_timeout = 500ms});
  const auto start = std::chrono::steady_clock::now();
  AsyncResult<int> hung = pool.apply_async(Hang, 1);
  Future<int> hung_future = pool.submit(Hang, 1);
  std::vector<AsyncResult<int>> others;
  for (int i = 0; i < 20; ++i) others.push_back(pool.apply_async(SleepMs, 10));
  try {
    hung.get(20s);
    FAIL() << "expected TimeoutError";
  } catch (const TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("task_timeout"), std::string::npos) << e.what();
  }
  EXPECT_THROW(hung_future.result(20s), TimeoutError);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 500ms);
  for (auto& r : others) EXPECT_EQ(r.get(20s), 10);
  // The workers were replaced: the pool still runs tasks on two workers.
  std::set<int> pids;
  for (int i = 0; i < 50; ++i) pids.insert(pool.apply(MyPid, 0));
  EXPECT_GE(pids.size(), 1u);
  EXPECT_EQ(pool.apply(Square, 6), 36);
}

TEST(TaskTimeout, TasksWithinTheLimitAreUntouched) {
  ProcessPoolExecutor ex({.max_workers = 2, .task_timeout = 2s});
  std::vector<Future<int>> fs;
  for (int i = 0; i < 10; ++i) fs.push_back(ex.submit(SleepMs, 50));
  for (auto& f : fs) EXPECT_EQ(f.result(20s), 50);
}

TEST(TaskTimeout, MustBePositive) {
  EXPECT_THROW(Pool(PoolOptions{.processes = 1, .task_timeout = 0s}), ValueError);
  EXPECT_THROW(ThreadPool(PoolOptions{.processes = 1, .task_timeout = 1s}), ValueError);
}

// Exception types.

template <class E>
int Throw(int) {
  if constexpr (std::is_constructible_v<E, const char*>) {
    throw E("message of the task");
  } else {
    throw E();
  }
}

struct QuotaExceeded : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct Unregistered : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class E>
void ExpectRoundTrip(Pool& pool) {
  Future<int> f = pool.submit(&Throw<E>, 0);
  try {
    f.result(10s);
    ADD_FAILURE() << "no exception for " << typeid(E).name();
  } catch (const E& e) {
    EXPECT_EQ(typeid(e), typeid(E)) << internal::TypeName(typeid(e));
    if constexpr (std::is_constructible_v<E, const char*>) {
      EXPECT_STREQ(e.what(), "message of the task");
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected " << internal::TypeName(typeid(E)) << ", got "
                  << internal::TypeName(typeid(e)) << ": " << e.what();
  }
  // AsyncResult::get rethrows the same type.
  EXPECT_THROW(pool.apply_async(&Throw<E>, 0).get(10s), E);
}

TEST(ExceptionTypes, StandardAndLibraryTypesComeBackAsThemselves) {
  Pool pool(2);
  ExpectRoundTrip<std::logic_error>(pool);
  ExpectRoundTrip<std::invalid_argument>(pool);
  ExpectRoundTrip<std::domain_error>(pool);
  ExpectRoundTrip<std::length_error>(pool);
  ExpectRoundTrip<std::out_of_range>(pool);
  ExpectRoundTrip<std::runtime_error>(pool);
  ExpectRoundTrip<std::range_error>(pool);
  ExpectRoundTrip<std::overflow_error>(pool);
  ExpectRoundTrip<std::underflow_error>(pool);
  ExpectRoundTrip<std::bad_alloc>(pool);
  ExpectRoundTrip<std::bad_cast>(pool);
  ExpectRoundTrip<std::bad_optional_access>(pool);
  ExpectRoundTrip<std::bad_variant_access>(pool);
  ExpectRoundTrip<std::bad_function_call>(pool);
  ExpectRoundTrip<Error>(pool);
  ExpectRoundTrip<ValueError>(pool);
  ExpectRoundTrip<KeyError>(pool);
  ExpectRoundTrip<IndexError>(pool);
  ExpectRoundTrip<TimeoutError>(pool);
  ExpectRoundTrip<ProcessError>(pool);
  ExpectRoundTrip<EOFError>(pool);
  ExpectRoundTrip<Empty>(pool);
  ExpectRoundTrip<Full>(pool);
  ExpectRoundTrip<AuthenticationError>(pool);
  ExpectRoundTrip<BrokenBarrierError>(pool);
  ExpectRoundTrip<CancelledError>(pool);
}

int ThrowsSystemError(int) { throw std::system_error(ENOENT, std::generic_category(), "open /nowhere"); }
int ThrowsIosFailure(int) { throw std::ios_base::failure("stream broke"); }

TEST(ExceptionTypes, SystemErrorsKeepTheirCode) {
  Pool pool(1);
  try {
    pool.apply(ThrowsSystemError, 0);
    FAIL() << "no exception";
  } catch (const std::system_error& e) {
    EXPECT_EQ(typeid(e), typeid(std::system_error));
    EXPECT_EQ(e.code(), std::error_code(ENOENT, std::generic_category()));
    EXPECT_EQ(std::string(e.what()), std::system_error(ENOENT, std::generic_category(), "open /nowhere").what());
  }
  try {
    pool.apply(ThrowsIosFailure, 0);
    FAIL() << "no exception";
  } catch (const std::ios_base::failure& e) {
    EXPECT_EQ(e.code(), std::io_errc::stream);
    EXPECT_EQ(std::string(e.what()), std::ios_base::failure("stream broke").what());
  }
}

TEST(ExceptionTypes, UserTypesOnceRegisteredOthersAsRemoteError) {
  register_exception<QuotaExceeded>();
  Pool pool(1);
  ExpectRoundTrip<QuotaExceeded>(pool);
  try {
    pool.submit(&Throw<Unregistered>, 0).result(10s);
    FAIL() << "expected RemoteError";
  } catch (const RemoteError& e) {
    EXPECT_NE(e.type_name().find("Unregistered"), std::string::npos) << e.type_name();
    EXPECT_STREQ(e.what(), "message of the task");
  }
}

// ThreadPool.

int SameProcess(int) { return static_cast<int>(::getpid()); }

TEST(ThreadPool, HasThePoolsApiAndRunsInThisProcess) {
  ThreadPool pool(3);
  EXPECT_EQ(pool.processes(), 3);
  EXPECT_EQ(pool.apply(SameProcess, 0), static_cast<int>(::getpid()));
  EXPECT_EQ(pool.map(Square, std::vector<int>{1, 2, 3}), (std::vector<int>{1, 4, 9}));
  std::set<int> unordered;
  for (int y : pool.imap_unordered(Square, std::views::iota(0, 100), 1, 4)) unordered.insert(y);
  EXPECT_EQ(unordered.size(), 100u);
  EXPECT_THROW(pool.apply_async(Fail, 3).get(10s), ValueError);
  EXPECT_EQ(pool.submit(Square, 5).result(10s), 25);
  pool.close();
  pool.join();
  EXPECT_THROW(pool.apply_async(Square, 1), ValueError);
}

TEST(ThreadPool, CancelBeforeAThreadStartsTheTask) {
  ResetEvents();
  ThreadPoolExecutor ex({.max_workers = 1});
  Future<int> blocker = ex.submit(Block, 0);
  ASSERT_TRUE(Started().wait(10s));
  EXPECT_TRUE(blocker.running());
  Future<int> queued = ex.submit(Square, 4);
  EXPECT_FALSE(queued.running());
  EXPECT_TRUE(queued.cancel());
  EXPECT_THROW(queued.result(), CancelledError);
  Release().set();
  EXPECT_EQ(blocker.result(10s), 0);
}

TEST(ThreadPool, ShutdownCancelFuturesLeavesOtherTasksAlone) {
  ResetEvents();
  ThreadPoolExecutor ex({.max_workers = 1});
  Future<int> blocker = ex.submit(Block, 0);
  ASSERT_TRUE(Started().wait(10s));
  Future<int> queued = ex.submit(Square, 2);
  auto mapped = ex.map(Square, std::vector<int>{1, 2, 3});
  ex.shutdown(/*wait=*/false, /*cancel_futures=*/true);
  EXPECT_TRUE(queued.cancelled());
  Release().set();
  std::vector<int> ys;
  for (int y : mapped) ys.push_back(y);
  EXPECT_EQ(ys, (std::vector<int>{1, 4, 9}));
  EXPECT_EQ(blocker.result(10s), 0);
}

TEST(ThreadPool, TerminateFailsQueuedTasks) {
  ResetEvents();
  ThreadPool pool(1);
  auto blocker = pool.apply_async(Block, 0);
  ASSERT_TRUE(Started().wait(10s));
  auto queued = pool.apply_async(Square, 2);
  pool.terminate();
  EXPECT_THROW(queued.get(10s), ProcessError);
  Release().set();
  pool.join();
  EXPECT_EQ(blocker.get(10s), 0);
}

}  // namespace
}  // namespace mp
