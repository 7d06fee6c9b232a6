#include "pool/pool_core.h"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <latch>
#include <unordered_map>

#include "base/errors.h"
#include "base/exception_types.h"
#include "base/logging.h"

namespace mp::internal {
namespace {

// The monitor sets this bit in a claim when it kills the worker for its
// task's time limit (ids never reach it).
constexpr uint64_t kKilledForTime = uint64_t{1} << 63;

// ClearClaim: the worker is done with its task. If the monitor marked the
// claim for a kill meanwhile, the worker waits for the SIGKILL rather than
// take another task, which the kill would then lose.
void ClearClaim(uint64_t* claim) {
  std::atomic_ref<uint64_t> word(*claim);
  uint64_t value = word.load();
  while (!(value & kKilledForTime) && !word.compare_exchange_weak(value, 0)) {
  }
  if (value & kKilledForTime) {
    for (;;) ::pause();
  }
}

// Encode encodes `value` into a buffer this thread reuses. A map's chunks are
// hundreds of KiB: a fresh buffer for each would be fresh pages each time
// (malloc serves such sizes with mmap, or trims them back to the kernel),
// and page faults, not copying, would then bound a map's throughput. The
// bytes are valid until this thread's next Encode.
template <class T>
std::string_view Encode(const T& value) {
  constexpr size_t kKeep = size_t{16} << 20;  // beyond this, give memory back
  thread_local std::string buffer;
  if (buffer.capacity() > kKeep) std::string().swap(buffer);
  buffer.clear();
  encode_to(&buffer, value);
  return buffer;
}

// BecomeBatchWorker puts the calling thread in SCHED_BATCH: the kernel then
// does not let it preempt the running thread when it wakes up. A worker woken
// for a task would otherwise take the CPU from the very thread that is
// submitting the tasks (measured: a fifth of the submitting thread's time in
// apply_async went to being switched out that way). A worker still gets its
// fair share; it just waits for the next tick or an idle CPU.
void BecomeBatchWorker() {
  sched_param param{};
  sched_setscheduler(0, SCHED_BATCH, &param);
}

// Python's names for pool workers of each method.
std::string WorkerPrefix(const std::string& method) {
  if (method == "forkserver") return "ForkServerPoolWorker";
  if (method == "spawn") return "SpawnPoolWorker";
  return "ForkPoolWorker";
}

// The pool whose thread (outcome or monitor) this is, if any.
thread_local const PoolCore* t_pool_thread_of = nullptr;

// Retry delays for a worker that could not be started: 10 ms, doubling, at
// most half a second.
std::chrono::milliseconds StartBackoff(int failures) {
  return std::chrono::milliseconds(std::min(10 << std::min(failures, 6), 500));
}

void LogWorkerStarted(Process& worker) {
  Log(DEBUG, [&] {
    return "pool: worker " + worker.name() + " (pid " + std::to_string(worker.pid()) + ") started";
  });
}

std::string ExceptionText() {
  try {
    throw;
  } catch (const std::exception& e) {
    return CurrentExceptionTypeName() + ": " + e.what();
  } catch (...) {
    return CurrentExceptionTypeName();
  }
}

}  // namespace

std::string PoolCore::PortableCode(TaskEntry entry, void* function) {
  const auto key = std::pair{reinterpret_cast<void*>(entry), function};
  MutexLock lock(code_mu_);
  auto it = code_names_.find(key);
  if (it == code_names_.end()) {
    it = code_names_.emplace(key, encode(std::pair{NameCode(key.first), NameCodeOrNull(function)})).first;
  }
  return it->second;
}

// The pool's TaskControl: futures hold it (weakly), so it outlives the pool;
// once the pool is gone it cancels nothing.
class PoolCore::Control : public TaskControl {
 public:
  explicit Control(PoolCore* pool) : pool_(pool), gates_(pool->gates_) {}
  bool Cancel(uint64_t id) override {
    Done done;
    {
      MutexLock lock(mu_);
      if (pool_ == nullptr || !pool_->CancelTask(id, &done)) return false;
    }
    // Outside the lock: the future's callbacks may cancel other futures.
    CompleteCancelled(id, std::move(done));
    return true;
  }
  bool Running(uint64_t id) const override { return gates_.Running(id); }
  void CancelQueued() override {
    std::vector<std::pair<uint64_t, Done>> cancelled;
    {
      MutexLock lock(mu_);
      PoolCore* pool = pool_;
      if (pool == nullptr) return;
      gates_.ForEachQueued([&](uint64_t id) {
        Done done;
        if (pool->CancelTask(id, &done)) cancelled.emplace_back(id, std::move(done));
      });
    }
    for (auto& [id, done] : cancelled) CompleteCancelled(id, std::move(done));
  }
  static void CompleteCancelled(uint64_t id, Done done) {
    if (!done) return;
    Outcome cancelled;
    cancelled.id = id;
    cancelled.kind = OutcomeKind::kCancelled;
    done(std::move(cancelled));
  }
  void Detach() {
    MutexLock lock(mu_);
    pool_ = nullptr;
  }

 private:
  Mutex mu_;
  PoolCore* pool_ ABSL_GUARDED_BY(mu_);
  TaskGates gates_;  // the same shared words as the pool's
};

std::shared_ptr<TaskControl> PoolCore::control() { return control_; }

class PoolCore::SubmitterScope {
 public:
  explicit SubmitterScope(PoolCore* pool) : pool_(pool) { pool_->submitters_.fetch_add(1); }
  ~SubmitterScope() { pool_->submitters_.fetch_sub(1); }
  SubmitterScope(const SubmitterScope&) = delete;
  SubmitterScope& operator=(const SubmitterScope&) = delete;

 private:
  PoolCore* pool_;
};

PoolCore::PoolCore(PoolOptions options, const std::string& worker_name_prefix)
    : processes_(options.processes.value_or(cpu_count())),
      maxtasksperchild_(options.maxtasksperchild),
      terminate_grace_(options.terminate_grace),
      initializer_(std::move(options.initializer)),
      claims_(static_cast<size_t>(std::max(processes_, 1))),
      init_errors_(static_cast<size_t>(std::max(processes_, 1)) * kInitErrorBytes) {
  if (processes_ <= 0) throw ValueError("Pool: number of processes must be at least 1");
  if (maxtasksperchild_ < 0) throw ValueError("Pool: maxtasksperchild must be >= 0");
  if (terminate_grace_.count() < 0) throw ValueError("Pool: terminate_grace must be >= 0");
  if (options.task_timeout && !(options.task_timeout->count() > 0)) {
    throw ValueError("Pool: task_timeout must be more than 0");
  }
  task_timeout_ = options.task_timeout;
  control_ = std::make_shared<Control>(this);
  method_ = options.start_method.empty() ? get_start_method() : options.start_method;
  get_context(method_);  // mp::ValueError for an unknown method
  portable_code_ = method_ != "fork";
  if (portable_code_ && initializer_) {
    // A spawn or forkserver worker is another program image: it can call
    // the initializer only by name, so it must be a plain function.
    auto* fn = initializer_.target<void (*)()>();
    if (fn == nullptr || *fn == nullptr) {
      throw ValueError("Pool: with the '" + method_ +
                       "' start method the initializer must be a plain function (void(*)(); "
                       "a captureless lambda with a leading +), not a closure");
    }
    initializer_code_ = NameCode(reinterpret_cast<void*>(*fn));
  }
  worker_prefix_ = !worker_name_prefix.empty() ? worker_name_prefix : WorkerPrefix(method_);
  {
    auto [pool_end, workers_end] = Pipe();
    courier_.emplace(std::move(pool_end));
    courier_workers_.emplace(std::move(workers_end));
  }
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) throw_errno("eventfd");
  {
    MutexLock lock(mu_);
    workers_.resize(static_cast<size_t>(processes_));
    retry_.resize(static_cast<size_t>(processes_));
    watches_.resize(static_cast<size_t>(processes_));
    // The launcher is forked now, before this pool starts any thread. A
    // worker that cannot be started now is retried by the monitor.
    for (size_t slot = 0; slot < workers_.size(); ++slot) StartWorkerLocked(slot);
  }
  // The constructor returns once both threads are running: a thread still
  // starting allocates (its stack, its TLS), and a fork the caller makes
  // right after (a Manager's server, a fork child) would otherwise risk
  // inheriting an allocator's lock that thread held (seen with ASan's
  // allocator, which has no fork handlers in this toolchain).
  std::latch started(2);
  outcome_thread_ = std::thread([this, &started] {
    started.count_down();
    OutcomeLoop();
  });
  monitor_thread_ = std::thread([this, &started] {
    started.count_down();
    MonitorLoop();
  });
  started.wait();
}

PoolCore::~PoolCore() {
  // Like leaving Python's `with Pool() as p:`; both are no-ops after join().
  control_->Detach();
  Terminate();
  Join();
  ::close(wake_fd_);
}

bool PoolCore::OnPoolThread() const { return t_pool_thread_of == this; }

// What a worker loop needs: the pool's shared rings and arrays (a fork
// worker's are the pool's own members, inherited; a spawn or forkserver
// worker's arrive as descriptors, see WorkerSetup).
struct WorkerContext {
  ByteQueue* tasks;
  ByteQueue* outcomes;
  uint64_t* claim;
  char* init_error;  // kInitErrorBytes
  size_t init_error_bytes;
  void (*initializer_fn)() = nullptr;
  const std::function<void()>* initializer = nullptr;
  int maxtasksperchild = 0;
  bool portable_code = false;  // tasks name their code (CodeRef), not by address
  Connection* courier = nullptr;  // the pool's courier (workers' end)
  TaskGates* gates = nullptr;
};

namespace {

// Resolves a task's code: by address in a fork worker (the pool's own
// program image), by name elsewhere, cached (one dl_iterate_phdr per
// function for the worker's life).
std::pair<TaskEntry, void*> ResolveTaskCode(const TaskMessage& task, bool portable) {
  if (!portable) {
    return {reinterpret_cast<TaskEntry>(task.entry), reinterpret_cast<void*>(task.function)};
  }
  thread_local std::unordered_map<std::string, std::pair<TaskEntry, void*>> cache;
  auto it = cache.find(task.code);
  if (it == cache.end()) {
    auto [entry, function] = decode<std::pair<CodeRef, CodeRef>>(task.code);
    it = cache.emplace(task.code, std::pair{reinterpret_cast<TaskEntry>(FindCode(entry)),
                                           FindCodeOrNull(function)})
             .first;
  }
  return it->second;
}

// FetchDescriptors asks the pool for the descriptors of task `id`'s shared
// objects: its id and a reply socket go to the courier (one record, whatever
// other workers send meanwhile), the answer comes back on the reply socket.
DescriptorSource FetchDescriptors(Connection& courier, uint64_t id, uint32_t expected) {
  auto [mine, theirs] = Pipe();
  courier.send_message(encode(id), std::vector<int>{theirs.fileno()});
  theirs.close();
  if (!mine.poll(std::chrono::seconds(30))) {
    throw Error("Pool: the pool did not hand over the task's shared objects");
  }
  const std::string answer = mine.recv_bytes();
  DescriptorSource source = mine.take_arrived_descriptors();
  if (!answer.empty()) throw Error("Pool: " + answer);
  if (source.size() != expected) {
    throw Error("Pool: the task's shared objects did not all arrive");
  }
  return source;
}

int RunWorker(const WorkerContext& w) {
  // Ctrl-C goes to the whole foreground group: the pool's process decides,
  // and if it dies its workers go with it (PR_SET_PDEATHSIG).
  signal(SIGINT, SIG_IGN);
  BecomeBatchWorker();
  if (w.initializer_fn != nullptr || (w.initializer != nullptr && *w.initializer)) {
    try {
      if (w.initializer_fn != nullptr) {
        w.initializer_fn();
      } else {
        (*w.initializer)();
      }
    } catch (...) {
      // Reported to the monitor through shared memory (the exit code says
      // to look), so that a failing initializer breaks the pool instead of
      // making it start new workers at full speed for ever.
      const std::string why = ExceptionText();
      const size_t n = std::min(why.size(), w.init_error_bytes - 1);
      std::memcpy(w.init_error, why.data(), n);
      w.init_error[n] = '\0';
      return PoolCore::kInitFailedExit;
    }
  }
  // A worker that died while taking a task left it taken: it is reported
  // lost, never run (at most once).
  auto orphaned = [&w](uint64_t id) {
    Outcome lost;
    lost.id = id;
    lost.kind = OutcomeKind::kLost;
    lost.message = "a worker died while taking the task from the queue";
    w.outcomes->Put(Encode(lost), std::nullopt);
  };
  const ByteQueue::Claim claiming{w.claim, orphaned};
  int done = 0;
  std::string item;
  for (;;) {
    w.tasks->Get(&item, std::nullopt, &claiming);
    TaskMessage task = decode<TaskMessage>(item);
    if (task.id == 0) {
      ClearClaim(w.claim);
      return 0;
    }
    Outcome outcome;
    outcome.id = task.id;
    if (task.gated && !w.gates->Begin(task.id)) {
      // A future cancelled before it started: never run. The pool hears of
      // it so that it frees the task's gate.
      outcome.kind = OutcomeKind::kCancelled;
      w.outcomes->Put(Encode(outcome), std::nullopt);
      ClearClaim(w.claim);
      continue;
    }
    try {
      auto [entry, function] = ResolveTaskCode(task, w.portable_code);
      DescriptorSource shared;
      if (task.descriptors > 0) {
        if (w.courier == nullptr) throw Error("Pool: this worker has no courier");
        shared = FetchDescriptors(*w.courier, task.id, task.descriptors);
      }
      ScopedDescriptorSource arguments(&shared);
      outcome.payload = entry(function, task.args);
    } catch (...) {
      outcome.kind = OutcomeKind::kError;
      DescribeCurrentException(&outcome.type_name, &outcome.message);
    }
    w.outcomes->Put(Encode(outcome), std::nullopt);
    ClearClaim(w.claim);
    if (w.maxtasksperchild > 0 && ++done >= w.maxtasksperchild) return 3;  // Retire.
  }
}

}  // namespace

int PoolCore::WorkerMain(int slot) {
  WorkerContext w{&tasks_, &outcomes_, &claims_[static_cast<size_t>(slot)],
                  &init_errors_[static_cast<size_t>(slot) * kInitErrorBytes], kInitErrorBytes};
  w.initializer = &initializer_;
  w.maxtasksperchild = maxtasksperchild_;
  courier_.reset();  // the pool's end: not the worker's business
  w.courier = &*courier_workers_;
  w.gates = &gates_;
  return RunWorker(w);
}

int SpawnedPoolWorker(PoolWorkerSetup setup) {
  TaskGates gates(setup.gates);
  if (setup.claims.size() <= setup.slot ||
      setup.init_errors.size() < (setup.slot + 1) * PoolCore::kInitErrorBytes || !gates.Valid()) {
    return 2;  // Not a setup this pool made.
  }
  WorkerContext w{setup.tasks.get(), setup.outcomes.get(), &setup.claims[setup.slot],
                  &setup.init_errors[setup.slot * PoolCore::kInitErrorBytes], PoolCore::kInitErrorBytes};
  if (setup.initializer) {
    w.initializer_fn = reinterpret_cast<void (*)()>(FindCode(*setup.initializer));
  }
  w.maxtasksperchild = setup.maxtasksperchild;
  w.portable_code = true;
  w.courier = &setup.courier;
  w.gates = &gates;
  return RunWorker(w);
}

void PoolCore::StartLauncher() {
  launcher_ = std::make_unique<Launcher>([this](int slot) { return WorkerMain(slot); });
}

bool PoolCore::StartWorkerLocked(size_t slot) {
  try {
    if (portable_code_) {
      // A fresh program (spawn) or a fork of the forkserver: the pool's
      // shared memory travels as descriptors.
      PoolWorkerSetup setup{SharedRing(&tasks_),   SharedRing(&outcomes_), claims_,
                            init_errors_,          gates_.words(),         slot,
                            maxtasksperchild_,     initializer_code_,      *courier_workers_};
      auto worker = std::make_unique<Process>(
          ProcessOptions{.name_prefix = worker_prefix_, .daemon = true, .start_method = method_},
          &SpawnedPoolWorker, std::move(setup));
      worker->start();
      LogWorkerStarted(*worker);
      workers_[slot] = std::move(worker);
      retry_[slot].reset();
      start_failures_ = 0;
      return true;
    }
    if (!launcher_) StartLauncher();
    workers_[slot] = std::make_unique<Process>(
        launcher_->start({.name_prefix = worker_prefix_, .daemon = true}, static_cast<int>(slot)));
    LogWorkerStarted(*workers_[slot]);
    retry_[slot].reset();
    start_failures_ = 0;
    return true;
  } catch (const Error& e) {
    last_start_error_ = e.what();
    Log(INFO, [&e] { return std::string("pool: could not start a worker: ") + e.what(); });
    retry_[slot] = Clock::now() + StartBackoff(start_failures_);
    ++start_failures_;
    // A helper that died (or was never made) is made anew on the next try.
    // That fork is from this process, threads and all; the library's own
    // locks are safe across it (process/fork_guard), as the helper itself
    // only forks.
    if (launcher_ && !launcher_->alive()) launcher_.reset();
    return false;
  }
}

void PoolCore::StartDueWorkers() {
  bool broke = false;
  {
    MutexLock lock(mu_);
    const auto now = Clock::now();
    for (size_t slot = 0; slot < workers_.size(); ++slot) {
      if (!retry_[slot] || *retry_[slot] > now) continue;
      if (StartWorkerLocked(slot)) continue;
      const bool none_alive = std::none_of(workers_.begin(), workers_.end(),
                                           [](const auto& w) { return w != nullptr; });
      if (none_alive && start_failures_ >= kStartFailuresToBreak) {
        BreakLocked("Pool: no worker process could be started (" +
                    std::to_string(start_failures_) + " tries): " + last_start_error_);
        broke = true;
        break;
      }
    }
  }
  if (broke) FailPendingOfBrokenPool();
}

void PoolCore::Submit(TaskEntry entry, void* function, std::string args, Done done) {
  SubmitTask(entry, function, std::move(args), {}, std::move(done), /*gated=*/false);
}

uint64_t PoolCore::SubmitControlled(TaskEntry entry, void* function, std::string args,
                                    std::vector<ScopedFd> fds, Done done) {
  if (!fds.empty()) {
    std::call_once(courier_started_, [this] { courier_thread_ = std::thread([this] { CourierLoop(); }); });
  }
  return SubmitTask(entry, function, std::move(args), std::move(fds), std::move(done), /*gated=*/true);
}

bool PoolCore::CancelTask(uint64_t id, Done* done) {
  if (!gates_.Cancel(id)) return false;
  // The worker that takes it will skip it and report kCancelled, which
  // frees the gate; the caller completes the future now.
  DropParcel(id);
  *done = pending_.Take(id);
  return true;
}

void PoolCore::SubmitShared(TaskEntry entry, void* function, std::string args,
                            std::vector<ScopedFd> fds, Done done) {
  std::call_once(courier_started_, [this] { courier_thread_ = std::thread([this] { CourierLoop(); }); });
  SubmitTask(entry, function, std::move(args), std::move(fds), std::move(done), /*gated=*/false);
}

void PoolCore::CourierLoop() {
  // A thread entry: nothing may escape it (std::terminate), and a courier
  // that cannot go on leaves the tasks that need it to fail in their
  // worker, by its deadline, with a message.
  try {
    for (;;) {
      std::string request;
      DescriptorSource reply_socket;
      try {
        request = courier_->recv_bytes();
        reply_socket = courier_->take_arrived_descriptors();
      } catch (const EOFError&) {
        return;  // shut down (see Join)
      } catch (const Error&) {
        if (courier_->closed()) return;  // a frame that broke the connection
        continue;                        // a malformed record: skipped
      }
      AnswerCourierRequest(request, reply_socket);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mp::Pool: the courier of shared task arguments stopped: %s\n", e.what());
  }
}

void PoolCore::AnswerCourierRequest(std::string_view request, DescriptorSource& reply_socket) {
  try {
    const uint64_t id = decode<uint64_t>(request);
    Connection reply(reply_socket.Take(0), true, true, true);
    std::vector<ScopedFd> fds;
    {
      MutexLock lock(parcels_mu_);
      auto it = parcels_.find(id);
      if (it != parcels_.end()) {
        fds = std::move(it->second);
        parcels_.erase(it);
      }
    }
    reply.send_message(fds.empty() ? "the task's shared objects are gone" : "", RawFds(fds));
  } catch (const Error&) {
    // A request without a reply socket, or a worker gone: nothing to answer.
  }
}

uint64_t PoolCore::SubmitTask(TaskEntry entry, void* function, std::string args,
                              std::vector<ScopedFd> fds, Done done, bool gated) {
  Outcome failed;  // set when the task fails before it is queued
  {
    SubmitterScope in(this);
    if (state_.load() != State::kRun) {
      if (!broken_.load()) throw ValueError("Pool not running");
      failed.kind = OutcomeKind::kBroken;
    } else {
      TaskMessage task{next_id_.fetch_add(1), reinterpret_cast<uint64_t>(entry),
                       reinterpret_cast<uint64_t>(function), std::move(args), {}};
      if (portable_code_) task.code = PortableCode(entry, function);
      task.descriptors = static_cast<uint32_t>(fds.size());
      if (!fds.empty()) {
        MutexLock lock(parcels_mu_);
        parcels_[task.id] = std::move(fds);
      }
      task.gated = gated && gates_.Open(task.id);
      pending_.Add(task.id, std::move(done));
      if (Enqueue(Encode(task), /*behind_overflow=*/false)) return task.id;
      // Terminated or broken while waiting for room: the task fails now
      // (unless the pool failed it already).
      DropParcel(task.id);
      gates_.Close(task.id);
      done = pending_.Take(task.id);
      if (!done) return task.id;
      failed.id = task.id;
      failed.kind = broken_.load() ? OutcomeKind::kBroken : OutcomeKind::kTerminated;
      failed.message = "the pool was terminated before the task could be queued";
    }
  }
  // Outside the gate: a callback that calls close() must not wait for us.
  if (failed.kind == OutcomeKind::kBroken) failed.message = broken_message_;
  done(std::move(failed));
  return 0;
}

bool PoolCore::Enqueue(std::string_view item, bool behind_overflow) {
  if (OnPoolThread() || behind_overflow) {
    // A pool thread (a callback that submits) must not wait for room that
    // only its own progress can make; stop messages keep behind the tasks
    // that wait there. The outcome thread moves them to the ring in order.
    MutexLock lock(overflow_mu_);
    if (overflow_.empty() && tasks_.Put(item, Clock::now())) return true;
    overflow_.emplace_back(item);
    overflow_nonempty_.store(true);
    return true;
  }
  while (!tasks_.Put(item, Clock::now() + kPutRecheck)) {
    if (state_.load() == State::kTerminate) return false;
  }
  return true;
}

void PoolCore::FlushOverflow() {
  MutexLock lock(overflow_mu_);
  while (!overflow_.empty() && tasks_.Put(overflow_.front(), Clock::now())) overflow_.pop_front();
  overflow_nonempty_.store(!overflow_.empty());
}

void PoolCore::WaitForSubmitters() {
  // Bounded: a submitter holds its place only while it encodes and queues a
  // task, and one waiting for room gives up within kPutRecheck of a
  // terminate. A pool thread's own submit (a callback's) never waits.
  for (int round = 0; submitters_.load() != 0; ++round) {
    if (round < 100) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
}

void PoolCore::DropParcel(uint64_t id) {
  MutexLock lock(parcels_mu_);
  parcels_.erase(id);
}

void PoolCore::Finish(Outcome&& outcome) {
  DropParcel(outcome.id);  // a task that ended (or was lost) without taking them
  gates_.Close(outcome.id);
  Done done = pending_.Take(outcome.id);
  if (!done) return;  // Already failed (its worker died).
  try {
    done(std::move(outcome));
  } catch (...) {
    // A result's own code (decoding, the callbacks) already reports what it
    // throws; this keeps a pool thread alive whatever slips through.
    std::fprintf(stderr, "mp::Pool: completing task %llu threw %s\n",
                 static_cast<unsigned long long>(outcome.id), ExceptionText().c_str());
  }
}

void PoolCore::FailAllPending(OutcomeKind kind, const std::string& message) {
  {
    MutexLock lock(parcels_mu_);
    parcels_.clear();
  }
  for (auto& [id, done] : pending_.TakeAll()) {
    Outcome outcome;
    outcome.id = id;
    outcome.kind = kind;
    outcome.message = message;
    try {
      done(std::move(outcome));
    } catch (...) {
    }
  }
}

void PoolCore::OutcomeLoop() {
  t_pool_thread_of = this;
  // Both reused: their buffers keep their capacity from one outcome to the
  // next (see Encode). The `done` functions only read the outcome.
  std::string item;
  Outcome outcome;
  for (;;) {
    // With tasks waiting in the overflow, look again for room now and then
    // even if no outcome comes.
    const Deadline until = overflow_nonempty_.load()
                               ? Deadline(Clock::now() + std::chrono::milliseconds(10))
                               : std::nullopt;
    if (outcomes_.Get(&item, until)) {
      decode_in_place(item, outcome);
      if (outcome.id == 0) return;
      Finish(std::move(outcome));
    }
    if (overflow_nonempty_.load()) FlushOverflow();
  }
}

void PoolCore::Wake() {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void PoolCore::MonitorLoop() {
  t_pool_thread_of = this;
  for (;;) {
    std::vector<pollfd> polls{{wake_fd_, POLLIN, 0}};
    std::vector<size_t> polled_slots;
    std::vector<size_t> ended;
    Deadline next_timer;
    {
      MutexLock lock(mu_);
      if (kill_at_ && !killed_ && Clock::now() >= *kill_at_) {
        // terminate(): what SIGTERM did not end in the grace period.
        for (auto& worker : workers_) {
          if (worker) worker->kill();
        }
        killed_ = true;
      }
      if (kill_at_ && !killed_) next_timer = kill_at_;
      if (task_timeout_) {
        const Deadline look_again = WatchTaskTimes();
        if (!next_timer || *look_again < *next_timer) next_timer = look_again;
      }
      bool any = false;
      for (size_t slot = 0; slot < workers_.size(); ++slot) {
        if (retry_[slot]) {
          any = true;
          if (!next_timer || *retry_[slot] < *next_timer) next_timer = retry_[slot];
        }
        if (!workers_[slot]) continue;
        any = true;
        try {
          polls.push_back({workers_[slot]->sentinel(), POLLIN, 0});
          polled_slots.push_back(slot);
        } catch (const ProcessError&) {
          ended.push_back(slot);  // Already reaped (e.g. by active_children()).
        }
      }
      if (!any) {
        monitor_done_ = true;
        return;
      }
    }
    int timeout_ms = -1;
    if (next_timer) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(*next_timer - Clock::now()).count();
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left, 0, 60'000));
    }
    if (ended.empty() && ::poll(polls.data(), polls.size(), timeout_ms) < 0) continue;  // EINTR
    if (polls[0].revents) {
      uint64_t count;
      [[maybe_unused]] ssize_t n = ::read(wake_fd_, &count, sizeof count);
    }
    for (size_t i = 1; i < polls.size(); ++i) {
      if (polls[i].revents) ended.push_back(polled_slots[i - 1]);
    }
    for (size_t slot : ended) HandleWorkerEnd(slot);
    StartDueWorkers();
  }
}

void PoolCore::HandleWorkerEnd(size_t slot) {
  std::unique_ptr<Process> worker;
  {
    MutexLock lock(mu_);
    worker = std::move(workers_[slot]);
  }
  if (!worker) return;
  worker->join();
  const int code = worker->exitcode().value_or(255);
  const uint64_t word = std::atomic_ref<uint64_t>(claims_[slot]).exchange(0);
  const uint64_t claimed = word & ~kKilledForTime;
  {
    MutexLock lock(mu_);
    watches_[slot] = TaskWatch{};
  }
  if (claimed != 0) {
    Outcome lost;
    lost.id = claimed;
    if (word & kKilledForTime) {
      lost.kind = OutcomeKind::kTimeout;
      lost.message = "the task ran longer than the pool's task_timeout (" +
                     std::to_string(task_timeout_->count()) + " s): worker " + worker->name() +
                     " (pid " + std::to_string(worker->pid()) + ") was killed";
    } else {
      lost.kind = state_.load() == State::kTerminate ? OutcomeKind::kTerminated : OutcomeKind::kLost;
      lost.message = "worker " + worker->name() + " (pid " + std::to_string(worker->pid()) +
                     ") died with exit code " + std::to_string(code) + " while running the task";
    }
    Log(INFO, [&] { return "pool: task " + std::to_string(claimed) + " lost: " + lost.message; });
    Finish(std::move(lost));
  }
  Log(code == 0 || code == 3 ? DEBUG : INFO, [&] {
    return "pool: worker " + worker->name() + " (pid " + std::to_string(worker->pid()) +
           ") exited with code " + std::to_string(code);
  });
  bool broke = false;
  {
    MutexLock lock(mu_);
    const State state = state_.load();
    if (code == kInitFailedExit) {
      ++init_failures_;
      const char* why = &init_errors_[slot * kInitErrorBytes];
      if (init_failures_ >= kInitFailuresToBreak && state != State::kTerminate) {
        BreakLocked("Pool: the initializer failed in " + std::to_string(init_failures_) +
                    " workers in a row: " + std::string(why, strnlen(why, kInitErrorBytes)));
        broke = true;
      }
    } else {
      init_failures_ = 0;
    }
    const bool replace = !broke && (state == State::kRun || (state == State::kClose && code != 0));
    if (replace) {
      Log(DEBUG, [&] { return "pool: replacing worker " + worker->name(); });
      // After a failed initializer, not at once: see kInitFailuresToBreak.
      retry_[slot] = Clock::now() + (code == kInitFailedExit ? StartBackoff(init_failures_)
                                                             : std::chrono::milliseconds(0));
    }
  }
  if (broke) FailPendingOfBrokenPool();
}

Deadline PoolCore::WatchTaskTimes() {
  // The workers do not say when they start a task (that would cost every
  // task a system call): the monitor looks at their claims every tenth of
  // the limit, so a task is killed between 1.0 and 1.1 times its limit.
  const auto limit = std::chrono::duration_cast<Clock::duration>(*task_timeout_);
  const auto tick = std::clamp<Clock::duration>(limit / 10, std::chrono::milliseconds(1),
                                                std::chrono::milliseconds(100));
  const auto now = Clock::now();
  for (size_t slot = 0; slot < workers_.size(); ++slot) {
    TaskWatch& watch = watches_[slot];
    const uint64_t claimed = std::atomic_ref<uint64_t>(claims_[slot]).load();
    if (claimed != watch.id) {
      watch.id = claimed;
      watch.since = now;
      continue;
    }
    if (claimed == 0 || (claimed & kKilledForTime) || !workers_[slot]) continue;
    if (now - watch.since >= limit) {
      // Marked first, then killed: a worker that finished the task
      // meanwhile has either cleared its claim (the mark fails, the task
      // is done) or sees the mark and waits for the kill instead of taking
      // another task, which would be lost in its place. HandleWorkerEnd
      // fails the marked task with TimeoutError.
      uint64_t expected = claimed;
      if (std::atomic_ref<uint64_t>(claims_[slot]).compare_exchange_strong(expected, claimed | kKilledForTime)) {
        workers_[slot]->kill();
      }
    }
  }
  return now + tick;
}

void PoolCore::BreakLocked(std::string why) {
  if (broken_.load()) return;
  broken_message_ = std::move(why);
  std::fprintf(stderr, "%s\n", broken_message_.c_str());
  broken_.store(true);
  state_.store(State::kTerminate);
  for (auto& worker : workers_) {
    if (worker) worker->kill();  // Nothing left may run: its result is failed already.
  }
  for (auto& retry : retry_) retry.reset();
  killed_ = true;
}

void PoolCore::FailPendingOfBrokenPool() {
  // The submitters that got in before the state changed are waited for, so
  // that any task they add is in pending_ now.
  WaitForSubmitters();
  FailAllPending(OutcomeKind::kBroken, broken_message_);
}

void PoolCore::Close() {
  {
    MutexLock lock(mu_);
    if (state_.load() != State::kRun) return;
    state_.store(State::kClose);
  }
  // From a callback (a pool thread) it cannot wait: a submitter blocked on a
  // full ring may need this very thread to drain outcomes. A task such a
  // submitter adds behind the stop messages fails at join(); none hangs.
  if (!OnPoolThread()) WaitForSubmitters();
  // One stop request per worker, behind every task already queued (those in
  // the overflow included: Enqueue keeps order behind them).
  const std::string stop = encode(TaskMessage{});
  for (int i = 0; i < processes_; ++i) Enqueue(stop, /*behind_overflow=*/true);
}

void PoolCore::Terminate() {
  MutexLock lock(mu_);
  if (state_.load() == State::kTerminate) return;
  state_.store(State::kTerminate);
  for (auto& worker : workers_) {
    if (worker) worker->terminate();
  }
  for (auto& retry : retry_) retry.reset();
  kill_at_ = Clock::now() + terminate_grace_;
  Wake();
}

void PoolCore::Join() {
  if (OnPoolThread()) throw ProcessError("Pool.join: cannot join a pool from its own callback");
  MutexLock join_lock(join_mu_);
  {
    MutexLock lock(mu_);
    if (state_.load() == State::kRun) {
      throw ProcessError("Pool.join: call close() or terminate() first");
    }
    if (joined_) return;
    joined_ = true;
  }
  if (monitor_thread_.joinable()) monitor_thread_.join();
  if (courier_thread_.joinable()) {
    ::shutdown(courier_->fileno(), SHUT_RDWR);  // its recv returns EOF
    courier_thread_.join();
  }
  // Every worker has ended, so every outcome is in the queue: the stop
  // message goes behind them.
  outcomes_.Put(encode(Outcome{}), std::nullopt);
  if (outcome_thread_.joinable()) outcome_thread_.join();
  WaitForSubmitters();
  {
    MutexLock lock(overflow_mu_);
    overflow_.clear();  // Their tasks are pending, failed below.
    overflow_nonempty_.store(false);
  }
  if (broken_.load()) {
    FailAllPending(OutcomeKind::kBroken, broken_message_);
  } else {
    FailAllPending(OutcomeKind::kTerminated, "the pool was terminated before the task completed");
  }
  MutexLock lock(mu_);
  launcher_.reset();
}

}  // namespace mp::internal
