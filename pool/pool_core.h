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
//
// What it guarantees, and how (the README's design notes say more):
// - Every task submitted completes, whatever the pool's threads, callbacks
//   or workers do: submitters pass a gate (submitters_) that close,
//   terminate and a broken pool wait on; a submitter blocked on a full task
//   ring looks at the state every kPutRecheck; pool threads never block on
//   the ring (their tasks wait in overflow_).
// - A task runs at most once (ByteQueue's claims: a worker that dies while
//   taking a task leaves it taken, never handed out again).
// - terminate() SIGKILLs what SIGTERM did not end after terminate_grace.
// - Workers that cannot be started are retried with backoff (the launcher
//   helper restarted if it died); a pool that can get no worker at all, or
//   whose initializer fails kInitFailuresToBreak times in a row, is broken:
//   pending and new tasks fail with an mp::Error saying why.
#ifndef POOL_POOL_CORE_H_
#define POOL_POOL_CORE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/descriptors.h"
#include "base/mutex.h"
#include "ipc/byte_queue.h"
#include "ipc/pipe.h"
#include "pool/pending_table.h"
#include "pool/pool_backend.h"
#include "pool/task.h"
#include "process/function_id.h"
#include "process/launcher.h"
#include "process/process.h"
#include "sync/shared_value.h"

namespace mp::internal {

// The pool's shared ring, encoded as its descriptor for a spawn or
// forkserver worker.
class SharedRing {
 public:
  SharedRing() = default;
  explicit SharedRing(ByteQueue* ring) : ring_(ring) {}
  ByteQueue* get() const { return owned_ ? owned_.get() : ring_; }
  template <class Archive>
  void save(Archive& ar) const {
    ar(SaveDescriptor(ring_->fd(), "a pool's ring"));
  }
  template <class Archive>
  void load(Archive& ar) {
    uint32_t index = 0;
    ar(index);
    owned_ = ByteQueue::Attach(LoadDescriptor(index, "pool ring"));
  }

 private:
  ByteQueue* ring_ = nullptr;
  std::shared_ptr<ByteQueue> owned_;
};

// What a spawn or forkserver worker is started with.
struct PoolWorkerSetup {
  SharedRing tasks;
  SharedRing outcomes;
  RawArray<uint64_t> claims;
  RawArray<char> init_errors;
  RawArray<uint64_t> gates;
  size_t slot = 0;
  int maxtasksperchild = 0;
  std::optional<CodeRef> initializer;
  Connection courier;  // the workers' end (see PoolCore::courier_)
  template <class Archive>
  void serialize(Archive& ar) {
    ar(tasks, outcomes, claims, init_errors, gates, slot, maxtasksperchild, initializer, courier);
  }
};

// SpawnedPoolWorker: a spawn or forkserver worker's target.
int SpawnedPoolWorker(PoolWorkerSetup setup);

class PoolCore : public PoolBackend {
 public:
  // A worker whose initializer threw exits with this code (after writing
  // the error into its slot of init_errors_).
  static constexpr int kInitFailedExit = 86;
  static constexpr size_t kInitErrorBytes = 512;

  // Workers are named `worker_name_prefix`-N; an empty prefix names them
  // after the start method, as Python does ("ForkPoolWorker").
  explicit PoolCore(PoolOptions options, const std::string& worker_name_prefix = "");
  ~PoolCore() override;

  void Submit(TaskEntry entry, void* function, std::string args, Done done) override;
  void SubmitShared(TaskEntry entry, void* function, std::string args, std::vector<ScopedFd> fds,
                    Done done) override;
  uint64_t SubmitControlled(TaskEntry entry, void* function, std::string args,
                            std::vector<ScopedFd> fds, Done done) override;
  std::shared_ptr<TaskControl> control() override;
  void Close() override;
  void Terminate() override;
  void Join() override;
  int processes() const override { return processes_; }

 private:
  enum class State { kRun, kClose, kTerminate };
  static constexpr int kInitFailuresToBreak = 3;
  static constexpr int kStartFailuresToBreak = 8;
  static constexpr auto kPutRecheck = std::chrono::milliseconds(100);

  // Holds a place at the gate while a Submit runs (see submitters_).
  class SubmitterScope;
  class Control;

  int WorkerMain(int slot);
  // SubmitTask queues a task and returns its id (0 if it failed at once).
  uint64_t SubmitTask(TaskEntry entry, void* function, std::string args, std::vector<ScopedFd> fds,
                      Done done, bool gated);
  // CancelTask: Control's Cancel: true if the gate moved to cancelled; then
  // *done is the task's completion (empty if it completed already), for
  // the caller to run with kCancelled.
  bool CancelTask(uint64_t id, Done* done);
  // WatchTaskTimes (monitor, under mu_): kills the workers whose task ran
  // past task_timeout_; returns when to look again.
  Deadline WatchTaskTimes() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // CourierLoop hands the descriptors of a task's shared objects to the
  // worker that took it, on request (see courier_).
  void CourierLoop();
  void AnswerCourierRequest(std::string_view request, DescriptorSource& reply_socket);
  // DropParcel forgets the descriptors kept for task `id` (it ended).
  void DropParcel(uint64_t id);
  // PortableCode: a task's code by name (TaskMessage::code), cached.
  std::string PortableCode(TaskEntry entry, void* function);
  void StartLauncher() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // StartWorker (under mu_) starts the worker of `slot`, or schedules a
  // retry; false when it could not.
  bool StartWorkerLocked(size_t slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartDueWorkers();
  void OutcomeLoop();
  void MonitorLoop();
  void HandleWorkerEnd(size_t slot);
  void Wake();
  void Finish(Outcome&& outcome);
  // Enqueue puts an encoded task (or stop message) on the task ring. On a
  // pool thread it never blocks (a full ring: overflow_); elsewhere it waits
  // for room, giving up (false) once the pool is terminated or broken.
  // With behind_overflow (stop messages), it never blocks either.
  bool Enqueue(std::string_view item, bool behind_overflow);
  void FlushOverflow();
  void WaitForSubmitters();
  // BreakLocked (under mu_) marks the pool broken and kills its workers; the
  // caller then calls FailPendingOfBrokenPool, without mu_.
  void BreakLocked(std::string why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailPendingOfBrokenPool();
  void FailAllPending(OutcomeKind kind, const std::string& message);
  bool OnPoolThread() const;

  const int processes_;
  const int maxtasksperchild_;
  const std::chrono::milliseconds terminate_grace_;
  std::function<void()> initializer_;
  std::string method_;  // "fork", "spawn" or "forkserver"
  // Workers are another program image (spawn, forkserver): tasks name their
  // code, and workers get the shared memory as descriptors.
  bool portable_code_ = false;
  std::optional<CodeRef> initializer_code_;  // spawn and forkserver: the initializer by name
  std::string worker_prefix_;

  Mutex code_mu_;
  std::map<std::pair<void*, void*>, std::string> code_names_ ABSL_GUARDED_BY(code_mu_);

  // Shared with the workers (created before the launcher forks).
  ByteQueue tasks_;
  ByteQueue outcomes_;
  RawArray<uint64_t> claims_;  // per slot: the id of the task being run, or 0
  RawArray<char> init_errors_;  // per slot: why its initializer failed
  TaskGates gates_;             // futures' tasks (see task_control.h)
  std::shared_ptr<Control> control_;
  std::optional<std::chrono::duration<double>> task_timeout_;
  // Per slot, for task_timeout: the task it was seen running, since when,
  // and the task it was killed for.
  struct TaskWatch {
    uint64_t id = 0;
    Clock::time_point since;
  };
  std::vector<TaskWatch> watches_ ABSL_GUARDED_BY(mu_);

  std::unique_ptr<Launcher> launcher_ ABSL_GUARDED_BY(mu_);  // once the threads run
  std::atomic<uint64_t> next_id_{1};

  // The gate: Submit counts itself in, then reads state_; Close, Terminate
  // and Break write state_, then wait for the count to drop to zero. Both
  // sequentially consistent, so that either the submitter sees the new
  // state or the closer sees the submitter.
  std::atomic<uint32_t> submitters_{0};
  std::atomic<State> state_{State::kRun};  // written under mu_
  std::atomic<bool> broken_{false};        // written under mu_, before state_

  // (base/mutex.h: why a std::mutex rather than an absl::Mutex.)
  Mutex mu_;
  std::vector<std::unique_ptr<Process>> workers_ ABSL_GUARDED_BY(mu_);
  std::vector<std::optional<Clock::time_point>> retry_ ABSL_GUARDED_BY(mu_);  // slots to (re)start
  int start_failures_ ABSL_GUARDED_BY(mu_) = 0;  // in a row
  int init_failures_ ABSL_GUARDED_BY(mu_) = 0;  // in a row
  std::string last_start_error_ ABSL_GUARDED_BY(mu_);
  // Written once, under mu_, before broken_ turns true; read without a lock
  // by whoever has seen broken_ true.
  std::string broken_message_;
  std::optional<Clock::time_point> kill_at_ ABSL_GUARDED_BY(mu_);  // when terminate escalates
  bool killed_ ABSL_GUARDED_BY(mu_) = false;
  bool monitor_done_ ABSL_GUARDED_BY(mu_) = false;

  Mutex join_mu_;   // held through Join
  bool joined_ ABSL_GUARDED_BY(join_mu_) = false;

  Mutex overflow_mu_;
  std::deque<std::string> overflow_ ABSL_GUARDED_BY(overflow_mu_);  // tasks from pool threads
  std::atomic<bool> overflow_nonempty_{false};

  PendingTable pending_;  // the tasks not finished yet

  // The courier: a socket pair whose workers' end every worker has. A
  // worker that takes a task with shared objects sends its id and a reply
  // socket there; CourierLoop answers with the task's descriptors (kept in
  // parcels_ from Submit until the task is handed them or ends). The rings
  // cannot carry descriptors; this way no worker needs a socket of its own.
  std::optional<Connection> courier_;          // the pool's end
  std::optional<Connection> courier_workers_;  // the workers' end
  Mutex parcels_mu_;
  std::map<uint64_t, std::vector<ScopedFd>> parcels_ ABSL_GUARDED_BY(parcels_mu_);
  std::once_flag courier_started_;
  std::thread courier_thread_;

  int wake_fd_ = -1;  // eventfd: wakes the monitor
  std::thread outcome_thread_;
  std::thread monitor_thread_;
};

}  // namespace mp::internal

#endif  // POOL_POOL_CORE_H_
