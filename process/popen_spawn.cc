// The "spawn" start method: the child is a fresh exec of this program, which
// mp::init() turns into the child.
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "base/errors.h"
#include "base/pidfd.h"
#include "ipc/pipe.h"
#include "process/popen.h"
#include "process/starter_thread.h"

extern char** environ;

namespace mp::internal {
namespace {

// The program's original command line, for the re-exec.
std::vector<std::string> CommandLine() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  size_t start = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i] == '\0') {
      args.push_back(all.substr(start, i - start));
      start = i + 1;
    }
  }
  if (args.empty()) args.push_back("mp-child");
  return args;
}

}  // namespace

pid_t ExecSelf(const char* env_name, int fd) {
  std::vector<std::string> args = CommandLine();
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::string marker = std::string(env_name) + "=" + std::to_string(fd);
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, kSpawnFdEnv, std::strlen(kSpawnFdEnv)) == 0 ||
        std::strncmp(*e, kForkserverFdEnv, std::strlen(kForkserverFdEnv)) == 0) {
      continue;
    }
    envp.push_back(*e);
  }
  envp.push_back(marker.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // dup2 onto itself clears close-on-exec for this one descriptor only.
  posix_spawn_file_actions_adddup2(&actions, fd, fd);
  pid_t pid = 0;
  int rc = 0;
  // The forkserver and daemonic spawn children die with the thread that
  // started them (PR_SET_PDEATHSIG): see starter_thread.h.
  RunOnLongLivedThread([&] {
    rc = posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), envp.data());
  });
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw_errno("posix_spawn", rc);
  return pid;
}

std::shared_ptr<ChildState> LaunchSpawn(const SpawnMessage& message) {
  // A socket pair rather than a pipe: the descriptors of the shared objects
  // among the arguments travel with the message (SCM_RIGHTS).
  auto [reader, writer] = Pipe(true);
  const pid_t pid = ExecSelf(kSpawnFdEnv, reader.fileno());
  reader.close();
  auto child = NewChildState();
  child->pid = pid;
  child->name = message.setup.name;
  child->daemon = message.setup.daemon;
  child->direct = true;
  const int pidfd = PidfdOpen(pid);
  if (pidfd < 0) throw_errno("pidfd_open");
  child->sentinel.reset(pidfd);
  try {
    writer.send_message(encode(message), RawFds(message.fds));
  } catch (const Error&) {
    // The child died before reading (its exit code will say why).
  }
  return child;
}

}  // namespace mp::internal
