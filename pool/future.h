// Future<R>: the result of a task submitted with Pool::submit or
// ProcessPoolExecutor::submit. Python: concurrent.futures.Future.
//
//   mp::Future<int> f = pool.submit(square, 3);
//   f.result();  f.result(2s);          // mp::TimeoutError if not done in time
//   f.done(); f.running(); f.cancelled();
//   f.cancel();                         // true only before a worker starts it
//   f.exception();                      // std::exception_ptr, null on success
//   f.add_done_callback([](mp::Future<int>& g) { ... });
//   for (mp::Future<int>& g : mp::as_completed(futures, 10s)) ...
//   auto [done, not_done] = mp::futures::wait(futures, mp::FIRST_COMPLETED, 5s);
//
// A task's exception is re-thrown by result() as its own type when the type
// is registered (base/exception_types.h), else as mp::RemoteError; a task
// whose worker died fails with mp::WorkerLostError (the other tasks go on),
// one killed by the pool's task_timeout with mp::TimeoutError, a cancelled
// one with mp::CancelledError.
//
// running() is true while a worker runs the task (Python also counts the
// few tasks already in its workers' queue). cancel() and running() know a
// task by a gate of which a pool has 262,144: beyond that many futures
// pending at once, the later ones cannot be cancelled.
//
// Done callbacks run in this process: in the pool's result thread when the
// task ends, or at once in add_done_callback when it has ended already, or
// in the thread that cancels. One that throws is reported on stderr and the
// others still run (Python logs it).
//
// Thread safety: every method from any thread. Fork safety: meaningful only
// in the process that owns the pool. Sharing: copies refer to one result.
#ifndef POOL_FUTURE_H_
#define POOL_FUTURE_H_

#include <chrono>
#include <condition_variable>
#include <iterator>
#include <type_traits>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <ostream>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "base/deadline.h"
#include "base/errors.h"
#include "base/mutex.h"
#include "pool/async_result.h"
#include "pool/task_control.h"

namespace mp {

// When futures::wait returns. Python: concurrent.futures.FIRST_COMPLETED, ...
enum class ReturnWhen { kFirstCompleted, kFirstException, kAllCompleted };
inline constexpr ReturnWhen FIRST_COMPLETED = ReturnWhen::kFirstCompleted;
inline constexpr ReturnWhen FIRST_EXCEPTION = ReturnWhen::kFirstException;
inline constexpr ReturnWhen ALL_COMPLETED = ReturnWhen::kAllCompleted;

namespace internal {

// What every future's state offers, whatever its type: for as_completed
// and wait.
class FutureStateBase {
 public:
  virtual ~FutureStateBase() = default;
  virtual bool ready() const = 0;
  // raised: ended with an exception (not cancelled).
  virtual bool raised() const = 0;
  // error: the exception it ended with (call once ready).
  virtual std::exception_ptr error() const = 0;
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

  // Attach: the task's id and its pool's control, once submitted.
  void Attach(uint64_t id, std::weak_ptr<TaskControl> control) {
    id_ = id;
    control_ = std::move(control);
  }
  bool Running() const {
    if (ready() || id_ == 0) return false;
    auto control = control_.lock();
    return control && control->Running(id_);
  }
  bool Cancel() {
    if (ready()) return cancelled();
    auto control = control_.lock();
    if (!control || id_ == 0) return false;
    return control->Cancel(id_) && cancelled();
  }

  // AddDoneCallback runs `fn` once the result is ready (now, if it is).
  // Returns a token for RemoveDoneCallback (0 when `fn` ran at once).
  uint64_t AddDoneCallback(absl::AnyInvocable<void()> fn);
  // RemoveDoneCallback forgets a callback that has not run (as_completed
  // and wait take theirs back, as Python's waiters do).
  void RemoveDoneCallback(uint64_t token);

 protected:
  void MarkCancelled() { cancelled_.store(true, std::memory_order_release); }
  // RunDoneCallbacks, once the result is ready: runs the callbacks added
  // so far; later ones run as they are added.
  void RunDoneCallbacks();

 private:
  std::atomic<bool> cancelled_{false};
  uint64_t id_ = 0;  // written by Attach before the future is handed out
  std::weak_ptr<TaskControl> control_;
  Mutex mu_;
  bool callbacks_ran_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_token_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<std::pair<uint64_t, absl::AnyInvocable<void()>>> callbacks_ ABSL_GUARDED_BY(mu_);
};

template <class V>
class FutureState : public FutureStateBase {
 public:
  bool ready() const override { return result.ready(); }
  bool raised() const override { return ready() && !cancelled() && result.error() != nullptr; }
  std::exception_ptr error() const override { return result.error(); }
  // Complete: the task's outcome arrived (or it was cancelled).
  template <class Decode>
  void Complete(const Outcome& outcome, Decode&& decode_value) {
    if (outcome.kind == OutcomeKind::kCancelled) MarkCancelled();
    if (outcome.kind != OutcomeKind::kOk) {
      result.Fail(OutcomeError(outcome), outcome.id);
    } else {
      try {
        result.Set(decode_value(), outcome.id);
      } catch (...) {
        result.Fail(std::current_exception(), outcome.id);
      }
    }
    RunDoneCallbacks();
  }
  ResultState<V> result;
};

// The futures of a call to as_completed or wait, and which have ended.
class CompletionWaiter {
 public:
  explicit CompletionWaiter(std::vector<FutureStateBase*> states);
  ~CompletionWaiter();
  CompletionWaiter(const CompletionWaiter&) = delete;
  CompletionWaiter& operator=(const CompletionWaiter&) = delete;
  // Next: the index of a future that ended and was not returned before;
  // false when the deadline passed first.
  bool Next(const Deadline& deadline, size_t* index);
  // WaitFor: until `when` holds (wait's return_when); false on timeout.
  bool WaitFor(ReturnWhen when, const Deadline& deadline);
  size_t size() const { return states_.size(); }

 private:
  struct Shared {
    Mutex mu;
    std::condition_variable cv;
    std::deque<size_t> ended ABSL_GUARDED_BY(mu);
    size_t ended_count ABSL_GUARDED_BY(mu) = 0;
    bool any_raised ABSL_GUARDED_BY(mu) = false;
  };
  std::vector<FutureStateBase*> states_;
  std::vector<uint64_t> tokens_;  // per future: its callback, to remove at the end
  std::shared_ptr<Shared> shared_;
};

// FutureStatus: Python's words for a future's state ("state=pending",
// "state=finished returned int", ...).
std::string FutureStatus(const FutureStateBase& state, const std::type_info& result_type);

}  // namespace internal

template <class R>
class Future {
 public:
  using State = internal::FutureState<internal::Stored<R>>;
  explicit Future(std::shared_ptr<State> state) : state_(std::move(state)) {}

  // result blocks until the task ended and returns its value (or rethrows).
  R result() {
    state_->result.WaitUntil(std::nullopt);
    return unwrap();
  }
  // result(timeout): mp::TimeoutError if the task has not ended in time.
  template <class Rep, class Period>
  R result(std::chrono::duration<Rep, Period> timeout) {
    if (!state_->result.WaitUntil(internal::DeadlineAfter(timeout))) {
      throw TimeoutError("Future.result: the task did not end in time");
    }
    return unwrap();
  }
  // exception: the task's exception, null if it succeeded;
  // mp::CancelledError if it was cancelled.
  std::exception_ptr exception() {
    state_->result.WaitUntil(std::nullopt);
    return error();
  }
  template <class Rep, class Period>
  std::exception_ptr exception(std::chrono::duration<Rep, Period> timeout) {
    if (!state_->result.WaitUntil(internal::DeadlineAfter(timeout))) {
      throw TimeoutError("Future.exception: the task did not end in time");
    }
    return error();
  }
  bool done() const { return state_->ready(); }
  bool running() const { return state_->Running(); }
  bool cancelled() const { return state_->cancelled(); }
  // cancel: true if the task had not started (it never will) or was
  // cancelled already; false once it runs or ended.
  bool cancel() { return state_->Cancel(); }
  // add_done_callback: fn(future) once the task ended (at once if it has).
  template <class Fn>
  void add_done_callback(Fn fn) {
    state_->AddDoneCallback([fn = std::move(fn), self = *this]() mutable { fn(self); });
  }

  // Python's repr: <Future at 0x... state=finished returned int>.
  friend std::ostream& operator<<(std::ostream& os, const Future& f) {
    return os << "<Future at " << static_cast<const void*>(f.state_.get()) << " "
              << internal::FutureStatus(*f.state_, typeid(R)) << ">";
  }

  internal::FutureStateBase* state() const { return state_.get(); }

 private:
  std::exception_ptr error() {
    if (cancelled()) throw CancelledError();
    return state_->result.error();
  }
  R unwrap() {
    if constexpr (std::is_void_v<R>) {
      state_->result.Get();
    } else {
      return state_->result.Get();
    }
  }
  std::shared_ptr<State> state_;
};

// as_completed(futures[, timeout]): the futures, each as it ends (those
// ended already first); mp::TimeoutError from the iteration if some have
// not ended by the timeout. The futures must outlive the iteration.
template <class R>
class AsCompleted {
 public:
  AsCompleted(std::vector<Future<R>*> futures, internal::Deadline deadline)
      : futures_(std::move(futures)), waiter_(States(futures_)), deadline_(deadline) {}

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Future<R>;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(AsCompleted* owner) : owner_(owner) { advance(); }
    Future<R>& operator*() const { return *owner_->futures_[index_]; }
    iterator& operator++() {
      advance();
      return *this;
    }
    bool operator==(const iterator& other) const { return owner_ == other.owner_; }

   private:
    void advance() {
      if (owner_->yielded_ == owner_->futures_.size()) {
        owner_ = nullptr;
        return;
      }
      if (!owner_->waiter_.Next(owner_->deadline_, &index_)) {
        throw TimeoutError(std::to_string(owner_->futures_.size() - owner_->yielded_) + " (of " +
                           std::to_string(owner_->futures_.size()) + ") futures unfinished");
      }
      ++owner_->yielded_;
    }
    AsCompleted* owner_ = nullptr;
    size_t index_ = 0;
  };
  iterator begin() { return iterator(this); }
  iterator end() { return iterator(); }

 private:
  static std::vector<internal::FutureStateBase*> States(const std::vector<Future<R>*>& futures) {
    std::vector<internal::FutureStateBase*> states;
    for (Future<R>* f : futures) states.push_back(f->state());
    return states;
  }
  std::vector<Future<R>*> futures_;
  internal::CompletionWaiter waiter_;
  internal::Deadline deadline_;
  size_t yielded_ = 0;
};

template <class F>
struct FutureValue;
template <class R>
struct FutureValue<Future<R>> {
  using type = R;
};

namespace internal {
template <class Range>
using FutureOf = std::remove_cvref_t<decltype(*std::begin(std::declval<Range&>()))>;

template <class Range>
auto FuturePointers(Range& futures) {
  std::vector<FutureOf<Range>*> pointers;
  for (auto& f : futures) pointers.push_back(&f);
  return pointers;
}
}  // namespace internal

template <class Range>
auto as_completed(Range& futures) {
  using R = typename FutureValue<internal::FutureOf<Range>>::type;
  return AsCompleted<R>(internal::FuturePointers(futures), std::nullopt);
}
template <class Range, class Rep, class Period>
auto as_completed(Range& futures, std::chrono::duration<Rep, Period> timeout) {
  using R = typename FutureValue<internal::FutureOf<Range>>::type;
  return AsCompleted<R>(internal::FuturePointers(futures), internal::DeadlineAfter(timeout));
}

namespace futures {

// What wait returns. Python: DoneAndNotDoneFutures (sets there; vectors
// here, in the order of the input).
template <class R>
struct DoneAndNotDone {
  std::vector<Future<R>> done;
  std::vector<Future<R>> not_done;
};

namespace internal_wait {
template <class Range>
auto Wait(const Range& futures, ReturnWhen when, const internal::Deadline& deadline) {
  using R = typename FutureValue<internal::FutureOf<Range>>::type;
  std::vector<internal::FutureStateBase*> states;
  for (const auto& f : futures) states.push_back(f.state());
  internal::CompletionWaiter waiter(std::move(states));
  waiter.WaitFor(when, deadline);
  DoneAndNotDone<R> out;
  for (const auto& f : futures) (f.done() ? out.done : out.not_done).push_back(f);
  return out;
}
}  // namespace internal_wait

// wait(futures, return_when = ALL_COMPLETED[, timeout]): returns when
// return_when holds or the timeout passed, with the futures split into
// those that ended and those that did not. FIRST_EXCEPTION is
// ALL_COMPLETED when none raises. Python: concurrent.futures.wait.
template <class Range>
auto wait(const Range& futures, ReturnWhen return_when = ALL_COMPLETED) {
  return internal_wait::Wait(futures, return_when, std::nullopt);
}
template <class Range, class Rep, class Period>
auto wait(const Range& futures, ReturnWhen return_when, std::chrono::duration<Rep, Period> timeout) {
  return internal_wait::Wait(futures, return_when, internal::DeadlineAfter(timeout));
}
template <class Range, class Rep, class Period>
auto wait(const Range& futures, std::chrono::duration<Rep, Period> timeout) {
  return internal_wait::Wait(futures, ALL_COMPLETED, internal::DeadlineAfter(timeout));
}

using mp::as_completed;

}  // namespace futures
}  // namespace mp

#endif  // POOL_FUTURE_H_
