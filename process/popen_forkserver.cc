// The "forkserver" start method: a single-threaded server (a fresh exec of
// this program) forks each child, so children never inherit the locks of the
// parent's other threads. Each child's exit code comes back over a socket of
// its own, which is the child's sentinel in the parent.
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "base/errors.h"
#include "base/logging.h"
#include "base/pidfd.h"
#include "base/descriptors.h"
#include "ipc/pipe.h"
#include "process/popen.h"
#include "process/starter_thread.h"
#include "sync/fork_safe_mutex.h"

namespace mp::internal {
namespace {

// The parent's side: one server per process (a forked child that uses the
// forkserver starts its own, rather than sharing its parent's socket).
struct ForkserverClient {
  // Fork-safe: a child forked while another thread starts a forkserver
  // child finds it unlocked (and makes a server of its own).
  ForkSafeMutex mu;
  pid_t owner ABSL_GUARDED_BY(mu) = 0;
  pid_t server ABSL_GUARDED_BY(mu) = 0;
  std::optional<Connection> control ABSL_GUARDED_BY(mu);

  Connection& Ensure() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (owner != getpid()) {
      if (control && owner != 0) control->close();
      control.reset();
      auto [mine, theirs] = Pipe(true);
      server = ExecSelf(kForkserverFdEnv, theirs.fileno());
      theirs.close();
      control.emplace(std::move(mine));
      owner = getpid();
    }
    return *control;
  }
};

ForkserverClient& Client() {
  static ForkserverClient* client = new ForkserverClient;
  return *client;
}

// Made before any fork completes (see RunBeforeEveryFork): a child must not
// find Client()'s guard taken by a thread its parent had.
[[maybe_unused]] const bool kClientReadyAtFork = [] {
  RunBeforeEveryFork([] { Client(); });
  return true;
}();

void ReportExits(std::map<pid_t, int>& status_fds) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    auto it = status_fds.find(pid);
    if (it == status_fds.end()) continue;
    const int32_t code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    [[maybe_unused]] ssize_t ignored = ::write(it->second, &code, sizeof code);
    ::close(it->second);
    status_fds.erase(it);
  }
}

}  // namespace

std::shared_ptr<ChildState> LaunchForkserver(const SpawnMessage& message) {
  ForkserverClient& client = Client();
  std::shared_ptr<ChildState> child;
  // All of it on the long-lived thread: the server it may start must die
  // with that thread (PR_SET_PDEATHSIG), and the client's lock, a
  // ForkSafeMutex, must not be held while waiting for that thread (a fork
  // there, for another caller, would wait for the lock: starter_thread.h).
  RunOnLongLivedThread([&] {
    ForkSafeLock lock(client.mu);
    Connection& control = client.Ensure();
    try {
      child = RequestFork(control, message);
    } catch (const Error&) {
      client.owner = 0;  // Start a new server next time.
      throw;
    }
  });
  return child;
}

std::shared_ptr<ChildState> RequestFork(Connection& control, const SpawnMessage& message) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw_errno("socketpair");
  ScopedFd ours(fds[0]), theirs(fds[1]);
  ScopedFd pidfd;  // the server's: to signal the child (see ChildState::pidfd)
  pid_t pid;
  try {
    // The arguments' descriptors, and last the child's status socket.
    std::vector<int> fds = RawFds(message.fds);
    fds.push_back(theirs.get());
    control.send_message(encode(message), fds);
    // One reply: the pid (or -errno), with the child's pidfd when there is one.
    const std::string reply = control.recv_bytes();
    DescriptorSource reply_fds = control.take_arrived_descriptors();
    pid = decode<int>(reply);
    if (pid > 0 && reply_fds.size() > 0) pidfd = reply_fds.Take(0);
  } catch (const Error& e) {
    throw ProcessError(std::string("fork server: ") + e.what() +
                       " (for forkserver: does main() call mp::init(argc, argv) first?)");
  }
  if (pid < 0) {
    throw ProcessError(std::string("fork server: fork failed: ") + std::strerror(-pid));
  }
  auto child = NewChildState();
  child->pid = pid;
  child->name = message.setup.name;
  child->daemon = message.setup.daemon;
  child->direct = false;
  child->sentinel = std::move(ours);
  child->pidfd = std::move(pidfd);
  return child;
}

void ForkserverMain(int control_fd) { ServeForks(control_fd, &RunSpawnMessage); }

void ServeForks(int control_fd, const std::function<int(SpawnMessage&)>& run) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  Connection control(ScopedFd(control_fd), true, true, true);
  fcntl(control_fd, F_SETFD, FD_CLOEXEC);
  sigset_t chld, old_mask;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &old_mask);
  const int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) _exit(3);
  std::map<pid_t, int> status_fds;
  for (;;) {
    pollfd polls[2] = {{control_fd, POLLIN, 0}, {sfd, POLLIN, 0}};
    if (::poll(polls, 2, -1) < 0) {
      if (errno == EINTR) continue;
      _exit(3);
    }
    if (polls[1].revents) {
      signalfd_siginfo info;
      while (::read(sfd, &info, sizeof info) > 0) {
      }
      ReportExits(status_fds);
    }
    if (!polls[0].revents) continue;
    SpawnMessage message;
    int status_fd;
    try {
      message = ReceiveSpawnMessage(control);
    } catch (const Error&) {
      _exit(0);  // The parent went away.
    }
    if (message.fds.empty()) _exit(3);  // Not our client: every request has a status socket.
    status_fd = message.fds.back().release();
    message.fds.pop_back();
    const pid_t server = getpid();
    pid_t pid = fork();
    if (pid < 0) pid = -errno;  // Sent as is: the parent reports why.
    if (pid == 0) {
      ::close(control_fd);
      message.fds.shrink_to_fit();
      ::close(sfd);
      ::close(status_fd);
      for (auto& [_, fd] : status_fds) ::close(fd);
      sigprocmask(SIG_SETMASK, &old_mask, nullptr);
      if (message.setup.daemon) ArmDeathSignal(server);
      SetProcessAuthkey(message.authkey);
      get_logger().set_level(message.log_level);
      Identity identity = ChildIdentity(message.setup);
      ChildMain(identity, [&] { return run(message); });
    }
    // Opened before the child can be reaped here (ReportExits), so it is
    // the child's: the parent signals through it, never by a pid that may
    // have been reused.
    const int pidfd = pid > 0 ? PidfdOpen(pid) : -1;
    if (pid > 0) {
      status_fds[pid] = status_fd;
    } else {
      ::close(status_fd);
    }
    try {
      std::vector<int> reply_fds;
      if (pidfd >= 0) reply_fds.push_back(pidfd);
      control.send_message(encode(static_cast<int>(pid)), reply_fds);
    } catch (const Error&) {
      _exit(0);
    }
    if (pidfd >= 0) ::close(pidfd);
  }
}

}  // namespace mp::internal
