#include "sync/fork_safe_mutex.h"

#include <pthread.h>

#include <atomic>
#include <cstdlib>

namespace mp::internal {

// The registered mutexes, newest first, and the lock on that list. The
// handlers take the list lock first, so no mutex is added half-way through.
struct ForkSafeMutexList {
  std::mutex mu;
  ForkSafeMutex* newest = nullptr;  // guarded by mu
  // RunBeforeEveryFork's functions: written before threads exist (static
  // initializers), read by every fork.
  static constexpr int kMaxBefore = 16;
  std::atomic<int> before_count{0};
  void (*before[kMaxBefore])() = {};

  static ForkSafeMutexList& Get() {
    static ForkSafeMutexList* list = [] {
      auto* made = new ForkSafeMutexList;  // never destroyed: forks at exit
      pthread_atfork(&Prepare, &Release, &Release);
      return made;
    }();
    return *list;
  }

  // Lock in the order the mutexes were made (the list is newest first, so
  // walk it recursively: there are a handful).
  static void LockFrom(ForkSafeMutex* m) {
    if (m == nullptr) return;
    LockFrom(m->next_);
    m->mu_.lock();
  }
  static void Prepare() {
    ForkSafeMutexList& list = Get();
    const int n = list.before_count.load(std::memory_order_acquire);
    for (int i = 0; i < n; ++i) list.before[i]();
    list.mu.lock();
    LockFrom(list.newest);
  }
  static void Release() {
    ForkSafeMutexList& list = Get();
    for (ForkSafeMutex* m = list.newest; m != nullptr; m = m->next_) m->mu_.unlock();
    list.mu.unlock();
  }
};

void RunBeforeEveryFork(void (*fn)()) {
  ForkSafeMutexList& list = ForkSafeMutexList::Get();
  std::lock_guard<std::mutex> lock(list.mu);
  const int n = list.before_count.load(std::memory_order_relaxed);
  if (n >= ForkSafeMutexList::kMaxBefore) std::abort();  // a library bug: raise kMaxBefore
  list.before[n] = fn;
  list.before_count.store(n + 1, std::memory_order_release);
}

ForkSafeMutex::ForkSafeMutex() {
  ForkSafeMutexList& list = ForkSafeMutexList::Get();
  std::lock_guard<std::mutex> lock(list.mu);
  next_ = list.newest;
  list.newest = this;
}

}  // namespace mp::internal
