// PoolCore: the type-independent machinery of mp::Pool.
//
// Internal to //pool. Workers are started (and replaced) by an mp::Launcher,
// a single-threaded helper forked when the pool is created, so the pool's
// own threads never make a fork unsafe. Tasks go to the workers through one
// shared-memory ByteQueue, outcomes come back through another. Two threads
// in the pool's process: one hands outcomes to their results (and runs the
// callbacks), one watches the workers' sentinels and, when a worker ends,
// fails the task it had claimed with mp::WorkerLostError and starts a
// replacement. Idle, everything sleeps in the kernel: no polling.
#ifndef POOL_POOL_CORE_H_
#define POOL_POOL_CORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ipc/byte_queue.h"
#include "pool/pending_table.h"
#include "pool/pool_backend.h"
#include "pool/task.h"
#include "process/launcher.h"
#include "process/process.h"
#include "sync/shared_value.h"

namespace mp::internal {

class PoolCore : public PoolBackend {
 public:
  // Workers are named `worker_name_prefix`-N; an empty prefix names them
  // after the start method, as Python does ("ForkPoolWorker").
  PoolCore(int processes, std::function<void()> initializer, int maxtasksperchild,
           const std::string& start_method, const std::string& worker_name_prefix = "");
  ~PoolCore() override;

  void Submit(TaskEntry entry, void* function, std::string args, Done done) override;
  void Close() override;
  void Terminate() override;
  void Join() override;
  int processes() const override { return processes_; }

 private:
  enum class State { kRun, kClose, kTerminate };

  int WorkerMain(int slot);
  void StartWorker(int slot);
  void OutcomeLoop();
  void MonitorLoop();
  void HandleWorkerEnd(size_t slot);
  void Wake();
  void Finish(Outcome&& outcome);
  void StopThreads();

  const int processes_;
  const int maxtasksperchild_;
  std::function<void()> initializer_;

  // Shared with the workers (created before the launcher forks).
  ByteQueue tasks_;
  ByteQueue outcomes_;
  RawArray<uint64_t> claims_;  // per slot: the id of the task being run, or 0

  std::unique_ptr<Launcher> launcher_;
  std::atomic<uint64_t> next_id_{1};

  // std::mutex rather than absl::Mutex: Debian's Abseil is not built with
  // ThreadSanitizer, which then cannot see absl::Mutex's synchronization.
  std::mutex mu_;
  std::atomic<State> state_{State::kRun};            // written under mu_
  std::vector<std::unique_ptr<Process>> workers_;    // guarded by mu_
  bool monitor_done_ = false;                        // guarded by mu_
  bool joined_ = false;                              // guarded by mu_

  PendingTable pending_;  // the tasks not finished yet

  int wake_fd_ = -1;  // eventfd: wakes the monitor
  std::thread outcome_thread_;
  std::thread monitor_thread_;
};

}  // namespace mp::internal

#endif  // POOL_POOL_CORE_H_
