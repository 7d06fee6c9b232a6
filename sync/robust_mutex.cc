#include "sync/robust_mutex.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "sync/check.h"
#include "sync/errors.h"

namespace mp::internal {
namespace {

// Why by hand: no library offers a process-shared robust mutex cheaper than
// pthread's. We join glibc's own per-thread robust list (same node format), so
// the kernel's exit-time walk covers our mutexes too.
struct ThreadRobustInfo {
  robust_list_head* head = nullptr;
  uint32_t tid = 0;
};

thread_local ThreadRobustInfo tls_info;

// Same for every thread (glibc sets it once); each thread stores it on first use.
std::atomic<long> g_futex_offset{0};

void ResetAfterFork() { tls_info = ThreadRobustInfo{}; }

ThreadRobustInfo& Info() {
  ThreadRobustInfo& info = tls_info;
  if (info.head == nullptr) {
    static std::once_flag atfork_once;
    std::call_once(atfork_once, [] { pthread_atfork(nullptr, nullptr, &ResetAfterFork); });
    robust_list_head* head = nullptr;
    size_t len = 0;
    if (syscall(SYS_get_robust_list, 0, &head, &len) != 0 || head == nullptr) {
      // Every glibc thread has a robust list; without one we cannot be robust.
      std::fprintf(stderr, "mp: get_robust_list failed; robust locks unavailable\n");
      std::abort();
    }
    const long offset = head->futex_offset;
    // The node must fit in node_area, 8-byte aligned, word at offset 0.
    const long node_offset = -offset;
    MP_CHECK(node_offset >= static_cast<long>(offsetof(RobustMutexState, node_area)));
    MP_CHECK(node_offset + static_cast<long>(sizeof(robust_list)) <=
             static_cast<long>(sizeof(RobustMutexState)));
    MP_CHECK(node_offset % 8 == 0);
    g_futex_offset.store(offset, std::memory_order_relaxed);
    info.head = head;
    info.tid = static_cast<uint32_t>(syscall(SYS_gettid));
  }
  return info;
}

robust_list* NodeOf(RobustMutexState* state) {
  return reinterpret_cast<robust_list*>(reinterpret_cast<char*>(&state->word) -
                                       g_futex_offset.load(std::memory_order_relaxed));
}

robust_list* Unmark(robust_list* p) {
  return reinterpret_cast<robust_list*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t{1});
}

// Linking follows glibc's order: announce the operation in list_op_pending,
// change the word, link or unlink, clear list_op_pending. A death anywhere in
// between leaves the kernel enough to release the word.
void Link(robust_list_head* head, robust_list* node) {
  node->next = head->list.next;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  head->list.next = node;
}

void Unlink(robust_list_head* head, robust_list* node) {
  robust_list** link = &head->list.next;
  while (Unmark(*link) != &head->list) {
    if (Unmark(*link) == node) {
      *link = node->next;
      return;
    }
    link = &Unmark(*link)->next;
  }
  MP_CHECK(false && "robust mutex not on this thread's robust list");
}

void SetPending(robust_list_head* head, robust_list* node) {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  head->list_op_pending = node;
  std::atomic_signal_fence(std::memory_order_seq_cst);
}

bool TakeIfFree(RobustMutexState* state, uint32_t tid, uint32_t extra_bits, bool* died) {
  uint32_t v = state->word.load(std::memory_order_relaxed);
  while ((v & FUTEX_TID_MASK) == 0) {
    if (state->word.compare_exchange_weak(v, tid | extra_bits | (v & FUTEX_WAITERS),
                                          std::memory_order_acquire, std::memory_order_relaxed)) {
      *died = (v & FUTEX_OWNER_DIED) != 0;
      return true;
    }
  }
  return false;
}

}  // namespace

uint32_t CurrentTid() { return Info().tid; }

AcquireResult Acquire(RobustMutexState* state, const Deadline& deadline) {
  ThreadRobustInfo& info = Info();
  robust_list* node = NodeOf(state);
  SetPending(info.head, node);
  uint32_t expected = 0;
  bool died = false;
  if (!state->word.compare_exchange_strong(expected, info.tid, std::memory_order_acquire,
                                           std::memory_order_relaxed)) {
    for (;;) {
      // Slow path: after sleeping, take it with FUTEX_WAITERS set, since other
      // sleepers may remain and the release must wake one of them.
      if (TakeIfFree(state, info.tid, FUTEX_WAITERS, &died)) break;
      uint32_t v = state->word.load(std::memory_order_relaxed);
      if ((v & FUTEX_TID_MASK) == info.tid) {
        SetPending(info.head, nullptr);
        if (!deadline.has_value()) {
          throw Error("acquire: this thread already holds the lock (it would deadlock)");
        }
        // Python's acquire(timeout) on a held Lock times out; so do we.
        while (FutexWait(&state->word, v, deadline)) v = state->word.load(std::memory_order_relaxed);
        return AcquireResult::kTimedOut;
      }
      if ((v & FUTEX_TID_MASK) == 0) continue;
      if (!(v & FUTEX_WAITERS)) {
        if (!state->word.compare_exchange_weak(v, v | FUTEX_WAITERS, std::memory_order_relaxed)) {
          continue;
        }
        v |= FUTEX_WAITERS;
      }
      if (!FutexWait(&state->word, v, deadline)) {
        if (TakeIfFree(state, info.tid, FUTEX_WAITERS, &died)) break;
        SetPending(info.head, nullptr);
        return AcquireResult::kTimedOut;
      }
    }
  }
  Link(info.head, node);
  SetPending(info.head, nullptr);
  state->recovered = died ? 1 : 0;
  return AcquireResult::kAcquired;
}

bool TryAcquire(RobustMutexState* state) {
  ThreadRobustInfo& info = Info();
  robust_list* node = NodeOf(state);
  SetPending(info.head, node);
  bool died = false;
  if (!TakeIfFree(state, info.tid, 0, &died)) {
    SetPending(info.head, nullptr);
    return false;
  }
  Link(info.head, node);
  SetPending(info.head, nullptr);
  state->recovered = died ? 1 : 0;
  return true;
}

void Release(RobustMutexState* state) {
  ThreadRobustInfo& info = Info();
  robust_list* node = NodeOf(state);
  SetPending(info.head, node);
  Unlink(info.head, node);
  uint32_t old = state->word.exchange(0, std::memory_order_release);
  if (old & FUTEX_WAITERS) FutexWake(&state->word, 1);
  SetPending(info.head, nullptr);
}

bool OwnedByMe(const RobustMutexState* state) {
  return (state->word.load(std::memory_order_relaxed) & FUTEX_TID_MASK) == Info().tid;
}

bool IsLocked(const RobustMutexState* state) {
  return (state->word.load(std::memory_order_relaxed) & FUTEX_TID_MASK) != 0;
}

}  // namespace mp::internal
