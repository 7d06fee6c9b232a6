// Pidfds: descriptors that refer to a process, the one way to watch a
// process that is not a child (and to poll for a child's end).
//
// Internal to the library.
#ifndef BASE_PIDFD_H_
#define BASE_PIDFD_H_

#include <poll.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

namespace mp::internal {

// PidfdOpen returns a pidfd for `pid` (close-on-exec), or -1 with errno set
// (ESRCH: no such process). glibc 2.36 has no wrapper.
inline int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

// PidfdSendSignal sends `sig` to the process behind `pidfd` (0: only checks
// that it can); -1 with errno set (ESRCH: it has ended). The signal reaches
// that process or none: never one that was given its pid later.
inline int PidfdSendSignal(int pidfd, int sig) {
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// PidfdEnded is true once the process behind `pidfd` has ended, reaped or
// not (a pidfd polls readable from its exit on).
inline bool PidfdEnded(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

}  // namespace mp::internal

#endif  // BASE_PIDFD_H_
