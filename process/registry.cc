// This process's identity, its children, and how they are waited for.
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <new>
#include <cerrno>
#include <cstdlib>

#include "base/deadline.h"
#include "base/errors.h"
#include "base/pidfd.h"
#include "process/popen.h"
#include "sync/fork_safe_mutex.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

namespace mp::internal {
namespace {

// What starting and joining a child writes, in one page that a fork does not
// copy: the child gets it zero-filled (MADV_WIPEONFORK), which is the right
// start for everything here (a std::mutex, which Mutex is, is all zeros when unlocked). Why:
// after a fork every page the parent or the child writes costs it a
// copy-on-write fault (about 20 us on this kind of VM, a tenth of a fork),
// and a fork does not write-protect a page it does not copy, so the parent
// writes this one for free.
struct Globals {
  Mutex self_mu;
  Identity* self ABSL_GUARDED_BY(self_mu) = nullptr;  // nullptr: MainIdentity()
  int children_numbered ABSL_GUARDED_BY(self_mu) = 0;  // Process objects created

  Mutex registry_mu;
  ChildState* children ABSL_GUARDED_BY(registry_mu) = nullptr;  // the unreaped ones
  // Set (under registry_mu) once a child was registered: lets a child that
  // started none end without taking the mutex, whose code it would fault in.
  std::atomic<bool> ever_registered{false};

  // Memory for ChildStates, kept for reuse (see NewChildState).
  Mutex blocks_mu;
  void* free_blocks ABSL_GUARDED_BY(blocks_mu) = nullptr;  // linked through their first word
  size_t free_block_size ABSL_GUARDED_BY(blocks_mu) = 0;
  int free_block_count ABSL_GUARDED_BY(blocks_mu) = 0;
};

// The main process's identity. Also what a child made by a plain fork()
// (not through mp) sees, the page that points elsewhere being wiped in it.
Identity& MainIdentity() {
  static Identity* identity = new Identity;  // never destroyed: used at exit
  return *identity;
}

bool g_wiped_on_fork = false;  // whether the kernel wipes Globals in a child

Globals& MakeGlobals() {
  const size_t size = (sizeof(Globals) + 4095) & ~size_t{4095};
  void* page = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) {
    page = ::operator new(sizeof(Globals));
  } else {
    g_wiped_on_fork = madvise(page, size, MADV_WIPEONFORK) == 0;  // Linux >= 4.14
#if defined(__SANITIZE_ADDRESS__)
    __lsan_register_root_region(page, size);  // LeakSanitizer skips mmap'd memory
#endif
  }
  return *new (page) Globals;
}

// Made on first use (even from another file's static initializer) and never
// destroyed: the exit handler uses it after static destructors may have run.
MP_CHILD_PATH Globals& G() {
  static Globals& globals = MakeGlobals();
  return globals;
}

void InstallExitHandler() {
  // A function-local static, not std::call_once: libstdc++'s call_once
  // writes thread-local state on every call, one more page fault per start.
  [[maybe_unused]] static const bool installed = [] {
    std::atexit(&ExitCleanup);
    return true;
  }();
}

[[maybe_unused]] const bool kRegistryReadyAtFork = [] {
  RunBeforeEveryFork([] {
    G();
    MainIdentity();
    InstallExitHandler();
  });
  return true;
}();

int StatusToExitCode(const siginfo_t& info) {
  if (info.si_code == CLD_EXITED) return info.si_status;
  return -info.si_status;  // CLD_KILLED, CLD_DUMPED
}

}  // namespace

namespace {

// Unlinks a reaped child from the registry.
void UnregisterChild(ChildState& child) {
  Globals& g = G();
  std::shared_ptr<ChildState> release;  // dropped after the lock
  MutexLock lock(g.registry_mu);
  if (!child.registered) return;
  if (child.prev != nullptr) child.prev->next = child.next;
  if (child.next != nullptr) child.next->prev = child.prev;
  if (g.children == &child) g.children = child.next;
  child.prev = child.next = nullptr;
  release = std::move(child.registered);
}

// ReapLocked: TryReap's work, under child.mu.
bool ReapLocked(ChildState& child) ABSL_EXCLUSIVE_LOCKS_REQUIRED(child.mu) {
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
  child.pidfd.reset();
  return true;
}

}  // namespace

bool TryReap(ChildState& child) {
  {
    MutexLock lock(child.mu);
    if (child.exitcode) return true;
    if (!ReapLocked(child)) return false;
  }
  UnregisterChild(child);
  return true;
}

namespace {

#ifndef P_PIDFD
#define P_PIDFD 3  // Linux 5.4; glibc 2.36's headers may lack it
#endif

// OpenOwnChildPidfd opens a pidfd for our unreaped child `pid`, or -1. The
// pid is ours until we reap it, unless the program reaped it behind our back
// (waitpid(-1)) and it was reused: the check that the pidfd's process is a
// child of ours (waitid on it, WNOWAIT) tells that case.
int OpenOwnChildPidfd(pid_t pid) {
  const int fd = PidfdOpen(pid);
  if (fd < 0) return -1;
  siginfo_t info{};
  if (waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(fd), &info,
             WEXITED | WNOHANG | WNOWAIT) != 0 &&
      errno == ECHILD) {
    ::close(fd);
    errno = ECHILD;
    return -1;
  }
  return fd;
}

}  // namespace

int SentinelLocked(ChildState& child) {
  if (!child.sentinel.valid() && child.direct && !child.exitcode) {
    const int fd = OpenOwnChildPidfd(child.pid);
    if (fd < 0) throw_errno("pidfd_open");
    child.sentinel.reset(fd);
  }
  return child.sentinel.get();
}

bool WaitForExit(ChildState& child, const Deadline& deadline) {
  for (;;) {
    int fd = -1;
    {
      MutexLock lock(child.mu);
      if (child.exitcode) return true;
      if (deadline || !child.direct) fd = SentinelLocked(child);
    }
    if (fd >= 0 && !WaitReadable(fd, deadline)) return false;
    if (TryReap(child)) return true;
    // join() without a timeout (or a pidfd readable a moment before waitid
    // sees the exit): block in waitid. WNOWAIT leaves the reaping to
    // TryReap, under the child's mutex, which another thread's is_alive()
    // may be taking. A plain join needs no pidfd: two system calls fewer.
    siginfo_t info{};
    if (waitid(P_PID, static_cast<id_t>(child.pid), &info, WEXITED | WNOWAIT) != 0 &&
        errno != EINTR && errno != ECHILD) {
      throw_errno("waitid");
    }
  }
}

void SendSignal(ChildState& child, int sig) {
  MutexLock lock(child.mu);
  if (child.exitcode) return;  // Reaped: its pid may be another process's now.
  if (child.direct) {
    // The sentinel is a pidfd opened at the start (or, on a kernel without
    // pidfds, a pipe: then the unreaped pid, still ours, is used).
    if (!child.sentinel.valid()) {
      const int fd = OpenOwnChildPidfd(child.pid);  // pidfd_open failed at the start
      if (fd < 0 && errno == ECHILD) return;  // Reaped by someone else: not ours.
      if (fd >= 0) child.sentinel.reset(fd);
    }
    const int fd = child.sentinel.get();
    if (fd >= 0 && PidfdSendSignal(fd, sig) == 0) return;
    if (fd >= 0 && errno == ESRCH) return;  // Ended (reaped or not): nothing to signal.
    ::kill(child.pid, sig);  // The sentinel is the fallback pipe.
    return;
  }
  if (child.pidfd.valid()) {
    PidfdSendSignal(child.pidfd.get(), sig);  // ESRCH: ended
  } else if (!WaitReadable(child.sentinel.get(), Clock::now())) {
    // A server without pidfds: the child's exit code has not come, so the
    // server has not reaped it yet, and the pid is still the child's.
    ::kill(child.pid, sig);
  }
}

namespace {

void* TakeBlock(size_t size) {
  Globals& g = G();
  {
    MutexLock lock(g.blocks_mu);
    if (g.free_blocks != nullptr && g.free_block_size == size) {
      void* block = g.free_blocks;
      g.free_blocks = *static_cast<void**>(block);
      --g.free_block_count;
      return block;
    }
  }
  void* block = ::operator new(size);
#if defined(__SANITIZE_ADDRESS__)
  // A child that exits normally holds its parent's ChildStates (and spare
  // blocks) with the list that led to them wiped: not a leak.
  __lsan_ignore_object(block);
#endif
  return block;
}

void GiveBlock(void* block, size_t size) {
  Globals& g = G();
  constexpr int kKeep = 64;
  {
    MutexLock lock(g.blocks_mu);
    if (g.free_block_count == 0) g.free_block_size = size;
    if (g.free_block_count < kKeep && g.free_block_size == size) {
      *static_cast<void**>(block) = g.free_blocks;
      g.free_blocks = block;
      ++g.free_block_count;
      return;
    }
  }
  ::operator delete(block);
}

// An allocator for std::allocate_shared that reuses blocks. Why not malloc:
// malloc and free write their per-thread cache and free() writes errno, two
// pages besides the block's own, each a copy-on-write fault after a fork;
// a reused block costs only its own page (see Globals).
template <class T>
struct ReusedBlocks {
  using value_type = T;
  ReusedBlocks() = default;
  template <class U>
  ReusedBlocks(const ReusedBlocks<U>&) {}  // NOLINT: rebinding, as allocators do
  T* allocate(size_t n) { return static_cast<T*>(TakeBlock(n * sizeof(T))); }
  void deallocate(T* p, size_t n) { GiveBlock(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const ReusedBlocks<U>&) const {
    return true;
  }
};

}  // namespace

std::shared_ptr<ChildState> NewChildState() {
  return std::allocate_shared<ChildState>(ReusedBlocks<ChildState>());
}

// (SelfMutex() is G().self_mu, which the analysis cannot tell.)
Identity& Self() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  return G().self != nullptr ? *G().self : MainIdentity();
}

Mutex& SelfMutex() { return G().self_mu; }

Identity ChildIdentity(ChildSetup setup) {
  Identity identity;
  identity.name = std::move(setup.name);
  identity.daemon = setup.daemon;
  identity.path = std::move(setup.identity);
  identity.parent.emplace(setup.parent_pid, std::move(setup.parent_name), false);
  return identity;
}

// (In the child, before it runs anything else: single-threaded.)
MP_CHILD_PATH void BecomeChild(Identity& identity) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Globals& g = G();
  // Adopted rather than copied: see Globals. Without MADV_WIPEONFORK, reset
  // by hand what the kernel would have: the parent's children are dropped
  // without being read (they are the parent's), and a mutex another thread
  // held at fork is made anew.
  if (!g_wiped_on_fork) {
    new (&g.self_mu) Mutex;
    g.children_numbered = 0;
    new (&g.registry_mu) Mutex;
    g.children = nullptr;
    g.ever_registered.store(false, std::memory_order_relaxed);
    new (&g.blocks_mu) Mutex;
  }
  g.self = &identity;
}

IdentityPath NextChildIdentity() {
  Globals& g = G();
  MutexLock lock(g.self_mu);
  IdentityPath path = (g.self != nullptr ? *g.self : MainIdentity()).path;
  path.push_back(++g.children_numbered);
  return path;
}

void ForgetDecodedProcessNumber() {
  Globals& g = G();
  MutexLock lock(g.self_mu);
  if (g.children_numbered > 0) --g.children_numbered;
}

std::string IdentitySuffix(const IdentityPath& path) {
  std::string out;
  for (size_t i = 0; i < path.size(); ++i) {
    if (i > 0) out += ":";
    out += std::to_string(path[i]);
  }
  return out;
}

void RegisterChild(std::shared_ptr<ChildState> child) {
  Globals& g = G();
  InstallExitHandler();
  MutexLock lock(g.registry_mu);
  g.ever_registered.store(true, std::memory_order_release);
  ChildState* raw = child.get();
  raw->next = g.children;
  if (g.children != nullptr) g.children->prev = raw;
  g.children = raw;
  raw->registered = std::move(child);
}

void ReapEnded() {
  Globals& g = G();
  if (!g.ever_registered.load(std::memory_order_acquire)) return;
  LiveChildren();
}

std::vector<std::shared_ptr<ChildState>> LiveChildren() {
  Globals& g = G();
  std::vector<std::shared_ptr<ChildState>> listed;
  {
    MutexLock lock(g.registry_mu);
    for (ChildState* c = g.children; c != nullptr; c = c->next) listed.push_back(c->registered);
  }
  std::vector<std::shared_ptr<ChildState>> live;
  for (auto& child : listed) {
    if (!TryReap(*child)) live.push_back(child);
  }
  return live;
}

MP_CHILD_PATH void ExitCleanup() {
  Globals& g = G();
  if (!g.ever_registered.load(std::memory_order_acquire)) return;
  {
    MutexLock lock(g.registry_mu);
    if (g.children == nullptr) return;
  }
  // Python's _exit_function: terminate daemonic children, then join all.
  for (auto& child : LiveChildren()) {
    if (child->daemon) SendSignal(*child, SIGTERM);
  }
  for (auto& child : LiveChildren()) WaitForExit(*child, std::nullopt);
}

}  // namespace mp::internal
