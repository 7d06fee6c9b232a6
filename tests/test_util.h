// Helpers for tests that need real child processes without depending on
// //process (so that //sync and //ipc can be tested below it).
//
// A forked child reports through its exit code: gtest assertions made in a
// child are lost. Every wait is bounded, so a bug fails a test, never hangs it.
#ifndef TESTS_TEST_UTIL_H_
#define TESTS_TEST_UTIL_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <set>
#include <string>

namespace mp::testing {

// ForkChild runs `body` in a forked child that exits with its return value
// (or 99 if it threw). Returns the child's pid.
pid_t ForkChild(const std::function<int()>& body);

// WaitChild waits up to `timeout` for `pid`; returns its exit code, -N if it
// died of signal N, or kills it and returns -1000 on timeout.
int WaitChild(pid_t pid, std::chrono::milliseconds timeout = std::chrono::seconds(20));

// ReadAllAndClose reads `fd` until EOF (a pipe from a child), closes it and
// returns what came.
std::string ReadAllAndClose(int fd);

// OpenFds lists this process's open file descriptors (/proc/self/fd).
std::set<std::string> OpenFds();

// ShmEntries lists /dev/shm.
std::set<std::string> ShmEntries();

// ChildPids lists the pids of this process's children (from /proc).
std::set<pid_t> ChildPids();

// ZombieChildren lists the children of this process that have ended and
// not been reaped.
std::set<pid_t> ZombieChildren();

// ProcessEnded is true when `pid` is gone or a zombie.
bool ProcessEnded(pid_t pid);

// CpuTime is the CPU time (user + system, all threads) process `pid` has
// used so far; 0 once it is gone.
std::chrono::milliseconds CpuTime(pid_t pid);

// WaitUntil polls `condition` every millisecond until it holds (true) or
// `timeout` passes (false): for states no event announces, such as another
// process's exit.
bool WaitUntil(const std::function<bool()>& condition,
               std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace mp::testing

#endif  // TESTS_TEST_UTIL_H_
