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
// With spawn and forkserver the target must be a plain function (noexcept
// ones too, a captureless lambda) or a function object whose type is
// serializable (its state travels), and the arguments serializable by the
// codec; queues, locks, events, values, connections and shared memory are
// (the child uses the same objects). The program must call
// mp::init(argc, argv) first thing in main(). A subclass works under spawn
// and forkserver when its type is serializable, default-constructible and
// registered at namespace scope:
//
//   class Clock : public mp::Process {
//    public:
//     void run() override { ... }
//     template <class Archive> void serialize(Archive& ar) { ar(interval_); }
//     int interval_ = 1;
//   };
//   MP_SPAWNABLE_PROCESS(Clock);
//
// (C++ cannot find a subclass's type from the base at start(), as Python's
// pickle does; the macro is the registration pickle gets for free.) The
// child runs a decoded copy's run(); its name and daemon flag are the
// parent's object's.
//
// Thread safety: a Process handle is used by one thread at a time; the free
//   functions are thread-safe.
// Fork safety: the handle in a child is a copy that refers to nothing the
//   child owns (a child cannot join its siblings).
// Sharing: not serializable; the pid and sentinel can be passed instead.
#ifndef PROCESS_PROCESS_H_
#define PROCESS_PROCESS_H_

#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <concepts>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
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

class Process;

namespace internal {

struct ChildState;

// A process's place in the tree, as Python's _identity: () for the main
// process, (1,) for Process-1, (1, 2) for its second child. Inline: starting
// a child allocates nothing for it (see registry.cc on why that matters).
using IdentityPath = absl::InlinedVector<int, 4>;

// How a spawn or forkserver child finds and calls the target: `entry` (a
// SpawnEntry instantiation, named by its code address) decodes what
// encode_args made and calls `function` (a plain function) or the function
// object that travels in the bytes (function is then null).
struct SpawnRecipe {
  void* entry = nullptr;
  void* function = nullptr;
  std::function<std::string()> encode_args;  // run with a DescriptorSink in place
};

template <class R>
int ExitCodeOf(R&& result) {
  static_assert(std::is_convertible_v<R, int>, "a Process target returns void or an int");
  return static_cast<int>(result);
}

template <class F, class Tuple>
int CallTarget(F& f, Tuple& args) {
  using R = decltype(std::apply(f, args));
  if constexpr (std::is_void_v<R>) {
    std::apply(f, args);
    return 0;
  } else {
    return ExitCodeOf(std::apply(f, args));
  }
}

// The decoded arguments of a spawn child live until it exits, never
// destroyed, as a forked child's copies do: a Lock the target still holds at
// its end must stay mapped, or the kernel could not mark it owner-died for
// the next acquirer when the child exits (its robust list points into it).
template <class T>
T& DecodeForLife(std::string_view bytes) {
  T* value = new T();
  decode_in_place(bytes, *value);
  return *value;
}

template <class FnPtr, class... A>
int SpawnEntry(void* function, std::string_view args) {
  auto f = reinterpret_cast<FnPtr>(function);
  return CallTarget(f, DecodeForLife<std::tuple<A...>>(args));
}

template <class F, class... A>
int FunctorSpawnEntry(void*, std::string_view bytes) {
  auto& [f, tuple] = DecodeForLife<std::pair<F, std::tuple<A...>>>(bytes);
  return CallTarget(f, tuple);
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
constexpr bool kSpawnableTuple =
    (PlainFunction<F> || SerializableFunctor<F>) && TupleSerializable<Tuple>::value;

template <class F, class... Args>
constexpr bool kSpawnable = kSpawnableTuple<F, typename TargetArgs<F, Args...>::type>;

template <class FnPtr, class Tuple>
struct SpawnEntryFor;
template <class FnPtr, class... A>
struct SpawnEntryFor<FnPtr, std::tuple<A...>> {
  static constexpr auto value = &SpawnEntry<FnPtr, A...>;
};
template <class F, class Tuple>
struct FunctorSpawnEntryFor;
template <class F, class... A>
struct FunctorSpawnEntryFor<F, std::tuple<A...>> {
  static constexpr auto value = &FunctorSpawnEntry<F, A...>;
};

template <class F, class Tuple>
std::optional<SpawnRecipe> MakeSpawnRecipe(const F& f, const Tuple& args) {
  if constexpr (!kSpawnableTuple<F, Tuple>) {
    return std::nullopt;
  } else if constexpr (PlainFunction<F>) {
    auto fn = +f;
    return SpawnRecipe{reinterpret_cast<void*>(SpawnEntryFor<decltype(fn), Tuple>::value),
                       reinterpret_cast<void*>(fn), [args] { return encode(args); }};
  } else {
    return SpawnRecipe{reinterpret_cast<void*>(FunctorSpawnEntryFor<F, Tuple>::value), nullptr,
                       [f, args] { return encode(std::pair<F, Tuple>(f, args)); }};
  }
}

// ---- Process subclasses under spawn and forkserver ----

// How to send a subclass object to a spawn child and run it there.
struct SubclassRunner {
  std::string (*encode)(const Process& process);
  int (*run)(std::string_view bytes);
};
// RegisterSubclass makes subclass `type` (typeid(T).name()) spawnable.
bool RegisterSubclass(const char* type, SubclassRunner runner);
const SubclassRunner* FindSubclass(const char* type);
// ForgetDecodedProcessNumber: a subclass object decoded in its child took a
// child number there (Process's constructor); the child's first own child
// is to be Process-N:1 all the same.
void ForgetDecodedProcessNumber();

template <class F, class... A>
int InvokeTarget(F& f, std::tuple<A...>& args) {
  return CallTarget(f, args);
}

}  // namespace internal

class Process {
 public:
  using Options = ProcessOptions;
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
                  "spawn/forkserver targets must be plain functions (or captureless lambdas, "
                  "or function objects with a serialize()) and every argument must be "
                  "serializable (see ipc/codec.h)");
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

  // Python's repr: <Process name='Process-1' pid=123 parent=120 started>
  // ("initial" before start; "stopped exitcode=0" or "exitcode=-SIGTERM"
  // once it ended; " daemon" for daemons; "closed" after close()).
  friend std::ostream& operator<<(std::ostream& os, const Process& p);

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
  pid_t parent_pid_ = ::getpid();  // the process that made this object
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

// MP_SPAWNABLE_PROCESS(T): Process subclass T may be started with spawn and
// forkserver (see the file comment). At namespace scope, once per type.
#define MP_SPAWNABLE_PROCESS(T)                                                                   \
  static_assert(std::is_base_of_v<::mp::Process, T> && ::mp::is_serializable_v<T> &&            \
                    std::is_default_constructible_v<T>,                                           \
                "MP_SPAWNABLE_PROCESS: T must derive from mp::Process, be default-constructible " \
                "and have a serialize()");                                                        \
  [[maybe_unused]] static const bool mp_spawnable_process_registered_##T =                        \
      ::mp::internal::RegisterSubclass(                                                           \
          typeid(T).name(),                                                                       \
          ::mp::internal::SubclassRunner{                                                         \
              [](const ::mp::Process& p) { return ::mp::encode(static_cast<const T&>(p)); },      \
              [](std::string_view bytes) {                                                        \
                T& process = *new T(); /* for life: see DecodeForLife */                          \
                ::mp::internal::ForgetDecodedProcessNumber();                                     \
                ::mp::decode_in_place(bytes, process);                                            \
                process.set_name(::mp::current_process().name());                                 \
                process.set_daemon(::mp::current_process().daemon());                             \
                process.run();                                                                    \
                return 0;                                                                         \
              }})

#endif  // PROCESS_PROCESS_H_
