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

#include <linux/futex.h>

#include <atomic>
#include <cstdint>

#include "sync/futex.h"

namespace mp::internal {

// What a thread needs to link mutexes into its robust list.
struct ThreadRobustInfo {
  robust_list_head* head = nullptr;  // glibc's robust list of this thread
  uint32_t tid = 0;
  long node_offset = 0;  // where a mutex's list node sits, from its word
};

// Filled on a thread's first use (and again in a forked child). Initial-exec
// TLS (this library is never dlopen'ed) and constinit (no TLS init-function
// call) make it one instruction to reach.
extern constinit thread_local ThreadRobustInfo tls_robust_info __attribute__((tls_model("initial-exec")));
ThreadRobustInfo& InitThreadRobustInfo();
inline ThreadRobustInfo& RobustInfo() {
  ThreadRobustInfo& info = tls_robust_info;
  return info.head != nullptr ? info : InitThreadRobustInfo();
}

// The calling thread's kernel thread id, cached (and refreshed after fork).
inline uint32_t CurrentTid() { return RobustInfo().tid; }

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

inline robust_list* NodeOf(RobustMutexState* state, const ThreadRobustInfo& info) {
  return reinterpret_cast<robust_list*>(reinterpret_cast<char*>(&state->word) + info.node_offset);
}

inline void SetPending(robust_list_head* head, robust_list* node) {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  head->list_op_pending = node;
  std::atomic_signal_fence(std::memory_order_seq_cst);
}

// TryFastAcquire takes a free mutex with one compare-and-swap; false when it
// is not free (then use Acquire).
inline bool TryFastAcquire(RobustMutexState* state) {
  ThreadRobustInfo& info = RobustInfo();
  robust_list* node = NodeOf(state, info);
  SetPending(info.head, node);
  uint32_t expected = 0;
  if (!state->word.compare_exchange_strong(expected, info.tid, std::memory_order_acquire,
                                           std::memory_order_relaxed)) {
    SetPending(info.head, nullptr);
    return false;
  }
  // Link at the head of the thread's robust list, as glibc does.
  node->next = info.head->list.next;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  info.head->list.next = node;
  SetPending(info.head, nullptr);
  state->recovered = 0;
  return true;
}

// Acquire blocks until the calling thread owns the mutex or the deadline
// passes. Sets state->recovered when the previous owner died holding it.
// Throws mp::Error for a blocking acquire by the thread that already owns it
// (it could never return).
AcquireResult Acquire(RobustMutexState* state, const Deadline& deadline);

// TryAcquire takes the mutex if it is free (or its owner died); never blocks.
bool TryAcquire(RobustMutexState* state);

void UnlinkSlow(robust_list_head* head, robust_list* node);

// Release gives the mutex up: one atomic exchange, and a wake-up only if a
// thread sleeps on it. The caller must own it (see OwnedByMe).
inline void Release(RobustMutexState* state) {
  ThreadRobustInfo& info = RobustInfo();
  robust_list* node = NodeOf(state, info);
  SetPending(info.head, node);
  if (info.head->list.next == node) {
    info.head->list.next = node->next;  // Usually the most recent lock.
  } else {
    UnlinkSlow(info.head, node);
  }
  const uint32_t old = state->word.exchange(0, std::memory_order_release);
  if (old & FUTEX_WAITERS) FutexWake(&state->word, 1);
  SetPending(info.head, nullptr);
}

// OwnedByMe is true when the calling thread owns the mutex.
inline bool OwnedByMe(const RobustMutexState* state) {
  return (state->word.load(std::memory_order_relaxed) & FUTEX_TID_MASK) == CurrentTid();
}

// IsLocked is true while any thread owns the mutex (a snapshot).
inline bool IsLocked(const RobustMutexState* state) {
  return (state->word.load(std::memory_order_relaxed) & FUTEX_TID_MASK) != 0;
}

}  // namespace mp::internal

#endif  // SYNC_ROBUST_MUTEX_H_
