// Python's multiprocessing.connection, whole: Pipe, Connection and wait
// (ipc/pipe.h, target //ipc:connection) with Listener and Client
// (ipc/listener.h, //ipc:listener). Part of //ipc.
#ifndef IPC_CONNECTION_H_
#define IPC_CONNECTION_H_

#include "ipc/listener.h"  // IWYU pragma: export
#include "ipc/pipe.h"      // IWYU pragma: export

#endif  // IPC_CONNECTION_H_
