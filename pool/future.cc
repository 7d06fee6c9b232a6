#include "pool/future.h"

#include <cstdio>

namespace mp::internal {

uint64_t FutureStateBase::AddDoneCallback(absl::AnyInvocable<void()> fn) {
  {
    MutexLock lock(mu_);
    if (!callbacks_ran_) {
      const uint64_t token = next_token_++;
      callbacks_.emplace_back(token, std::move(fn));
      return token;
    }
  }
  try {
    fn();
  } catch (...) {
    ReportCallbackException(0);
  }
  return 0;
}

void FutureStateBase::RemoveDoneCallback(uint64_t token) {
  if (token == 0) return;
  absl::AnyInvocable<void()> removed;  // destroyed outside the lock
  MutexLock lock(mu_);
  for (auto it = callbacks_.begin(); it != callbacks_.end(); ++it) {
    if (it->first == token) {
      removed = std::move(it->second);
      callbacks_.erase(it);
      return;
    }
  }
}

void FutureStateBase::RunDoneCallbacks() {
  std::vector<std::pair<uint64_t, absl::AnyInvocable<void()>>> callbacks;
  {
    MutexLock lock(mu_);
    callbacks_ran_ = true;
    callbacks.swap(callbacks_);
  }
  for (auto& [token, fn] : callbacks) {
    try {
      fn();
    } catch (...) {
      ReportCallbackException(0);  // Python logs it and runs the others
    }
  }
}

CompletionWaiter::CompletionWaiter(std::vector<FutureStateBase*> states)
    : states_(std::move(states)), shared_(std::make_shared<Shared>()) {
  for (size_t i = 0; i < states_.size(); ++i) {
    // The callback holds the shared part only: it may run after this
    // waiter is gone (the future ends later).
    tokens_.push_back(states_[i]->AddDoneCallback([shared = shared_, i, state = states_[i]] {
      const bool raised = state->raised();
      {
        MutexLock lock(shared->mu);
        shared->ended.push_back(i);
        ++shared->ended_count;
        shared->any_raised |= raised;
      }
      shared->cv.notify_all();
    }));
  }
}

CompletionWaiter::~CompletionWaiter() {
  // A loop of wait(FIRST_COMPLETED) calls over the futures not done would
  // otherwise leave one callback per call on each of them.
  for (size_t i = 0; i < states_.size(); ++i) states_[i]->RemoveDoneCallback(tokens_[i]);
}

bool CompletionWaiter::Next(const Deadline& deadline, size_t* index) {
  MutexLock lock(shared_->mu);
  auto any = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu) { return !shared_->ended.empty(); };
  if (!deadline) {
    lock.Wait(shared_->cv, any);
  } else if (!lock.WaitUntil(shared_->cv, *deadline, any)) {
    return false;
  }
  *index = shared_->ended.front();
  shared_->ended.pop_front();
  return true;
}

bool CompletionWaiter::WaitFor(ReturnWhen when, const Deadline& deadline) {
  MutexLock lock(shared_->mu);
  auto holds = [this, when]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu) {
    const bool all = shared_->ended_count == states_.size();
    switch (when) {
      case ReturnWhen::kFirstCompleted:
        return shared_->ended_count > 0 || all;
      case ReturnWhen::kFirstException:
        return shared_->any_raised || all;
      case ReturnWhen::kAllCompleted:
        break;
    }
    return all;
  };
  if (!deadline) {
    lock.Wait(shared_->cv, holds);
    return true;
  }
  return lock.WaitUntil(shared_->cv, *deadline, holds);
}

std::string FutureStatus(const FutureStateBase& state, const std::type_info& result_type) {
  if (state.cancelled()) return "state=cancelled";
  if (!state.ready()) return state.Running() ? "state=running" : "state=pending";
  if (std::exception_ptr error = state.error()) {
    try {
      std::rethrow_exception(error);
    } catch (const RemoteError& e) {
      return "state=finished raised " + e.type_name();
    } catch (...) {
      return "state=finished raised " + CurrentExceptionTypeName();
    }
  }
  if (result_type == typeid(void)) return "state=finished returned None";
  return "state=finished returned " + TypeName(result_type);
}

}  // namespace mp::internal
