// Launcher: a single-threaded helper process that forks children on request,
// for libraries that must start processes after they have started threads.
//
//   mp::Launcher launcher([](int slot) { return worker_loop(slot); });
//   mp::Process worker = launcher.start({.name = "ForkPoolWorker-1", .daemon = true}, 0);
//   worker.join();
//
// Forking a multithreaded process is unsafe: the child inherits every lock
// another thread held at that instant, forever locked. A Launcher forks its
// helper once, at construction (create it before starting threads); the
// helper stays single-threaded and forks each child from there. Children are
// copies of the program as it was when the Launcher was created (closures,
// shared memory and queues made before then included), run body(arg), and
// are real mp::Process handles in the program (join, sentinel, terminate,
// exitcode, active_children). Pool uses one to start and replace workers.
//
// The helper dies with the program (it is armed with PR_SET_PDEATHSIG, and
// forked from a thread that lives as long as the program, even when the
// Launcher is made on a short-lived thread), and daemonic children die with
// the helper, so nothing outlives the program even when it is killed with
// SIGKILL. The
// helper ignores SIGINT, so Ctrl-C reaches only the program and the children.
//
// Thread safety: start() may be called from any thread.
// Fork safety: a Launcher is only usable in the process that created it.
// Sharing: not shareable.
#ifndef PROCESS_LAUNCHER_H_
#define PROCESS_LAUNCHER_H_

#include <functional>
#include <memory>
#include <mutex>

#include "process/process.h"

namespace mp {

namespace internal {
struct LauncherState;
}  // namespace internal

class Launcher {
 public:
  // Launcher forks the helper now. `body` runs in each child.
  explicit Launcher(std::function<int(int arg)> body);
  // Stops the helper (children it started keep running until they end or
  // are terminated; daemonic ones die with it).
  ~Launcher();
  Launcher(const Launcher&) = delete;
  Launcher& operator=(const Launcher&) = delete;

  // start asks the helper for a child that runs body(arg), and returns its
  // handle, already started. Throws mp::ProcessError if the helper is gone.
  Process start(ProcessOptions options, int arg);

  // alive is false once the helper has ended (then start() throws; make a
  // new Launcher).
  bool alive();

 private:
  std::unique_ptr<internal::LauncherState> state_;
};

}  // namespace mp

#endif  // PROCESS_LAUNCHER_H_
