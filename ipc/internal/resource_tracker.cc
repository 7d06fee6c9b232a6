#include "ipc/internal/resource_tracker.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/base/thread_annotations.h"
#include "base/errors.h"
#include "base/mutex.h"

namespace mp::internal {
namespace {

// Messages are one record each of a SOCK_SEQPACKET socket pair (whole,
// whatever the processes that send at once), "R<name>\n" or "U<name>\n";
// sent with MSG_NOSIGNAL, so a dead tracker is an error, never SIGPIPE.
constexpr size_t kMaxName = 250;
constexpr int kMaxSegments = 4096;
constexpr size_t kSlot = 256;

// The tracker's body. It runs in a child forked from a possibly threaded
// program, so it uses system calls only (no allocation, no locks): a fixed
// table of names in an anonymous mapping, written by hand instead of with a
// std:: container for that reason.
[[noreturn]] void TrackerMain(int in) {
  signal(SIGINT, SIG_IGN);   // a terminal's ^C is for the program, not for us
  signal(SIGTERM, SIG_IGN);  // as Python's tracker: we end when our users do
  signal(SIGPIPE, SIG_IGN);
  char* table = static_cast<char*>(
      mmap(nullptr, kMaxSegments * kSlot, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (table == MAP_FAILED) _exit(1);
  char line[kSlot + 2];
  size_t have = 0;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] != '\n') {
        if (have < sizeof line - 1) line[have++] = buf[i];
        continue;
      }
      line[have] = '\0';
      const size_t len = have;
      have = 0;
      if (len < 2 || len - 1 > kMaxName) continue;
      const char* name = line + 1;
      if (line[0] == 'R') {
        for (int s = 0; s < kMaxSegments; ++s) {
          if (table[s * kSlot] == '\0') {
            std::memcpy(table + s * kSlot, name, len);  // with its '\0'
            break;
          }
        }
      } else if (line[0] == 'U') {
        for (int s = 0; s < kMaxSegments; ++s) {
          if (std::strcmp(table + s * kSlot, name) == 0) {
            table[s * kSlot] = '\0';
            break;
          }
        }
      }
    }
  }
  // Everyone who could unlink is gone: unlink what they left.
  char path[kSlot + 16];
  for (int s = 0; s < kMaxSegments; ++s) {
    const char* name = table + s * kSlot;
    if (name[0] == '\0') continue;
    std::memcpy(path, "/dev/shm/", 9);
    std::memcpy(path + 9, name, std::strlen(name) + 1);
    ::unlink(path);
  }
  _exit(0);
}

struct Tracker {
  Mutex mu;
  int fd ABSL_GUARDED_BY(mu) = -1;  // our end of the socket pair; inherited by forked children
};

Tracker& TheTracker() {
  static Tracker* tracker = new Tracker;  // used until exit, never destroyed
  return *tracker;
}

// Start forks twice, so that the tracker is nobody's child to reap (init
// adopts it) and outlives the process that started it.
int Start() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) throw_errno("resource tracker: socketpair");
  const pid_t middle = fork();
  if (middle < 0) {
    const int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw_errno("resource tracker: fork", err);
  }
  if (middle == 0) {
    if (_Fork() != 0) _exit(0);
    // The tracker keeps only its end (as descriptor 3): holding the
    // program's end, or the program's stdout and stderr, would keep it (or
    // whoever reads them) waiting forever.
    if (fds[0] != 3) {
      dup2(fds[0], 3);
    } else {
      fcntl(3, F_SETFD, 0);
    }
    ::close_range(0, 2, 0);
    ::close_range(4, ~0U, 0);
    TrackerMain(3);
  }
  ::close(fds[0]);
  int status = 0;
  while (waitpid(middle, &status, 0) < 0 && errno == EINTR) {
  }
  return fds[1];
}

void Send(char kind, const std::string& name) {
  if (name.empty() || name.size() > kMaxName || name.find('\n') != std::string::npos || name.find('/') != std::string::npos) {
    throw ValueError("SharedMemory: a tracked name must be 1 to 250 bytes, without '/' or newline");
  }
  std::string line;
  line.reserve(name.size() + 2);
  line += kind;
  line += name;
  line += '\n';
  Tracker& t = TheTracker();
  MutexLock lock(t.mu);
  if (t.fd < 0) {
    if (kind == 'U') return;  // never tracked anything
    t.fd = Start();
  }
  for (;;) {
    const ssize_t n = ::send(t.fd, line.data(), line.size(), MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(line.size())) return;
    if (n < 0 && errno == EINTR) continue;
    // The tracker died (EPIPE): start another for the names to come.
    ::close(t.fd);
    t.fd = -1;
    if (kind == 'U') return;
    t.fd = Start();
  }
}

}  // namespace

void TrackSegment(const std::string& name) { Send('R', name); }
void UntrackSegment(const std::string& name) { Send('U', name); }

}  // namespace mp::internal
