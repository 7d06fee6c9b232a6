// AsyncResult<R>: the result of a task submitted to a Pool.
// Python: multiprocessing.pool.AsyncResult.
//
//   mp::AsyncResult<int> r = pool.apply_async(square, 7);
//   r.wait(); r.ready(); r.successful();
//   int v = r.get();        // rethrows the task's failure
//   int w = r.get(5s);      // mp::TimeoutError if not ready in time
//
// A task that threw fails with its exception's type when registered
// (base/exception_types.h), else mp::RemoteError (original type name and
// message); one whose worker died fails with mp::WorkerLostError, one killed
// by the pool's task_timeout with mp::TimeoutError; one still pending when
// the pool was terminated fails with mp::ProcessError.
//
// Thread safety: every method may be called from any thread.
// Fork safety: meaningful only in the process that owns the pool.
// Sharing: copies refer to the same result.
#ifndef POOL_ASYNC_RESULT_H_
#define POOL_ASYNC_RESULT_H_

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <type_traits>
#include <utility>
#include <variant>

#include "base/errors.h"
#include "pool/task.h"
#include "sync/futex.h"

namespace mp {

namespace internal {

template <class R>
using Stored = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

// The exception an unsuccessful outcome stands for.
std::exception_ptr OutcomeError(const Outcome& outcome);

// ReportCallbackException, called while handling an exception that a
// callback of task `task_id` threw, prints it to stderr as
// "Exception in callback of task N: <type>: <what>". The result still
// completes, and the pool goes on.
void ReportCallbackException(uint64_t task_id) noexcept;

// Runs an error callback with the failure as an mp::Error.
void CallErrorCallback(const std::function<void(const Error&)>& callback,
                       const std::exception_ptr& error);

// ResultState: the shared state behind an AsyncResult. Small on purpose (one
// futex word, the value, the error; callbacks only when given): apply_async
// makes one per task, and a program that submits tasks by the hundred
// thousand would otherwise spend more time faulting in fresh heap pages for
// them than submitting (measured here: ~800 faults per 20,000 tasks with a
// mutex and condition variable inside, at ~12 us each).
template <class V>
class ResultState {
 public:
  struct Callbacks {
    std::function<void(const V&)> on_value;
    std::function<void(const Error&)> on_error;
  };

  // Set and Fail complete the result (the first call wins); `task_id` names
  // the task in the report of a callback that throws.
  void Set(V value, uint64_t task_id = 0) { Complete(std::move(value), nullptr, task_id); }
  void Fail(std::exception_ptr error, uint64_t task_id = 0) {
    Complete(std::nullopt, std::move(error), task_id);
  }

  bool ready() const { return (word_.load(std::memory_order_acquire) & kPhase) == kReady; }
  bool WaitUntil(const Deadline& deadline) {
    for (;;) {
      uint32_t word = word_.load(std::memory_order_acquire);
      if ((word & kPhase) == kReady) return true;
      if (!(word & kWaiters)) {
        if (!word_.compare_exchange_weak(word, word | kWaiters, std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
          continue;
        }
        word |= kWaiters;
      }
      if (!FutexWait(&word_, word, deadline)) return ready();
    }
  }
  // Get returns the value or rethrows; call after WaitUntil returned true
  // (the value is written once, before the result turns ready).
  V Get() {
    if (error_) std::rethrow_exception(error_);
    return *value_;
  }
  // Take moves the value out (or rethrows); for a result nobody else can
  // see (Pool::map's own), so a big result is not copied on its way out.
  V Take() {
    if (error_) std::rethrow_exception(error_);
    return std::move(*value_);
  }
  // error: the failure, null on success; call once ready.
  std::exception_ptr error() const { return error_; }
  bool successful() const {
    if (!ready()) throw ValueError("AsyncResult.successful: result is not ready");
    return error_ == nullptr;
  }

  std::unique_ptr<Callbacks> callbacks;  // set before the task is submitted

 private:
  // word_: the phase in the low bits, and whether anyone sleeps on it.
  static constexpr uint32_t kPending = 0, kCompleting = 1, kReady = 2, kPhase = 3, kWaiters = 4;

  void Complete(std::optional<V> value, std::exception_ptr error, uint64_t task_id) {
    uint32_t word = word_.load(std::memory_order_relaxed);
    do {
      if ((word & kPhase) != kPending) return;  // completed (or completing) already
    } while (!word_.compare_exchange_weak(word, (word & kWaiters) | kCompleting,
                                          std::memory_order_acquire, std::memory_order_relaxed));
    // As in Python, callbacks run before the result is marked ready, so that
    // get() returns only after they are done. One that throws is reported
    // and the result completes all the same (Python's pool thread would die,
    // and every later get() hang).
    if (callbacks) {
      try {
        if (error == nullptr && callbacks->on_value) callbacks->on_value(*value);
        if (error != nullptr && callbacks->on_error) CallErrorCallback(callbacks->on_error, error);
      } catch (...) {
        ReportCallbackException(task_id);
      }
    }
    value_ = std::move(value);
    error_ = std::move(error);
    if (word_.exchange(kReady, std::memory_order_release) & kWaiters) FutexWake(&word_, INT32_MAX);
  }

  std::atomic<uint32_t> word_{kPending};
  std::optional<V> value_;    // written once, before word_ turns kReady
  std::exception_ptr error_;  // likewise
};

}  // namespace internal

class Pool;

template <class R>
class AsyncResult {
 public:
  using State = internal::ResultState<internal::Stored<R>>;
  explicit AsyncResult(std::shared_ptr<State> state) : state_(std::move(state)) {}

  // get blocks until the result is ready and returns it (or rethrows).
  R get() {
    state_->WaitUntil(std::nullopt);
    return unwrap();
  }
  // get(timeout): mp::TimeoutError if the result was not ready in time.
  template <class Rep, class Period>
  R get(std::chrono::duration<Rep, Period> timeout) {
    if (!state_->WaitUntil(internal::DeadlineAfter(timeout))) {
      throw TimeoutError("AsyncResult.get: result not ready in time");
    }
    return unwrap();
  }
  void wait() { state_->WaitUntil(std::nullopt); }
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return state_->WaitUntil(internal::DeadlineAfter(timeout));
  }
  bool ready() const { return state_->ready(); }
  // successful: mp::ValueError before the result is ready.
  bool successful() const { return state_->successful(); }

  // Python's repr: <mp::AsyncResult object at 0x...> (ApplyResult there;
  // here it also says whether it is ready).
  friend std::ostream& operator<<(std::ostream& os, const AsyncResult& r) {
    return os << "<mp::AsyncResult object at " << static_cast<const void*>(r.state_.get())
              << (r.ready() ? " ready>" : " pending>");
  }

 private:
  friend class Pool;

  R unwrap() {
    if constexpr (std::is_void_v<R>) {
      state_->Get();
    } else {
      return state_->Get();
    }
  }
  // take: get() for the only handle of a result, which it empties.
  R take() {
    state_->WaitUntil(std::nullopt);
    if constexpr (std::is_void_v<R>) {
      state_->Get();
    } else {
      return state_->Take();
    }
  }
  std::shared_ptr<State> state_;
};

}  // namespace mp

#endif  // POOL_ASYNC_RESULT_H_
