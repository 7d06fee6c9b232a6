// Start methods and contexts. Python: multiprocessing.get_context,
// set_start_method, get_start_method.
//
//   int main(int argc, char** argv) {
//     mp::init(argc, argv);                  // needed for spawn and forkserver
//     mp::set_start_method("forkserver");    // once, before starting anything
//     auto ctx = mp::get_context("spawn");   // or per use
//     mp::Process p(mp::ProcessOptions{.start_method = ctx.name()}, f, 1);
//   }
//
// "fork" (the default): the child is a copy of the parent, started at once
//   (about a fork()). Closures and any copyable arguments work. Unsafe in a
//   multithreaded parent if another thread holds a lock the child needs
//   (malloc's, a logger's): the child inherits it locked, forever.
// "spawn": the child is a fresh exec of this program that calls the target
//   by name (function_id.h); costs a program start. Safe in any parent.
// "forkserver": a single-threaded server process, started by the first use
//   (as a fresh exec of this program), forks each child. Children start
//   almost as fast as with fork and never inherit another thread's locks:
//   this is the safe choice in a multithreaded parent. The server exits when
//   the program that started it does.
// With spawn and forkserver the target must be a plain function and the
// arguments serializable; mp::Process(mp::spawn, f, args...) checks that at
// compile time.
//
// Thread safety: all functions are thread-safe.
// Fork safety: a forked child keeps its parent's default method.
// Sharing: a Context is a plain value (the method's name).
//
// Which method to choose: see the README's table ("Start methods").
#ifndef PROCESS_CONTEXT_H_
#define PROCESS_CONTEXT_H_

#include <initializer_list>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ipc/pipe.h"
#include "ipc/queue.h"
#include "sync/shared_value.h"
#include "sync/synchronize.h"

namespace mp {

namespace internal {
struct ExecMethodTag {
  const char* name;
};
}  // namespace internal

// Tags for Process(mp::spawn, f, args...) and Process(mp::forkserver, ...).
struct SpawnMethod : internal::ExecMethodTag {
  constexpr SpawnMethod() : ExecMethodTag{"spawn"} {}
};
struct ForkserverMethod : internal::ExecMethodTag {
  constexpr ForkserverMethod() : ExecMethodTag{"forkserver"} {}
};
inline constexpr SpawnMethod spawn{};
inline constexpr ForkserverMethod forkserver{};

// init must be the first statement of main() in programs that use spawn or
// forkserver: in a child started by those methods it runs the child's work
// and never returns; in the program itself it records argv and returns.
void init(int argc, char** argv);

class Process;
class Pool;
class Manager;

// Context: a start method, and the library's objects made for it. Python:
// multiprocessing.get_context(method).
//
//   auto ctx = mp::get_context("spawn");
//   auto q = ctx.Queue<int>();  auto lock = ctx.Lock();
//   auto p = ctx.Process(worker, q, lock);    // a spawn child
//   auto pool = ctx.Pool(4);                  // spawn workers
//   auto m = ctx.Manager();
//
// Queues, locks and values are the same objects whatever the method (they
// reach children of every method); what the context decides is how the
// processes it makes start (a manager's server included). ctx.Pool and
// ctx.Manager need pool/pool.h and manager/manager.h (the include order does
// not matter).
class Context {
 public:
  explicit Context(std::string method) : method_(std::move(method)) {}
  const std::string& name() const { return method_; }
  const std::string& get_start_method() const { return method_; }

  // Process(target, args...) or Process(ProcessOptions, target, args...):
  // an mp::Process of this method (not yet started).
  template <class First, class... Rest, class P = ::mp::Process>
  P Process(First&& first, Rest&&... rest) const {
    if constexpr (std::is_same_v<std::decay_t<First>, typename P::Options>) {
      typename P::Options options = std::forward<First>(first);
      options.start_method = method_;
      return P(std::move(options), std::forward<Rest>(rest)...);
    } else {
      return P(typename P::Options{.start_method = method_}, std::forward<First>(first),
               std::forward<Rest>(rest)...);
    }
  }
  // Pool(processes) or Pool(PoolOptions): workers of this method.
  template <class P = ::mp::Pool>
  P Pool(std::optional<int> processes = std::nullopt) const {
    typename P::Options options;
    options.processes = processes;
    options.start_method = method_;
    return P(std::move(options));
  }
  template <class Options, class P = ::mp::Pool>
    requires std::is_same_v<Options, typename P::Options>
  P Pool(Options options) const {
    options.start_method = method_;
    return P(std::move(options));
  }
  // Manager(): its server starts by this method.
  template <class M = ::mp::Manager>
  M Manager() const {
    typename M::Options options;
    options.start_method = method_;
    return M(std::move(options));
  }

  template <class T>
  ::mp::Queue<T> Queue(long maxsize = 0) const { return ::mp::Queue<T>(maxsize); }
  template <class T>
  ::mp::SimpleQueue<T> SimpleQueue() const { return {}; }
  template <class T>
  ::mp::JoinableQueue<T> JoinableQueue(long maxsize = 0) const {
    return ::mp::JoinableQueue<T>(maxsize);
  }
  std::pair<Connection, Connection> Pipe(bool duplex = true) const { return ::mp::Pipe(duplex); }
  ::mp::Lock Lock() const { return {}; }
  ::mp::RLock RLock() const { return {}; }
  ::mp::Semaphore Semaphore(int value = 1) const { return ::mp::Semaphore(value); }
  ::mp::BoundedSemaphore BoundedSemaphore(int value = 1) const { return ::mp::BoundedSemaphore(value); }
  ::mp::Event Event() const { return {}; }
  ::mp::Condition Condition() const { return {}; }
  ::mp::Condition Condition(::mp::Lock lock) const { return ::mp::Condition(std::move(lock)); }
  ::mp::Condition Condition(::mp::RLock lock) const { return ::mp::Condition(std::move(lock)); }
  ::mp::Barrier Barrier(int parties) const { return ::mp::Barrier(parties); }
  template <class T>
  ::mp::Value<T> Value(T init = T{}) const { return ::mp::Value<T>(init); }
  template <class T>
  ::mp::RawValue<T> RawValue(T init = T{}) const { return ::mp::RawValue<T>(init); }
  template <class T>
  ::mp::Array<T> Array(size_t n) const { return ::mp::Array<T>(n); }
  template <class T>
  ::mp::Array<T> Array(std::initializer_list<T> values) const { return ::mp::Array<T>(values); }
  template <class T>
  ::mp::RawArray<T> RawArray(size_t n) const { return ::mp::RawArray<T>(n); }

 private:
  std::string method_;
};

// get_context returns the context of a method ("fork", "spawn",
// "forkserver"), or of the default method when empty. mp::ValueError for an
// unknown name.
Context get_context(const std::string& method = "");

// set_start_method sets the default method, once (mp::ProcessError if it was
// already set, unless force). mp::ValueError for an unknown name.
void set_start_method(const std::string& method, bool force = false);

// get_start_method returns the default method ("fork" unless set). With
// allow_none, "" while none was set (Python returns None).
std::string get_start_method(bool allow_none = false);

// set_fork_warning(false) silences the warning that the first fork of a
// multi-threaded process prints to stderr (as Python 3.12 does): forking a
// process with threads may deadlock the child on a lock another thread held.
// The environment variable MP_NO_FORK_WARNING=1 does the same. The remedy is
// set_start_method("forkserver") (or "spawn"), made before threads start.
void set_fork_warning(bool enabled);

// get_all_start_methods lists the methods, the default first.
std::vector<std::string> get_all_start_methods();

}  // namespace mp

#endif  // PROCESS_CONTEXT_H_
