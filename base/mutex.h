// Mutex and MutexLock: std::mutex, annotated for clang's -Wthread-safety.
//
// Internal to the library: the in-process state behind every mutex is
// declared ABSL_GUARDED_BY it, and the clang build (--config=clang) checks
// every access. Why not absl::Mutex, which is annotated already: Debian's
// Abseil is not built with ThreadSanitizer, which then cannot see
// absl::Mutex's synchronization (and reports races that are none), while
// libstdc++'s std::mutex is intercepted by the sanitizer's runtime. Also,
// a std::mutex is all zeros when unlocked, which memory that a fork wipes
// (process/registry.cc) relies on.
//
// Thread safety: as std::mutex.
// Fork safety: as std::mutex (a child finds it as the forking thread left it;
//   see sync/fork_safe_mutex.h for mutexes other threads may hold at a fork).
// Sharing: within one process.
#ifndef BASE_MUTEX_H_
#define BASE_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"

namespace mp::internal {

class ABSL_LOCKABLE Mutex {
 public:
  constexpr Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  bool try_lock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) { return mu_.try_lock(); }
  // AssertHeld tells the thread-safety analysis that the caller holds the
  // mutex, where it cannot see it (a lock held by a caller through an
  // object it passed). No check at run time.
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {}

 private:
  friend class MutexLock;
  std::mutex mu_;
};

// MutexLock holds a Mutex for its scope, and waits on condition variables
// with it. A predicate that reads guarded state is declared
// ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu): Wait calls it with the lock held.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : lock_(mu.mu_) {}
  ~MutexLock() ABSL_UNLOCK_FUNCTION() = default;
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  // Unlock and Lock let go of the mutex and take it again within the scope.
  void Unlock() ABSL_UNLOCK_FUNCTION() { lock_.unlock(); }
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { lock_.lock(); }

  template <class Predicate>
  void Wait(std::condition_variable& cv, Predicate ready) {
    cv.wait(lock_, ready);
  }
  // WaitUntil is false if the deadline passed with `ready` still false.
  template <class Clock, class Duration, class Predicate>
  bool WaitUntil(std::condition_variable& cv, std::chrono::time_point<Clock, Duration> deadline,
                 Predicate ready) {
    return cv.wait_until(lock_, deadline, ready);
  }
  template <class Rep, class Period, class Predicate>
  bool WaitFor(std::condition_variable& cv, std::chrono::duration<Rep, Period> timeout,
               Predicate ready) {
    return cv.wait_for(lock_, timeout, ready);
  }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace mp::internal

#endif  // BASE_MUTEX_H_
