// The manager's accept loop: authenticates clients on a Listener and serves
// each connection on a thread of its own (so one client's blocking call
// never holds the others up), handing every request to the Server.
//
// Internal to //manager. Runs in the manager's server process (Manager), or
// in the program itself (a BaseManager serving on an address).
#ifndef MANAGER_INTERNAL_ACCEPT_LOOP_H_
#define MANAGER_INTERNAL_ACCEPT_LOOP_H_

#include <sys/types.h>

#include <memory>

#include "ipc/listener.h"
#include "manager/internal/server.h"

namespace mp::internal {

struct ServeOptions {
  // A pid to watch (0: none): when it ends, the loop returns. (The owner of
  // a forked server, which could not remove its socket file.)
  pid_t owner = 0;
  // What a client's Shutdown does: true ends the process (_exit(0)), false
  // makes ServeManager return.
  bool exit_on_shutdown = true;
  // Readable: return (BaseManager::shutdown from another thread). -1: none.
  int stop_fd = -1;
  // Written (one byte) and closed once the loop watches its owner: the
  // owner may die from then on without leaving the socket file. -1: none.
  int ready_fd = -1;
};

// ServeManager serves `server` on `listener` until a Shutdown, the owner's
// end or stop_fd; then it closes the listener (removing its socket file and
// private directory) and unlinks the segments tracked for a
// SharedMemoryManager. Returns the exit code. The server must outlive the
// client threads, which may go on after the return until their clients hang
// up (they hold `server`; a loop that returns shuts their sockets down).
int ServeManager(Listener& listener, std::shared_ptr<Server> server, const ServeOptions& options);

}  // namespace mp::internal

#endif  // MANAGER_INTERNAL_ACCEPT_LOOP_H_
