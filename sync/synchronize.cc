#include "sync/synchronize.h"

#include <climits>
#include <mutex>

namespace mp {
namespace {

using internal::AcquireResult;
using internal::Deadline;
using internal::FutexWait;
using internal::FutexWake;
using internal::RobustMutexState;

// A lock guard over the raw robust mutex, for the primitives' own state.
class StateGuard {
 public:
  explicit StateGuard(RobustMutexState* m) : m_(m) { internal::Acquire(m_, std::nullopt); }
  ~StateGuard() { internal::Release(m_); }
  StateGuard(const StateGuard&) = delete;
  StateGuard& operator=(const StateGuard&) = delete;

 private:
  RobustMutexState* m_;
};

}  // namespace

// ---- Lock ----

Lock::Lock() : state_(internal::SharedObject<RobustMutexState>::Make(0)) {}

bool Lock::acquire(bool block) {
  if (block) return acquire_until(std::nullopt);
  return internal::TryAcquire(state_.get());
}

bool Lock::acquire_until(const Deadline& deadline) {
  if (internal::TryFastAcquire(state_.get())) return true;
  return internal::Acquire(state_.get(), deadline) == AcquireResult::kAcquired;
}

void Lock::ThrowNotOwner() { throw ValueError("Lock.release: the lock is not held by this thread"); }

bool Lock::owner_died() const { return state_->recovered != 0; }

bool Lock::locked() const { return internal::IsLocked(state_.get()); }

// ---- RLock ----

RLock::RLock() : state_(internal::SharedObject<RobustMutexState>::Make(0)) {}

void RLock::acquire() { acquire_until(std::nullopt); }

bool RLock::acquire(bool block) {
  if (internal::OwnedByMe(state_.get())) {
    ++state_->recursion;
    return true;
  }
  const bool taken =
      block ? internal::Acquire(state_.get(), std::nullopt) == AcquireResult::kAcquired
            : internal::TryAcquire(state_.get());
  if (taken) state_->recursion = 1;
  return taken;
}

bool RLock::acquire_until(const Deadline& deadline) {
  if (internal::OwnedByMe(state_.get())) {
    ++state_->recursion;
    return true;
  }
  if (internal::Acquire(state_.get(), deadline) != AcquireResult::kAcquired) return false;
  state_->recursion = 1;
  return true;
}

void RLock::release() {
  if (!internal::OwnedByMe(state_.get())) {
    throw ValueError("RLock.release: cannot release un-acquired lock");
  }
  if (--state_->recursion == 0) internal::Release(state_.get());
}

bool RLock::owner_died() const { return state_->recovered != 0; }

bool RLock::is_owned() const { return internal::OwnedByMe(state_.get()); }

// ---- Semaphore ----

Semaphore::Semaphore(int value) : Semaphore(value, false) {}

Semaphore::Semaphore(int value, bool bounded) : state_(internal::SharedObject<State>::Make(0)) {
  if (value < 0) throw ValueError("Semaphore: initial value must be >= 0");
  state_->value.store(static_cast<uint32_t>(value));
  state_->bound = bounded ? static_cast<uint32_t>(value) : 0;
}

void Semaphore::acquire() { acquire_until(std::nullopt); }

bool Semaphore::acquire(bool block) {
  if (block) return acquire_until(std::nullopt);
  uint32_t v = state_->value.load();
  while (v > 0) {
    if (state_->value.compare_exchange_weak(v, v - 1, std::memory_order_acquire)) return true;
  }
  return false;
}

bool Semaphore::acquire_until(const Deadline& deadline) {
  State& s = *state_;
  for (;;) {
    uint32_t v = s.value.load();
    while (v > 0) {
      if (s.value.compare_exchange_weak(v, v - 1, std::memory_order_acquire)) return true;
    }
    s.waiters.fetch_add(1);
    const bool in_time = FutexWait(&s.value, 0, deadline);
    s.waiters.fetch_sub(1);
    if (!in_time) return acquire(false);
  }
}

void Semaphore::release() {
  State& s = *state_;
  if (s.bound != 0) {
    uint32_t v = s.value.load();
    do {
      if (v >= s.bound) throw ValueError("BoundedSemaphore.release: released too many times");
    } while (!s.value.compare_exchange_weak(v, v + 1));
  } else {
    s.value.fetch_add(1);
  }
  // Both steps seq_cst, as a waiter's increment of `waiters` and its look at
  // `value` are: one of the two sides sees the other's write.
  if (s.waiters.load() > 0) FutexWake(&s.value, 1);
}

int Semaphore::get_value() const { return static_cast<int>(state_->value.load()); }

// ---- Event ----

Event::Event() : state_(internal::SharedObject<State>::Make(0)) {}

void Event::set() {
  // seq_cst, like the waiter's increment of `waiters` before it looks at the
  // flag: of the two, at least one sees the other's write (with a release
  // store, the load of `waiters` could be ordered before the flag's store
  // and miss a waiter that then sleeps on the old flag).
  state_->flag.store(1, std::memory_order_seq_cst);
  if (state_->waiters.load(std::memory_order_seq_cst) > 0) FutexWake(&state_->flag, INT_MAX);
}

void Event::clear() { state_->flag.store(0, std::memory_order_relaxed); }

bool Event::is_set() const { return state_->flag.load(std::memory_order_acquire) != 0; }

bool Event::wait() { return wait_until(std::nullopt); }

bool Event::wait_until(const Deadline& deadline) {
  State& s = *state_;
  if (s.flag.load(std::memory_order_acquire)) return true;
  s.waiters.fetch_add(1);
  while (!s.flag.load(std::memory_order_acquire) && FutexWait(&s.flag, 0, deadline)) {
  }
  s.waiters.fetch_sub(1);
  return s.flag.load(std::memory_order_acquire) != 0;
}

// ---- Condition ----

namespace {
constexpr uint32_t kSleeper = 1u << 16;
constexpr uint32_t kSignalMask = kSleeper - 1;
}  // namespace

Condition::Condition() : Condition(RLock()) {}
Condition::Condition(Lock lock) : lock_(std::move(lock)), state_(internal::SharedObject<State>::Make(0)) {}
Condition::Condition(RLock lock) : lock_(std::move(lock)), state_(internal::SharedObject<State>::Make(0)) {}

RobustMutexState* Condition::mutex() const {
  return std::visit([](const auto& l) { return l.state_.get(); }, lock_);
}

bool Condition::recursive() const { return std::holds_alternative<RLock>(lock_); }

void Condition::acquire() { std::visit([](auto& l) { l.acquire(); }, lock_); }

bool Condition::acquire_until(const Deadline& deadline) {
  return std::visit([&](auto& l) { return l.acquire_until(deadline); }, lock_);
}

void Condition::release() { std::visit([](auto& l) { l.release(); }, lock_); }

void Condition::check_owned(const char* what) const {
  if (!internal::OwnedByMe(mutex())) {
    throw ValueError(std::string("Condition.") + what + ": the lock is not held by this thread");
  }
}

bool Condition::wait_until(const Deadline& deadline) {
  check_owned("wait");
  std::atomic<uint32_t>& word = state_->word;
  word.fetch_add(kSleeper);
  // Give the lock up entirely (an RLock may be nested), remembering the depth.
  RobustMutexState* m = mutex();
  const uint32_t depth = m->recursion;
  internal::Release(m);

  bool notified = false;
  for (;;) {
    uint32_t v = word.load();
    if ((v & kSignalMask) != 0) {
      if (word.compare_exchange_weak(v, v - kSleeper - 1)) {
        notified = true;
        break;
      }
      continue;
    }
    if (!FutexWait(&word, v, deadline)) {
      // Timed out: leave, unless a notification arrived at the last moment.
      v = word.load();
      for (;;) {
        const uint32_t next = (v & kSignalMask) ? v - kSleeper - 1 : v - kSleeper;
        if (word.compare_exchange_weak(v, next)) {
          notified = (v & kSignalMask) != 0;
          break;
        }
      }
      break;
    }
  }
  internal::Acquire(m, std::nullopt);
  m->recursion = depth;
  return notified;
}

void Condition::notify(int n) {
  check_owned("notify");
  std::atomic<uint32_t>& word = state_->word;
  uint32_t v = word.load();
  for (;;) {
    const uint32_t sleepers = v >> 16;
    const uint32_t pending = v & kSignalMask;
    const uint32_t wake = std::min<uint32_t>(static_cast<uint32_t>(n), sleepers - pending);
    if (n <= 0 || wake == 0) return;
    if (word.compare_exchange_weak(v, v + wake)) {
      FutexWake(&word, static_cast<int>(wake));
      return;
    }
  }
}

void Condition::notify_all() { notify(INT_MAX >> 1); }

// ---- Barrier ----

Barrier::Barrier(int parties) : state_(internal::SharedObject<State>::Make(0)) {
  if (parties <= 0) throw ValueError("Barrier: parties must be > 0");
  state_->parties = static_cast<uint32_t>(parties);
}

int Barrier::wait_until(const Deadline& deadline) {
  State& s = *state_;
  uint32_t generation;
  int index;
  {
    StateGuard guard(&s.mutex);
    if (s.broken.load()) throw BrokenBarrierError();
    generation = s.generation.load();
    index = static_cast<int>(s.count++);
    if (s.count == s.parties) {
      s.count = 0;
      s.completed_generation = generation;
      s.generation.fetch_add(1);
      FutexWake(&s.generation, INT_MAX);
      return index;
    }
  }
  while (s.generation.load() == generation) {
    if (!FutexWait(&s.generation, generation, deadline)) {
      StateGuard guard(&s.mutex);
      if (s.generation.load() == generation) {
        // Python: a wait that times out breaks the barrier.
        s.broken.store(1);
        s.count = 0;
        s.generation.fetch_add(1);
        FutexWake(&s.generation, INT_MAX);
        throw BrokenBarrierError("Barrier.wait timed out; the barrier is now broken");
      }
    }
  }
  StateGuard guard(&s.mutex);
  if (s.completed_generation != generation) throw BrokenBarrierError();
  return index;
}

void Barrier::abort() {
  State& s = *state_;
  StateGuard guard(&s.mutex);
  s.broken.store(1);
  s.count = 0;
  s.generation.fetch_add(1);
  FutexWake(&s.generation, INT_MAX);
}

void Barrier::reset() {
  State& s = *state_;
  StateGuard guard(&s.mutex);
  s.broken.store(0);
  if (s.count > 0) {
    s.count = 0;
    s.generation.fetch_add(1);
    FutexWake(&s.generation, INT_MAX);
  }
}

bool Barrier::broken() const { return state_->broken.load() != 0; }

int Barrier::parties() const { return static_cast<int>(state_->parties); }

int Barrier::n_waiting() const {
  StateGuard guard(&state_->mutex);
  return static_cast<int>(state_->count);
}

}  // namespace mp
