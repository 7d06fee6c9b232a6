// ProcessPoolExecutor: Python's concurrent.futures.ProcessPoolExecutor, on
// the same workers as mp::Pool (pool/pool.h), so it inherits their
// guarantees: every start method, a crashed worker fails only its own
// future (mp::WorkerLostError; Python breaks the whole pool), tasks killed
// past task_timeout, exception types that travel.
//
//   mp::ProcessPoolExecutor ex({.max_workers = 4});
//   mp::Future<int> f = ex.submit(square, 3);
//   for (int y : ex.map(square, std::views::iota(0), {.chunksize = 16, .buffersize = 64})) ...
//   ex.shutdown(/*wait=*/true, /*cancel_futures=*/false);
//
// The destructor is shutdown(wait=true), like leaving Python's
// `with ProcessPoolExecutor() as ex:` (a Pool's destructor terminates).
//
// Thread safety: every method from any thread. Fork safety: a forked child
// must not use its copy. Sharing: not shareable.
#ifndef POOL_EXECUTOR_H_
#define POOL_EXECUTOR_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <utility>

#include "pool/future.h"
#include "pool/pool.h"

namespace mp {

// Python: ProcessPoolExecutor(max_workers, mp_context, initializer,
// initargs, max_tasks_per_child).
struct ExecutorOptions {
  std::optional<int> max_workers;     // default cpu_count()
  int max_tasks_per_child = 0;        // 0: workers live as long as the executor
  std::function<void()> initializer;  // bind its arguments
  // A task still running after this long is killed with its worker (a new
  // one starts); its future raises mp::TimeoutError.
  std::optional<std::chrono::duration<double>> task_timeout;
  std::string start_method;  // the mp_context: "fork", "spawn", "forkserver" ("": the default)
};

// Executor::map's keyword arguments. Python: map(fn, *iterables, timeout,
// chunksize, buffersize).
struct MapOptions {
  size_t chunksize = 1;
  // At most this many chunks submitted and not yet consumed (0: the whole
  // input at once when its size is known, else 1,024).
  size_t buffersize = 0;
  // From the call to map: a result not ready by then raises mp::TimeoutError.
  std::optional<std::chrono::duration<double>> timeout;
};

template <class PoolType>
class BasicExecutor {
 public:
  explicit BasicExecutor(ExecutorOptions options = {}) : pool_(PoolOptionsOf(std::move(options))) {}
  ~BasicExecutor() { shutdown(true); }
  BasicExecutor(const BasicExecutor&) = delete;
  BasicExecutor& operator=(const BasicExecutor&) = delete;

  // submit: func(args...) in a worker. mp::ProcessError after shutdown
  // (Python: RuntimeError).
  template <class F, class... Args>
  auto submit(F func, Args&&... args) {
    if (shut_down_.load()) throw ProcessError("cannot schedule new futures after shutdown");
    try {
      return pool_.submit(func, std::forward<Args>(args)...);
    } catch (const ValueError&) {
      if (shut_down_.load()) throw ProcessError("cannot schedule new futures after shutdown");
      throw;
    }
  }

  // map: func(x) for each x of `items` (any input range, endless ones
  // too), results in order. Python: Executor.map.
  template <class F, class Range>
  auto map(F func, Range&& items, MapOptions options = {}) {
    if (shut_down_.load()) throw ProcessError("cannot schedule new futures after shutdown");
    internal::Deadline deadline;
    if (options.timeout) deadline = internal::DeadlineAfter(*options.timeout);
    return pool_.ordered_imap(func, std::forward<Range>(items), options.chunksize, options.buffersize,
                              deadline);
  }

  // shutdown: no more tasks; with cancel_futures, the futures not started
  // are cancelled; with wait, returns once every task ended and the
  // workers exited. Python: Executor.shutdown.
  void shutdown(bool wait = true, bool cancel_futures = false) {
    shut_down_.store(true);
    if (cancel_futures) pool_.cancel_queued();
    pool_.close();
    if (wait) pool_.join();
  }

  int max_workers() const { return pool_.processes(); }

 private:
  static PoolOptions PoolOptionsOf(ExecutorOptions options) {
    if (options.max_workers && *options.max_workers <= 0) {
      throw ValueError("max_workers must be greater than 0");
    }
    PoolOptions pool;
    pool.processes = options.max_workers;
    pool.initializer = std::move(options.initializer);
    pool.maxtasksperchild = options.max_tasks_per_child;
    pool.start_method = std::move(options.start_method);
    pool.task_timeout = options.task_timeout;
    return pool;
  }

  PoolType pool_;
  std::atomic<bool> shut_down_{false};
};

using ProcessPoolExecutor = BasicExecutor<Pool>;
// ThreadPoolExecutor: the same on threads (task_timeout refused). Python:
// concurrent.futures.ThreadPoolExecutor, with the Pool's task rules.
using ThreadPoolExecutor = BasicExecutor<ThreadPool>;

}  // namespace mp

#endif  // POOL_EXECUTOR_H_
