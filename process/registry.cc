// This process's identity, its children, and how they are waited for.
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <new>
#include <cerrno>
#include <cstdlib>

#include "process/popen.h"
#include "sync/errors.h"

namespace mp::internal {
namespace {

struct Registry {
  std::mutex mu;
  std::vector<std::shared_ptr<ChildState>> children;  // guarded by mu
  size_t size_after_prune = 0;                        // guarded by mu
  // Set (under mu) once a child was registered: lets a child that started
  // none end without taking the mutex, whose code it would fault in.
  std::atomic<bool> ever_registered{false};
};

// Leaked on purpose: the exit handler uses it after static destructors may
// have started. Replaced (not cleared) in a new child, because another thread
// of the parent may have held its mutex at the moment of fork.
Registry* g_registry = new Registry;
std::mutex* g_self_mutex = new std::mutex;
Identity* g_self = new Identity;

Registry& TheRegistry() { return *g_registry; }

int StatusToExitCode(const siginfo_t& info) {
  if (info.si_code == CLD_EXITED) return info.si_status;
  return -info.si_status;  // CLD_KILLED, CLD_DUMPED
}

// Waits until `fd` is readable or the deadline passes.
bool WaitReadable(int fd, const Deadline& deadline) {
  for (;;) {
    int timeout_ms = -1;
    if (deadline) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now());
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, INT32_MAX));
    }
    pollfd p{fd, POLLIN, 0};
    const int n = ::poll(&p, 1, timeout_ms);
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) throw_errno("poll");
    if (n == 0 && deadline && Clock::now() >= *deadline) return false;
  }
}

}  // namespace

bool TryReap(ChildState& child) {
  std::lock_guard<std::mutex> lock(child.mu);
  if (child.exitcode) return true;
  if (child.direct) {
    siginfo_t info{};
    if (waitid(P_PID, static_cast<id_t>(child.pid), &info, WEXITED | WNOHANG) != 0) {
      if (errno == ECHILD) {
        // Reaped by someone else (the program's own waitpid(-1)); the status
        // is gone.
        child.exitcode = 255;
        child.sentinel.reset();
        return true;
      }
      throw_errno("waitid");
    }
    if (info.si_pid == 0) return false;
    child.exitcode = StatusToExitCode(info);
  } else {
    // A forkserver child: the server writes the exit code when it reaps it.
    if (!WaitReadable(child.sentinel.get(), Clock::now())) return false;
    int32_t code = 255;
    ssize_t n;
    do {
      n = ::read(child.sentinel.get(), &code, sizeof code);
    } while (n < 0 && errno == EINTR);
    child.exitcode = n == sizeof code ? code : 255;
  }
  child.sentinel.reset();
  return true;
}

bool WaitForExit(ChildState& child, const Deadline& deadline) {
  int fd;
  {
    std::lock_guard<std::mutex> lock(child.mu);
    if (child.exitcode) return true;
    fd = child.sentinel.get();
  }
  if (!WaitReadable(fd, deadline)) return false;
  if (TryReap(child)) return true;
  // The pidfd turned readable a moment before waitid can see the exit.
  std::lock_guard<std::mutex> lock(child.mu);
  if (child.direct) {
    siginfo_t info{};
    while (waitid(P_PID, static_cast<id_t>(child.pid), &info, WEXITED) != 0 && errno == EINTR) {
    }
    child.exitcode = StatusToExitCode(info);
    child.sentinel.reset();
  }
  return child.exitcode.has_value();
}

void SendSignal(ChildState& child, int sig) {
  std::lock_guard<std::mutex> lock(child.mu);
  // Not yet reaped: the pid is still ours (a zombie at worst), never reused.
  if (!child.exitcode) ::kill(child.pid, sig);
}

Identity& Self() { return *g_self; }

std::mutex& SelfMutex() { return *g_self_mutex; }

void BecomeChild(const Identity& identity) {
  // Rebuilt in place rather than reallocated: every page a new child touches
  // costs it a copy-on-write fault, and start-up time is what fork mode is for.
  // The parent's children list is dropped without being read (its elements
  // are the parent's), and a mutex another thread held at fork is reset.
  new (&g_registry->mu) std::mutex;
  new (&g_registry->children) std::vector<std::shared_ptr<ChildState>>();
  g_registry->size_after_prune = 0;
  g_registry->ever_registered.store(false, std::memory_order_relaxed);
  new (g_self_mutex) std::mutex;
  *g_self = identity;
}

std::vector<int> NextChildIdentity() {
  std::lock_guard<std::mutex> lock(SelfMutex());
  std::vector<int> path = Self().path;
  path.push_back(Self().next_child++);
  return path;
}

std::string IdentitySuffix(const std::vector<int>& path) {
  std::string out;
  for (size_t i = 0; i < path.size(); ++i) {
    if (i > 0) out += ":";
    out += std::to_string(path[i]);
  }
  return out;
}

void RegisterChild(std::shared_ptr<ChildState> child) {
  // A function-local static, not std::call_once: libstdc++'s call_once
  // writes thread-local state on every call, one more page fault per start.
  [[maybe_unused]] static const bool exit_handler_installed = [] {
    std::atexit(&ExitCleanup);
    return true;
  }();
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.ever_registered.store(true, std::memory_order_release);
  // Drop the children that were joined meanwhile, now and then, so a
  // program that starts millions of processes keeps a small registry.
  if (r.children.size() >= 2 * r.size_after_prune + 64) {
    std::erase_if(r.children, [](const std::shared_ptr<ChildState>& c) {
      std::lock_guard<std::mutex> child_lock(c->mu);
      return c->exitcode.has_value();
    });
    r.size_after_prune = r.children.size();
  }
  r.children.push_back(std::move(child));
}

std::vector<std::shared_ptr<ChildState>> LiveChildren() {
  Registry& r = TheRegistry();
  std::vector<std::shared_ptr<ChildState>> snapshot;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    snapshot = r.children;
  }
  std::vector<std::shared_ptr<ChildState>> live;
  for (auto& child : snapshot) {
    if (!TryReap(*child)) live.push_back(child);
  }
  std::lock_guard<std::mutex> lock(r.mu);
  std::erase_if(r.children, [](const std::shared_ptr<ChildState>& c) {
    std::lock_guard<std::mutex> child_lock(c->mu);
    return c->exitcode.has_value();
  });
  return live;
}

void ExitCleanup() {
  if (!TheRegistry().ever_registered.load(std::memory_order_acquire)) return;
  {
    std::lock_guard<std::mutex> lock(TheRegistry().mu);
    if (TheRegistry().children.empty()) return;
  }
  // Python's _exit_function: terminate daemonic children, then join all.
  for (auto& child : LiveChildren()) {
    if (child->daemon) SendSignal(*child, SIGTERM);
  }
  for (auto& child : LiveChildren()) WaitForExit(*child, std::nullopt);
  LiveChildren();
}

}  // namespace mp::internal
