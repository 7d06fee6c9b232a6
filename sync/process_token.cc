#include "sync/process_token.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/pidfd.h"
#include "base/scoped_fd.h"

namespace mp::internal {
namespace {

std::atomic<bool> g_proc_fallback{false};

// What /proc/<pid>/stat says of a process.
struct StatFields {
  char state = '?';
  uint64_t start_ticks = 0;
};

enum class Lookup { kFound, kNoSuchProcess, kUnreadable };

Lookup ReadStat(pid_t pid, StatFields* out) {
  char path[40];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  const ScopedFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno == ENOENT || errno == ESRCH ? Lookup::kNoSuchProcess : Lookup::kUnreadable;
  char buf[1024];
  const ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  if (n <= 0) return n == 0 || errno == ESRCH ? Lookup::kNoSuchProcess : Lookup::kUnreadable;
  buf[n] = '\0';
  // Field 2 (the command) may hold spaces and ')': fields 3 on follow its
  // last ')'. Field 3 is the state, field 22 the start time.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr || p[1] != ' ') return Lookup::kUnreadable;
  out->state = p[2];
  int field = 3;
  for (p += 2; *p != '\0' && field < 22; ++p) {
    if (*p == ' ') ++field;
  }
  if (field != 22) return Lookup::kUnreadable;
  out->start_ticks = std::strtoull(p, nullptr, 10);
  return Lookup::kFound;
}

bool GoneWithoutProc(pid_t pid) {
  const ScopedFd fd(PidfdOpen(pid));
  if (fd.valid()) return PidfdEnded(fd.get());
  if (errno == ESRCH) return true;
  return ::kill(pid, 0) != 0 && errno == ESRCH;  // No pidfds (Linux < 5.3).
}

}  // namespace

uint64_t MakeToken(pid_t pid, uint64_t start_ticks) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(pid)) << 32) | (start_ticks & 0xffffffffu);
}

uint64_t SelfToken() {
  // Cached with the pid it belongs to: a forked child computes its own.
  static std::atomic<uint64_t> cached{0};
  const pid_t self = getpid();
  uint64_t token = cached.load(std::memory_order_relaxed);
  if (token != 0 && TokenPid(token) == self) return token;
  StatFields fields;
  token = MakeToken(self, ReadStat(self, &fields) == Lookup::kFound ? fields.start_ticks : 0);
  cached.store(token, std::memory_order_relaxed);
  return token;
}

uint64_t TokenOf(pid_t pid) {
  StatFields fields;
  return ReadStat(pid, &fields) == Lookup::kFound ? MakeToken(pid, fields.start_ticks) : 0;
}

bool TokenGone(uint64_t token) {
  if (token == 0) return false;
  const pid_t pid = TokenPid(token);
  if (pid == getpid()) return false;
  StatFields fields;
  const Lookup found = g_proc_fallback.load(std::memory_order_relaxed) ? Lookup::kUnreadable
                                                                       : ReadStat(pid, &fields);
  switch (found) {
    case Lookup::kNoSuchProcess:
      return true;
    case Lookup::kFound:
      if (fields.state == 'Z' || fields.state == 'X') return true;
      return (fields.start_ticks & 0xffffffffu) != (token & 0xffffffffu);
    case Lookup::kUnreadable:
      break;
  }
  return GoneWithoutProc(pid);
}

void SetProcFallbackForTesting(bool fallback) { g_proc_fallback.store(fallback); }

}  // namespace mp::internal
