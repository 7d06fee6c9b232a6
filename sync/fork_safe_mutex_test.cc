#include "sync/fork_safe_mutex.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace mp::internal {
namespace {

using namespace std::chrono_literals;

// A fork made while another thread holds a ForkSafeMutex waits for it, so
// the child finds it unlocked (a plain mutex would stay locked there).
TEST(ForkSafeMutex, ChildForkedWhileAnotherThreadHeldItFindsItUnlocked) {
  static ForkSafeMutex* mu = new ForkSafeMutex;
  std::atomic<bool> held{false};
  std::thread holder([&] {
    mu->lock();
    held.store(true);
    std::this_thread::sleep_for(50ms);  // Hold it across the fork below.
    mu->unlock();
  });
  while (!held.load()) std::this_thread::yield();
  const pid_t child = mp::testing::ForkChild([] {
    const int code = mu->try_lock() ? 0 : 1;
    // Straight to the kernel: ThreadSanitizer's exit hook would report the
    // parent's `holder` thread, which a fork does not copy, as leaked.
    syscall(SYS_exit_group, code);
    return code;
  });
  EXPECT_EQ(mp::testing::WaitChild(child, 10s), 0);
  holder.join();
  // The parent's copy works as before.
  mu->lock();
  mu->unlock();
}

}  // namespace
}  // namespace mp::internal
