#include "pool/pool_core.h"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdio>

#include "sync/errors.h"

namespace mp::internal {
namespace {

void ClearClaim(uint64_t* claim) { std::atomic_ref<uint64_t>(*claim).store(0); }

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

std::string WorkerPrefix(const std::string& method) {
  return method == "forkserver" ? "ForkServerPoolWorker" : "ForkPoolWorker";
}

}  // namespace

PoolCore::PoolCore(int processes, std::function<void()> initializer, int maxtasksperchild,
                   const std::string& start_method, const std::string& worker_name_prefix)
    : processes_(processes),
      maxtasksperchild_(maxtasksperchild),
      initializer_(std::move(initializer)),
      claims_(static_cast<size_t>(processes > 0 ? processes : 1)) {
  if (processes <= 0) throw ValueError("Pool: number of processes must be at least 1");
  if (maxtasksperchild < 0) throw ValueError("Pool: maxtasksperchild must be >= 0");
  if (start_method == "spawn") {
    throw ProcessError(
        "Pool: the 'spawn' start method is not supported for pools yet; 'fork' and "
        "'forkserver' pools start their workers from a single-threaded launcher");
  }
  const std::string prefix =
      !worker_name_prefix.empty()
          ? worker_name_prefix
          : WorkerPrefix(start_method.empty() ? get_start_method() : start_method);
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) throw_errno("eventfd");
  // The launcher is forked now, before this pool starts any thread.
  launcher_ = std::make_unique<Launcher>([this](int slot) { return WorkerMain(slot); });
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers_.resize(static_cast<size_t>(processes));
    for (int slot = 0; slot < processes; ++slot) {
      workers_[slot] = std::make_unique<Process>(
          launcher_->start({.name_prefix = prefix, .daemon = true}, slot));
    }
  }
  outcome_thread_ = std::thread([this] { OutcomeLoop(); });
  monitor_thread_ = std::thread([this] { MonitorLoop(); });
}

PoolCore::~PoolCore() {
  // Like leaving Python's `with Pool() as p:`; both are no-ops after join().
  Terminate();
  Join();
  ::close(wake_fd_);
}

int PoolCore::WorkerMain(int slot) {
  // Ctrl-C goes to the whole foreground group: the pool's process decides,
  // and if it dies its workers go with it (PR_SET_PDEATHSIG).
  signal(SIGINT, SIG_IGN);
  BecomeBatchWorker();
  if (initializer_) initializer_();
  uint64_t* claim = &claims_[static_cast<size_t>(slot)];
  int done = 0;
  std::string item;
  for (;;) {
    tasks_.Get(&item, std::nullopt, claim);
    TaskMessage task = decode<TaskMessage>(item);
    if (task.id == 0) {
      ClearClaim(claim);
      return 0;
    }
    Outcome outcome;
    outcome.id = task.id;
    try {
      auto entry = reinterpret_cast<TaskEntry>(task.entry);
      outcome.payload = entry(reinterpret_cast<void*>(task.function), task.args);
    } catch (const RemoteError& e) {
      outcome.kind = OutcomeKind::kError;
      outcome.type_name = e.type_name();
      outcome.message = e.what();
    } catch (const std::exception& e) {
      outcome.kind = OutcomeKind::kError;
      outcome.type_name = CurrentExceptionTypeName();
      outcome.message = e.what();
    } catch (...) {
      outcome.kind = OutcomeKind::kError;
      outcome.type_name = CurrentExceptionTypeName();
      outcome.message = "unknown exception";
    }
    outcomes_.Put(Encode(outcome), std::nullopt);
    ClearClaim(claim);
    if (maxtasksperchild_ > 0 && ++done >= maxtasksperchild_) return 3;  // Retire.
  }
}

void PoolCore::Submit(TaskEntry entry, void* function, std::string args, Done done) {
  TaskMessage task{next_id_.fetch_add(1), reinterpret_cast<uint64_t>(entry),
                   reinterpret_cast<uint64_t>(function), std::move(args)};
  if (state_.load() != State::kRun) throw ValueError("Pool not running");
  pending_.Add(task.id, std::move(done));
  tasks_.Put(Encode(task), std::nullopt);
}

void PoolCore::Finish(Outcome&& outcome) {
  Done done = pending_.Take(outcome.id);
  if (!done) return;  // Already failed (its worker died).
  done(std::move(outcome));
}

void PoolCore::OutcomeLoop() {
  // Both reused: their buffers keep their capacity from one outcome to the
  // next (see Encode). The `done` functions only read the outcome.
  std::string item;
  Outcome outcome;
  for (;;) {
    outcomes_.Get(&item, std::nullopt);
    decode_in_place(item, outcome);
    if (outcome.id == 0) return;
    Finish(std::move(outcome));
  }
}

void PoolCore::Wake() {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void PoolCore::MonitorLoop() {
  for (;;) {
    std::vector<pollfd> polls{{wake_fd_, POLLIN, 0}};
    std::vector<size_t> polled_slots;
    std::vector<size_t> ended;
    {
      std::lock_guard<std::mutex> lock(mu_);
      bool any = false;
      for (size_t slot = 0; slot < workers_.size(); ++slot) {
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
    if (ended.empty() && ::poll(polls.data(), polls.size(), -1) < 0) continue;  // EINTR
    if (polls[0].revents) {
      uint64_t count;
      [[maybe_unused]] ssize_t n = ::read(wake_fd_, &count, sizeof count);
    }
    for (size_t i = 1; i < polls.size(); ++i) {
      if (polls[i].revents) ended.push_back(polled_slots[i - 1]);
    }
    for (size_t slot : ended) HandleWorkerEnd(slot);
  }
}

void PoolCore::HandleWorkerEnd(size_t slot) {
  std::unique_ptr<Process> worker;
  {
    std::lock_guard<std::mutex> lock(mu_);
    worker = std::move(workers_[slot]);
  }
  worker->join();
  const int code = worker->exitcode().value_or(255);
  const uint64_t claimed = std::atomic_ref<uint64_t>(claims_[slot]).exchange(0);
  if (claimed != 0) {
    Outcome lost;
    lost.id = claimed;
    {
      std::lock_guard<std::mutex> lock(mu_);
      lost.kind = state_ == State::kTerminate ? OutcomeKind::kTerminated : OutcomeKind::kLost;
    }
    lost.message = "worker " + worker->name() + " (pid " + std::to_string(worker->pid()) +
                   ") died with exit code " + std::to_string(code) + " while running the task";
    Finish(std::move(lost));
  }
  std::lock_guard<std::mutex> lock(mu_);
  const bool replace = state_ == State::kRun || (state_ == State::kClose && code != 0);
  if (!replace) return;
  try {
    workers_[slot] = std::make_unique<Process>(launcher_->start(
        {.name_prefix = worker->name().substr(0, worker->name().rfind('-')), .daemon = true},
        static_cast<int>(slot)));
  } catch (const Error& e) {
    std::fprintf(stderr, "mp::Pool: could not replace worker %s: %s\n", worker->name().c_str(),
                 e.what());
  }
}

void PoolCore::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kRun) return;
  state_ = State::kClose;
  // One stop request per worker, behind every task already queued.
  const std::string stop = encode(TaskMessage{});
  for (int i = 0; i < processes_; ++i) tasks_.Put(stop, std::nullopt);
}

void PoolCore::Terminate() {
  std::lock_guard<std::mutex> lock(mu_);
  state_ = State::kTerminate;
  for (auto& worker : workers_) {
    if (worker) worker->terminate();
  }
  Wake();
}

void PoolCore::Join() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ == State::kRun) {
      throw ProcessError("Pool.join: call close() or terminate() first");
    }
    if (joined_) return;
    joined_ = true;
  }
  if (monitor_thread_.joinable()) monitor_thread_.join();
  // Every worker has ended, so every outcome is in the queue: the stop
  // message goes behind them.
  outcomes_.Put(encode(Outcome{}), std::nullopt);
  if (outcome_thread_.joinable()) outcome_thread_.join();
  for (auto& [id, done] : pending_.TakeAll()) {
    Outcome outcome;
    outcome.id = id;
    outcome.kind = OutcomeKind::kTerminated;
    outcome.message = "the pool was terminated before the task completed";
    done(std::move(outcome));
  }
  launcher_.reset();
}

}  // namespace mp::internal
