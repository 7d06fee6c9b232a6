// The whole public API of the library: Python's multiprocessing, as C++.
// See README.md for the map and ../shared/API.md for the contract.
#ifndef MULTIPROCESSING_H_
#define MULTIPROCESSING_H_

#include "base/errors.h"        // IWYU pragma: export
#include "base/exception_types.h"  // IWYU pragma: export
#include "base/logging.h"       // IWYU pragma: export
#include "base/version.h"       // IWYU pragma: export
#include "ipc/codec.h"          // IWYU pragma: export
#include "ipc/connection.h"     // IWYU pragma: export
#include "ipc/queue.h"          // IWYU pragma: export
#include "ipc/shared_memory.h"  // IWYU pragma: export
#include "manager/manager.h"    // IWYU pragma: export
#include "pool/executor.h"      // IWYU pragma: export
#include "pool/future.h"        // IWYU pragma: export
#include "pool/pool.h"          // IWYU pragma: export
#include "process/context.h"    // IWYU pragma: export
#include "process/launcher.h"   // IWYU pragma: export
#include "process/process.h"    // IWYU pragma: export
#include "sync/shared_value.h"  // IWYU pragma: export
#include "sync/synchronize.h"   // IWYU pragma: export

#endif  // MULTIPROCESSING_H_
