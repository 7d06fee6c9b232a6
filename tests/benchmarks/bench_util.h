// Helpers shared by the benchmarks: CPU pinning and a child process that
// runs a loop until told to stop.
#ifndef TESTS_BENCHMARKS_BENCH_UTIL_H_
#define TESTS_BENCHMARKS_BENCH_UTIL_H_

#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>

namespace bench {

// Pin the calling thread to `cpu` (-1: all CPUs).
inline void Pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (cpu < 0) {
    for (int i = 0; i < CPU_SETSIZE; ++i) CPU_SET(i, &set);
  } else {
    CPU_SET(cpu, &set);
  }
  sched_setaffinity(0, sizeof set, &set);
}

// A raw forked child running `body` (the floors must not depend on the
// library's Process). Kill() ends it.
class RawChild {
 public:
  explicit RawChild(const std::function<void()>& body) {
    std::fflush(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      body();
      _exit(0);
    }
  }
  ~RawChild() { Kill(); }
  void Wait() {
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  void Kill() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

}  // namespace bench

#endif  // TESTS_BENCHMARKS_BENCH_UTIL_H_
