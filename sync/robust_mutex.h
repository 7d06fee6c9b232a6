// RobustMutex: a process-shared mutex on one futex word that survives the
// death of its owner.
//
// Internal to the library; Lock, RLock, Condition, Barrier, Value and the
// queues are built on it. The word holds the owner's thread id, as the
// kernel's robust-futex protocol expects: the mutex is linked into the owning
// thread's robust list (the one glibc registers for every thread with
// set_robust_list), so when the owner dies the kernel marks the word
// FUTEX_OWNER_DIED and wakes a waiter, and the next acquire succeeds and
// reports that the previous owner died. The uncontended paths are one atomic
// compare-and-swap plus a few plain stores: no system call. (A
// PTHREAD_MUTEX_ROBUST pthread mutex does the same with 2-4x the cost,
// measured in tests/benchmarks.)
//
// Thread safety: all operations are safe from any thread of any process that
//   maps the state; unlock only by the owning thread.
// Fork safety: a child does not own the locks its parent held (different tid).
// Sharing: the state lives in shared memory (SharedRegion).
#ifndef SYNC_ROBUST_MUTEX_H_
#define SYNC_ROBUST_MUTEX_H_

#include <atomic>
#include <cstdint>

#include "sync/futex.h"

namespace mp::internal {

// The calling thread's kernel thread id, cached (and refreshed after fork).
uint32_t CurrentTid();

// The shared state. Zero-initialized memory is an unlocked mutex.
struct alignas(64) RobustMutexState {
  std::atomic<uint32_t> word{0};  // owner tid | FUTEX_WAITERS | FUTEX_OWNER_DIED
  uint32_t recursion = 0;         // owner-only: depth for RLock
  uint32_t recovered = 0;         // owner-only: last acquire found a dead owner
  uint32_t unused = 0;
  // The robust-list node lives in here, at the offset the kernel is told
  // (glibc's futex_offset); see robust_mutex.cc.
  unsigned char node_area[48] = {};
};

enum class AcquireResult { kAcquired, kTimedOut };

// Acquire blocks until the calling thread owns the mutex or the deadline
// passes. Sets state->recovered when the previous owner died holding it.
// Throws mp::Error for a blocking acquire by the thread that already owns it
// (it could never return).
AcquireResult Acquire(RobustMutexState* state, const Deadline& deadline);

// TryAcquire takes the mutex if it is free (or its owner died); never blocks.
bool TryAcquire(RobustMutexState* state);

// Release gives the mutex up. The caller must own it (see OwnedByMe).
void Release(RobustMutexState* state);

// OwnedByMe is true when the calling thread owns the mutex.
bool OwnedByMe(const RobustMutexState* state);

// IsLocked is true while any thread owns the mutex (a snapshot).
bool IsLocked(const RobustMutexState* state);

}  // namespace mp::internal

#endif  // SYNC_ROBUST_MUTEX_H_
