#include "pool/thread_pool_core.h"

#include <cstdio>
#include <utility>

#include "base/descriptors.h"
#include "base/errors.h"
#include "base/exception_types.h"
#include "process/process.h"

namespace mp::internal {
namespace {

// The thread pool whose thread this is, if any (join() from a callback).
thread_local const void* t_thread_pool_of = nullptr;

void Complete(PoolBackend::Done& done, uint64_t id, OutcomeKind kind, std::string message) {
  Outcome outcome;
  outcome.id = id;
  outcome.kind = kind;
  outcome.message = std::move(message);
  try {
    done(std::move(outcome));
  } catch (...) {
    // Results report their own callbacks' exceptions; nothing else throws.
  }
}

}  // namespace

ThreadPoolCore::ThreadPoolCore(PoolOptions options)
    : processes_(options.processes.value_or(cpu_count())),
      initializer_(std::move(options.initializer)),
      shared_(std::make_shared<Shared>()) {
  if (processes_ <= 0) throw ValueError("ThreadPool: number of threads must be at least 1");
  if (options.task_timeout) {
    throw ValueError("ThreadPool: task_timeout needs worker processes (a thread cannot be killed)");
  }
  MutexLock lock(join_mu_);
  for (int i = 0; i < processes_; ++i) threads_.emplace_back([this] { ThreadMain(); });
}

ThreadPoolCore::~ThreadPoolCore() {
  Terminate();
  Join();
}

uint64_t ThreadPoolCore::Add(Task task) {
  std::string broken;
  uint64_t id;
  {
    MutexLock lock(shared_->mu);
    if (shared_->state != State::kRun) {
      if (shared_->broken.empty()) throw ValueError("Pool not running");
      broken = shared_->broken;
    }
    id = shared_->next_id++;
    if (broken.empty()) shared_->queue.emplace(id, std::move(task));
  }
  if (!broken.empty()) {
    Complete(task.done, id, OutcomeKind::kBroken, broken);
    return 0;
  }
  shared_->cv.notify_one();
  return id;
}

void ThreadPoolCore::Submit(TaskEntry entry, void* function, std::string args, Done done) {
  Add(Task{entry, function, std::move(args), {}, std::move(done)});
}

void ThreadPoolCore::SubmitShared(TaskEntry entry, void* function, std::string args,
                                  std::vector<ScopedFd> fds, Done done) {
  Add(Task{entry, function, std::move(args), std::move(fds), std::move(done)});
}

uint64_t ThreadPoolCore::SubmitControlled(TaskEntry entry, void* function, std::string args,
                                          std::vector<ScopedFd> fds, Done done) {
  return Add(Task{entry, function, std::move(args), std::move(fds), std::move(done), true});
}

void ThreadPoolCore::Run(Task& task, uint64_t id) {
  Outcome outcome;
  outcome.id = id;
  try {
    DescriptorSource shared(std::move(task.fds));
    ScopedDescriptorSource arguments(&shared);
    outcome.payload = task.entry(task.function, task.args);
  } catch (...) {
    outcome.kind = OutcomeKind::kError;
    DescribeCurrentException(&outcome.type_name, &outcome.message);
  }
  try {
    task.done(std::move(outcome));
  } catch (...) {
    // As above: a result's own code reports what its callbacks throw.
  }
}

void ThreadPoolCore::ThreadMain() {
  t_thread_pool_of = this;
  if (initializer_) {
    try {
      initializer_();
    } catch (...) {
      // A pool whose initializer fails is broken, as a process pool whose
      // initializer keeps failing is: its tasks fail saying why.
      std::string type, what;
      DescribeCurrentException(&type, &what);
      std::vector<std::pair<uint64_t, Task>> failed;
      std::string why;
      {
        MutexLock lock(shared_->mu);
        if (shared_->broken.empty()) {
          shared_->broken = "ThreadPool: the initializer failed: " + type + ": " + what;
        }
        why = shared_->broken;
        shared_->state = State::kTerminate;
        for (auto& entry : shared_->queue) failed.emplace_back(entry.first, std::move(entry.second));
        shared_->queue.clear();
      }
      shared_->cv.notify_all();
      for (auto& [id, task] : failed) Complete(task.done, id, OutcomeKind::kBroken, why);
      return;
    }
  }
  for (;;) {
    uint64_t id;
    Task task;
    {
      MutexLock lock(shared_->mu);
      lock.Wait(shared_->cv, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu) {
        return !shared_->queue.empty() || shared_->state != State::kRun;
      });
      if (shared_->state == State::kTerminate || shared_->queue.empty()) return;
      auto node = shared_->queue.extract(shared_->queue.begin());
      id = node.key();
      task = std::move(node.mapped());
      shared_->running.insert(id);
    }
    Run(task, id);
    MutexLock lock(shared_->mu);
    shared_->running.erase(id);
  }
}

bool ThreadPoolCore::Shared::Cancel(uint64_t id) {
  Task task;
  {
    MutexLock lock(mu);
    auto it = queue.find(id);
    if (it == queue.end() || !it->second.controlled) return false;
    task = std::move(it->second);
    queue.erase(it);
  }
  Complete(task.done, id, OutcomeKind::kCancelled, "");
  return true;
}

bool ThreadPoolCore::Shared::Running(uint64_t id) const {
  MutexLock lock(mu);
  return running.contains(id);
}

void ThreadPoolCore::Shared::CancelQueued() {
  std::map<uint64_t, Task> cancelled;
  {
    MutexLock lock(mu);
    // Futures only, as in a process pool: apply_async and map go on.
    for (auto it = queue.begin(); it != queue.end();) {
      if (it->second.controlled) {
        cancelled.insert(queue.extract(it++));
      } else {
        ++it;
      }
    }
  }
  for (auto& [id, task] : cancelled) Complete(task.done, id, OutcomeKind::kCancelled, "");
}

void ThreadPoolCore::Close() {
  {
    MutexLock lock(shared_->mu);
    if (shared_->state == State::kRun) shared_->state = State::kClose;
  }
  shared_->cv.notify_all();
}

void ThreadPoolCore::Terminate() {
  std::map<uint64_t, Task> failed;
  {
    MutexLock lock(shared_->mu);
    if (shared_->state == State::kTerminate) return;
    shared_->state = State::kTerminate;
    failed.swap(shared_->queue);
  }
  shared_->cv.notify_all();
  for (auto& [id, task] : failed) {
    Complete(task.done, id, OutcomeKind::kTerminated, "the pool was terminated before the task started");
  }
}

void ThreadPoolCore::Join() {
  if (t_thread_pool_of == this) throw ProcessError("Pool.join: cannot join a pool from its own callback");
  {
    MutexLock lock(shared_->mu);
    if (shared_->state == State::kRun) throw ProcessError("Pool.join: call close() or terminate() first");
  }
  MutexLock lock(join_mu_);
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
}

}  // namespace mp::internal
