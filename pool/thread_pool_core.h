// ThreadPoolCore: the backend of mp::ThreadPool: a Pool's tasks run on
// threads of this process. Python: multiprocessing.pool.ThreadPool.
//
// Internal to //pool. Tasks travel as they do to worker processes (the same
// entries decode the arguments and encode the result), so a ThreadPool runs
// exactly what a Pool runs, and behaves the same: futures can be cancelled
// until a thread starts them, exceptions come back as their registered
// type. What threads cannot do: task_timeout (a thread cannot be killed:
// mp::ValueError), maxtasksperchild (threads are reused; accepted and
// ignored, as there is nothing a task can leak into a fresh thread that it
// could not into the process), and terminate() cannot stop a task that
// runs: it fails the queued ones, and join() waits for the running ones.
#ifndef POOL_THREAD_POOL_CORE_H_
#define POOL_THREAD_POOL_CORE_H_

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "base/mutex.h"
#include "pool/pool_backend.h"
#include "pool/task_control.h"

namespace mp::internal {

class ThreadPoolCore : public PoolBackend {
 public:
  explicit ThreadPoolCore(PoolOptions options);
  ~ThreadPoolCore() override;

  void Submit(TaskEntry entry, void* function, std::string args, Done done) override;
  void SubmitShared(TaskEntry entry, void* function, std::string args, std::vector<ScopedFd> fds,
                    Done done) override;
  uint64_t SubmitControlled(TaskEntry entry, void* function, std::string args,
                            std::vector<ScopedFd> fds, Done done) override;
  std::shared_ptr<TaskControl> control() override { return shared_; }
  void Close() override;
  void Terminate() override;
  void Join() override;
  int processes() const override { return processes_; }

 private:
  struct Task {
    TaskEntry entry = nullptr;
    void* function = nullptr;
    std::string args;
    std::vector<ScopedFd> fds;
    Done done;
    bool controlled = false;  // a future's: cancel() may take it back
  };
  enum class State { kRun, kClose, kTerminate };

  // What the threads and the futures share (futures hold it as the
  // pool's TaskControl, and may outlive the pool).
  class Shared : public TaskControl {
   public:
    bool Cancel(uint64_t id) override;
    bool Running(uint64_t id) const override;
    void CancelQueued() override;

    mutable Mutex mu;
    std::condition_variable cv;
    std::map<uint64_t, Task> queue ABSL_GUARDED_BY(mu);  // by id: first in, first out
    absl::flat_hash_set<uint64_t> running ABSL_GUARDED_BY(mu);
    State state ABSL_GUARDED_BY(mu) = State::kRun;
    std::string broken ABSL_GUARDED_BY(mu);  // why the initializer failed
    uint64_t next_id ABSL_GUARDED_BY(mu) = 1;
  };

  uint64_t Add(Task task);
  void ThreadMain();
  static void Run(Task& task, uint64_t id);

  const int processes_;
  std::function<void()> initializer_;
  std::shared_ptr<Shared> shared_;
  Mutex join_mu_;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace mp::internal

#endif  // POOL_THREAD_POOL_CORE_H_
