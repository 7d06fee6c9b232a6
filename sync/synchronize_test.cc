#include "sync/synchronize.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "sync/shared_value.h"
#include "tests/test_util.h"

namespace mp {
namespace {

using namespace std::chrono_literals;
using testing::ForkChild;
using testing::WaitChild;

TEST(Lock, MutualExclusionAcrossProcesses) {
  Lock lock;
  RawValue<long> counter(0);
  constexpr int kChildren = 3, kIncrements = 20000;
  std::vector<pid_t> kids;
  for (int i = 0; i < kChildren; ++i) {
    kids.push_back(ForkChild([&] {
      for (int j = 0; j < kIncrements; ++j) {
        std::lock_guard<Lock> with(lock);
        // A read-modify-write that loses updates without the lock.
        long v = counter.value();
        if (j % 64 == 0) sched_yield();
        counter.set_value(v + 1);
      }
      return 0;
    }));
  }
  for (pid_t pid : kids) EXPECT_EQ(WaitChild(pid), 0);
  EXPECT_EQ(counter.value(), kChildren * kIncrements);
}

TEST(Lock, ReleaseByNonOwnerThrows) {
  Lock lock;
  EXPECT_THROW(lock.release(), ValueError);
  lock.acquire();
  std::thread other([&] { EXPECT_THROW(lock.release(), ValueError); });
  other.join();
  lock.release();
}

TEST(Lock, NonBlockingAndTimeoutForms) {
  Lock lock;
  Event held, done;
  pid_t pid = ForkChild([&] {
    lock.acquire();
    held.set();
    done.wait(10s);
    lock.release();
    return 0;
  });
  ASSERT_TRUE(held.wait(10s));
  EXPECT_FALSE(lock.acquire(false));
  EXPECT_FALSE(lock.try_lock());
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(lock.acquire(50ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 45ms);
  done.set();
  EXPECT_TRUE(lock.acquire(10s));
  EXPECT_FALSE(lock.owner_died());
  lock.release();
  EXPECT_EQ(WaitChild(pid), 0);
}

TEST(Lock, BlockingReacquireBySameThreadThrowsInsteadOfHanging) {
  Lock lock;
  lock.acquire();
  EXPECT_THROW(lock.acquire(), Error);
  EXPECT_FALSE(lock.acquire(10ms));
  lock.release();
}

TEST(Lock, OwnerDeathDoesNotDeadlock) {
  Lock lock;
  pid_t pid = ForkChild([&] {
    lock.acquire();
    _exit(7);  // Dies holding the lock.
    return 0;
  });
  EXPECT_EQ(WaitChild(pid), 7);
  ASSERT_TRUE(lock.acquire(5s));
  EXPECT_TRUE(lock.owner_died());
  lock.release();
  ASSERT_TRUE(lock.acquire(5s));
  EXPECT_FALSE(lock.owner_died());
  lock.release();
}

TEST(Lock, OwnerDeathWakesASleepingWaiter) {
  Lock lock;
  Event held;
  pid_t holder = ForkChild([&] {
    lock.acquire();
    held.set();
    pause();  // Killed below while holding the lock.
    return 0;
  });
  ASSERT_TRUE(held.wait(10s));
  std::thread killer([&] {
    std::this_thread::sleep_for(50ms);  // Let the main thread go to sleep on the lock.
    kill(holder, SIGKILL);
  });
  EXPECT_TRUE(lock.acquire(10s));
  EXPECT_TRUE(lock.owner_died());
  lock.release();
  killer.join();
  EXPECT_EQ(WaitChild(holder), -SIGKILL);
}

TEST(Lock, WorksWithStandardLockGuards) {
  Lock a, b;
  {
    std::scoped_lock both(a, b);
    EXPECT_TRUE(a.locked());
  }
  EXPECT_FALSE(a.locked());
  std::unique_lock<Lock> u(a, std::try_to_lock);
  EXPECT_TRUE(u.owns_lock());
}

TEST(RLock, NestsAndChecksOwner) {
  RLock r;
  r.acquire();
  r.acquire();
  EXPECT_TRUE(r.is_owned());
  std::thread other([&] {
    EXPECT_FALSE(r.acquire(false));
    EXPECT_THROW(r.release(), ValueError);
  });
  other.join();
  r.release();
  EXPECT_TRUE(r.is_owned());
  r.release();
  EXPECT_FALSE(r.is_owned());
  EXPECT_THROW(r.release(), ValueError);
}

TEST(RLock, OwnerDeathRecovers) {
  RLock r;
  pid_t pid = ForkChild([&] {
    r.acquire();
    r.acquire();
    _exit(0);
    return 0;
  });
  EXPECT_EQ(WaitChild(pid), 0);
  ASSERT_TRUE(r.acquire(5s));
  EXPECT_TRUE(r.owner_died());
  r.release();
  EXPECT_FALSE(r.is_owned());
}

TEST(Semaphore, CountsAndTimesOut) {
  Semaphore s(2);
  EXPECT_EQ(s.get_value(), 2);
  s.acquire();
  EXPECT_TRUE(s.acquire(false));
  EXPECT_FALSE(s.acquire(false));
  EXPECT_FALSE(s.acquire(20ms));
  s.release();
  EXPECT_EQ(s.get_value(), 1);
  s.release();
  s.release();  // Unbounded: may exceed the initial value.
  EXPECT_EQ(s.get_value(), 3);
}

TEST(BoundedSemaphore, ReleasePastInitialThrows) {
  BoundedSemaphore s(1);
  EXPECT_THROW(s.release(), ValueError);
  s.acquire();
  s.release();
  EXPECT_EQ(s.get_value(), 1);
}

TEST(Semaphore, NeverMoreHoldersThanItsValue) {
  Semaphore s(2);
  Lock stats_lock;
  RawValue<int> holders(0), max_holders(0);
  std::vector<pid_t> kids;
  for (int i = 0; i < 5; ++i) {
    kids.push_back(ForkChild([&] {
      for (int j = 0; j < 200; ++j) {
        std::lock_guard<Semaphore> with(s);
        {
          std::lock_guard<Lock> g(stats_lock);
          holders.set_value(holders.value() + 1);
          if (holders.value() > max_holders.value()) max_holders.set_value(holders.value());
        }
        sched_yield();
        std::lock_guard<Lock> g(stats_lock);
        holders.set_value(holders.value() - 1);
      }
      return 0;
    }));
  }
  for (pid_t pid : kids) EXPECT_EQ(WaitChild(pid), 0);
  EXPECT_LE(max_holders.value(), 2);
  EXPECT_GE(max_holders.value(), 1);
  EXPECT_EQ(s.get_value(), 2);
}

TEST(Semaphore, ReleaseWakesWaiterInOtherProcess) {
  Semaphore s(0);
  pid_t pid = ForkChild([&] { return s.acquire(10s) ? 0 : 1; });
  s.release();
  EXPECT_EQ(WaitChild(pid), 0);
}

TEST(Event, WakesWaitersAndTimesOut) {
  Event e;
  EXPECT_FALSE(e.is_set());
  EXPECT_FALSE(e.wait(20ms));
  std::vector<pid_t> kids;
  for (int i = 0; i < 3; ++i) kids.push_back(ForkChild([&] { return e.wait(10s) ? 0 : 1; }));
  e.set();
  for (pid_t pid : kids) EXPECT_EQ(WaitChild(pid), 0);
  EXPECT_TRUE(e.wait());
  e.clear();
  EXPECT_FALSE(e.is_set());
}

TEST(Condition, NotifyWakesOneNotifyAllWakesAll) {
  Condition c(Lock{});
  RawValue<int> ready(0), woken(0);
  std::vector<pid_t> kids;
  for (int i = 0; i < 3; ++i) {
    kids.push_back(ForkChild([&] {
      std::unique_lock<Condition> with(c);
      ready.set_value(ready.value() + 1);
      if (!c.wait(10s)) return 1;
      woken.set_value(woken.value() + 1);
      return 0;
    }));
  }
  auto wait_for = [&](auto pred) {
    for (int i = 0; i < 10000 && !pred(); ++i) std::this_thread::sleep_for(1ms);
    return pred();
  };
  // Children announce readiness under the lock and then sleep in wait(),
  // which releases it; acquiring the lock after all are ready means all sleep.
  ASSERT_TRUE(wait_for([&] {
    std::lock_guard<Condition> g(c);
    return ready.value() == 3;
  }));
  {
    std::lock_guard<Condition> g(c);
    c.notify();
  }
  ASSERT_TRUE(wait_for([&] {
    std::lock_guard<Condition> g(c);
    return woken.value() == 1;
  }));
  {
    std::lock_guard<Condition> g(c);
    EXPECT_EQ(woken.value(), 1);
    c.notify_all();
  }
  for (pid_t pid : kids) EXPECT_EQ(WaitChild(pid), 0);
  EXPECT_EQ(woken.value(), 3);
}

TEST(Condition, WaitWithoutLockThrowsAndTimesOut) {
  Condition c;
  EXPECT_THROW(c.wait(1ms), ValueError);
  EXPECT_THROW(c.notify(), ValueError);
  std::lock_guard<Condition> g(c);
  c.acquire();  // The default lock is an RLock: nested entry is fine.
  EXPECT_FALSE(c.wait(10ms));
  c.release();
  EXPECT_TRUE(c.wait_for([] { return true; }, 1s));
  int calls = 0;
  EXPECT_FALSE(c.wait_for([&] { return ++calls == 3; }, 10ms));
  EXPECT_EQ(calls, 2);  // Once before waiting, once after the timed-out wait.
}

TEST(Barrier, ReleasesAllPartiesTogether) {
  Barrier b(3);
  RawArray<int> indices(3);
  std::vector<pid_t> kids;
  for (int i = 0; i < 2; ++i) {
    kids.push_back(ForkChild([&, i] {
      for (int round = 0; round < 50; ++round) indices[i] = b.wait(10s);
      return 0;
    }));
  }
  int mine = 0;
  for (int round = 0; round < 50; ++round) mine = b.wait(10s);
  for (pid_t pid : kids) EXPECT_EQ(WaitChild(pid), 0);
  std::vector<int> all{indices[0], indices[1], mine};
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(b.parties(), 3);
  EXPECT_FALSE(b.broken());
}

TEST(Barrier, AbortBreaksWaiters) {
  Barrier b(3);
  pid_t pid = ForkChild([&] {
    try {
      b.wait(10s);
    } catch (const BrokenBarrierError&) {
      return 0;
    }
    return 1;
  });
  for (int i = 0; i < 10000 && b.n_waiting() == 0; ++i) std::this_thread::sleep_for(1ms);
  b.abort();
  EXPECT_EQ(WaitChild(pid), 0);
  EXPECT_TRUE(b.broken());
  EXPECT_THROW(b.wait(), BrokenBarrierError);
  b.reset();
  EXPECT_FALSE(b.broken());
}

TEST(Barrier, TimeoutBreaksTheBarrier) {
  Barrier b(2);
  EXPECT_THROW(b.wait(20ms), BrokenBarrierError);
  EXPECT_TRUE(b.broken());
}

TEST(Sync, NoFdOrShmLeftAfterManyCycles) {
  const auto fds = testing::OpenFds();
  const auto shm = testing::ShmEntries();
  for (int i = 0; i < 1000; ++i) {
    Lock l;
    RLock r;
    Semaphore s(1);
    Event e;
    Condition c;
    Barrier b(1);
    b.wait();
  }
  EXPECT_EQ(testing::OpenFds(), fds);
  EXPECT_EQ(testing::ShmEntries(), shm);
}

}  // namespace
}  // namespace mp
