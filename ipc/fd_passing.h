// Passing a file descriptor to another process over a Unix socket
// (SCM_RIGHTS). Internal to the library: the forkserver hands each child's
// status socket over, and the manager hands its queues' shared memory.
#ifndef IPC_FD_PASSING_H_
#define IPC_FD_PASSING_H_

namespace mp::internal {

// SendFd sends `fd` (and one byte) on the Unix socket `socket`. Throws mp::Error.
void SendFd(int socket, int fd);
// RecvFd receives a descriptor (close-on-exec) sent by SendFd. Throws mp::Error.
int RecvFd(int socket);

}  // namespace mp::internal

#endif  // IPC_FD_PASSING_H_
