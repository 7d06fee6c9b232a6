// The resource tracker: a small process that unlinks the shared memory
// blocks a program created and did not unlink, once that program is gone
// (SIGKILL included). Python: multiprocessing.resource_tracker, which
// SharedMemory(track=True) uses.
//
// One tracker per process family: started by the first tracked block of a
// process, it reads a socket whose other end the process (and its forked
// children, which share the tracker) holds; at end of file, when the last
// of them has exited, it unlinks every block still registered, then exits.
// Exec'd (spawn) children start trackers of their own.
//
// Internal to //ipc (ipc/shared_memory.cc).
#ifndef IPC_INTERNAL_RESOURCE_TRACKER_H_
#define IPC_INTERNAL_RESOURCE_TRACKER_H_

#include <string>

namespace mp::internal {

// TrackSegment registers the block `name` (without its leading '/'):
// unlinked by the tracker if nobody unlinks it first. UntrackSegment: it was
// unlinked (or handed to another owner). mp::Error if the tracker cannot be
// started; a name over 250 bytes is mp::ValueError.
void TrackSegment(const std::string& name);
void UntrackSegment(const std::string& name);

}  // namespace mp::internal

#endif  // IPC_INTERNAL_RESOURCE_TRACKER_H_
