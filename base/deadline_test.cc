#include "base/deadline.h"

#include <unistd.h>

#include <chrono>
#include <thread>

#include "base/scoped_fd.h"
#include "gtest/gtest.h"

namespace mp::internal {
namespace {

using namespace std::chrono_literals;

TEST(Deadline, HugeTimeoutsMeanForever) {
  EXPECT_FALSE(DeadlineAfter(std::chrono::hours::max()).has_value());
  EXPECT_FALSE(DeadlineAfter(std::chrono::nanoseconds::max()).has_value());
  EXPECT_TRUE(DeadlineAfter(1s).has_value());
}

TEST(Deadline, NegativeTimeoutIsNow) {
  const Deadline d = DeadlineAfter(-5s);
  ASSERT_TRUE(d.has_value());
  EXPECT_TRUE(Expired(d));
  EXPECT_FALSE(Expired(Deadline{}));
}

TEST(WaitReadable, TimesOutNoEarlierThanTheDeadline) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ScopedFd r(fds[0]), w(fds[1]);
  const auto start = Clock::now();
  EXPECT_FALSE(WaitReadable(r.get(), DeadlineAfter(30ms)));
  EXPECT_GE(Clock::now() - start, 30ms);
  EXPECT_FALSE(WaitReadable(r.get(), Clock::now()));  // an expired deadline: one look
}

TEST(WaitReadable, ReturnsWhenDataArrives) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ScopedFd r(fds[0]), w(fds[1]);
  std::thread writer([&] { ASSERT_EQ(write(w.get(), "x", 1), 1); });
  EXPECT_TRUE(WaitReadable(r.get(), DeadlineAfter(10s)));
  writer.join();
}

TEST(WaitReadable, ClosedWriterCountsAsReadable) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ScopedFd r(fds[0]);
  close(fds[1]);
  EXPECT_TRUE(WaitReadable(r.get(), Deadline{}));
}

}  // namespace
}  // namespace mp::internal
