#include "tests/test_util.h"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace mp::testing {

pid_t ForkChild(const std::function<int()>& body) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int code = 99;
    try {
      code = body();
    } catch (...) {
      code = 99;
    }
    std::fflush(nullptr);
    _exit(code);
  }
  return pid;
}

int WaitChild(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // A bounded poll is acceptable here: this is test scaffolding that must not
  // depend on the library's own (tested) waiting code.
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return -WTERMSIG(status);
      return -2000;
    }
    if (r < 0) return -3000;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1000;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

namespace {
bool fcntl_is_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

std::set<std::string> ListDir(const char* path) {
  std::set<std::string> out;
  if (DIR* d = opendir(path)) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") out.insert(name);
    }
    closedir(d);
  }
  return out;
}
}  // namespace

std::set<std::string> OpenFds() {
  std::set<std::string> fds = ListDir("/proc/self/fd");
  // The directory stream's own fd appears in its listing; drop fds that are
  // no longer open now.
  std::set<std::string> out;
  for (const auto& fd : fds) {
    if (fcntl_is_open(std::stoi(fd))) out.insert(fd);
  }
  return out;
}

std::set<std::string> ShmEntries() { return ListDir("/dev/shm"); }

namespace {

// The state (field 3) and parent (field 4) of `pid`, from /proc; false if
// it is gone.
// The fields of /proc/<pid>/stat after the ")" that closes the command name
// (field 3, the state, first); empty if the process is gone.
std::vector<std::string> StatFields(const std::string& pid) {
  std::ifstream stat("/proc/" + pid + "/stat");
  std::string line;
  std::vector<std::string> fields;
  if (!std::getline(stat, line)) return fields;
  const auto close = line.rfind(')');
  if (close == std::string::npos) return fields;
  std::istringstream rest(line.substr(close + 2));
  for (std::string field; rest >> field;) fields.push_back(field);
  return fields;
}

bool ReadStateAndParent(const std::string& pid, char* state, pid_t* ppid) {
  const std::vector<std::string> fields = StatFields(pid);
  if (fields.size() < 2) return false;
  *state = fields[0].empty() ? '?' : fields[0][0];
  *ppid = static_cast<pid_t>(std::stol(fields[1]));
  return true;
}

std::set<pid_t> Children(bool zombies_only) {
  std::set<pid_t> out;
  const pid_t self = getpid();
  for (const auto& entry : ListDir("/proc")) {
    if (entry.find_first_not_of("0123456789") != std::string::npos) continue;
    char state;
    pid_t ppid = 0;
    if (!ReadStateAndParent(entry, &state, &ppid) || ppid != self) continue;
    if (zombies_only && state != 'Z') continue;
    out.insert(static_cast<pid_t>(std::stoi(entry)));
  }
  return out;
}

}  // namespace

std::string ReadAllAndClose(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

std::set<pid_t> ChildPids() { return Children(false); }

std::set<pid_t> ZombieChildren() { return Children(true); }

bool ProcessEnded(pid_t pid) {
  char state;
  pid_t ppid;
  if (!ReadStateAndParent(std::to_string(pid), &state, &ppid)) return true;
  return state == 'Z' || state == 'X';
}

std::chrono::milliseconds CpuTime(pid_t pid) {
  const std::vector<std::string> fields = StatFields(std::to_string(pid));
  if (fields.size() < 13) return std::chrono::milliseconds(0);
  const long ticks = std::stol(fields[11]) + std::stol(fields[12]);  // utime, stime (14, 15)
  return std::chrono::milliseconds(ticks * 1000 / sysconf(_SC_CLK_TCK));
}

bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace mp::testing
