// Futex waits and wakes on words in shared memory, with monotonic deadlines.
//
// Internal to the library. Every blocking primitive in sync/ and ipc/ sleeps
// here; none polls. Deadlines are absolute CLOCK_MONOTONIC time points, so a
// wait interrupted by a signal resumes with the time that remains.
#ifndef SYNC_FUTEX_H_
#define SYNC_FUTEX_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

namespace mp::internal {

using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC in libstdc++.

// A wait's end: nullopt waits forever.
using Deadline = std::optional<Clock::time_point>;

// DeadlineAfter returns now + timeout, saturating instead of overflowing for
// huge timeouts (which then mean "forever"). A negative timeout is "now".
template <class Rep, class Period>
Deadline DeadlineAfter(std::chrono::duration<Rep, Period> timeout) {
  using std::chrono::nanoseconds;
  constexpr auto kForever = std::chrono::hours(24 * 365 * 100);
  if (timeout >= std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(kForever) &&
      std::chrono::duration<Rep, Period>::max() > kForever) {
    return std::nullopt;
  }
  if (timeout <= timeout.zero()) return Clock::now();
  return Clock::now() + std::chrono::duration_cast<nanoseconds>(timeout);
}

// CpuRelax tells the CPU that this thread spins, waiting for another (the
// body of every spin-before-sleeping loop in the library).
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Expired is true once a (finite) deadline has passed.
inline bool Expired(const Deadline& deadline) {
  return deadline.has_value() && Clock::now() >= *deadline;
}

// FutexWait sleeps while `*word == expected`, until FutexWake, a signal or the
// deadline. Returns false only when the deadline has passed; spurious returns
// are possible, so callers re-check their condition in a loop. The word may be
// shared between processes (no FUTEX_PRIVATE_FLAG).
bool FutexWait(std::atomic<uint32_t>* word, uint32_t expected, const Deadline& deadline);

// FutexWake wakes up to `count` sleepers on `word` (INT32_MAX for all).
void FutexWake(std::atomic<uint32_t>* word, int count);

}  // namespace mp::internal

#endif  // SYNC_FUTEX_H_
