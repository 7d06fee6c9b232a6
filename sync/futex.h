// Futex waits and wakes on words in shared memory, with monotonic deadlines.
//
// Internal to the library. Every blocking primitive in sync/ and ipc/ sleeps
// here; none polls. Deadlines are absolute CLOCK_MONOTONIC time points, so a
// wait interrupted by a signal resumes with the time that remains.
#ifndef SYNC_FUTEX_H_
#define SYNC_FUTEX_H_

#include <atomic>
#include <cstdint>

#include "base/deadline.h"

namespace mp::internal {

// CpuRelax tells the CPU that this thread spins, waiting for another (the
// body of every spin-before-sleeping loop in the library).
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
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
