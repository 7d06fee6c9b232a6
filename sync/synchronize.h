// Cross-process synchronization primitives: Python's multiprocessing.Lock,
// RLock, Semaphore, BoundedSemaphore, Event, Condition and Barrier.
//
// Each primitive lives in nameless shared memory (no /dev/shm entry) and is
// shared with every child it is passed to as an mp::Process argument, as the
// Python documents do, whatever the start method. Copies of a handle refer
// to the same primitive; the memory goes away with the last process using it.
// All blocking is on futexes, never polling; timeouts use the monotonic clock
// and are not cut short by signals.
//
//   mp::Lock lock;
//   mp::Process p([&] { std::lock_guard<mp::Lock> with(lock); ... });
//
// Memory visibility: writes made before release()/set()/notify() are visible
// to the thread that then returns from acquire()/wait().
//
// Thread safety: every method is safe from any thread of any sharing process.
// Fork safety: children share the primitive; a child does not own the locks
//   its parent held when it forked.
// Sharing: inherited by children forked after the primitive; passable as an
//   argument to a Process of any start method and to Pool tasks, and over a
//   Connection (its memory's descriptor travels along): the receiver uses
//   the same primitive. Not inside a Queue item or a manager value
//   (mp::ValueError).
#ifndef SYNC_SYNCHRONIZE_H_
#define SYNC_SYNCHRONIZE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <variant>

#include "base/errors.h"
#include "sync/futex.h"
#include "sync/robust_mutex.h"
#include "sync/shared_region.h"

namespace mp {

// Lock: a non-recursive mutual-exclusion lock. Python: multiprocessing.Lock.
// Meets Lockable, so `std::lock_guard<mp::Lock> g(lock);` is `with lock:`.
// Only the thread that acquired it may release it (others get ValueError).
// If the owning process dies holding it, the next acquire succeeds and
// owner_died() tells so.
class Lock {
 public:
  Lock();

  // acquire blocks until this thread holds the lock. Throws mp::Error if this
  // thread already holds it (a deadlock Python would sit in forever).
  void acquire() {
    if (!internal::TryFastAcquire(state_.get())) acquire_until(std::nullopt);
  }
  // acquire(false) takes the lock only if free; acquire(true) is acquire().
  bool acquire(bool block);
  // acquire(timeout) returns false if the lock was not taken in time.
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return acquire_until(internal::DeadlineAfter(timeout));
  }
  // release gives the lock up; mp::ValueError unless this thread holds it.
  void release() {
    if (!internal::OwnedByMe(state_.get())) ThrowNotOwner();
    internal::Release(state_.get());
  }

  // owner_died is true when the acquire that gave this thread the lock found
  // that the previous owner had died holding it (the data it guarded may be
  // half-updated). Meaningful only while this thread holds the lock.
  bool owner_died() const;
  // locked is true while some thread holds the lock (a snapshot).
  bool locked() const;

  // Lockable.
  void lock() { acquire(); }
  bool try_lock() { return acquire(false); }
  void unlock() { release(); }

  // Encoded as its shared memory's descriptor: the receiving process uses
  // this very Lock (see "Sharing" above).
  template <class Archive>
  void save(Archive& ar) const { state_.Save(ar, "Lock"); }
  template <class Archive>
  void load(Archive& ar) { state_.Load(ar, "Lock"); }

 private:
  friend class Condition;
  bool acquire_until(const internal::Deadline& deadline);
  [[noreturn]] static void ThrowNotOwner();
  internal::SharedObject<internal::RobustMutexState> state_;
};

// RLock: a recursive lock owned by one thread of one process.
// Python: multiprocessing.RLock. Each acquire by the owner nests; the lock is
// free after as many releases. Release by a non-owner throws mp::ValueError.
class RLock {
 public:
  RLock();

  void acquire();
  bool acquire(bool block);
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return acquire_until(internal::DeadlineAfter(timeout));
  }
  void release();

  bool owner_died() const;
  // is_owned is true when the calling thread holds the lock.
  bool is_owned() const;

  void lock() { acquire(); }
  bool try_lock() { return acquire(false); }
  void unlock() { release(); }

  // Encoded as its shared memory's descriptor: the receiving process uses
  // this very RLock (see "Sharing" above).
  template <class Archive>
  void save(Archive& ar) const { state_.Save(ar, "RLock"); }
  template <class Archive>
  void load(Archive& ar) { state_.Load(ar, "RLock"); }

 private:
  friend class Condition;
  bool acquire_until(const internal::Deadline& deadline);
  internal::SharedObject<internal::RobustMutexState> state_;
};

// Semaphore: a counter; acquire takes one unit (waiting while there is none),
// release returns one. Python: multiprocessing.Semaphore(value=1).
class Semaphore {
 public:
  explicit Semaphore(int value = 1);

  void acquire();
  bool acquire(bool block);
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return acquire_until(internal::DeadlineAfter(timeout));
  }
  // release adds one unit and wakes one waiter. For a BoundedSemaphore,
  // releasing past the initial value throws mp::ValueError.
  void release();
  // get_value is the current count (a snapshot).
  int get_value() const;

  void lock() { acquire(); }
  bool try_lock() { return acquire(false); }
  void unlock() { release(); }

  // Encoded as its shared memory's descriptor: the receiving process uses
  // this very Semaphore (see "Sharing" above).
  template <class Archive>
  void save(Archive& ar) const { state_.Save(ar, "Semaphore"); }
  template <class Archive>
  void load(Archive& ar) { state_.Load(ar, "Semaphore"); }

 protected:
  struct State {
    std::atomic<uint32_t> value{0};
    std::atomic<uint32_t> waiters{0};
    uint32_t bound = 0;  // 0: unbounded
  };
  Semaphore(int value, bool bounded);

 private:
  bool acquire_until(const internal::Deadline& deadline);
  internal::SharedObject<State> state_;
};

// BoundedSemaphore: a Semaphore whose release past the initial value throws
// mp::ValueError. Python: multiprocessing.BoundedSemaphore.
class BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(int value = 1) : Semaphore(value, true) {}
};

// Event: a flag that processes wait for. Python: multiprocessing.Event.
class Event {
 public:
  Event();

  // set raises the flag and wakes every waiter.
  void set();
  // clear lowers the flag.
  void clear();
  bool is_set() const;
  // wait blocks until the flag is set; returns true.
  bool wait();
  // wait(timeout) returns the flag: false if it was still clear at the end.
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(internal::DeadlineAfter(timeout));
  }

  // Encoded as its shared memory's descriptor: the receiving process uses
  // this very Event (see "Sharing" above).
  template <class Archive>
  void save(Archive& ar) const { state_.Save(ar, "Event"); }
  template <class Archive>
  void load(Archive& ar) { state_.Load(ar, "Event"); }

 private:
  struct State {
    std::atomic<uint32_t> flag{0};
    std::atomic<uint32_t> waiters{0};
  };
  bool wait_until(const internal::Deadline& deadline);
  internal::SharedObject<State> state_;
};

// Condition: waits for a notification while temporarily giving up its lock.
// Python: multiprocessing.Condition(lock=None): without a lock it makes an
// RLock. Entered through its lock: `std::unique_lock<mp::Condition> with(c);`.
// wait/notify without holding the lock throw mp::ValueError.
class Condition {
 public:
  Condition();
  explicit Condition(Lock lock);
  explicit Condition(RLock lock);

  void acquire();
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return acquire_until(internal::DeadlineAfter(timeout));
  }
  void release();
  void lock() { acquire(); }
  void unlock() { release(); }

  // wait releases the lock, sleeps until notified, and re-acquires the lock.
  void wait() { wait_until(std::nullopt); }
  // wait(timeout) returns false if not notified in time (lock re-acquired).
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(internal::DeadlineAfter(timeout));
  }
  // wait_for waits until predicate() is true; returns its last value.
  template <class Predicate, class Rep, class Period>
  bool wait_for(Predicate predicate, std::chrono::duration<Rep, Period> timeout) {
    const internal::Deadline deadline = internal::DeadlineAfter(timeout);
    bool result = predicate();
    while (!result) {
      if (internal::Expired(deadline)) break;
      wait_until(deadline);
      result = predicate();
    }
    return result;
  }
  template <class Predicate>
  bool wait_for(Predicate predicate) {
    bool result = predicate();
    while (!result) {
      wait_until(std::nullopt);
      result = predicate();
    }
    return result;
  }

  // notify wakes up to n of the threads waiting now.
  void notify(int n = 1);
  void notify_all();

  // Encoded as its lock and its shared memory (see "Sharing" above).
  template <class Archive>
  void save(Archive& ar) const {
    const bool recursive = std::holds_alternative<RLock>(lock_);
    ar(recursive);
    if (recursive) {
      ar(std::get<RLock>(lock_));
    } else {
      ar(std::get<Lock>(lock_));
    }
    state_.Save(ar, "Condition");
  }
  template <class Archive>
  void load(Archive& ar) {
    bool recursive = false;
    ar(recursive);
    if (recursive) {
      RLock lock;
      ar(lock);
      lock_ = std::move(lock);
    } else {
      Lock lock;
      ar(lock);
      lock_ = std::move(lock);
    }
    state_.Load(ar, "Condition");
  }

 private:
  struct State {
    // Low 16 bits: notifications not yet taken; high 16 bits: sleepers.
    std::atomic<uint32_t> word{0};
  };
  bool acquire_until(const internal::Deadline& deadline);
  bool wait_until(const internal::Deadline& deadline);
  internal::RobustMutexState* mutex() const;
  bool recursive() const;
  void check_owned(const char* what) const;

  std::variant<Lock, RLock> lock_;
  internal::SharedObject<State> state_;
};

// Barrier: `parties` processes wait until all have arrived.
// Python: multiprocessing.Barrier(parties). wait() returns an arrival index in
// [0, parties). abort() breaks it; reset() breaks the current round and makes
// it usable again. Waiting on a broken barrier, or being in a round that is
// aborted, reset or timed out, throws mp::BrokenBarrierError. A wait that
// times out breaks the barrier, as in Python.
class Barrier {
 public:
  explicit Barrier(int parties);
  // Barrier() has one party (a placeholder to decode into).
  Barrier() : Barrier(1) {}

  int wait() { return wait_until(std::nullopt); }
  template <class Rep, class Period>
  int wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(internal::DeadlineAfter(timeout));
  }
  void abort();
  void reset();
  bool broken() const;
  int parties() const;
  int n_waiting() const;

  // Encoded as its shared memory's descriptor: the receiving process uses
  // this very Barrier (see "Sharing" above).
  template <class Archive>
  void save(Archive& ar) const { state_.Save(ar, "Barrier"); }
  template <class Archive>
  void load(Archive& ar) { state_.Load(ar, "Barrier"); }

 private:
  struct State {
    internal::RobustMutexState mutex;
    std::atomic<uint32_t> generation{0};  // futex word: changes when a round ends
    uint32_t completed_generation = UINT32_MAX;
    uint32_t count = 0;
    uint32_t parties = 0;
    std::atomic<uint32_t> broken{0};
  };
  int wait_until(const internal::Deadline& deadline);
  internal::SharedObject<State> state_;
};

}  // namespace mp

#endif  // SYNC_SYNCHRONIZE_H_
