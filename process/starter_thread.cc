#include "process/starter_thread.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <condition_variable>
#include <exception>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "base/mutex.h"
#include "sync/fork_safe_mutex.h"

namespace mp::internal {
namespace {

thread_local bool t_on_starter = false;  // this thread is a starter

// One job at a time: starts are rare and the caller waits anyway. Its
// mutexes are plain ones, held across the job's fork by the waiting caller:
// a forked child never uses its copy (it makes a starter of its own).
struct Starter {
  pid_t owner = 0;  // the process whose thread this is
  Mutex callers;  // serializes callers
  Mutex mu;
  std::condition_variable cv;
  const absl::FunctionRef<void()>* job ABSL_GUARDED_BY(mu) = nullptr;
  std::exception_ptr error ABSL_GUARDED_BY(mu);
  bool done ABSL_GUARDED_BY(mu) = false;

  void Loop() ABSL_LOCKS_EXCLUDED(mu) {
    t_on_starter = true;
    MutexLock lock(mu);
    for (;;) {
      lock.Wait(cv, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return job != nullptr; });
      const absl::FunctionRef<void()>& fn = *job;
      lock.Unlock();
      std::exception_ptr caught;
      try {
        fn();
      } catch (...) {
        caught = std::current_exception();
      }
      lock.Lock();
      error = caught;
      job = nullptr;
      done = true;
      cv.notify_all();
    }
  }
};

// This process's starter, made (with its thread) on first use; a forked
// child, which has no such thread, makes its own. Never destroyed: the
// thread runs until the process ends. A parent's starter, copied into a
// child, is left alone there.
ForkSafeMutex& MakeMutex() {
  static ForkSafeMutex* make_mu = new ForkSafeMutex;
  return *make_mu;
}
[[maybe_unused]] const bool kMakeMutexReadyAtFork = [] {
  RunBeforeEveryFork([] { MakeMutex(); });
  return true;
}();

Starter& TheStarter() {
  static Starter* starter = nullptr;  // guarded by MakeMutex()
  ForkSafeLock lock(MakeMutex());
  if (starter == nullptr || starter->owner != getpid()) {
    starter = new Starter;
    starter->owner = getpid();
    Starter* s = starter;
    std::thread([s] { s->Loop(); }).detach();
  }
  return *starter;
}

bool OnMainThread() { return syscall(SYS_gettid) == getpid(); }

}  // namespace

void RunOnLongLivedThread(absl::FunctionRef<void()> fn) {
  if (OnMainThread() || t_on_starter) {
    fn();
    return;
  }
  Starter& s = TheStarter();
  MutexLock one_caller(s.callers);
  std::exception_ptr error;
  {
    MutexLock lock(s.mu);
    s.job = &fn;
    s.done = false;
    s.cv.notify_all();
    lock.Wait(s.cv, [&s]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) { return s.done; });
    error = std::exchange(s.error, nullptr);
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace mp::internal
