// The "fork" start method: the child is a copy of the parent.
#include <fcntl.h>
#include <sys/single_threaded.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/errors.h"
#include "base/pidfd.h"
#include "process/popen.h"
#include "process/starter_thread.h"
#include "sync/fork_safe_mutex.h"

namespace mp::internal {
namespace {

bool KernelHasPidfd() {
  static const bool has = [] {
    const int fd = PidfdOpen(getpid());
    if (fd < 0) return false;
    ::close(fd);
    return true;
  }();
  return has;
}

[[maybe_unused]] const bool kPidfdKnownAtFork = [] {
  RunBeforeEveryFork([] { KernelHasPidfd(); });
  return true;
}();

std::atomic<bool> g_fork_warning{true};
// The process that printed the warning: a forked child, a process of its
// own, warns again (kept as a pid so that the child writes nothing).
std::atomic<pid_t> g_fork_warned_by{0};

// ThreadCount reads this process's number of threads (field 20 of
// /proc/self/stat), 1 if it cannot.
int ThreadCount() {
  const int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 1;
  char buf[1024];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 1;
  buf[n] = '\0';
  // The command name (field 2) may hold spaces and parentheses: count the
  // fields after its last ')'.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return 1;
  int field = 2;
  for (; *p != '\0' && field < 20; ++p) {
    if (*p == ' ') ++field;
  }
  return std::atoi(p);
}

// WarnIfMultiThreaded: Python 3.12's DeprecationWarning, once per process.
// Cheap when it cannot apply: glibc knows whether a thread was ever made.
void WarnIfMultiThreaded() {
  if (__libc_single_threaded || g_fork_warned_by.load(std::memory_order_relaxed) == getpid() ||
      !g_fork_warning.load(std::memory_order_relaxed)) {
    return;
  }
  if (const char* off = std::getenv("MP_NO_FORK_WARNING"); off != nullptr && *off != '\0' &&
                                                             std::strcmp(off, "0") != 0) {
    return;
  }
  if (ThreadCount() <= 1 || g_fork_warned_by.exchange(getpid()) == getpid()) return;
  std::fprintf(stderr,
               "mp: warning: this process (pid=%d) is multi-threaded, use of fork() may lead to "
               "deadlocks in the child; use mp::set_start_method(\"forkserver\") (or "
               "\"spawn\"), or mp::set_fork_warning(false) to silence this\n",
               static_cast<int>(getpid()));
}

}  // namespace

MP_CHILD_PATH std::shared_ptr<ChildState> LaunchFork(ChildSetup setup,
                                                const std::function<int()>& body) {
  WarnIfMultiThreaded();
  ProcessAuthkey();  // made before the fork, so that the child has the same
  // Flush first, so the child does not print the parent's buffered output again.
  FlushStandardStreams();
  // Without pidfds (Linux < 5.3), the sentinel is a pipe whose write end only
  // the child holds: it reads as EOF when the child ends.
  int fallback[2] = {-1, -1};
  if (!KernelHasPidfd() && pipe2(fallback, O_CLOEXEC) != 0) throw_errno("pipe2");
  // Opened here rather than in the child: the parent has open's code paged
  // in, while a child would fault it in (measured: a fifth of a no-op child's
  // start-up here).
  ScopedFd devnull(OpenDevNull());
  // Built here for the same reason: the child adopts it without copying.
  const bool daemon = setup.daemon;
  const pid_t parent = setup.parent_pid;
  Identity identity = ChildIdentity(std::move(setup));
  pid_t pid = -1;
  int fork_errno = 0;
  auto fork_child = [&] {
    pid = fork();
    if (pid < 0) fork_errno = errno;
    if (pid == 0) {
      if (fallback[0] >= 0) ::close(fallback[0]);
      if (daemon) ArmDeathSignal(parent);
      ChildMain(identity, body, devnull.release());
    }
  };
  // A daemon dies with the thread that forked it (PR_SET_PDEATHSIG): see
  // starter_thread.h.
  if (daemon) {
    RunOnLongLivedThread(fork_child);
  } else {
    fork_child();
  }
  if (pid < 0) {
    if (fallback[0] >= 0) {
      ::close(fallback[0]);
      ::close(fallback[1]);
    }
    throw_errno("fork", fork_errno);
  }
  devnull.reset();
  auto child = NewChildState();
  child->pid = pid;
  child->name = identity.name;
  child->daemon = daemon;
  child->direct = true;
  if (fallback[0] >= 0) {
    ::close(fallback[1]);
    child->sentinel.reset(fallback[0]);
  } else {
    // Otherwise the sentinel is a pidfd, opened now, while the pid cannot
    // have been reaped: it becomes readable when the child ends, no
    // grandchild can hold it open by mistake, and signals sent through it
    // (SendSignal) can never reach a process that reused the pid.
    child->sentinel.reset(PidfdOpen(pid));
  }
  return child;
}

}  // namespace mp::internal

namespace mp {
void set_fork_warning(bool enabled) { internal::g_fork_warning.store(enabled); }
}  // namespace mp
