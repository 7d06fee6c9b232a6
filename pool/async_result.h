// AsyncResult<R>: the result of a task submitted to a Pool.
// Python: multiprocessing.pool.AsyncResult.
//
//   mp::AsyncResult<int> r = pool.apply_async(square, 7);
//   r.wait(); r.ready(); r.successful();
//   int v = r.get();        // rethrows the task's failure
//   int w = r.get(5s);      // mp::TimeoutError if not ready in time
//
// A task that threw fails with mp::RemoteError (original type and message);
// one whose worker died fails with mp::WorkerLostError; one still pending when
// the pool was terminated fails with mp::ProcessError.
//
// Thread safety: every method may be called from any thread.
// Fork safety: meaningful only in the process that owns the pool.
// Sharing: copies refer to the same result.
#ifndef POOL_ASYNC_RESULT_H_
#define POOL_ASYNC_RESULT_H_

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pool/task.h"
#include "sync/errors.h"
#include "sync/futex.h"

namespace mp {

namespace internal {

template <class R>
using Stored = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

// The exception an unsuccessful outcome stands for.
std::exception_ptr OutcomeError(const Outcome& outcome);

// Runs an error callback with the failure as an mp::Error.
void CallErrorCallback(const std::function<void(const Error&)>& callback,
                       const std::exception_ptr& error);

template <class V>
class ResultState {
 public:
  void Set(V value) { Complete(std::move(value), nullptr); }
  void Fail(std::exception_ptr error) { Complete(std::nullopt, std::move(error)); }

  bool ready() {
    absl::MutexLock lock(&mu_);
    return ready_;
  }
  bool WaitUntil(const Deadline& deadline) {
    absl::MutexLock lock(&mu_);
    auto is_ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return ready_; };
    if (!deadline) {
      mu_.Await(absl::Condition(&is_ready));
      return true;
    }
    const auto left = *deadline - Clock::now();
    return mu_.AwaitWithTimeout(absl::Condition(&is_ready),
                                absl::FromChrono(std::chrono::duration_cast<std::chrono::nanoseconds>(left)));
  }
  // Get returns the value or rethrows; call after WaitUntil returned true.
  V Get() {
    absl::MutexLock lock(&mu_);
    if (error_) std::rethrow_exception(error_);
    return *value_;
  }
  bool successful() {
    absl::MutexLock lock(&mu_);
    if (!ready_) throw ValueError("AsyncResult.successful: result is not ready");
    return error_ == nullptr;
  }

  std::function<void(const V&)> callback;
  std::function<void(const Error&)> error_callback;

 private:
  void Complete(std::optional<V> value, std::exception_ptr error) {
    {
      absl::MutexLock lock(&mu_);
      if (ready_ || completing_) return;
      completing_ = true;
    }
    // As in Python, callbacks run before the result is marked ready, so that
    // get() returns only after they are done.
    if (error == nullptr && callback) callback(*value);
    if (error != nullptr && error_callback) CallErrorCallback(error_callback, error);
    absl::MutexLock lock(&mu_);
    value_ = std::move(value);
    error_ = std::move(error);
    ready_ = true;
  }

  absl::Mutex mu_;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  bool completing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<V> value_ ABSL_GUARDED_BY(mu_);
  std::exception_ptr error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace internal

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

 private:
  R unwrap() {
    if constexpr (std::is_void_v<R>) {
      state_->Get();
    } else {
      return state_->Get();
    }
  }
  std::shared_ptr<State> state_;
};

}  // namespace mp

#endif  // POOL_ASYNC_RESULT_H_
