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

namespace mp::internal {

// RunBeforeEveryFork registers `fn` to run first in every fork()'s prepare
// step, before any ForkSafeMutex is taken. For function-local statics on
// paths that other threads run: one that another thread is initializing at
// the fork would leave its guard taken in the child for ever, so `fn` waits
// for, or does, their initialization. Call it from a static initializer
// (at most 16 functions).
void RunBeforeEveryFork(void (*fn)());

class ForkSafeMutex {
 public:
  ForkSafeMutex();
  ForkSafeMutex(const ForkSafeMutex&) = delete;
  ForkSafeMutex& operator=(const ForkSafeMutex&) = delete;

  void lock() { mu_.lock(); }
  void unlock() { mu_.unlock(); }
  bool try_lock() { return mu_.try_lock(); }

 private:
  friend struct ForkSafeMutexList;
  std::mutex mu_;
  ForkSafeMutex* next_ = nullptr;  // the registration list (see the .cc)
};

}  // namespace mp::internal

#endif  // SYNC_FORK_SAFE_MUTEX_H_
