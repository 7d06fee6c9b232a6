// ForkSafeMutex: a std::mutex that a fork() never copies while it is locked.
//
// Internal to the library. Python 3.12 warns that forking a multi-threaded
// process may deadlock the child: a lock that another thread held at the
// fork stays locked in the child for ever. The library's own process-wide
// mutexes are ForkSafeMutexes: every fork() (the library's and the
// program's own) first takes all of them, in the order they were made
// (pthread_atfork's prepare handler), and releases them in the parent and
// the child once the fork is done, so the child finds each one unlocked.
// Make them as never-destroyed objects (they stay registered), and never
// fork, or wait for a thread that may fork, while holding one.
//
// Thread safety: as std::mutex.
// Fork safety: see above.
// Sharing: within one process.
#ifndef SYNC_FORK_SAFE_MUTEX_H_
#define SYNC_FORK_SAFE_MUTEX_H_

#include <mutex>

#include "absl/base/thread_annotations.h"

namespace mp::internal {

// RunBeforeEveryFork registers `fn` to run first in every fork()'s prepare
// step, before any ForkSafeMutex is taken. For function-local statics on
// paths that other threads run: one that another thread is initializing at
// the fork would leave its guard taken in the child for ever, so `fn` waits
// for, or does, their initialization. Call it from a static initializer
// (at most 16 functions).
void RunBeforeEveryFork(void (*fn)());

// A std::mutex, not an absl::Mutex: the prepare handler takes them all at
// once, and std::mutex's lock is what a pthread_atfork handler may call
// (absl::Mutex, for its deadlock detection, may allocate).
class ABSL_LOCKABLE ForkSafeMutex {
 public:
  ForkSafeMutex();
  ForkSafeMutex(const ForkSafeMutex&) = delete;
  ForkSafeMutex& operator=(const ForkSafeMutex&) = delete;

  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  bool try_lock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) { return mu_.try_lock(); }

 private:
  friend struct ForkSafeMutexList;
  std::mutex mu_;
  ForkSafeMutex* next_ = nullptr;  // the registration list (see the .cc)
};

// ForkSafeLock holds a ForkSafeMutex for its scope (std::lock_guard, which
// clang's -Wthread-safety does not know of).
class ABSL_SCOPED_LOCKABLE ForkSafeLock {
 public:
  explicit ForkSafeLock(ForkSafeMutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_.lock(); }
  ~ForkSafeLock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  ForkSafeLock(const ForkSafeLock&) = delete;
  ForkSafeLock& operator=(const ForkSafeLock&) = delete;

 private:
  ForkSafeMutex& mu_;
};

}  // namespace mp::internal

#endif  // SYNC_FORK_SAFE_MUTEX_H_
