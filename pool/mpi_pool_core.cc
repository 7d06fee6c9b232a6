#include "pool/mpi_pool_core.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "base/errors.h"

namespace mp::internal::mpi {
namespace {

// About this much work goes to a rank per message (see the header). It must
// exceed a round trip, or the estimate of a task's time (which includes the
// trip) would keep batches at one task.
constexpr double kBatchSeconds = 2e-3;
constexpr size_t kMaxBatch = 512;

void DrainEventFd(int fd) {
  uint64_t count;
  [[maybe_unused]] ssize_t n = ::read(fd, &count, sizeof count);
}

std::string Describe(const WorkerRank& worker) {
  return "MPI rank " + std::to_string(worker.rank) + " (pid " + std::to_string(worker.pid) +
         " on " + worker.host + ")";
}

}  // namespace

Job& TheJob() {
  static auto* job = new Job;  // never destroyed: the exit handler uses it
  return *job;
}

MpiPoolCore::MpiPoolCore(const PoolOptions& options) {
  if (options.maxtasksperchild < 0) throw ValueError("Pool: maxtasksperchild must be >= 0");
  if (options.initializer) {
    auto* function = options.initializer.target<void (*)()>();
    if (function == nullptr) {
      throw ValueError(
          "Pool: an MPI pool's initializer must be a plain function (void f(), or +[] { ... }); "
          "it is named to the other ranks, not copied");
    }
    start_.initializer = NameCode(reinterpret_cast<const void*>(*function));
  }
  start_.maxtasksperchild = options.maxtasksperchild;
  Job& job = TheJob();
  {
    MutexLock lock(job.mu);
    if (!job.refusal.empty()) throw ProcessError("Pool: " + job.refusal);
    if (job.pool_running) {
      throw ProcessError("Pool: another MPI pool is running; close and join it first");
    }
    std::vector<WorkerRank*> alive;
    for (WorkerRank& worker : job.workers) {
      if (worker.alive) alive.push_back(&worker);
    }
    const int wanted = options.processes.value_or(static_cast<int>(alive.size()));
    if (alive.empty()) {
      throw ValueError(
          "Pool: no MPI worker ranks; start the program with mpirun -np N, N >= 2, or ask for a "
          "local pool (start_method \"fork\")");
    }
    if (wanted < 1) throw ValueError("Pool: number of processes must be at least 1");
    if (static_cast<size_t>(wanted) > alive.size()) {
      throw ValueError("Pool(" + std::to_string(wanted) + "): only " +
                       std::to_string(alive.size()) + " MPI worker ranks are alive (mpirun -np " +
                       std::to_string(wanted + 1) + " would give " + std::to_string(wanted) + ")");
    }
    for (int i = 0; i < wanted; ++i) ranks_.push_back(RankState{alive[static_cast<size_t>(i)]});
    job.pool_running = true;
  }
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    MutexLock lock(job.mu);
    job.pool_running = false;
    throw_errno("eventfd");
  }
  dispatcher_ = std::thread([this] { Run(); });
}

MpiPoolCore::~MpiPoolCore() {
  // Like leaving Python's `with Pool() as p:`; both are no-ops after join().
  Terminate();
  Join();
  ::close(wake_fd_);
}

void MpiPoolCore::Submit(TaskEntry entry, void* function, std::string args, Done done) {
  {
    MutexLock lock(mu_);
    if (state_ != State::kRun) throw ValueError("Pool not running");
    const uint64_t id = next_id_++;
    pending_.emplace(id, std::move(done));
    queue_.push_back(Queued{id, entry, function, std::move(args)});
  }
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void MpiPoolCore::Close() {
  {
    MutexLock lock(mu_);
    if (state_ != State::kRun) return;
    state_ = State::kClose;
  }
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void MpiPoolCore::Terminate() {
  {
    MutexLock lock(mu_);
    state_ = State::kTerminate;
  }
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void MpiPoolCore::Join() {
  {
    MutexLock lock(mu_);
    if (state_ == State::kRun) throw ProcessError("Pool.join: call close() or terminate() first");
    if (joined_) return;
    joined_ = true;
  }
  dispatcher_.join();
  {
    MutexLock lock(TheJob().mu);
    TheJob().pool_running = false;  // The ranks are free for the next pool.
  }
  // The dispatcher settled every task; anything left never reached a rank.
  FailQueued(OutcomeKind::kTerminated, "the pool was terminated before the task completed",
             /*everything=*/true);
}

void MpiPoolCore::Run() {
  for (RankState& rank : ranks_) Post(rank, kStart, encode(start_));
  bool close_sent = false;
  bool terminate_sent = false;
  Backoff backoff(std::chrono::milliseconds(1));
  for (;;) {
    bool progress = ReceiveMessages();
    progress |= CheckLiveness();
    State state;
    bool queue_empty;
    {
      MutexLock lock(mu_);
      state = state_;
      queue_empty = queue_.empty();
    }
    const bool any_alive = std::any_of(ranks_.begin(), ranks_.end(),
                                       [](const RankState& r) { return r.worker->alive; });
    if (state == State::kTerminate && !terminate_sent) {
      for (RankState& rank : ranks_) {
        if (rank.worker->alive && !rank.ended) Post(rank, kTerminate, "");
      }
      terminate_sent = true;
      for (RankState& rank : ranks_) {
        for (uint64_t id : rank.in_flight) {
          Fail(id, OutcomeKind::kTerminated, "the pool was terminated while the task ran");
        }
        rank.in_flight.clear();
      }
      FailQueued(OutcomeKind::kTerminated, "the pool was terminated before the task started");
      progress = true;
    }
    if (!any_alive && !queue_empty) {
      FailQueued(OutcomeKind::kLost, "no MPI worker rank is left to run the task");
      queue_empty = true;
    }
    if (state != State::kTerminate) progress |= DispatchTasks();
    if (state == State::kClose && !close_sent && !terminate_sent && queue_empty) {
      for (RankState& rank : ranks_) {
        if (rank.worker->alive) Post(rank, kClose, "");
      }
      close_sent = true;
      progress = true;
    }
    ReapSends();
    const bool all_ended = std::all_of(ranks_.begin(), ranks_.end(), [](const RankState& r) {
      return r.ended || !r.worker->alive;
    });
    if ((close_sent || terminate_sent) && all_ended) break;

    // Something is in transit while a send of ours is unfinished (it may need
    // our progress) or a rank has rung for a message we have not received.
    const bool in_transit = !sends_.empty() || std::any_of(ranks_.begin(), ranks_.end(), [](const RankState& r) {
      return r.worker->alive && r.announced > 0;
    });
    if (progress) {
      backoff.Reset();
    } else if (!in_transit) {
      // Nothing is on its way: sleep until a task, a ring, close, or a death.
      std::vector<pollfd> polls;
      for (int fd : WaitFds()) polls.push_back({fd, POLLIN, 0});
      ::poll(polls.data(), polls.size(), -1);
    } else {
      backoff.Wait(WaitFds());
    }
    DrainEventFd(wake_fd_);
  }
  // Rank sends that never completed belong to dead ranks: let MPI forget them.
  for (Outgoing& out : sends_) {
    MPI_Request_free(&out.request);
    out.bytes.release();  // NOLINT: MPI may still read it; it must outlive us.
  }
  sends_.clear();
}

std::vector<int> MpiPoolCore::WaitFds() const {
  std::vector<int> fds{wake_fd_};
  for (const RankState& rank : ranks_) {
    if (rank.worker->alive) fds.push_back(rank.worker->liveness->fileno());
  }
  return fds;
}

size_t MpiPoolCore::BatchSize(const RankState& rank) const {
  if (rank.task_seconds <= 0) return 1;
  const double fit = kBatchSeconds / rank.task_seconds;
  return std::clamp<size_t>(static_cast<size_t>(fit), 1, kMaxBatch);
}

const CodeRef& MpiPoolCore::Name(const void* address) {
  auto it = names_.find(address);
  if (it == names_.end()) it = names_.emplace(address, NameCodeOrNull(address)).first;
  return it->second;
}

bool MpiPoolCore::DispatchTasks() {
  bool sent = false;
  for (size_t k = 0; k < ranks_.size(); ++k) {
    RankState& rank = ranks_[(next_rank_ + k) % ranks_.size()];
    if (!rank.worker->alive || rank.ended) continue;
    const size_t batch = BatchSize(rank);
    while (rank.in_flight.size() < 2 * batch) {
      std::vector<WireTask> wire;
      std::vector<Queued> taken;
      {
        MutexLock lock(mu_);
        const size_t n = std::min({batch, 2 * batch - rank.in_flight.size(), queue_.size()});
        for (size_t i = 0; i < n; ++i) {
          taken.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      if (taken.empty()) break;
      for (Queued& task : taken) {
        try {
          wire.push_back(WireTask{task.id, Name(reinterpret_cast<const void*>(task.entry)),
                                  Name(task.function), std::move(task.args)});
        } catch (const Error& e) {
          Fail(task.id, OutcomeKind::kError, e.what());
          continue;
        }
        if (rank.in_flight.empty()) rank.mark = Clock::now();
        rank.in_flight.push_back(task.id);
      }
      if (wire.empty()) continue;
      Outgoing& out = sends_.emplace_back(
          Outgoing{rank.worker->rank, MPI_REQUEST_NULL, std::make_unique<std::string>(encode(wire))});
      Ring(rank.worker->liveness->fileno());
      MPI_Isend(out.bytes->data(), static_cast<int>(out.bytes->size()), MPI_BYTE, out.rank, kTasks,
                MPI_COMM_WORLD, &out.request);
      sent = true;
    }
  }
  next_rank_ = (next_rank_ + 1) % ranks_.size();
  return sent;
}

bool MpiPoolCore::ReceiveMessages() {
  bool any = false;
  while (std::optional<Message> message = TryReceive(MPI_ANY_SOURCE)) {
    any = true;
    RankState* rank = Find(message->source);
    if (rank == nullptr || !rank->worker->alive) continue;
    if (rank->announced > 0) --rank->announced;
    if (message->tag == kEnded) {
      rank->ended = true;
      continue;
    }
    if (message->tag != kOutcomes) continue;
    auto outcomes = decode<std::vector<Outcome>>(message->bytes);
    const Clock::time_point now = Clock::now();
    if (!outcomes.empty()) {
      const double each = std::chrono::duration<double>(now - rank->mark).count() /
                          static_cast<double>(outcomes.size());
      rank->task_seconds = rank->task_seconds <= 0 ? each : 0.8 * rank->task_seconds + 0.2 * each;
      rank->mark = now;
    }
    for (Outcome& outcome : outcomes) {
      auto it = std::find(rank->in_flight.begin(), rank->in_flight.end(), outcome.id);
      if (it != rank->in_flight.end()) rank->in_flight.erase(it);
      Finish(std::move(outcome));
    }
  }
  return any;
}

bool MpiPoolCore::CheckLiveness() {
  bool any = false;
  for (RankState& rank : ranks_) {
    if (!rank.worker->alive) continue;
    bool closed;
    rank.announced += Drain(rank.worker->liveness->fileno(), &closed);
    if (closed) {
      RankLost(rank);
      any = true;
    }
  }
  return any;
}

void MpiPoolCore::RankLost(RankState& rank) {
  {
    MutexLock lock(TheJob().mu);
    rank.worker->alive = false;
  }
  const std::string why = Describe(*rank.worker) + " died while running the task";
  for (uint64_t id : rank.in_flight) Fail(id, OutcomeKind::kLost, why);
  rank.in_flight.clear();
}

void MpiPoolCore::Post(RankState& rank, Tag tag, const std::string& bytes) {
  Ring(rank.worker->liveness->fileno());
  Send(rank.worker->rank, tag, bytes);
}

MpiPoolCore::RankState* MpiPoolCore::Find(int rank) {
  for (RankState& state : ranks_) {
    if (state.worker->rank == rank) return &state;
  }
  return nullptr;
}

void MpiPoolCore::ReapSends() {
  for (auto it = sends_.begin(); it != sends_.end();) {
    int done = 0;
    MPI_Test(&it->request, &done, MPI_STATUS_IGNORE);
    if (!done) {
      const RankState* rank = Find(it->rank);
      if (rank != nullptr && !rank->worker->alive) {
        // The receiver is gone: MPI may never finish this send.
        MPI_Request_free(&it->request);
        it->bytes.release();  // NOLINT: MPI may still read it.
        it = sends_.erase(it);
        continue;
      }
      ++it;
      continue;
    }
    it = sends_.erase(it);
  }
}

void MpiPoolCore::FailQueued(OutcomeKind kind, const std::string& message, bool everything) {
  std::deque<Queued> queued;
  absl::flat_hash_map<uint64_t, Done> left;
  {
    MutexLock lock(mu_);
    queued.swap(queue_);
    for (const Queued& task : queued) {
      auto it = pending_.find(task.id);
      if (it == pending_.end()) continue;
      left.emplace(task.id, std::move(it->second));
      pending_.erase(it);
    }
    if (everything) {
      for (auto& [id, done] : pending_) left.emplace(id, std::move(done));
      pending_.clear();
    }
  }
  for (auto& [id, done] : left) {
    Outcome outcome;
    outcome.id = id;
    outcome.kind = kind;
    outcome.message = message;
    done(std::move(outcome));
  }
}

void MpiPoolCore::Finish(Outcome&& outcome) {
  Done done;
  {
    MutexLock lock(mu_);
    auto it = pending_.find(outcome.id);
    if (it == pending_.end()) return;  // Already failed (its rank died, or terminate).
    done = std::move(it->second);
    pending_.erase(it);
  }
  done(std::move(outcome));
}

void MpiPoolCore::Fail(uint64_t id, OutcomeKind kind, const std::string& message) {
  Outcome outcome;
  outcome.id = id;
  outcome.kind = kind;
  outcome.message = message;
  Finish(std::move(outcome));
}

}  // namespace mp::internal::mpi
