// The launch strategies and the bookkeeping behind mp::Process.
//
// Internal to //process. One file per strategy, as CPython's popen_*.py:
// popen_fork.cc, popen_spawn.cc, popen_forkserver.cc. registry.cc keeps this
// process's identity and its children; bootstrap.cc is the code every child
// runs around its target.
#ifndef PROCESS_POPEN_H_
#define PROCESS_POPEN_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "base/mutex.h"
#include "base/scoped_fd.h"
#include "ipc/pipe.h"
#include "process/function_id.h"
#include "process/process.h"
#include "sync/futex.h"

// MP_CHILD_PATH marks the code a new fork child runs before its target. A
// fork does not copy the page tables of code, so a child faults in each
// 64 KiB stretch of code it runs (about 20 us each here); marked hot, GCC puts
// these functions together (.text.hot), in one or two such stretches.
#define MP_CHILD_PATH [[gnu::hot]]

namespace mp::internal {

// One started child, shared by its Process handle and, until it is reaped,
// the registry.
struct ChildState {
  pid_t pid = 0;
  ScopedFd sentinel;   // readable once the child has ended (see SentinelLocked)
  // A pidfd to signal a child that is not our own (a forkserver's or a
  // launcher's), sent by its server: its pid may be reaped and reused
  // without our knowing. (Our own children signal through the sentinel.)
  ScopedFd pidfd;
  bool direct = true;  // our own child (reaped with waitid); else the forkserver's
  std::string name;
  bool daemon = false;
  Mutex mu;
  std::optional<int> exitcode ABSL_GUARDED_BY(mu);  // set once reaped

  // The registry's links (guarded by its mutex): an intrusive list, so that
  // registering a child writes no memory but the child's own and the
  // registry's (see registry.cc). `registered` keeps the child alive while
  // it is listed.
  ChildState* prev = nullptr;
  ChildState* next = nullptr;
  std::shared_ptr<ChildState> registered;
};

// NewChildState: a fresh ChildState (in reused memory: see registry.cc).
std::shared_ptr<ChildState> NewChildState();

// TryReap collects the child's exit status if it has ended; never blocks.
// Returns true once the child has ended. A reaped child leaves the registry.
bool TryReap(ChildState& child);
// SentinelLocked (under child.mu) returns the child's sentinel, or -1 once it
// was reaped. A direct child's pidfd is opened on first use: most children are
// only ever joined, which needs none.
int SentinelLocked(ChildState& child) ABSL_EXCLUSIVE_LOCKS_REQUIRED(child.mu);
// WaitForExit blocks until the child ends or the deadline.
bool WaitForExit(ChildState& child, const Deadline& deadline);
// SendSignal signals the child unless it has already ended and been reaped,
// through a pidfd where one can be had (pidfd_send_signal), so that it can
// never reach another process that was given the child's pid.
void SendSignal(ChildState& child, int sig);

// ---- This process's identity and children (registry.cc) ----

// Who a new child is, as its parent describes it.
struct ChildSetup {
  std::string name;
  bool daemon = false;
  IdentityPath identity;
  pid_t parent_pid = 0;
  std::string parent_name;
  template <class Archive>
  void save(Archive& ar) const {
    ar(name, daemon, std::vector<int>(identity.begin(), identity.end()), parent_pid, parent_name);
  }
  template <class Archive>
  void load(Archive& ar) {
    std::vector<int> path;
    ar(name, daemon, path, parent_pid, parent_name);
    identity.assign(path.begin(), path.end());
  }
};

// This process's identity.
struct Identity {
  std::string name = "MainProcess";
  bool daemon = false;
  IdentityPath path;  // Python's _identity: () in main, (1,) for Process-1, ...
  std::optional<ProcessInfo> parent;
};

// Self is this process's identity; lock SelfMutex() around access.
Mutex& SelfMutex();
Identity& Self() ABSL_EXCLUSIVE_LOCKS_REQUIRED(SelfMutex());
// NextChildIdentity reserves the next child number: returns the child's path.
IdentityPath NextChildIdentity();
std::string IdentitySuffix(const IdentityPath& path);

// ChildIdentity is the identity a child described by `setup` takes.
Identity ChildIdentity(ChildSetup setup);
// BecomeChild, in a new child, adopts `identity` (not copied: it must live as
// long as the process) and starts an empty registry (the parent's children
// are not the child's).
void BecomeChild(Identity& identity);

// RegisterChild lists a started child until it is reaped, for
// active_children() and the exit handler.
void RegisterChild(std::shared_ptr<ChildState> child);
// ReapEnded collects the exit status of every registered child that has
// ended (Python's _cleanup(), run at each start): no zombies pile up from
// children that are never joined.
void ReapEnded();
// LiveChildren reaps what ended and returns the rest.
std::vector<std::shared_ptr<ChildState>> LiveChildren();
// ExitCleanup: terminate daemonic children, then join every child.
void ExitCleanup();

// ---- The authkey (authkey.cc) ----

// ProcessAuthkey is this process's authkey, made (32 random bytes) at the
// first call; LaunchFork calls it before forking, so that children share it.
std::string ProcessAuthkey();
// SetProcessAuthkey: a spawned child takes its parent's key.
void SetProcessAuthkey(std::string key);

// ---- Launching (popen_*.cc) ----

// What a spawn or forkserver child receives.
struct SpawnMessage {
  std::string build_id;
  CodeRef entry;
  CodeRef function;     // {} for a function object (it is in args)
  std::string args;
  ChildSetup setup;
  std::string authkey;  // the parent's (ProcessAuthkey)
  std::string subclass;  // a registered Process subclass's type, whose object is args
  // The descriptors of the shared objects in args (their indices), sent
  // beside the bytes (SCM_RIGHTS), not in them.
  std::vector<ScopedFd> fds;
  int log_level = 0;  // the parent's get_logger().level(), as Python passes it
  template <class Archive>
  void serialize(Archive& ar) {
    ar(build_id, entry, function, args, setup, authkey, subclass, log_level);
  }
};

// MakeSpawnMessage: the message that starts `recipe`'s target, or (with
// `subclass` non-null) the subclass object `process`.
SpawnMessage MakeSpawnMessage(const SpawnRecipe& recipe, const ChildSetup& setup);
SpawnMessage MakeSubclassMessage(const Process& process, const char* type, const SubclassRunner& runner,
                                 const ChildSetup& setup);
// ReceiveSpawnMessage reads a SpawnMessage and its descriptors from `conn`.
SpawnMessage ReceiveSpawnMessage(Connection& conn);

std::shared_ptr<ChildState> LaunchFork(ChildSetup setup, const std::function<int()>& body);
std::shared_ptr<ChildState> LaunchSpawn(const SpawnMessage& message);
std::shared_ptr<ChildState> LaunchForkserver(const SpawnMessage& message);

// ---- In the child (bootstrap.cc) ----

// ChildMain becomes the child with `identity` (see BecomeChild: the caller's
// object, which lives on since ChildMain never returns), runs `body`, reports
// an escaped exception as Python does, flushes the standard streams, joins or
// terminates its own children and _exits with the code. Its stdin becomes
// /dev/null, as in Python: `devnull`, when the parent opened it before the
// fork (ChildMain closes it), else opened here.
[[noreturn]] void ChildMain(Identity& identity, const std::function<int()>& body,
                            int devnull = -1);
// OpenDevNull opens /dev/null for reading, close-on-exec.
int OpenDevNull();
// RunSpawnMessage checks the build id and calls the named target, its
// arguments decoded with the message's descriptors.
int RunSpawnMessage(SpawnMessage& message);
// FlushStandardStreams flushes the C++ standard streams and every C stream,
// before a fork (so the child does not print the parent's output again) and
// at a child's exit. The C++ streams are flushed only when they buffer on
// their own (after std::ios::sync_with_stdio(false)); synced with stdio, as by
// default, their output is in stdout's buffer, which the C streams' flush
// covers, and that flush is skipped when no C stream holds unwritten output.
// The point is start-up time: every page a flush writes (a stream's state,
// its lock) or runs costs a page fault once a fork has made it
// copy-on-write; a child's flush of nothing took an eighth of a no-op
// child's life here.
void FlushStandardStreams();

// ArmDeathSignal: SIGKILL this process when `parent` goes (daemons only);
// exits at once if the parent is already gone.
void ArmDeathSignal(pid_t parent);

// The environment variables that tell mp::init what this process is.
inline constexpr char kSpawnFdEnv[] = "MP_SPAWN_FD";
inline constexpr char kForkserverFdEnv[] = "MP_FORKSERVER_FD";
// ExecSelf starts this program again with `env_name`=`fd` (fd inherited).
pid_t ExecSelf(const char* env_name, int fd);
[[noreturn]] void ForkserverMain(int control_fd);
// ServeForks is a fork server's loop: for each request on control_fd it
// forks a child that runs run(message); it reports each child's exit code on
// the descriptor that came with the request. Returns never; exits when the
// control connection closes.
[[noreturn]] void ServeForks(int control_fd, const std::function<int(SpawnMessage&)>& run);
// RequestFork asks the server behind `control` for a child.
std::shared_ptr<ChildState> RequestFork(Connection& control, const SpawnMessage& message);

}  // namespace mp::internal

#endif  // PROCESS_POPEN_H_
