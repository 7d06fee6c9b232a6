#include "process/context.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "absl/base/thread_annotations.h"
#include "base/errors.h"
#include "base/logging.h"
#include "base/mutex.h"
#include "ipc/pipe.h"
#include "process/popen.h"

namespace mp {
namespace {

ABSL_CONST_INIT internal::Mutex g_method_mu;
std::string g_method ABSL_GUARDED_BY(g_method_mu);  // empty: not set ("fork")

void CheckMethod(const std::string& method) {
  if (method != "fork" && method != "spawn" && method != "forkserver") {
    throw ValueError("cannot find context for '" + method +
                     "' (methods: fork, spawn, forkserver)");
  }
}

std::optional<int> FdFromEnv(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  const int fd = std::atoi(value);
  unsetenv(name);
  return fd;
}

}  // namespace

void init(int, char**) {
  if (auto fd = FdFromEnv(internal::kForkserverFdEnv)) internal::ForkserverMain(*fd);
  if (auto fd = FdFromEnv(internal::kSpawnFdEnv)) {
    internal::SpawnMessage message;
    try {
      Connection conn(internal::ScopedFd(*fd), true, false, true);
      message = internal::ReceiveSpawnMessage(conn);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "mp: spawned child could not read its task: %s\n", e.what());
      _exit(1);
    }
    if (message.setup.daemon) internal::ArmDeathSignal(message.setup.parent_pid);
    internal::SetProcessAuthkey(message.authkey);
    get_logger().set_level(message.log_level);
    internal::Identity identity = internal::ChildIdentity(message.setup);
    internal::ChildMain(identity, [&] { return internal::RunSpawnMessage(message); });
  }
}

Context get_context(const std::string& method) {
  if (method.empty()) return Context(get_start_method());
  CheckMethod(method);
  return Context(method);
}

void set_start_method(const std::string& method, bool force) {
  CheckMethod(method);
  internal::MutexLock lock(g_method_mu);
  if (!g_method.empty() && !force) throw ProcessError("set_start_method: context has already been set");
  g_method = method;
}

std::string get_start_method(bool allow_none) {
  internal::MutexLock lock(g_method_mu);
  if (g_method.empty()) return allow_none ? "" : "fork";
  return g_method;
}

std::vector<std::string> get_all_start_methods() {
  std::vector<std::string> all{"fork", "spawn", "forkserver"};
  const std::string current = get_start_method();
  std::erase(all, current);
  all.insert(all.begin(), current);
  return all;
}

}  // namespace mp
