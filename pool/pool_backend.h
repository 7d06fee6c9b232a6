// PoolBackend: what runs a Pool's tasks, behind mp::Pool's typed front.
//
// Internal to //pool (and the backends built on it). mp::Pool turns every
// call into Submit(entry, function, args, done): `entry` decodes the
// arguments, calls `function` and encodes the result (pool/task.h); `done`
// receives the outcome. PoolCore runs tasks in local worker processes;
// //pool:mpi's backend runs them on other MPI ranks and registers itself
// under the start method "mpi", so //pool never depends on MPI.
#ifndef POOL_POOL_BACKEND_H_
#define POOL_POOL_BACKEND_H_

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "base/descriptors.h"
#include "base/errors.h"
#include "pool/task.h"
#include "pool/task_control.h"

namespace mp {

// Keyword arguments of Pool. Python: Pool(processes, initializer, initargs,
// maxtasksperchild, context).
struct PoolOptions {
  std::optional<int> processes;       // default cpu_count(); must be >= 1
  std::function<void()> initializer;  // runs once in each worker (bind its arguments)
  int maxtasksperchild = 0;           // 0: workers live as long as the pool
  // "fork", "spawn" or "forkserver" (the workers' start method: a fork
  // pool's workers are forked by a single-threaded launcher made with the
  // pool, a forkserver pool's by the forkserver, a spawn pool's are fresh
  // execs; then tasks, the initializer included, must be plain functions,
  // and the program must call mp::init); "mpi" with //pool:mpi
  // (pool/mpi_pool.h); empty: the default, which mp::mpi::init makes "mpi"
  // under mpirun.
  std::string start_method;
  // How long terminate() (and the destructor) lets workers handle SIGTERM
  // before it SIGKILLs them: a task that blocks or ignores SIGTERM cannot
  // make terminate(), join() or ~Pool hang.
  std::chrono::milliseconds terminate_grace = std::chrono::seconds(1);
  // A task still running after this long is killed with its worker (a new
  // one is started); its result raises mp::TimeoutError. None: no limit.
  // (billiard's hard time limit; measured to within a tenth of it.)
  std::optional<std::chrono::duration<double>> task_timeout;
};

namespace internal {

class PoolBackend {
 public:
  // absl::AnyInvocable rather than std::function: it keeps a callable of up
  // to two pointers inline even when it is not trivially copyable, such as
  // apply_async's (a shared_ptr), where std::function allocates: one heap
  // block less per task.
  using Done = absl::AnyInvocable<void(Outcome&&)>;

  virtual ~PoolBackend() = default;
  // Submit queues a task; `done` runs (on a pool thread) when it ends.
  // Throws mp::ValueError unless the pool is running.
  virtual void Submit(TaskEntry entry, void* function, std::string args, Done done) = 0;
  // SubmitShared: a task whose arguments hold shared objects (queues,
  // locks, connections, ...), whose descriptors are `fds` (the indices in
  // args). Backends whose workers cannot receive descriptors refuse.
  virtual void SubmitShared(TaskEntry entry, void* function, std::string args,
                            std::vector<ScopedFd> fds, Done done) {
    if (!fds.empty()) {
      throw ValueError("this pool's workers cannot receive queues, locks or other shared objects");
    }
    Submit(entry, function, std::move(args), std::move(done));
  }
  // SubmitControlled: a future's task, which TaskControl can cancel before
  // it starts; returns its id. Backends without control run it as any
  // other task (0: no control).
  virtual uint64_t SubmitControlled(TaskEntry entry, void* function, std::string args,
                                    std::vector<ScopedFd> fds, Done done) {
    SubmitShared(entry, function, std::move(args), std::move(fds), std::move(done));
    return 0;
  }
  // control: cancels and watches controlled tasks; it may outlive the
  // backend (it then cancels nothing). Null: no control.
  virtual std::shared_ptr<TaskControl> control() { return nullptr; }
  virtual void Close() = 0;
  virtual void Terminate() = 0;
  // Join waits for every worker to end. mp::ProcessError unless closed or
  // terminated first.
  virtual void Join() = 0;
  virtual int processes() const = 0;
};

using PoolBackendFactory = std::function<std::unique_ptr<PoolBackend>(PoolOptions)>;

// RegisterPoolBackend makes pools whose start method is `name` run on the
// backend `factory` builds. Call it before creating such a pool.
void RegisterPoolBackend(const std::string& name, PoolBackendFactory factory);

// SetDefaultPoolBackend names the backend of pools that give no start method
// (a registered name, or "" for local workers).
void SetDefaultPoolBackend(const std::string& name);

// MakePoolBackend builds the backend `options` ask for.
std::unique_ptr<PoolBackend> MakePoolBackend(PoolOptions options);

}  // namespace internal
}  // namespace mp

#endif  // POOL_POOL_BACKEND_H_
