#include "pool/mpi_pool.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/mpi/environment.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "base/deadline.h"
#include "base/errors.h"
#include "pool/mpi_pool_core.h"
#include "pool/mpi_protocol.h"
#include "pool/pool_core.h"
#include "process/context.h"

namespace mp::mpi {
namespace {

using internal::CodeRef;
using internal::Outcome;
using internal::OutcomeKind;
using internal::PoolCore;
using namespace internal::mpi;  // NOLINT: the protocol's vocabulary

// Never destroyed by static destructors: the exit handler finalizes MPI.
boost::mpi::environment* environment = nullptr;
int the_rank = 0;
int the_size = 1;
pid_t init_pid = 0;
constexpr int kConnectTimeoutMs = 60'000;

std::string HostName() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name;
}

std::string RandomKey() {
  std::random_device device;
  std::string key;
  for (int i = 0; i < 4; ++i) key += absl::StrCat(absl::Hex(device(), absl::kZeroPad8));
  return key;
}

// Broadcasts rank 0's bytes to every rank.
std::string Broadcast(std::string bytes) {
  uint64_t size = bytes.size();
  MPI_Bcast(&size, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  bytes.resize(size);
  MPI_Bcast(bytes.data(), static_cast<int>(size), MPI_BYTE, 0, MPI_COMM_WORLD);
  return bytes;
}

// A worker rank's loop: hosts the worker of each of rank 0's pools in turn
// (a one-process local pool, so a crashing task takes only that process).
class RankServer {
 public:
  explicit RankServer(int doorbell)
      : doorbell_(doorbell), wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (wake_fd_ < 0) throw_errno("eventfd");
  }
  ~RankServer() { ::close(wake_fd_); }

  // Serve returns when rank 0 says the program is exiting: whether to call
  // MPI_Finalize (not after a rank died; see ShutdownJob).
  bool Serve() {
    Backoff backoff(std::chrono::milliseconds(5));
    for (;;) {
      bool progress = false;
      while (std::optional<Message> message = TryReceive(0)) {
        progress = true;
        if (announced_ > 0) --announced_;
        if (message->tag == kShutdown) {
          EndPool(/*terminate=*/true);
          return message->bytes.empty() || decode<bool>(message->bytes);
        }
        Handle(*message);
      }
      progress |= Flush();
      if (closed_.load()) {
        closer_.join();
        closed_ = false;
        pool_.reset();
        Flush();
        Post(kEnded, "");
        progress = true;
      }
      if (progress) {
        backoff.Reset();
      } else if (announced_ == 0) {
        // Nothing is on its way: sleep until rank 0 rings or an outcome is ready.
        pollfd polls[2] = {{wake_fd_, POLLIN, 0}, {doorbell_, POLLIN, 0}};
        ::poll(polls, 2, -1);
      } else {
        backoff.Wait({wake_fd_, doorbell_});
      }
      uint64_t count;
      [[maybe_unused]] ssize_t n = ::read(wake_fd_, &count, sizeof count);
      bool closed;
      announced_ += Drain(doorbell_, &closed);
      // Rank 0 closes the connection at its exit, right after it rang for
      // the shutdown message: take what it announced first. With nothing
      // announced, its process is gone (mpirun normally ends the job first).
      rank0_gone_ |= closed;
      if (rank0_gone_ && announced_ == 0) {
        EndPool(/*terminate=*/true);
        return false;
      }
    }
  }

 private:
  void Handle(const Message& message) {
    switch (message.tag) {
      case kStart: {
        auto start = decode<StartMessage>(message.bytes);
        std::function<void()> initializer;
        if (start.initializer) {
          initializer = reinterpret_cast<void (*)()>(internal::FindCode(*start.initializer));
        }
        pool_ = std::make_unique<PoolCore>(
            PoolOptions{.processes = 1,
                        .initializer = std::move(initializer),
                        .maxtasksperchild = start.maxtasksperchild,
                        .start_method = "fork"},
            absl::StrCat("MpiPoolWorker-", the_rank));
        break;
      }
      case kTasks:
        for (WireTask& task : decode<std::vector<WireTask>>(message.bytes)) Run(std::move(task));
        break;
      case kClose:
        closer_ = std::thread([this] {
          pool_->Close();
          pool_->Join();
          closed_ = true;
          Wake();
        });
        break;
      case kTerminate:
        EndPool(/*terminate=*/true);
        Flush();
        Post(kEnded, "");
        break;
      default:
        break;
    }
  }

  void Run(WireTask task) {
    const uint64_t id = task.id;
    auto done = [this, id](Outcome&& outcome) {
      outcome.id = id;
      {
        internal::MutexLock lock(mu_);
        outbox_.push_back(std::move(outcome));
      }
      Wake();
    };
    try {
      auto entry = reinterpret_cast<internal::TaskEntry>(Resolve(task.entry));
      pool_->Submit(entry, Resolve(task.function), std::move(task.args), done);
    } catch (const Error& e) {
      Outcome outcome;
      outcome.kind = OutcomeKind::kError;
      outcome.type_name = internal::CurrentExceptionTypeName();
      outcome.message = e.what();
      done(std::move(outcome));
    }
  }

  void* Resolve(const CodeRef& ref) {
    auto key = std::make_pair(ref.object, ref.offset);
    auto it = code_.find(key);
    if (it == code_.end()) it = code_.emplace(key, internal::FindCodeOrNull(ref)).first;
    return it->second;
  }

  // EndPool ends the current pool's worker, if any.
  void EndPool(bool terminate) {
    if (!pool_) return;
    if (terminate) pool_->Terminate();
    if (closer_.joinable()) {
      closer_.join();  // It called Join; Terminate makes that quick.
      closed_ = false;
    } else {
      pool_->Join();
    }
    pool_.reset();
  }

  // Flush sends the outcomes gathered so far, in one message.
  bool Flush() {
    std::vector<Outcome> outcomes;
    {
      internal::MutexLock lock(mu_);
      outcomes.swap(outbox_);
    }
    if (outcomes.empty()) return false;
    Post(kOutcomes, encode(outcomes));
    return true;
  }

  // Post rings rank 0's doorbell and sends.
  void Post(Tag tag, const std::string& bytes) {
    Ring(doorbell_);
    Send(0, tag, bytes);
  }

  void Wake() {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }

  const int doorbell_;  // the liveness connection to rank 0
  const int wake_fd_;   // eventfd: an outcome is in the outbox
  int announced_ = 0;   // messages rank 0 rang for that have not arrived yet
  bool rank0_gone_ = false;
  std::unique_ptr<PoolCore> pool_;
  std::thread closer_;
  std::atomic<bool> closed_{false};
  internal::Mutex mu_;
  std::vector<Outcome> outbox_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::pair<std::string, uint64_t>, void*> code_;
};

// At rank 0's exit: release the worker ranks, then finalize MPI. Not after
// a rank died: Open MPI 4.1's MPI_Finalize waits for every rank of the job,
// dead ones included, and would never return; the survivors then exit
// without it (and mpirun says so).
void ShutdownJob() {
  if (getpid() != init_pid || environment == nullptr) return;
  Job& job = TheJob();
  const bool finalize = std::all_of(job.workers.begin(), job.workers.end(),
                                    [](const WorkerRank& w) { return w.alive; });
  for (WorkerRank& worker : job.workers) {
    if (!worker.alive) continue;
    Ring(worker.liveness->fileno());
    Send(worker.rank, kShutdown, encode(finalize));
  }
  for (int rank : job.refused_ranks) Send(rank, kShutdown, encode(finalize));
  job.workers.clear();  // Closes the liveness connections.
  if (finalize) delete environment;
  environment = nullptr;
}

// Rank 0: greet the workers, check their binaries, take their liveness
// connections.
void InitRank0() {
  Job& job = TheJob();
  const Greeting greeting{internal::BuildId()};
  Broadcast(encode(greeting));
  std::vector<Hello> accepted;
  for (int i = 1; i < the_size; ++i) {
    auto hello = decode<Hello>(Receive(MPI_ANY_SOURCE, kHello).bytes);
    if (hello.same_binary) {
      accepted.push_back(hello);
      continue;
    }
    job.refused_ranks.push_back(hello.rank);
    absl::StrAppend(&job.refusal, job.refusal.empty() ? "" : "; ", "MPI rank ", hello.rank, " (pid ",
                    hello.pid, " on ", hello.host, ") runs a different binary: build id ",
                    hello.build_id, ", rank 0 has ", greeting.build_id,
                    "; every rank must run the same build");
  }
  // The liveness listener binds only where it must: a private Unix socket
  // when every accepted rank runs here, all interfaces (behind the
  // handshake) only when some rank runs on another host.
  const std::string host = HostName();
  const bool all_here = std::all_of(accepted.begin(), accepted.end(),
                                    [&host](const Hello& h) { return h.host == host; });
  Liveness where{"", RandomKey()};
  Listener liveness(all_here ? "" : "0.0.0.0:0", where.authkey);
  where.address = all_here ? liveness.address()
                           : host + liveness.address().substr(liveness.address().rfind(':'));
  for (const Hello& hello : accepted) Send(hello.rank, kLiveness, encode(where));
  // Each accepted rank now connects to the liveness listener, all within
  // one deadline; a connection that fails the handshake or names no rank
  // still expected is dropped, and the wait goes on.
  const internal::Deadline deadline =
      internal::DeadlineAfter(std::chrono::milliseconds(kConnectTimeoutMs));
  while (job.workers.size() < accepted.size()) {
    if (!internal::WaitReadable(liveness.fileno(), deadline)) {
      throw ProcessError("mp::mpi::init: worker ranks did not connect to rank 0 at " +
                         where.address + " within 60 s (is rank 0's host name " +
                         "resolvable from the other hosts?)");
    }
    std::unique_ptr<Connection> conn;
    int rank = -1;
    try {
      conn = std::make_unique<Connection>(liveness.accept());
      if (conn->poll_until(deadline)) rank = conn->recv<int>();
    } catch (const Error&) {
      continue;  // wrong key, silent, or garbage: not one of ours
    }
    auto it = std::find_if(accepted.begin(), accepted.end(),
                           [rank](const Hello& h) { return h.rank == rank; });
    const bool known = std::any_of(job.workers.begin(), job.workers.end(),
                                   [rank](const WorkerRank& w) { return w.rank == rank; });
    if (it == accepted.end() || known) continue;
    job.workers.push_back(WorkerRank{rank, it->host, it->pid, std::move(conn), true});
  }
  std::sort(job.workers.begin(), job.workers.end(),
            [](const WorkerRank& a, const WorkerRank& b) { return a.rank < b.rank; });
}

// A worker rank: answer rank 0, then serve. Returns when rank 0 exits:
// whether to call MPI_Finalize.
bool RunWorkerRank() {
  auto greeting = decode<Greeting>(Broadcast(""));
  Hello hello;
  hello.rank = the_rank;
  hello.build_id = internal::BuildId();
  hello.same_binary = hello.build_id == greeting.build_id;
  hello.host = HostName();
  hello.pid = getpid();
  Send(0, kHello, encode(hello));
  if (!hello.same_binary) {
    // Refused: run nothing; wait for rank 0's exit (without spinning in MPI).
    Backoff backoff(std::chrono::milliseconds(50));
    for (;;) {
      if (std::optional<Message> message = TryReceive(0)) return decode<bool>(message->bytes);
      backoff.Wait({});
    }
  }
  // Held open until this process ends: rank 0 learns of our death by its EOF.
  const auto where = decode<Liveness>(Receive(0, kLiveness).bytes);
  Connection liveness = Client(where.address, where.authkey);
  liveness.send(the_rank);
  return RankServer(liveness.fileno()).Serve();
}

}  // namespace

void init(int& argc, char**& argv) {
  if (environment != nullptr) return;
  mp::init(argc, argv);  // A spawned child runs its target there and exits.
  environment = new boost::mpi::environment(argc, argv, boost::mpi::threading::serialized);
  if (environment->thread_level() < boost::mpi::threading::serialized) {
    throw ProcessError("mp::mpi::init: this MPI library does not provide MPI_THREAD_SERIALIZED");
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &the_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &the_size);
  init_pid = getpid();
  if (the_rank != 0) {
    if (RunWorkerRank()) delete environment;
    environment = nullptr;
    std::fflush(nullptr);
    std::exit(0);
  }
  if (the_size > 1) InitRank0();
  std::atexit(&ShutdownJob);
  internal::RegisterPoolBackend("mpi", [](PoolOptions options) -> std::unique_ptr<internal::PoolBackend> {
    return std::make_unique<internal::mpi::MpiPoolCore>(options);
  });
  if (the_size > 1) internal::SetDefaultPoolBackend("mpi");
}

int rank() { return the_rank; }
int size() { return the_size; }

}  // namespace mp::mpi
