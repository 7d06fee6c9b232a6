#include "pool/pool.h"

#include <cstdio>
#include <map>
#include <mutex>

#include "base/exception_types.h"
#include "base/logging.h"
#include "pool/pool_core.h"
#include "pool/thread_pool_core.h"
#include "process/process.h"
#include "sync/fork_safe_mutex.h"

namespace mp {

namespace internal {

std::exception_ptr OutcomeError(const Outcome& outcome) {
  switch (outcome.kind) {
    case OutcomeKind::kError:
      return RebuildException(outcome.type_name, outcome.message);
    case OutcomeKind::kLost:
      return std::make_exception_ptr(WorkerLostError(outcome.message));
    case OutcomeKind::kTerminated:
      return std::make_exception_ptr(ProcessError(outcome.message));
    case OutcomeKind::kBroken:
      return std::make_exception_ptr(Error(outcome.message));
    case OutcomeKind::kCancelled:
      return std::make_exception_ptr(CancelledError());
    case OutcomeKind::kTimeout:
      return std::make_exception_ptr(TimeoutError(outcome.message));
    case OutcomeKind::kOk:
      break;
  }
  return nullptr;
}

void CallErrorCallback(const std::function<void(const Error&)>& callback,
                       const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    callback(e);
  } catch (const std::exception& e) {
    callback(Error(e.what()));
  }
}

void ReportCallbackException(uint64_t task_id) noexcept {
  std::string what;
  try {
    throw;
  } catch (const std::exception& e) {
    what = CurrentExceptionTypeName() + ": " + e.what();
  } catch (...) {
    what = CurrentExceptionTypeName();
  }
  std::fprintf(stderr, "Exception in callback of task %llu: %s\n",
               static_cast<unsigned long long>(task_id), what.c_str());
}

void ThrowEncodeFailure() {
  try {
    throw;
  } catch (const std::exception& e) {
    throw Error("the task's result could not be encoded: " + CurrentExceptionTypeName() + ": " +
                e.what());
  } catch (...) {
    throw Error("the task's result could not be encoded: " + CurrentExceptionTypeName());
  }
}

namespace {

struct BackendRegistry {
  ForkSafeMutex mu;  // a child forked while another thread holds it finds it free
  std::map<std::string, PoolBackendFactory> factories ABSL_GUARDED_BY(mu);
  std::string default_name ABSL_GUARDED_BY(mu);
};

BackendRegistry& Backends() {
  static auto* registry = new BackendRegistry;  // never destroyed: used at exit
  return *registry;
}

// A child must not find Backends()'s guard taken by a parent's thread.
[[maybe_unused]] const bool kBackendsReadyAtFork = [] {
  RunBeforeEveryFork([] { Backends(); });
  return true;
}();

}  // namespace

void RegisterPoolBackend(const std::string& name, PoolBackendFactory factory) {
  BackendRegistry& backends = Backends();
  ForkSafeLock lock(backends.mu);
  backends.factories[name] = std::move(factory);
}

void SetDefaultPoolBackend(const std::string& name) {
  BackendRegistry& backends = Backends();
  ForkSafeLock lock(backends.mu);
  backends.default_name = name;
}

std::unique_ptr<PoolBackend> MakePoolBackend(PoolOptions options) {
  PoolBackendFactory factory;
  {
    BackendRegistry& backends = Backends();
    ForkSafeLock lock(backends.mu);
    const std::string& name =
        options.start_method.empty() ? backends.default_name : options.start_method;
    auto it = backends.factories.find(name);
    if (it != backends.factories.end()) {
      factory = it->second;
    } else if (name == "mpi") {
      throw ProcessError(
          "Pool: the 'mpi' start method needs //pool:mpi linked in and mp::mpi::init(argc, "
          "argv) called first (pool/mpi_pool.h)");
    }
  }
  if (factory) return factory(std::move(options));
  return std::make_unique<PoolCore>(std::move(options));
}

}  // namespace internal

Pool::Pool() : Pool(PoolOptions{}) {}

Pool::Pool(int processes) : Pool(PoolOptions{.processes = processes}) {}

Pool::Pool(PoolOptions options)
    : core_(internal::MakePoolBackend(std::move(options))),
      control_(core_->control()),
      liveness_(std::make_shared<Liveness>()) {
  internal::MutexLock lock(liveness_->mu);
  liveness_->pool = this;
}

Pool::Pool(std::unique_ptr<internal::PoolBackend> backend)
    : core_(std::move(backend)), control_(core_->control()), liveness_(std::make_shared<Liveness>()) {
  internal::MutexLock lock(liveness_->mu);
  liveness_->pool = this;
}

Pool::~Pool() {
  // Terminated first, so that a lazy imap blocked submitting gives up and
  // lets go of the liveness lock; then no imap reaches this pool again.
  core_->Terminate();
  internal::MutexLock lock(liveness_->mu);
  liveness_->pool = nullptr;
}

ThreadPool::ThreadPool() : ThreadPool(PoolOptions{}) {}

ThreadPool::ThreadPool(int threads) : ThreadPool(PoolOptions{.processes = threads}) {}

ThreadPool::ThreadPool(PoolOptions options)
    : Pool(std::make_unique<internal::ThreadPoolCore>(std::move(options))) {
  kind_ = "mp::ThreadPool";
}

void Pool::cancel_queued() {
  if (auto control = core_->control()) control->CancelQueued();
}

void Pool::close() {
  internal::Log(DEBUG, [] { return std::string("closing pool"); });
  core_->Close();
  int run = 0;
  state_.compare_exchange_strong(run, 1);
}

void Pool::terminate() {
  internal::Log(DEBUG, [] { return std::string("terminating pool"); });
  core_->Terminate();
  state_.store(2);
}

void Pool::join() {
  internal::Log(DEBUG, [] { return std::string("joining pool workers"); });
  core_->Join();
}

std::ostream& operator<<(std::ostream& os, const Pool& pool) {
  static constexpr const char* kStates[] = {"RUN", "CLOSE", "TERMINATE"};
  return os << '<' << pool.kind_ << " state=" << kStates[pool.state_.load()]
            << " pool_size=" << pool.processes() << '>';
}

}  // namespace mp
