// The whole public API of the library: Python's multiprocessing, as C++.
// See ../shared/API.md (or README.md) for the contract.
#ifndef MULTIPROCESSING_H_
#define MULTIPROCESSING_H_

#include "sync/errors.h"        // IWYU pragma: export
#include "sync/shared_value.h"  // IWYU pragma: export
#include "sync/synchronize.h"   // IWYU pragma: export

#endif  // MULTIPROCESSING_H_
