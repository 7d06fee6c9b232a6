// Processes: Python's multiprocessing.Process and the functions around it.
//
//   void worker(int interval, std::string name) { ... }
//   mp::Process p(worker, 2, "两点水1");       // target + arguments
//   p.start();
//   p.join();                                // or p.join(3s) -> bool
//
//   class ClockProcess : public mp::Process { // subclass style
//     void run() override { ... }
//   };
//
// Semantics are Python 3.13's: names "Process-N" (N counts from 1 in each
// process; a child's children are "Process-N:M"), exitcode nullopt while
// running, the target's int return (or 0), 1 after an escaped exception
// (printed as "Process <name>:" and the type and message on stderr), -N after
// signal N. At normal exit of a process, its daemonic children are terminated
// and the others joined. Misuse (start twice, join before start, daemon set
// after start, use after close) throws mp::ProcessError.
//
// Beyond Python: daemonic children also die when the parent is killed by
// SIGKILL (PR_SET_PDEATHSIG, checked against the fork race). Note that the
// kernel sends it when the *thread* that started the child ends: start
// daemonic children from a thread that lives as long as they should. Ended
// children are reaped by join, is_alive, active_children or at exit, by pid:
// the library never calls waitpid(-1) and installs no signal handler.
//
// Start methods (see process/context.h): "fork" (default; any callable and
// copyable arguments), "spawn" (a fresh exec of this program) and
// "forkserver" (children forked by a single-threaded server started early).
// With spawn and forkserver the target must be a plain function (or a
// captureless lambda) and the arguments serializable by the codec; the
// program must call mp::init(argc, argv) first thing in main().
//
// Thread safety: a Process handle is used by one thread at a time; the free
//   functions are thread-safe.
// Fork safety: the handle in a child is a copy that refers to nothing the
//   child owns (a child cannot join its siblings).
// Sharing: not serializable; the pid and sentinel can be passed instead.
#ifndef PROCESS_PROCESS_H_
#define PROCESS_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <concepts>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "base/errors.h"
#include "ipc/codec.h"
#include "process/context.h"
#include "process/function_id.h"
#include "process/function_traits.h"
#include "sync/futex.h"

namespace mp {

// Keyword arguments of Process. Python: Process(name=..., daemon=...).
struct ProcessOptions {
  std::string name;             // empty: "<name_prefix>-N"
  std::string name_prefix = "Process";  // Pool names its workers "ForkPoolWorker-N"
  bool daemon = false;          // terminated at parent exit; dies with the parent
  std::string start_method;     // empty: the default (see set_start_method)
};

// What a process is, for current_process(), parent_process() and
// active_children().
class ProcessInfo {
 public:
  ProcessInfo(pid_t pid, std::string name, bool daemon)
      : pid_(pid), name_(std::move(name)), daemon_(daemon) {}
  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  bool daemon() const { return daemon_; }
  // authkey: the process's authentication key (32 random bytes in the main
  // process, inherited by its children whatever the start method): the
  // default key of a Manager, so that every child can reach it. Known for
  // current_process() only (empty for the others). Python:
  // current_process().authkey.
  const std::string& authkey() const { return authkey_; }

 private:
  friend ProcessInfo current_process();
  pid_t pid_;
  std::string name_;
  bool daemon_;
  std::string authkey_;
};

namespace internal {

struct ChildState;

// A process's place in the tree, as Python's _identity: () for the main
// process, (1,) for Process-1, (1, 2) for its second child. Inline: starting
// a child allocates nothing for it (see registry.cc on why that matters).
using IdentityPath = absl::InlinedVector<int, 4>;

// How a spawn or forkserver child finds and calls the target.
struct SpawnRecipe {
  void* entry = nullptr;    // SpawnEntry<...> instantiation
  void* function = nullptr;  // the user's function
  std::function<std::string()> encode_args;
};

template <class FnPtr, class... A>
int SpawnEntry(void* function, std::string_view args) {
  auto f = reinterpret_cast<FnPtr>(function);
  auto tuple = decode<std::tuple<A...>>(args);
  using R = decltype(std::apply(f, tuple));
  if constexpr (std::is_void_v<R>) {
    std::apply(f, tuple);
    return 0;
  } else {
    return static_cast<int>(std::apply(f, tuple));
  }
}

template <class Tuple>
struct TupleSerializable;
template <class... A>
struct TupleSerializable<std::tuple<A...>> : std::bool_constant<(is_serializable_v<A> && ...)> {};

// The arguments as the child will receive them: converted to the target's
// parameter types for a plain function (so "text" becomes the std::string
// the function takes), else decayed copies.
template <class F, class... Args>
struct TargetArgs {
  using type = std::tuple<std::decay_t<Args>...>;
};
template <PlainFunction F, class... Args>
  requires(FunctionTraits<FunctionPointer<F>>::kArity == sizeof...(Args))
struct TargetArgs<F, Args...> {
  using type = typename FunctionTraits<FunctionPointer<F>>::ArgTuple;
};

template <class F, class Tuple>
constexpr bool kSpawnableTuple = PlainFunction<F> && TupleSerializable<Tuple>::value;

template <class F, class... Args>
constexpr bool kSpawnable = kSpawnableTuple<F, typename TargetArgs<F, Args...>::type>;

template <class FnPtr, class Tuple>
struct SpawnEntryFor;
template <class FnPtr, class... A>
struct SpawnEntryFor<FnPtr, std::tuple<A...>> {
  static constexpr auto value = &SpawnEntry<FnPtr, A...>;
};

template <class F, class Tuple>
std::optional<SpawnRecipe> MakeSpawnRecipe(const F& f, const Tuple& args) {
  if constexpr (kSpawnableTuple<F, Tuple>) {
    auto fn = +f;
    return SpawnRecipe{reinterpret_cast<void*>(SpawnEntryFor<decltype(fn), Tuple>::value),
                       reinterpret_cast<void*>(fn), [args] { return encode(args); }};
  } else {
    return std::nullopt;
  }
}

template <class F, class... A>
int InvokeTarget(F& f, std::tuple<A...>& args) {
  using R = decltype(std::apply(f, args));
  if constexpr (std::is_void_v<R>) {
    std::apply(f, args);
    return 0;
  } else {
    static_assert(std::is_convertible_v<R, int>, "a Process target returns void or an int");
    return static_cast<int>(std::apply(f, args));
  }
}

}  // namespace internal

class Process {
 public:
  // Process(target, args...): run target(args...) in the child. In fork mode
  // any callable and copyable arguments; see the file comment for spawn.
  template <class F, class... Args>
    requires std::invocable<std::decay_t<F>&, std::decay_t<Args>&...>
  explicit Process(F&& target, Args&&... args)
      : Process(ProcessOptions{}, std::forward<F>(target), std::forward<Args>(args)...) {}

  // Process(options, target, args...): with a name, daemon flag or method.
  template <class F, class... Args>
    requires std::invocable<std::decay_t<F>&, std::decay_t<Args>&...>
  Process(ProcessOptions options, F&& target, Args&&... args) : Process(std::move(options)) {
    using Tuple = typename internal::TargetArgs<std::decay_t<F>, Args...>::type;
    Tuple tuple(std::forward<Args>(args)...);
    spawn_ = internal::MakeSpawnRecipe(target, tuple);
    target_ = [f = std::decay_t<F>(std::forward<F>(target)), tuple]() mutable {
      return internal::InvokeTarget(f, tuple);
    };
  }

  // Process(spawn_method, target, args...) with mp::spawn or mp::forkserver:
  // a target that those methods cannot run is a compile-time error.
  template <class Method, class F, class... Args>
    requires std::is_base_of_v<internal::ExecMethodTag, Method>
  Process(Method method, F&& target, Args&&... args)
      : Process(ProcessOptions{.start_method = method.name}, std::forward<F>(target),
                std::forward<Args>(args)...) {
    static_assert(internal::kSpawnable<std::decay_t<F>, Args...>,
                  "spawn/forkserver targets must be plain functions (or captureless lambdas) "
                  "and every argument must be serializable (see ipc/codec.h)");
  }

  // Subclass style: override run(). Python: class P(Process): def run(self).
  explicit Process(ProcessOptions options = {});

  Process(Process&&) noexcept;
  Process& operator=(Process&&) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  // Neither kills nor waits: a running child goes on, and is reaped later
  // (active_children, or at exit).
  virtual ~Process();

  // run is what the child executes: by default the target (whose int
  // return, if any, becomes the exit code).
  virtual void run();

  // start launches the child. ProcessError if started before, closed, or if
  // this process is daemonic (daemons cannot have children).
  void start();
  // join waits for the child to end. ProcessError before start.
  void join();
  // join(timeout) returns true if the child ended in time.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return join_until(internal::DeadlineAfter(timeout));
  }
  // is_alive is true between start and the child's end.
  bool is_alive();
  // terminate sends SIGTERM; kill SIGKILL; interrupt SIGINT. No-ops once the
  // child has ended and was reaped.
  void terminate();
  void kill();
  void interrupt();
  // close releases the handle's resources. mp::ValueError while running;
  // afterwards every method but closed() throws ProcessError.
  void close();

  // sentinel is a descriptor that becomes readable when the child ends (for
  // mp::wait, poll or Asio). ProcessError before start.
  int sentinel() const;
  // pid is the child's process id (0 before start).
  pid_t pid() const;
  const std::string& name() const { return name_; }
  void set_name(std::string name);
  bool daemon() const { return daemon_; }
  // set_daemon: only before start (ProcessError after).
  void set_daemon(bool daemon);
  // exitcode is nullopt until the child ended (and before start).
  std::optional<int> exitcode();

 private:
  void check_not_closed(const char* what) const;
  void check_started(const char* what) const;
  bool join_until(const internal::Deadline& deadline);

  std::string name_;
  internal::IdentityPath identity_;  // Python's _identity: Process-1's child is (1, 1)
  bool daemon_ = false;
  std::string start_method_;
  std::function<int()> target_;
  std::optional<internal::SpawnRecipe> spawn_;
  std::shared_ptr<internal::ChildState> child_;
  bool closed_ = false;
  int target_exit_code_ = 0;  // set by run() in the child
  friend class Launcher;
};

// current_process describes the calling process: "MainProcess" in the
// program's first process, the child's own name in a child.
ProcessInfo current_process();
// parent_process is nullopt in the main process.
std::optional<ProcessInfo> parent_process();
// active_children lists the live children started by this process (reaping
// those that ended).
std::vector<ProcessInfo> active_children();
// cpu_count is the number of CPUs this process may run on (its affinity mask).
int cpu_count();

}  // namespace mp

#endif  // PROCESS_PROCESS_H_
