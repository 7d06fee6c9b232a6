#include "sync/robust_mutex.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "base/check.h"
#include "base/errors.h"

namespace mp::internal {
namespace {

constexpr int kAcquireSpins = 200;

void ResetAfterFork() { tls_robust_info = ThreadRobustInfo{}; }

robust_list* Unmark(robust_list* p) {
  return reinterpret_cast<robust_list*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t{1});
}

void Link(robust_list_head* head, robust_list* node) {
  node->next = head->list.next;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  head->list.next = node;
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

// Why by hand: no library offers a process-shared robust mutex cheaper than
// pthread's. We join glibc's own per-thread robust list (same node format,
// same order of operations: announce in list_op_pending, change the word,
// link or unlink, clear list_op_pending), so the kernel's exit-time walk
// covers our mutexes too, and a death anywhere in between leaves the kernel
// enough to release the word.
constinit thread_local ThreadRobustInfo tls_robust_info __attribute__((tls_model("initial-exec")));

ThreadRobustInfo& InitThreadRobustInfo() {
  ThreadRobustInfo& info = tls_robust_info;
  static std::once_flag atfork_once;
  std::call_once(atfork_once, [] { pthread_atfork(nullptr, nullptr, &ResetAfterFork); });
  robust_list_head* head = nullptr;
  size_t len = 0;
  if (syscall(SYS_get_robust_list, 0, &head, &len) != 0 || head == nullptr) {
    // Every glibc thread has a robust list; without one we cannot be robust.
    std::fprintf(stderr, "mp: get_robust_list failed; robust locks unavailable\n");
    std::abort();
  }
  // The node must fit in node_area, 8-byte aligned; the word is at offset 0.
  const long node_offset = -head->futex_offset;
  MP_CHECK(node_offset >= static_cast<long>(offsetof(RobustMutexState, node_area)));
  MP_CHECK(node_offset + static_cast<long>(sizeof(robust_list)) <=
           static_cast<long>(sizeof(RobustMutexState)));
  MP_CHECK(node_offset % 8 == 0);
  info.node_offset = node_offset;
  info.tid = static_cast<uint32_t>(syscall(SYS_gettid));
  info.head = head;
  return info;
}

void UnlinkSlow(robust_list_head* head, robust_list* node) {
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

AcquireResult Acquire(RobustMutexState* state, const Deadline& deadline) {
  ThreadRobustInfo& info = RobustInfo();
  robust_list* node = NodeOf(state, info);
  SetPending(info.head, node);
  uint32_t expected = 0;
  bool died = false;
  if (!state->word.compare_exchange_strong(expected, info.tid, std::memory_order_acquire,
                                           std::memory_order_relaxed)) {
    // Critical sections here are short (a queue's bookkeeping, a counter):
    // spin briefly for the owner to leave before paying for a sleep and the
    // owner for a wake-up.
    for (int spin = 0; spin < kAcquireSpins; ++spin) {
      const uint32_t v = state->word.load(std::memory_order_relaxed);
      if (v == 0) {
        expected = 0;
        if (state->word.compare_exchange_weak(expected, info.tid, std::memory_order_acquire,
                                              std::memory_order_relaxed)) {
          Link(info.head, node);
          SetPending(info.head, nullptr);
          state->recovered = 0;
          return AcquireResult::kAcquired;
        }
      } else if ((v & FUTEX_TID_MASK) == info.tid || (v & FUTEX_WAITERS)) {
        break;  // Our own lock, or others already sleep: no point spinning.
      }
      CpuRelax();
    }
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
  ThreadRobustInfo& info = RobustInfo();
  robust_list* node = NodeOf(state, info);
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

}  // namespace mp::internal
