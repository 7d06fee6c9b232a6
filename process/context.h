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
#ifndef PROCESS_CONTEXT_H_
#define PROCESS_CONTEXT_H_

#include <string>
#include <vector>

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

// Context: a start method by name. get_context("spawn").name() == "spawn".
class Context {
 public:
  explicit Context(std::string method) : method_(std::move(method)) {}
  const std::string& name() const { return method_; }
  const std::string& get_start_method() const { return method_; }

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

// get_start_method returns the default method ("fork" unless set).
std::string get_start_method();

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
