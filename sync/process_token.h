// ProcessToken: a name for a process that is never given to another one.
//
// Internal to the library. A pid alone is reused once its process is reaped,
// so a record that says "process 1234 is streaming into this queue" would
// read as alive for ever if 1234 died and its pid went to a new process.
// A token is the pid together with the process's start time (in clock ticks
// since boot, /proc/<pid>/stat field 22), which a reused pid does not share;
// it fits one 64-bit word, so that shared state can hold it atomically.
#ifndef SYNC_PROCESS_TOKEN_H_
#define SYNC_PROCESS_TOKEN_H_

#include <sys/types.h>

#include <cstdint>

namespace mp::internal {

// SelfToken is the calling process's token (never 0). Cached per process.
uint64_t SelfToken();

// TokenPid is the pid a token names.
inline pid_t TokenPid(uint64_t token) { return static_cast<pid_t>(token >> 32); }

// TokenGone is true once the process `token` names has ended (reaped or
// not: a zombie holds no lock and writes nothing) or its pid belongs to
// another process. Never true for 0 or the calling process. Reads
// /proc/<pid>/stat; where /proc cannot be read it falls back to a pidfd
// (which tells an ended process before it is reaped), and without pidfds
// to kill(pid, 0): those two cannot tell a reused pid.
bool TokenGone(uint64_t token);

// TokenOf is the token of process `pid`, or 0 if /proc has no such process.
uint64_t TokenOf(pid_t pid);

// MakeToken builds a token from its parts (for tests).
uint64_t MakeToken(pid_t pid, uint64_t start_ticks);

// SetProcFallbackForTesting(true) makes TokenGone act as if /proc could not
// be read.
void SetProcFallbackForTesting(bool fallback);

}  // namespace mp::internal

#endif  // SYNC_PROCESS_TOKEN_H_
