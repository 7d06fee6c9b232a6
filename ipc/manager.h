// The Manager moved to //manager (manager/manager.h). This header, where
// API.md's first round put it, forwards there, so that code written to it
// builds; new code includes manager/manager.h and depends on //manager.
#ifndef IPC_MANAGER_H_
#define IPC_MANAGER_H_

#include "manager/manager.h"  // IWYU pragma: export

#endif  // IPC_MANAGER_H_
