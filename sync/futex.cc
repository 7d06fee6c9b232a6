#include "sync/futex.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "base/check.h"

namespace mp::internal {
namespace {

timespec ToTimespec(Clock::time_point t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  timespec ts;
  ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  return ts;
}

}  // namespace

bool FutexWait(std::atomic<uint32_t>* word, uint32_t expected, const Deadline& deadline) {
  timespec abs_time;
  timespec* abs_ptr = nullptr;
  if (deadline.has_value()) {
    if (Clock::now() >= *deadline) return false;
    abs_time = ToTimespec(*deadline);
    abs_ptr = &abs_time;
  }
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so an
  // interrupted wait loses no time when the caller retries.
  long rc = syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_BITSET, expected,
                    abs_ptr, nullptr, FUTEX_BITSET_MATCH_ANY);
  if (rc == 0) return true;
  switch (errno) {
    case EAGAIN:  // *word != expected already.
    case EINTR:
      return true;
    case ETIMEDOUT:
      return false;
    default:
      MP_CHECK(false && "futex wait failed");
  }
  return true;
}

void FutexWake(std::atomic<uint32_t>* word, int count) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, count, nullptr, nullptr, 0);
}

}  // namespace mp::internal
