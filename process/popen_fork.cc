// The "fork" start method: the child is a copy of the parent.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "process/popen.h"
#include "sync/errors.h"
#include "sync/pidfd.h"

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

}  // namespace

MP_CHILD_PATH std::shared_ptr<ChildState> LaunchFork(ChildSetup setup,
                                                const std::function<int()>& body) {
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
  const pid_t pid = fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    if (fallback[0] >= 0) ::close(fallback[0]);
    if (daemon) ArmDeathSignal(parent);
    ChildMain(identity, body, devnull.release());
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
  }
  // Otherwise the sentinel is a pidfd, opened when first needed
  // (SentinelLocked): it becomes readable when the child ends, and no
  // grandchild can hold it open by mistake.
  return child;
}

}  // namespace mp::internal
