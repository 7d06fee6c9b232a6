#include "pool/pool.h"

#include "process/process.h"

namespace mp {

namespace internal {

std::exception_ptr OutcomeError(const Outcome& outcome) {
  switch (outcome.kind) {
    case OutcomeKind::kError:
      return std::make_exception_ptr(RemoteError(outcome.type_name, outcome.message));
    case OutcomeKind::kLost:
      return std::make_exception_ptr(WorkerLostError(outcome.message));
    case OutcomeKind::kTerminated:
      return std::make_exception_ptr(ProcessError(outcome.message));
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

}  // namespace internal

Pool::Pool() : Pool(PoolOptions{}) {}

Pool::Pool(int processes) : Pool(PoolOptions{.processes = processes}) {}

Pool::Pool(PoolOptions options)
    : core_(std::make_unique<internal::PoolCore>(options.processes.value_or(cpu_count()),
                                                 std::move(options.initializer),
                                                 options.maxtasksperchild, options.start_method)) {}

Pool::~Pool() = default;

void Pool::close() { core_->Close(); }

void Pool::terminate() { core_->Terminate(); }

void Pool::join() { core_->Join(); }

}  // namespace mp
