// MpiPoolCore: rank 0's side of an MPI pool (see pool/mpi_pool.h).
//
// Internal to //pool:mpi. Submit queues a task; one dispatcher thread, the
// only thread that calls MPI while the pool lives, sends tasks to the worker
// ranks in batches, receives their outcomes, watches their liveness
// connections and ends them on close/terminate. Batches adapt to the tasks:
// a rank gets about 2 ms of work per message (one task when tasks are slow,
// hundreds when they are tiny), and at most two batches ahead, so slow tasks
// still spread over every rank.
#ifndef POOL_MPI_POOL_CORE_H_
#define POOL_MPI_POOL_CORE_H_

#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "base/mutex.h"
#include "ipc/connection.h"
#include "pool/mpi_protocol.h"
#include "pool/pool_backend.h"

namespace mp::internal::mpi {

// A worker rank, as rank 0 knows it.
struct WorkerRank {
  int rank = 0;
  std::string host;
  int64_t pid = 0;
  std::unique_ptr<Connection> liveness;  // reads EOF once the rank's process is gone
  bool alive = true;
};

// Rank 0's knowledge of the job, filled by mp::mpi::init.
struct Job {
  Mutex mu;
  // `alive` of each is guarded by mu; the rest is set by init, before any
  // pool thread runs (so the vector itself is not annotated).
  std::vector<WorkerRank> workers;
  std::string refusal;              // why no MPI pool may run, or ""
  std::vector<int> refused_ranks;   // ranks that run nothing (different binary)
  bool pool_running ABSL_GUARDED_BY(mu) = false;
};
Job& TheJob();

class MpiPoolCore final : public PoolBackend {
 public:
  // Throws mp::ValueError (bad options, too few ranks) or mp::ProcessError
  // (refused job, another MPI pool alive).
  explicit MpiPoolCore(const PoolOptions& options);
  ~MpiPoolCore() override;

  void Submit(TaskEntry entry, void* function, std::string args, Done done) override;
  void Close() override;
  void Terminate() override;
  void Join() override;
  int processes() const override { return static_cast<int>(ranks_.size()); }

 private:
  enum class State { kRun, kClose, kTerminate };
  using Clock = std::chrono::steady_clock;

  struct Queued {
    uint64_t id;
    TaskEntry entry;
    void* function;
    std::string args;
  };
  struct RankState {
    WorkerRank* worker;
    std::deque<uint64_t> in_flight;
    bool ended = false;
    int announced = 0;         // messages rung for but not yet received
    Clock::time_point mark;    // when the rank last began or finished work
    double task_seconds = 0;   // moving average of a task's time on the rank
  };
  struct Outgoing {
    int rank;
    MPI_Request request;
    std::unique_ptr<std::string> bytes;
  };

  void Run();
  // Post sends a small message to a rank and rings its doorbell.
  void Post(RankState& rank, Tag tag, const std::string& bytes);
  bool DispatchTasks();
  bool ReceiveMessages();
  bool CheckLiveness();
  void RankLost(RankState& rank);
  // FailQueued fails the tasks not yet sent (and, with `everything`, every
  // task still pending).
  void FailQueued(OutcomeKind kind, const std::string& message, bool everything = false);
  void ReapSends();
  void Finish(Outcome&& outcome);
  void Fail(uint64_t id, OutcomeKind kind, const std::string& message);
  const CodeRef& Name(const void* address);
  RankState* Find(int rank);
  size_t BatchSize(const RankState& rank) const;
  std::vector<int> WaitFds() const;

  StartMessage start_;
  std::vector<RankState> ranks_;  // dispatcher thread only (after construction)
  int wake_fd_ = -1;              // eventfd: a task was queued, or close/terminate

  Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kRun;
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Done> pending_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool joined_ ABSL_GUARDED_BY(mu_) = false;

  // Dispatcher thread only.
  absl::flat_hash_map<const void*, CodeRef> names_;
  std::list<Outgoing> sends_;
  size_t next_rank_ = 0;  // round-robin start of DispatchTasks

  std::thread dispatcher_;
};

}  // namespace mp::internal::mpi

#endif  // POOL_MPI_POOL_CORE_H_
