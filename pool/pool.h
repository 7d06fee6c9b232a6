// Pool: a pool of worker processes. Python: multiprocessing.Pool.
//
//   int square(int x) { return x * x; }
//
//   mp::Pool pool(4);                           // mp::Pool pool; = cpu_count()
//   auto r = pool.apply_async(square, 7);       // mp::AsyncResult<int>
//   std::vector<int> ys = pool.map(square, std::vector<int>{1, 2, 3});
//   for (int y : pool.imap_unordered(square, xs)) ...
//   pool.close();
//   pool.join();
//
// Tasks are plain functions (noexcept ones too, e.g. ::getpid; captureless
// lambdas) or function objects whose type is serializable (their state
// travels with each task); their arguments and results are serialized with
// the codec (ipc/codec.h). Arguments may be queues, locks, events, values,
// connections and shared memory: the worker uses the same objects (their
// descriptors travel with the task). A task that throws fails with its
// exception's own type when that type is registered (the standard library's
// and mp::'s are; mp::register_exception<E>() adds one, base/
// exception_types.h), else with mp::RemoteError carrying the type's name
// and the message; the worker goes on. submit() returns an mp::Future
// (pool/future.h); mp::ProcessPoolExecutor (pool/executor.h) is Python's
// concurrent.futures API on the same workers. Worker names are "ForkPoolWorker-N" ("SpawnPoolWorker-N",
// "ForkServerPoolWorker-N" under those methods), as in Python.
//
// Beyond Python:
// - A worker that dies while running a task (segfault, abort, SIGKILL, OOM)
//   fails exactly that task with mp::WorkerLostError; the worker is replaced
//   and the other tasks go on. join() never hangs.
// - Workers, and their replacements, are forked by a single-threaded launcher
//   process (mp::Launcher) made when the pool is created, never by this
//   process once the pool's threads run; so a replacement cannot inherit a
//   lock that one of this process's threads held. Create fork pools before
//   starting threads of your own, for the same reason, or use the
//   "forkserver" or "spawn" start method (PoolOptions::start_method).
// - Workers are daemonic and die with the pool's process, even on SIGKILL.
//   They ignore SIGINT: Ctrl-C stops the program, which takes its workers
//   along.
// - A task runs at most once, even when workers die while taking it.
// - terminate() sends SIGTERM, then SIGKILL after PoolOptions::terminate_grace
//   (1 s): a task that blocks SIGTERM cannot make terminate(), join() or
//   ~Pool hang.
// - A worker that cannot be started (fork fails, the launcher died) is
//   retried with backoff; a pool that can get no worker at all, or whose
//   initializer throws in 3 workers in a row, is broken: pending and new
//   tasks fail with an mp::Error that says why.
// - A result that cannot be encoded fails its task with an mp::Error.
// - Idle pools sleep in the kernel: no polling, no busy threads.
// - PoolOptions::task_timeout: a task still running after it is killed with
//   its worker and fails with mp::TimeoutError; a new worker starts.
// - imap and imap_unordered take any input range, endless ones too, and
//   keep at most `buffersize` chunks in flight.
// - Workers run under SCHED_BATCH (same share of the CPU, no preempting on
//   wake-up), so that a worker woken for a task does not push the thread
//   that submits tasks off its CPU; initializers may change it back.
//
// The destructor terminates the pool, as Python's `with Pool() as p:` does;
// join() requires close() or terminate() first (mp::ProcessError).
// Callbacks (see mp::callbacks) run in the pool's result thread, in this
// process. A callback may submit more tasks (never blocking, even when the
// task queue is full) and may close() or terminate() the pool, but not
// join() it (mp::ProcessError). One that throws is reported on stderr
// ("Exception in callback of task N: <type>: <what>"); its result completes
// as it would have.
//
// Thread safety: every method from any thread, concurrently too: a task
// submitted while another thread closes the pool either runs or is refused
// (mp::ValueError), and every AsyncResult returned completes.
// Fork safety: a forked child must not use its copy of the pool.
// Sharing: not shareable; pass a Manager queue to tasks to talk back.
#ifndef POOL_POOL_H_
#define POOL_POOL_H_

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <chrono>
#include <deque>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <ranges>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "base/mutex.h"
#include "absl/functional/any_invocable.h"
#include "pool/async_result.h"
#include "pool/future.h"
#include "pool/pool_backend.h"
#include "pool/task.h"
#include "process/process.h"

namespace mp {

// callbacks(cb, error_cb): pass as the first argument of apply_async,
// map_async or starmap_async to have cb(result) or error_cb(error) called in
// this process when the task ends. Python: callback=, error_callback=.
template <class Callback, class ErrorCallback = std::nullptr_t>
struct Callbacks {
  Callback callback;
  ErrorCallback error_callback;
};
template <class Callback, class ErrorCallback = std::nullptr_t>
Callbacks<Callback, ErrorCallback> callbacks(Callback callback, ErrorCallback error_callback = nullptr) {
  return {std::move(callback), std::move(error_callback)};
}

namespace internal {

template <class T>
struct IsCallbacks : std::false_type {};
template <class C, class E>
struct IsCallbacks<Callbacks<C, E>> : std::true_type {};

// PoolFunction: what a task may call: a plain function (noexcept ones
// too) or a function object whose type is serializable, with one
// operator() (see TaskFunction).
template <class F>
concept PoolFunction = PlainFunction<F> || (SerializableFunctor<F> && requires { &F::operator(); });

template <class F>
using ResultOf = typename Signature<F>::Result;

template <class F>
using FirstArg = std::tuple_element_t<0, typename Signature<F>::ArgTuple>;

// The results of imap/imap_unordered as they arrive, and the input they
// come from. The input is read in the consumer's thread: a chunk is
// submitted whenever fewer than `buffersize` chunks are submitted and not
// yet consumed (0: no bound, the whole input at once), so an endless input
// takes bounded memory and the first result comes before the input ends.
template <class R>
class IMapState : public std::enable_shared_from_this<IMapState<R>> {
 public:
  // Feed submits the chunk of the input that starts at item `first` and
  // returns its length; 0 at the end of the input.
  using Feed = absl::AnyInvocable<size_t(size_t first, std::shared_ptr<IMapState> self)>;

  IMapState(bool ordered, size_t chunksize, size_t buffersize, Deadline deadline, Feed feed)
      : ordered_(ordered), chunksize_(chunksize), buffersize_(buffersize), deadline_(deadline),
        feed_(std::move(feed)) {}

  void Deliver(size_t first_index, std::vector<R> values, std::exception_ptr error, size_t count) {
    {
      MutexLock lock(mu_);
      if (error) {
        for (size_t i = 0; i < count; ++i) Add(first_index + i, std::nullopt, error);
      } else {
        for (size_t i = 0; i < values.size(); ++i) Add(first_index + i, std::move(values[i]), nullptr);
      }
    }
    cv_.notify_all();
  }
  // DeliverOutcome: a chunk's outcome (chunks of one item, the common lazy
  // case, decode without a vector).
  void DeliverOutcome(size_t first, size_t count, const Outcome& outcome) {
    if (outcome.kind != OutcomeKind::kOk) {
      Deliver(first, {}, OutcomeError(outcome), count);
      return;
    }
    try {
      if constexpr (std::is_default_constructible_v<R> && !std::is_same_v<R, bool>) {
        if (count == 1) {
          R value{};
          decode_into(outcome.payload, std::span<R>(&value, 1));
          {
            MutexLock lock(mu_);
            Add(first, std::move(value), nullptr);
          }
          cv_.notify_all();
          return;
        }
      }
      Deliver(first, decode<std::vector<R>>(outcome.payload), nullptr, count);
    } catch (...) {
      Deliver(first, {}, std::current_exception(), count);
    }
  }

  // FeedWhileRoom submits chunks while the buffer has room and the input
  // has items. The input's and the pool's errors propagate.
  //
  // It refills only once the buffer is half empty: then in a burst, which
  // costs a fraction of refilling one chunk per result taken (measured:
  // lazy imap_unordered with chunksize 1 ran at 0.8x the eager one so).
  void FeedWhileRoom() {
    MutexLock feeding(feed_mu_);
    {
      MutexLock lock(mu_);
      if (exhausted_) return;
      if (buffersize_ != 0 && submitted_ - taken_ > buffersize_ * chunksize_ / 2) return;
    }
    for (;;) {
      size_t first;
      {
        MutexLock lock(mu_);
        if (exhausted_) return;
        if (buffersize_ != 0 && submitted_ - taken_ + chunksize_ > buffersize_ * chunksize_) return;
        first = submitted_;
      }
      const size_t n = feed_(first, this->shared_from_this());
      {
        MutexLock lock(mu_);
        if (n == 0) {
          exhausted_ = true;
        } else {
          submitted_ += n;
        }
      }
      if (n == 0) {
        feed_ = nullptr;  // an rvalue input it owned goes now
        cv_.notify_all();
      }
    }
  }

  // Next returns the next result (in order, or as it came), rethrowing a
  // failed task's error; nullopt when every result was taken. Without a
  // deadline of its own it waits until the state's (Executor::map's).
  std::optional<R> Next(const Deadline& deadline) {
    FeedWhileRoom();
    const Deadline until = deadline ? deadline : deadline_;
    std::optional<R> value;
    std::exception_ptr error;
    {
      MutexLock lock(mu_);
      auto available = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return (exhausted_ && taken_ == submitted_) ||
               (ordered_ ? !window_.empty() && window_.front().has_value() : !arrivals_.empty());
      };
      if (!until) {
        lock.Wait(cv_, available);
      } else if (!lock.WaitUntil(cv_, *until, available)) {
        throw TimeoutError("imap: next result not ready in time");
      }
      if (exhausted_ && taken_ == submitted_) return std::nullopt;
      Entry entry;
      if (ordered_) {
        entry = std::move(*window_.front());
        window_.pop_front();
      } else {
        entry = std::move(arrivals_.front());
        arrivals_.pop_front();
      }
      ++taken_;
      value = std::move(entry.first);
      error = std::move(entry.second);
    }
    if (error) std::rethrow_exception(error);
    return value;
  }

  // submitted: how many items were submitted so far (all of them once the
  // input ended).
  size_t submitted() {
    MutexLock lock(mu_);
    return submitted_;
  }

 private:
  using Entry = std::pair<std::optional<R>, std::exception_ptr>;
  void Add(size_t index, std::optional<R> value, std::exception_ptr error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!ordered_) {
      arrivals_.emplace_back(std::move(value), std::move(error));
      return;
    }
    const size_t at = index - taken_;  // results before taken_ were taken
    if (at >= window_.size()) window_.resize(at + 1);
    window_[at].emplace(std::move(value), std::move(error));
  }

  Mutex mu_;
  std::condition_variable cv_;
  const bool ordered_;
  const size_t chunksize_;
  const size_t buffersize_;
  const Deadline deadline_;
  Mutex feed_mu_;  // one feeder at a time; taken before mu_
  Feed feed_ ABSL_GUARDED_BY(feed_mu_);
  size_t submitted_ ABSL_GUARDED_BY(mu_) = 0;
  bool exhausted_ ABSL_GUARDED_BY(mu_) = false;
  size_t taken_ ABSL_GUARDED_BY(mu_) = 0;
  // imap: the results from taken_ on, by index (empty where not arrived).
  std::deque<std::optional<Entry>> window_ ABSL_GUARDED_BY(mu_);
  // imap_unordered: the results in the order they arrived.
  std::deque<Entry> arrivals_ ABSL_GUARDED_BY(mu_);
};

}  // namespace internal

// IMapIterator: what imap and imap_unordered return; iterate it with a range
// for, or call next(). A failed task's error is thrown when its result's turn
// comes. Python: IMapIterator.
template <class R>
class IMapIterator {
 public:
  explicit IMapIterator(std::shared_ptr<internal::IMapState<R>> state) : state_(std::move(state)) {}

  // next blocks for the next result; mp::ValueError when there is none left.
  R next() { return take(std::nullopt); }
  // next(timeout): mp::TimeoutError if the next result is not ready in time.
  template <class Rep, class Period>
  R next(std::chrono::duration<Rep, Period> timeout) {
    return take(internal::DeadlineAfter(timeout));
  }
  // size: the items submitted so far (all of them, for an input that
  // imap took whole).
  size_t size() const { return state_->submitted(); }

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = R;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(internal::IMapState<R>* state) : state_(state) { advance(); }
    R& operator*() { return *current_; }
    iterator& operator++() {
      advance();
      return *this;
    }
    bool operator==(const iterator& other) const { return done() == other.done(); }

   private:
    bool done() const { return !current_.has_value(); }
    void advance() { current_ = state_ ? state_->Next(std::nullopt) : std::nullopt; }
    internal::IMapState<R>* state_ = nullptr;
    std::optional<R> current_;
  };
  iterator begin() { return iterator(state_.get()); }
  iterator end() { return iterator(); }

 private:
  R take(const internal::Deadline& deadline) {
    std::optional<R> value = state_->Next(deadline);
    if (!value) throw ValueError("imap: no more results");
    return std::move(*value);
  }
  std::shared_ptr<internal::IMapState<R>> state_;
};

class Pool {
 public:
  using Options = PoolOptions;
  // Pool() has cpu_count() workers; Pool(n) n (mp::ValueError if n < 1).
  Pool();
  explicit Pool(int processes);
  explicit Pool(PoolOptions options);
  // Terminates the pool (like leaving Python's `with Pool() as p:`).
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // apply_async runs func(args...) in a worker. Python: apply_async.
  template <class F, class... Args>
    requires(internal::PoolFunction<F> && !internal::IsCallbacks<std::decay_t<F>>::value)
  AsyncResult<internal::ResultOf<F>> apply_async(F func, Args&&... args) {
    return apply_async(callbacks(nullptr), func, std::forward<Args>(args)...);
  }
  template <class C, class E, class F, class... Args>
    requires internal::PoolFunction<F>
  AsyncResult<internal::ResultOf<F>> apply_async(Callbacks<C, E> cbs, F func, Args&&... args) {
    using Task = internal::TaskFunction<F>;
    using R = internal::ResultOf<F>;
    using ArgTuple = typename internal::Signature<F>::ArgTuple;
    static_assert(is_serializable_v<internal::Stored<R>>, "a Pool task's result must be serializable");
    auto state = MakeState<R>(std::move(cbs));
    SubmitTask(&Task::One, Task::Address(func),
               [&] { return Task::Encode(func, [&] { return encode(ArgTuple(std::forward<Args>(args)...)); }); },
               [state](internal::Outcome&& outcome) { Complete<R>(*state, outcome); });
    return AsyncResult<R>(state);
  }

  // apply blocks for func(args...). Python: apply.
  template <class F, class... Args>
    requires internal::PoolFunction<F>
  internal::ResultOf<F> apply(F func, Args&&... args) {
    return apply_async(func, std::forward<Args>(args)...).take();  // Moved out, not copied.
  }

  // map_async applies func to every item, in chunks; the result keeps the
  // items' order. chunksize 0 picks Python's default (len / (4 * workers)).
  template <class F, class Range>
    requires internal::PoolFunction<F>
  auto map_async(F func, const Range& items, size_t chunksize = 0) {
    return MapAsync<false>(callbacks(nullptr), func, items, chunksize);
  }
  template <class C, class E, class F, class Range>
    requires internal::PoolFunction<F>
  auto map_async(Callbacks<C, E> cbs, F func, const Range& items, size_t chunksize = 0) {
    return MapAsync<false>(std::move(cbs), func, items, chunksize);
  }
  // map is map_async(...).get(). Python: map.
  template <class F, class Range>
    requires internal::PoolFunction<F>
  auto map(F func, const Range& items, size_t chunksize = 0) {
    return map_async(func, items, chunksize).take();  // Moved out, not copied.
  }
  template <class F, class T>
    requires internal::PoolFunction<F>
  auto map(F func, std::initializer_list<T> items, size_t chunksize = 0) {
    return map_async(func, std::vector<T>(items), chunksize).take();
  }

  // starmap: func(*args) for each tuple. Python: starmap.
  template <class F, class Range>
    requires internal::PoolFunction<F>
  auto starmap_async(F func, const Range& tuples, size_t chunksize = 0) {
    return MapAsync<true>(callbacks(nullptr), func, tuples, chunksize);
  }
  template <class C, class E, class F, class Range>
    requires internal::PoolFunction<F>
  auto starmap_async(Callbacks<C, E> cbs, F func, const Range& tuples, size_t chunksize = 0) {
    return MapAsync<true>(std::move(cbs), func, tuples, chunksize);
  }
  template <class F, class Range>
    requires internal::PoolFunction<F>
  auto starmap(F func, const Range& tuples, size_t chunksize = 0) {
    return starmap_async(func, tuples, chunksize).take();
  }

  // imap: results one by one, in order, as soon as each is ready
  // (chunksize default 1). Python: imap.
  //
  // `items` is any input range, endless ones too. With buffersize 0 and
  // an input of known size (a vector, a list, ...), imap submits all of it
  // before it returns, as Python does. Otherwise it is lazy: at most
  // `buffersize` chunks (default 1,024) are submitted and not yet
  // consumed; the rest of the input is read as results are taken (in the
  // taking thread), so memory stays flat and the first result comes before
  // the input ends. A lazy imap needs its pool running (not closed) while
  // it is consumed, and an input passed as an lvalue alive; an rvalue
  // input is kept by the iterator. Python 3.14: imap(..., buffersize=).
  template <class F, class Range>
    requires internal::PoolFunction<F>
  IMapIterator<internal::ResultOf<F>> imap(F func, Range&& items, size_t chunksize = 1,
                                           size_t buffersize = 0) {
    return IMap(func, std::forward<Range>(items), chunksize, buffersize, true, std::nullopt);
  }
  // imap_unordered: results in the order they finish. Python: imap_unordered.
  template <class F, class Range>
    requires internal::PoolFunction<F>
  IMapIterator<internal::ResultOf<F>> imap_unordered(F func, Range&& items, size_t chunksize = 1,
                                                     size_t buffersize = 0) {
    return IMap(func, std::forward<Range>(items), chunksize, buffersize, false, std::nullopt);
  }

  // submit runs func(args...) in a worker and returns its future, which
  // can be cancelled until a worker starts it. Python:
  // concurrent.futures.Executor.submit (pool/future.h).
  template <class F, class... Args>
    requires internal::PoolFunction<F>
  Future<internal::ResultOf<F>> submit(F func, Args&&... args) {
    using Task = internal::TaskFunction<F>;
    using R = internal::ResultOf<F>;
    using ArgTuple = typename internal::Signature<F>::ArgTuple;
    static_assert(is_serializable_v<internal::Stored<R>>, "a Pool task's result must be serializable");
    auto state = std::make_shared<typename Future<R>::State>();
    std::vector<internal::ScopedFd> fds;
    std::string bytes = internal::EncodeCollecting(
        [&] { return Task::Encode(func, [&] { return encode(ArgTuple(std::forward<Args>(args)...)); }); },
        &fds);
    const uint64_t id = core_->SubmitControlled(
        &Task::One, Task::Address(func), std::move(bytes), std::move(fds),
        [state](internal::Outcome&& outcome) {
          state->Complete(outcome, [&] {
            if constexpr (std::is_void_v<R>) {
              return std::monostate{};
            } else {
              return decode<R>(outcome.payload);
            }
          });
        });
    state->Attach(id, control_);
    return Future<R>(state);
  }

  // ordered_imap: imap whose next() waits until `deadline` at the latest
  // (Executor::map).
  template <class F, class Range>
    requires internal::PoolFunction<F>
  IMapIterator<internal::ResultOf<F>> ordered_imap(F func, Range&& items, size_t chunksize,
                                                   size_t buffersize, internal::Deadline deadline) {
    return IMap(func, std::forward<Range>(items), chunksize, buffersize, true, deadline);
  }

  // cancel_queued cancels every future whose task has not started
  // (Executor::shutdown(cancel_futures=true)).
  void cancel_queued();

  // close: no more tasks; workers exit once the queued ones are done.
  void close();
  // terminate: stop the workers now; pending tasks fail with ProcessError.
  void terminate();
  // join waits for the workers to exit (after close or terminate).
  void join();

  int processes() const { return core_->processes(); }

  // Python's repr: <mp::Pool state=RUN pool_size=4> (CLOSE, TERMINATE;
  // mp::ThreadPool for a ThreadPool).
  friend std::ostream& operator<<(std::ostream& os, const Pool& pool);

 protected:
  // A pool on another backend (ThreadPool's threads).
  explicit Pool(std::unique_ptr<internal::PoolBackend> backend);

 private:
  template <class R, class C, class E>
  static auto MakeState(Callbacks<C, E> cbs) {
    using V = internal::Stored<R>;
    auto state = std::make_shared<internal::ResultState<V>>();
    constexpr bool kOnValue = !std::is_same_v<C, std::nullptr_t>;
    constexpr bool kOnError = !std::is_same_v<E, std::nullptr_t>;
    if constexpr (kOnValue || kOnError) {
      state->callbacks = std::make_unique<typename internal::ResultState<V>::Callbacks>();
    }
    if constexpr (kOnValue) {
      if constexpr (std::is_void_v<R>) {
        state->callbacks->on_value = [cb = std::move(cbs.callback)](const V&) { cb(); };
      } else {
        state->callbacks->on_value = [cb = std::move(cbs.callback)](const V& v) { cb(v); };
      }
    }
    if constexpr (kOnError) state->callbacks->on_error = std::move(cbs.error_callback);
    return state;
  }

  template <class R>
  static void Complete(internal::ResultState<internal::Stored<R>>& state,
                       const internal::Outcome& outcome) {
    if (outcome.kind != internal::OutcomeKind::kOk) {
      state.Fail(internal::OutcomeError(outcome), outcome.id);
      return;
    }
    std::optional<internal::Stored<R>> value;
    try {
      if constexpr (std::is_void_v<R>) {
        value.emplace();
      } else {
        value.emplace(decode<R>(outcome.payload));
      }
    } catch (...) {
      state.Fail(std::current_exception(), outcome.id);
      return;
    }
    state.Set(std::move(*value), outcome.id);
  }

  // A lazy imap's default buffer: enough that workers running trivial tasks
  // never wait for the consumer to refill it (measured: 256 chunks of one
  // item ran at 0.7x the eager imap, 4,096 at 0.95-1x).
  static constexpr size_t kDefaultLazyBuffersize = 1024;

  // Items returns the caller's items as a vector: the caller's own vector
  // when it is one (no copy; chunks are encoded before map_async returns),
  // otherwise a copy.
  template <class Item, class Range>
  static decltype(auto) Items(const Range& items) {
    if constexpr (std::is_same_v<Range, std::vector<Item>>) {
      return (items);
    } else {
      std::vector<Item> out;
      if constexpr (std::ranges::sized_range<const Range>) out.reserve(std::ranges::size(items));
      for (const auto& item : items) out.push_back(Item(item));
      return out;
    }
  }

  size_t DefaultChunksize(size_t n) const {
    const size_t per = static_cast<size_t>(processes()) * 4;
    size_t chunk = n / per;
    if (n % per) ++chunk;
    return std::max<size_t>(chunk, 1);
  }

  // SubmitTask encodes a task's arguments with `encode` and submits it: the
  // shared objects among them (queues, locks, ...) travel as descriptors.
  template <class Encode>
  void SubmitTask(internal::TaskEntry entry, void* function, Encode&& encode,
                  internal::PoolBackend::Done done) {
    std::vector<internal::ScopedFd> fds;
    std::string bytes = internal::EncodeCollecting(std::forward<Encode>(encode), &fds);
    if (fds.empty()) {
      core_->Submit(entry, function, std::move(bytes), std::move(done));
    } else {
      core_->SubmitShared(entry, function, std::move(bytes), std::move(fds), std::move(done));
    }
  }

  // Submits items in chunks; on_chunk(first_index, count, outcome) per chunk.
  template <bool kStar, class F, class Item>
  void SubmitChunks(const F& func, const std::vector<Item>& items, size_t chunksize,
                    std::function<void(size_t, size_t, internal::Outcome&&)> on_chunk) {
    using Task = internal::TaskFunction<F>;
    for (size_t first = 0; first < items.size(); first += chunksize) {
      const size_t count = std::min(chunksize, items.size() - first);
      SubmitTask(&Task::template Chunk<kStar>, Task::Address(func),
                 [&] {
                   return Task::Encode(func, [&] {
                     return encode_span(std::span<const Item>(items.data() + first, count));
                   });
                 },
                 [on_chunk, first, count](internal::Outcome&& outcome) {
                   on_chunk(first, count, std::move(outcome));
                 });
    }
  }

  template <bool kStar, class C, class E, class F, class Range>
  auto MapAsync(Callbacks<C, E> cbs, F func, const Range& items, size_t chunksize) {
    using R = internal::ResultOf<F>;
    using Item = internal::ChunkItem<F, kStar>;
    using Out = std::conditional_t<std::is_void_v<R>, void, std::vector<internal::Stored<R>>>;
    decltype(auto) all = Items<Item>(items);
    auto state = MakeState<Out>(std::move(cbs));
    if (chunksize == 0) chunksize = DefaultChunksize(all.size());
    if (all.empty()) {
      if constexpr (std::is_void_v<R>) {
        state->Set(std::monostate{});
      } else {
        state->Set({});
      }
      return AsyncResult<Out>(state);
    }
    // Chunks complete in any order; the last one to arrive completes the map.
    struct Gather {
      explicit Gather(size_t chunks) : left(chunks) {}
      internal::Mutex mu;
      size_t left ABSL_GUARDED_BY(mu);
      std::vector<internal::Stored<R>> values;  // chunks write disjoint parts
      bool failed ABSL_GUARDED_BY(mu) = false;
    };
    auto gather = std::make_shared<Gather>((all.size() + chunksize - 1) / chunksize);
    if constexpr (!std::is_void_v<R>) gather->values.resize(all.size());
    SubmitChunks<kStar>(func, all, chunksize,
                        [state, gather](size_t first, size_t count, internal::Outcome&& outcome) {
                          std::exception_ptr error;
                          if (outcome.kind != internal::OutcomeKind::kOk) {
                            error = internal::OutcomeError(outcome);
                          } else if constexpr (!std::is_void_v<R>) {
                            try {
                              if constexpr (std::is_same_v<R, bool>) {  // vector<bool>: no span
                                auto chunk = decode<std::vector<R>>(outcome.payload);
                                internal::MutexLock lock(gather->mu);
                                std::copy(chunk.begin(), chunk.end(), gather->values.begin() + first);
                              } else {
                                // Chunks fill disjoint parts of `values`, sized
                                // before any chunk was sent: no lock needed.
                                decode_into(outcome.payload,
                                            std::span(gather->values.data() + first, count));
                              }
                            } catch (...) {
                              error = std::current_exception();
                            }
                          }
                          bool last;
                          {
                            internal::MutexLock lock(gather->mu);
                            last = --gather->left == 0;
                            if (error && gather->failed) return;
                            gather->failed |= error != nullptr;
                          }
                          if (error) {
                            // The first failure decides, as in Python.
                            state->Fail(error, outcome.id);
                          } else if (last) {
                            if constexpr (std::is_void_v<R>) {
                              state->Set(std::monostate{}, outcome.id);
                            } else {
                              state->Set(std::move(gather->values), outcome.id);
                            }
                          }
                        });
    return AsyncResult<Out>(state);
  }

  // The input of a lazy imap: its view (owning an rvalue input) and where
  // reading it has got to. On the heap: the iterators point into the view.
  // (std::begin/end, not std::ranges: clang 14 cannot use libstdc++ 12's
  // ranges machinery, and the clang build compiles every caller.)
  template <class Range, class Item>
  struct InputSource {
    using Held = std::remove_reference_t<Range>;
    static constexpr bool kBorrowed = std::is_lvalue_reference_v<Range>;
    // An lvalue input is read where it is; an rvalue one is kept here.
    using Storage = std::conditional_t<kBorrowed, Held*, std::remove_cv_t<Held>>;
    static Storage Store(Range&& r) {
      if constexpr (kBorrowed) {
        return &r;
      } else {
        return Storage(std::move(r));
      }
    }
    Held& get() {
      if constexpr (kBorrowed) {
        return *held;
      } else {
        return held;
      }
    }
    explicit InputSource(Range&& r)
        : held(Store(std::forward<Range>(r))), it(std::begin(get())), end(std::end(get())) {}
    Storage held;
    decltype(std::begin(std::declval<Held&>())) it;
    decltype(std::end(std::declval<Held&>())) end;
    std::vector<Item> chunk;
  };
  template <class Range>
  static constexpr bool kKnownSize = requires(Range& r) { std::size(r); };

  template <class F, class Range>
  IMapIterator<internal::ResultOf<F>> IMap(F func, Range&& items, size_t chunksize, size_t buffersize,
                                           bool ordered, internal::Deadline deadline) {
    using R = internal::ResultOf<F>;
    using Item = internal::FirstArg<F>;
    using Task = internal::TaskFunction<F>;
    using State = internal::IMapState<R>;
    static_assert(!std::is_void_v<R>, "imap needs a function that returns a value");
    if (chunksize == 0) chunksize = 1;
    if (buffersize == 0 && !kKnownSize<std::remove_reference_t<Range>>) {
      buffersize = kDefaultLazyBuffersize;
    }
    auto source = std::make_unique<InputSource<Range, Item>>(std::forward<Range>(items));
    auto feed = [live = liveness_, func, chunksize, source = std::move(source)](
                    size_t first, std::shared_ptr<State> self) -> size_t {
      // The pool may be gone while the iterator lives: then an error, not
      // a call into freed memory.
      internal::MutexLock alive(live->mu);
      if (live->pool == nullptr) throw ValueError("imap: its pool was destroyed");
      std::vector<Item>& chunk = source->chunk;  // its buffer reused from chunk to chunk
      chunk.clear();
      for (; chunk.size() < chunksize && source->it != source->end; ++source->it) {
        chunk.push_back(Item(*source->it));
      }
      if (chunk.empty()) return 0;
      const size_t count = chunk.size();
      live->pool->SubmitTask(&Task::template Chunk<false>, Task::Address(func),
                 [&] { return Task::Encode(func, [&] { return encode_span(std::span<const Item>(chunk)); }); },
                 [self = std::move(self), first, count](internal::Outcome&& outcome) {
                   self->DeliverOutcome(first, count, outcome);
                 });
      return count;
    };
    auto state = std::make_shared<State>(ordered, chunksize, buffersize, deadline, std::move(feed));
    state->FeedWhileRoom();
    return IMapIterator<R>(state);
  }

  std::unique_ptr<internal::PoolBackend> core_;
  std::weak_ptr<internal::TaskControl> control_;  // core_'s, for futures
  // Lazy imaps reach the pool through this; ~Pool empties it.
  struct Liveness {
    internal::Mutex mu;
    Pool* pool ABSL_GUARDED_BY(mu);
  };
  std::shared_ptr<Liveness> liveness_;
  const char* kind_ = "mp::Pool";
  std::atomic<int> state_{0};  // 0 RUN, 1 CLOSE, 2 TERMINATE (for operator<<)
  friend class ThreadPool;
};

// ThreadPool: a Pool whose workers are threads of this process, for
// I/O-bound work and for tests; the same API and tasks. Python:
// multiprocessing.pool.ThreadPool. Differences from a Pool: task_timeout
// is refused (mp::ValueError: a thread cannot be killed), maxtasksperchild
// is ignored, terminate() fails the queued tasks but cannot stop running
// ones (join() waits for them), and callbacks run on the thread that ran
// the task.
class ThreadPool : public Pool {
 public:
  ThreadPool();
  explicit ThreadPool(int threads);
  explicit ThreadPool(PoolOptions options);
};

}  // namespace mp

#endif  // POOL_POOL_H_
