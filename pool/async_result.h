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

#include <condition_variable>
#include <mutex>
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
    std::lock_guard<std::mutex> lock(mu_);
    return ready_;
  }
  bool WaitUntil(const Deadline& deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!deadline) {
      cv_.wait(lock, [this] { return ready_; });
      return true;
    }
    return cv_.wait_until(lock, *deadline, [this] { return ready_; });
  }
  // Get returns the value or rethrows; call after WaitUntil returned true.
  V Get() {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_) std::rethrow_exception(error_);
    return *value_;
  }
  // Take moves the value out (or rethrows); for a result nobody else can
  // see (Pool::map's own), so a big result is not copied on its way out.
  V Take() {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_) std::rethrow_exception(error_);
    return std::move(*value_);
  }
  bool successful() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ready_) throw ValueError("AsyncResult.successful: result is not ready");
    return error_ == nullptr;
  }

  std::function<void(const V&)> callback;
  std::function<void(const Error&)> error_callback;

 private:
  void Complete(std::optional<V> value, std::exception_ptr error) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (ready_ || completing_) return;
      completing_ = true;
    }
    // As in Python, callbacks run before the result is marked ready, so that
    // get() returns only after they are done.
    if (error == nullptr && callback) callback(*value);
    if (error != nullptr && error_callback) CallErrorCallback(error_callback, error);
    {
      std::lock_guard<std::mutex> lock(mu_);
      value_ = std::move(value);
      error_ = std::move(error);
      ready_ = true;
    }
    cv_.notify_all();
  }

  // std::mutex rather than absl::Mutex: Debian's Abseil is not built with
  // ThreadSanitizer, which then cannot see absl::Mutex's synchronization.
  std::mutex mu_;
  std::condition_variable cv_;
  bool ready_ = false;       // guarded by mu_
  bool completing_ = false;  // guarded by mu_
  std::optional<V> value_;   // guarded by mu_
  std::exception_ptr error_;  // guarded by mu_
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
