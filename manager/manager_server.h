// The manager's server: owns the shared objects and serves each client
// connection on a thread of its own, so one client's blocking call (a get on
// an empty queue, a held lock) never holds the others up.
//
// Internal to //ipc:manager. Runs in the manager's server process.
#ifndef MANAGER_MANAGER_SERVER_H_
#define MANAGER_MANAGER_SERVER_H_

#include <sys/types.h>

#include "ipc/connection.h"

namespace mp::internal {

// ServeManager accepts and serves clients on `listener` until a client asks
// for shutdown or `owner` (a pid, 0 for none) ends; then it removes the
// listener's socket file and directory (the owner could not). Returns the
// exit code.
int ServeManager(Listener& listener, pid_t owner);

}  // namespace mp::internal

#endif  // MANAGER_MANAGER_SERVER_H_
