#include "process/launcher.h"

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/base/thread_annotations.h"
#include "base/mutex.h"
#include "ipc/pipe.h"
#include "process/popen.h"

namespace mp {
namespace internal {

// Set up by the constructor (before the Launcher is shared), then read and
// used by start() from any thread.
struct LauncherState {
  Mutex mu;
  pid_t owner = 0;  // set before sharing
  std::optional<Connection> control ABSL_GUARDED_BY(mu);
  std::shared_ptr<ChildState> helper;  // set before sharing
};

}  // namespace internal

Launcher::Launcher(std::function<int(int arg)> body) : state_(std::make_unique<internal::LauncherState>()) {
  auto [mine, theirs] = Pipe(true);
  internal::ChildSetup setup{"Launcher", true, {}, getpid(), current_process().name()};
  const int control_fd = theirs.fileno();
  const int parent_fd = mine.fileno();
  state_->helper = internal::LaunchFork(setup, [control_fd, parent_fd, body = std::move(body)] {
    signal(SIGINT, SIG_IGN);
    ::close(parent_fd);  // Or the parent's close would never reach the helper as EOF.
    internal::ServeForks(control_fd, [&body](internal::SpawnMessage& message) {
      signal(SIGINT, SIG_DFL);
      return body(decode<int>(message.args));
    });
    return 0;
  });
  theirs.close();
  internal::MutexLock lock(state_->mu);
  state_->control.emplace(std::move(mine));
  state_->owner = getpid();
}

Launcher::~Launcher() {
  if (state_->owner != getpid()) return;  // A forked copy: not ours to stop.
  {
    internal::MutexLock lock(state_->mu);
    state_->control.reset();  // EOF: the helper exits...
  }
  // ...unless a sibling forked meanwhile holds a copy of our end; the helper
  // is idle and single-threaded, so ending it outright is safe.
  internal::SendSignal(*state_->helper, SIGKILL);
  internal::WaitForExit(*state_->helper, std::nullopt);
}

bool Launcher::alive() { return !internal::TryReap(*state_->helper); }

Process Launcher::start(ProcessOptions options, int arg) {
  Process process(std::move(options));
  internal::ChildSetup setup{process.name(), process.daemon(), process.identity_, getpid(),
                             current_process().name()};
  internal::SpawnMessage message{"", {}, {}, encode(arg), setup, internal::ProcessAuthkey(), "", {}};
  {
    internal::MutexLock lock(state_->mu);
    if (state_->owner != getpid()) throw ProcessError("Launcher.start: launcher belongs to another process");
    process.child_ = internal::RequestFork(*state_->control, message);
  }
  internal::RegisterChild(process.child_);
  return process;
}

}  // namespace mp
